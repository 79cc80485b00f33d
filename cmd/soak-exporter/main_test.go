package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// These tests run the real built binary: signal handling, exit codes and
// first log lines are only visible there (the zishang520 client library
// changes its own signal handling under `go test`).

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "soak-exporter-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "soak-exporter")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// agentProc is a running binary whose JSON log lines are collected.
type agentProc struct {
	cmd   *exec.Cmd
	lines chan map[string]any
	raw   *bytes.Buffer
	done  chan error
	addr  string
}

func startAgent(t *testing.T, env ...string) *agentProc {
	t.Helper()
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), append([]string{"SOAK_LISTEN_ADDRESS=127.0.0.1:0", "SOAK_LOG_FORMAT=json"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{cmd: cmd, lines: make(chan map[string]any, 1000), raw: &bytes.Buffer{}, done: make(chan error, 1)}
	rawc := make(chan []byte, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			rawc <- line
			var m map[string]any
			if json.Unmarshal(line, &m) == nil {
				select {
				case a.lines <- m:
				default:
				}
			}
		}
		close(rawc)
	}()
	go func() {
		for l := range rawc {
			a.raw.Write(l)
			a.raw.WriteByte('\n')
		}
		a.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	deadline := time.After(20 * time.Second)
	for a.addr == "" {
		select {
		case m := <-a.lines:
			if m["msg"] == "serving metrics" {
				a.addr, _ = m["address"].(string)
			}
		case <-deadline:
			t.Fatal("the agent did not log its metrics address within 20 s")
		}
	}
	return a
}

func (a *agentProc) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + a.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return string(b)
}

// metric sums the samples of one metric family whose labels include want.
func metric(t *testing.T, body, name string, want map[string]string) float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	mf, ok := mfs[name]
	if !ok {
		return -1
	}
	sum := 0.0
next:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == k && l.GetValue() == v)
			}
			if !found {
				continue next
			}
		}
		sum += m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
	}
	return sum
}

func (a *agentProc) stop(t *testing.T, sig syscall.Signal) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the agent did not exit within 15 s of %v", sig)
	}
	return a.cmd.ProcessState.ExitCode(), time.Since(start)
}

func TestDemoModeSoaksAndShutsDownGracefully(t *testing.T) {
	for _, tc := range []struct {
		driver string
		sig    syscall.Signal
	}{{"native", syscall.SIGTERM}, {"zishang520", syscall.SIGTERM}, {"native", syscall.SIGINT}} {
		t.Run(tc.driver+"/"+tc.sig.String(), func(t *testing.T) {
			a := startAgent(t, "SOAK_DRIVER="+tc.driver)
			deadline := time.Now().Add(30 * time.Second)
			for {
				body := a.get(t, "/metrics")
				connected := metric(t, body, "soak_clients_connected", map[string]string{"target": "demo"})
				acked := metric(t, body, "soak_events_acked_total", map[string]string{"target": "demo", "event": "echo"})
				rss := metric(t, body, "soak_memory_bytes", map[string]string{"source": "self", "kind": "rss"})
				if connected == 50 && acked > 50 && rss > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 30 s: connected=%v acked=%v self rss=%v, want 50, > 50 and > 0", connected, acked, rss)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if got := a.get(t, "/-/ready"); !strings.Contains(got, "Ready") {
				t.Fatalf("/-/ready = %q", got)
			}
			if got := a.get(t, "/"); !strings.Contains(got, "demo") || !strings.Contains(got, "50 / 50") {
				t.Fatalf("landing page lacks the demo summary: %s", got)
			}
			code, took := a.stop(t, tc.sig)
			if code != 0 {
				t.Fatalf("exit code %d after %v, want 0; log:\n%s", code, tc.sig, a.raw)
			}
			if took > 8*time.Second {
				t.Errorf("shutdown took %v, want a few seconds", took)
			}
			log := a.raw.String()
			first := strings.SplitN(log, "\n", 4)
			if len(first) < 3 || !strings.Contains(strings.Join(first[:3], "\n"), "built-in demo target") {
				t.Errorf("the first log lines do not say the demo target is soaked:\n%s", strings.Join(first, "\n"))
			}
			for _, want := range []string{`"closed":50`, "stopped cleanly"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %s:\n%s", want, log)
				}
			}
		})
	}
}

