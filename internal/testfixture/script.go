package testfixture

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Script is a one-file Node program of the fixture directory (e.g.
// leaky-cache.js) run for one test. The program prints a JSON ready line
// with at least its port once it listens on 127.0.0.1.
type Script struct {
	t      testing.TB
	proc   *process
	ready  ScriptReady
	client *http.Client
}

// ScriptReady is a script's ready line.
type ScriptReady struct {
	Port int `json:"port"`
	PID  int `json:"pid"`
	// Inspector is the inspector's WebSocket URL when the script was started
	// with --inspect (ws://127.0.0.1:PORT/ID).
	Inspector string `json:"inspector"`
}

// StartScript runs `node nodeArgs... name` in the fixture directory with env
// added to the test's environment, waits for its ready line (30 s at most)
// and registers its stop (SIGTERM, SIGKILL after 5 s) with t.Cleanup.
func StartScript(t testing.TB, name string, env []string, nodeArgs ...string) *Script {
	if testing.Short() {
		t.Skip("fast tier (-short): needs the Node fixture")
	}
	t.Helper()
	root, err := FindRepoRoot(".")
	if err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("testfixture: node is not on PATH: %v", err)
	}
	dir := filepath.Join(root, filepath.FromSlash(FixtureDir))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("testfixture: stdout pipe: %v", err)
	}
	p := &process{stderr: &syncBuffer{}, exited: make(chan struct{}), readyLine: make(chan []byte, 1), readerDone: make(chan struct{})}
	cmd := exec.Command("node", append(append([]string{}, nodeArgs...), name)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = w, p.stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("testfixture: start node %s: %v", name, err)
	}
	w.Close()
	p.cmd, p.pid = cmd, cmd.Process.Pid
	go func() {
		defer close(p.readerDone)
		defer r.Close()
		br := bufio.NewReader(r)
		if line, err := br.ReadBytes('\n'); err == nil {
			p.readyLine <- line
		}
		_, _ = io.Copy(io.Discard, br)
	}()
	go func() {
		err := cmd.Wait()
		<-p.readerDone
		p.waitErr = err
		close(p.exited)
	}()
	s := &Script{t: t, proc: p, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	t.Cleanup(func() {
		p.terminate(syscall.SIGTERM, 5*time.Second)
		if t.Failed() {
			t.Logf("testfixture: %s stderr:\n%s", name, p.stderr.String())
		}
	})
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case line := <-p.readyLine:
		if err := json.Unmarshal(line, &s.ready); err != nil || s.ready.Port == 0 {
			t.Fatalf("testfixture: %s: bad ready line %q: %v", name, line, err)
		}
	case <-p.exited:
		t.Fatalf("testfixture: %s exited before it was ready (%v); stderr:\n%s", name, p.waitErr, p.stderr.String())
	case <-timer.C:
		t.Fatalf("testfixture: %s not ready within 30 s; stderr:\n%s", name, p.stderr.String())
	}
	return s
}

// URL is the script's base URL, "http://127.0.0.1:PORT".
func (s *Script) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.ready.Port) }

// PID is the script's process id.
func (s *Script) PID() int { return s.proc.pid }

// InspectorAddr is the host:port of the script's inspector, "" when it was
// not started with --inspect.
func (s *Script) InspectorAddr() string {
	u, err := url.Parse(s.ready.Inspector)
	if err != nil {
		return ""
	}
	return u.Host
}

// Get calls path (with its query) on the script and decodes the JSON answer
// into out (if not nil), failing the test on error.
func (s *Script) Get(path string, out any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+path, nil)
	if err != nil {
		s.t.Fatalf("testfixture: %s: %v", path, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("testfixture: %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		s.t.Fatalf("testfixture: %s: status %s: %v", path, resp.Status, err)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			s.t.Fatalf("testfixture: %s: decode %q: %v", path, body, err)
		}
	}
}

// Stop sends SIGTERM and waits for the exit (SIGKILL after 5 s).
func (s *Script) Stop() { s.proc.terminate(syscall.SIGTERM, 5*time.Second) }
