package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/generic-corp/soak-exporter/internal/testfixture"

	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

// tools are the external programs the test runs.
type tools struct {
	prometheus   string
	promtool     string
	alertmanager string
}

// requireTools finds prometheus, promtool and Alertmanager on PATH and fails
// the test, saying how to install them, when one is missing. (node and the
// fixture's packages are checked by testfixture.Start the same way.)
func requireTools(t *testing.T) tools {
	t.Helper()
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
		}
		t.Fatalf("e2e: %s is not on PATH: run `make deps` in the repository root "+
			"(it installs the Debian packages prometheus and prometheus-alertmanager and the Node fixture)",
			strings.Join(names, " or "))
		return ""
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("e2e: node is not on PATH: install Node.js >= 18, then run `make deps` in the repository root")
	}
	return tools{
		prometheus:   find("prometheus"),
		promtool:     find("promtool"),
		alertmanager: find("prometheus-alertmanager", "alertmanager"),
	}
}

// buildAgent builds cmd/soak-exporter into a temporary directory.
func buildAgent(t *testing.T) string {
	t.Helper()
	root := testfixture.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "soak-exporter")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/soak-exporter")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("e2e: go build ./cmd/soak-exporter: %v\n%s", err, out)
	}
	return bin
}

// agentHelp returns the agent's --help text.
func agentHelp(t *testing.T, bin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("e2e: soak-exporter --help: %v\n%s", err, out)
	}
	return string(out)
}

// freeAddress returns a 127.0.0.1 address with a port that was free a
// moment ago, for programs that cannot report the port they picked.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: find a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("e2e: find a free port: %v", err)
	}
	return addr
}

// renderTemplate fills testdata/name with data and writes it to dir/out.
func renderTemplate(t *testing.T, name, dir, out string, data any) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	var b bytes.Buffer
	if err := tmpl.Option("missingkey=error").Execute(&b, data); err != nil {
		t.Fatalf("e2e: render %s: %v", name, err)
	}
	path := filepath.Join(dir, out)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return path
}

// process is one external program started by the test. Its output (stdout
// and stderr) is kept, its last 256 KiB, and printed when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *logTail
	done chan struct{} // closed once Wait returned
	err  error         // valid after done
}

// startProcess starts bin with args and env (added to the test's
// environment) in its own process group, and registers its stop with
// t.Cleanup: SIGTERM, SIGKILL after 10 s, and a wait in both cases. onLine,
// if not nil, sees every output line, from another goroutine.
func startProcess(t *testing.T, name, bin string, args, env []string, onLine func(string)) *process {
	t.Helper()
	p := &process{name: name, out: &logTail{onLine: onLine}, done: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Wait returns even if a grandchild kept the output pipe open.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("e2e: start %s: %v", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("e2e: output of %s (%v, exit: %v), last part:\n%s", name, cmd.Args, p.err, p.out.String())
		}
	})
	return p
}

// stop ends the process group gracefully, then by force, and waits.
func (p *process) stop() {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// checkRunning fails the test if the process has exited.
func (p *process) checkRunning(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("e2e: %s exited unexpectedly (%v); output:\n%s", p.name, p.err, p.out.String())
	}
}

// logTail is an io.Writer that keeps the last logKeep bytes written and
// hands every complete line to onLine.
type logTail struct {
	onLine func(string)

	mu      sync.Mutex
	buf     []byte
	partial []byte
}

const logKeep = 256 << 10

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - logKeep; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	var lines []string
	if l.onLine != nil {
		l.partial = append(l.partial, p...)
		for {
			i := bytes.IndexByte(l.partial, '\n')
			if i < 0 {
				break
			}
			lines = append(lines, string(l.partial[:i]))
			l.partial = l.partial[i+1:]
		}
		if len(l.partial) > logKeep {
			l.partial = l.partial[:0]
		}
	}
	l.mu.Unlock()
	for _, line := range lines {
		l.onLine(line)
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// agent is the running soak-exporter binary.
type agent struct {
	*process
	addr string // host:port of /metrics
}

// startAgent runs the agent binary with env (SOAK_ variables) and waits for
// its "serving metrics" log line, which carries the listen address.
func startAgent(t *testing.T, bin string, env []string) *agent {
	t.Helper()
	addrc := make(chan string, 1)
	onLine := func(line string) {
		var m struct {
			Msg     string `json:"msg"`
			Address string `json:"address"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "serving metrics" && m.Address != "" {
			select {
			case addrc <- m.Address:
			default:
			}
		}
	}
	env = append([]string{"SOAK_LISTEN_ADDRESS=127.0.0.1:0", "SOAK_LOG_FORMAT=json", "SOAK_LOG_LEVEL=info"}, env...)
	p := startProcess(t, "soak-exporter", bin, nil, env, onLine)
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case addr := <-addrc:
		return &agent{process: p, addr: addr}
	case <-p.done:
		t.Fatalf("e2e: the agent exited before serving metrics (%v); output:\n%s", p.err, p.out.String())
	case <-timer.C:
		t.Fatalf("e2e: the agent did not log \"serving metrics\" within 30 s; output:\n%s", p.out.String())
	}
	return nil
}

// waitHTTPOK polls url until it answers 200, failing the test after timeout
// or when p exits.
func waitHTTPOK(t *testing.T, c *http.Client, p *process, url string, timeout time.Duration) {
	t.Helper()
	var last string
	// Prometheus and Alertmanager say they are ready only when asked.
	if !soaktest.Poll(timeout, 200*time.Millisecond, func() bool {
		p.checkRunning(t)
		resp, err := c.Get(url)
		if err != nil {
			last = err.Error()
			return false
		}
		_ = resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("e2e: %s not ready within %v (last: %s); output:\n%s", url, timeout, last, p.out.String())
	}
}

// promDuration formats d the way Prometheus configuration files want it.
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