func TestBadConfigurationExits2WithOneLine(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  string
		want string
	}{
		{"SOAK_CLIENTS=abc", `SOAK_CLIENTS: cannot parse "abc" as int`},
		{"SOAK_CLIENTS=-1", "SOAK_CLIENTS: must be >= 0"},
		{"SOAK_CONNECT_RATE=0", "SOAK_CONNECT_RATE: must be > 0"},
		{"SOAK_ACK_TIMEOUT=0s", "SOAK_ACK_TIMEOUT: must be > 0"},
		{"SOAK_ACK_TIMEOUT=5", `SOAK_ACK_TIMEOUT: cannot parse "5" as time.Duration`},
		{"SOAK_EVENT_RATE=-3", "SOAK_EVENT_RATE: must be >= 0"},
		{"SOAK_TARGET_URL=ftp://example.invalid", "SOAK_TARGET_URL: URL \"ftp://example.invalid\": scheme must be"},
		{"SOAK_TARGET_URL=http://", "SOAK_TARGET_URL: URL \"http:\" has no host"},
		{"SOAK_DRIVER=gorilla", "SOAK_DRIVER: must be native or zishang520"},
		{"SOAK_AUTH_TOKEN_FILE=" + filepath.Join(dir, "missing"), "SOAK_AUTH_TOKEN_FILE: open"},
		{"SOAK_AUTH_JSON=[1]", "SOAK_AUTH_JSON: must be a JSON object"},
		{"SOAK_TLS_CA_FILE=" + notPEM, "SOAK_TLS_CA_FILE: " + notPEM + " holds no PEM certificate"},
		{"SOAK_LOG_LEVEL=loud", "SOAK_LOG_LEVEL: want debug, info, warn or error"},
		{"SOAK_LISTEN_ADDRESS=nope", `SOAK_LISTEN_ADDRESS: want host:port, got "nope"`},
		{"SOAK_TLS_INSECURE_SKIP_VERIFY=maybe", `SOAK_TLS_INSECURE_SKIP_VERIFY: cannot parse "maybe" as bool`},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary)
			cmd.Env = append(os.Environ(), tc.env)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; stderr: %s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("stderr has %d lines, want 1:\n%s", len(lines), stderr.String())
			}
			if !strings.HasPrefix(lines[0], "soak-exporter: "+tc.want) {
				t.Fatalf("stderr = %q, want prefix %q", lines[0], "soak-exporter: "+tc.want)
			}
		})
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	out, err := exec.Command(binary, "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"SOAK_TARGET_URL", "SOAK_DRIVER", "SOAK_CLIENTS", "SOAK_CONNECT_RATE", "SOAK_EVENT_RATE",
		"SOAK_EVENT_NAME", "SOAK_EVENT_PAYLOAD_BYTES", "SOAK_ACK_TIMEOUT", "SOAK_AUTH_TOKEN", "SOAK_AUTH_TOKEN_FILE",
		"SOAK_AUTH_JSON", "SOAK_HEADERS", "SOAK_QUERY", "SOAK_SOCKETIO_PATH", "SOAK_TLS_CA_FILE",
		"SOAK_TLS_INSECURE_SKIP_VERIFY", "SOAK_LISTEN_ADDRESS", "SOAK_LOG_LEVEL", "SOAK_LOG_FORMAT", "SOAK_BACKOFF_MIN", "SOAK_BACKOFF_MAX"} {
		if !regexp.MustCompile(`(?m)^\s+` + v + `\s`).Match(out) {
			t.Errorf("--help does not list %s", v)
		}
	}
	if !strings.Contains(string(out), ":9477") {
		t.Error("--help does not show the default listen address")
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	const token = "s3cr3t-T0KEN-4f9a"
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("file-"+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "SOAK_LOG_LEVEL=debug", "SOAK_AUTH_JSON={\"key\":\"json-"+token+"\"}", "SOAK_AUTH_TOKEN_FILE="+file,
		"SOAK_HEADERS=Authorization:Bearer hdr-"+token)
	time.Sleep(2 * time.Second)
	seen := a.get(t, "/metrics") + a.get(t, "/")
	code, _ := a.stop(t, syscall.SIGTERM)
	seen += a.raw.String()
	help, _ := exec.Command(binary, "--help").CombinedOutput()
	seen += string(help)
	if strings.Contains(seen, token) {
		t.Fatalf("the token appears in logs, metrics, landing page or --help")
	}
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(a.raw.String(), "debug") {
		t.Fatal("debug logging was not on, the test proves little")
	}
}
