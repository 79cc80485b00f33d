package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/soaktest"

	"github.com/kelseyhightower/envconfig"
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
	return startBinary(t, binary, env...)
}

// startBinary starts the agent from bin.
func startBinary(t *testing.T, bin string, env ...string) *agentProc {
	t.Helper()
	cmd := exec.Command(bin)
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
			var connected, acked, rss float64
			if !soaktest.Poll(30*time.Second, 200*time.Millisecond, func() bool {
				body := a.get(t, "/metrics")
				connected = metric(t, body, "soak_clients_connected", map[string]string{"target": "demo"})
				acked = metric(t, body, "soak_events_acked_total", map[string]string{"target": "demo", "event": "echo"})
				rss = metric(t, body, "soak_memory_bytes", map[string]string{"source": "self", "kind": "rss"})
				return connected == 50 && acked > 50 && rss > 0
			}) {
				t.Fatalf("after 30 s: connected=%v acked=%v self rss=%v, want 50, > 50 and > 0", connected, acked, rss)
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
			first := strings.SplitN(log, "\n", 6)
			if len(first) < 5 || !strings.Contains(strings.Join(first[:5], "\n"), "built-in demo target") {
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
	cert, key := selfSigned(t)
	_, otherKey := selfSigned(t)
	certFile := filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	otherKeyFile := filepath.Join(dir, "other-key.pem")
	for f, b := range map[string][]byte{certFile: cert, keyFile: key, otherKeyFile: otherKey} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		env  string
		want string
		more []string // further variables set with env
	}{
		{"SOAK_CLIENTS=abc", `SOAK_CLIENTS: cannot parse "abc" as int`, nil},
		{"SOAK_CLIENTS=-1", "SOAK_CLIENTS: must be >= 0", nil},
		{"SOAK_CONNECT_RATE=0", "SOAK_CONNECT_RATE: must be > 0", nil},
		{"SOAK_ACK_TIMEOUT=0s", "SOAK_ACK_TIMEOUT: must be > 0", nil},
		{"SOAK_ACK_TIMEOUT=soon", `SOAK_ACK_TIMEOUT: want a Go duration (500ms, 5s, 1h30m) or a number of seconds (5, 0.5), got "soon"`, nil},
		{"SOAK_LEAK_WINDOWS=1h,x", `SOAK_LEAK_WINDOWS: want a Go duration (500ms, 5s, 1h30m) or a number of seconds (5, 0.5), got "x"`, nil},
		{"SOAK_ACK_TIMEOUT=0", "SOAK_ACK_TIMEOUT: must be > 0", nil},
		{"SOAK_EVENT_RATE=1e9", "SOAK_EVENT_RATE: must be at most 100000 events per second (", nil},
		{"SOAK_FANOUT_RATE=20000", "SOAK_FANOUT_RATE: must be in [0, 10000]", nil},
		{"SOAK_TARGET_URL=127.0.0.1:3000", `SOAK_TARGET_URL: "127.0.0.1:3000" has no scheme; did you mean http://127.0.0.1:3000?`, nil},
		{"SOAK_EVENT_RATE=-3", "SOAK_EVENT_RATE: must be >= 0", nil},
		{"SOAK_TARGET_URL=ftp://example.invalid", "SOAK_TARGET_URL: URL \"ftp://example.invalid\": scheme must be", nil},
		{"SOAK_TARGET_URL=http://", "SOAK_TARGET_URL: URL \"http:\" has no host", nil},
		{"SOAK_DRIVER=gorilla", "SOAK_DRIVER: must be native or zishang520", nil},
		{"SOAK_AUTH_TOKEN_FILE=" + filepath.Join(dir, "missing"), "SOAK_AUTH_TOKEN_FILE: cannot read the file: no such file or directory", nil},
		{"SOAK_AUTH_JSON=[1]", "SOAK_AUTH_JSON: must be a JSON object", nil},
		{"SOAK_TLS_CA_FILE=" + notPEM, "SOAK_TLS_CA_FILE: " + notPEM + " holds no PEM certificate", nil},
		{"SOAK_LOG_LEVEL=loud", "SOAK_LOG_LEVEL: want debug, info, warn or error", nil},
		{"SOAK_LISTEN_ADDRESS=nope", `SOAK_LISTEN_ADDRESS: want host:port, got "nope"`, nil},
		{"SOAK_TLS_INSECURE_SKIP_VERIFY=maybe", `SOAK_TLS_INSECURE_SKIP_VERIFY: cannot parse "maybe" as bool`, nil},
		{"SOAK_TLS_CERT_FILE=" + certFile, "SOAK_TLS_KEY_FILE: required with SOAK_TLS_CERT_FILE", nil},
		{"SOAK_TLS_KEY_FILE=" + keyFile, "SOAK_TLS_CERT_FILE: required with SOAK_TLS_KEY_FILE", nil},
		{"SOAK_TLS_CERT_FILE=" + missing, "SOAK_TLS_CERT_FILE: open " + missing, []string{"SOAK_TLS_KEY_FILE=" + keyFile}},
		{"SOAK_TLS_CERT_FILE=" + notPEM, "SOAK_TLS_CERT_FILE: " + notPEM + " holds no PEM certificate", []string{"SOAK_TLS_KEY_FILE=" + keyFile}},
		{"SOAK_TLS_KEY_FILE=" + missing, "SOAK_TLS_KEY_FILE: cannot read the file: no such file or directory", []string{"SOAK_TLS_CERT_FILE=" + certFile}},
		{"SOAK_TLS_KEY_FILE=" + certFile, "SOAK_TLS_KEY_FILE: the file holds no PEM private key", []string{"SOAK_TLS_CERT_FILE=" + certFile}},
		{"SOAK_TLS_KEY_FILE=" + otherKeyFile, "SOAK_TLS_KEY_FILE: the key does not go with the certificate in SOAK_TLS_CERT_FILE", []string{"SOAK_TLS_CERT_FILE=" + certFile}},
		{"SOAK_TLS_SERVER_NAME=soak.test:443", `SOAK_TLS_SERVER_NAME: want a host name, got "soak.test:443"`, nil},
		{"SOAK_QUERY=access_token-without-colon", "SOAK_QUERY: cannot parse the value as", nil}, // values are secrets: not quoted
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary)
			cmd.Env = append(append(os.Environ(), tc.env), tc.more...)
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
		"SOAK_TLS_INSECURE_SKIP_VERIFY", "SOAK_TLS_CERT_FILE", "SOAK_TLS_KEY_FILE", "SOAK_TLS_SERVER_NAME", "SOAK_LISTEN_ADDRESS", "SOAK_LOG_LEVEL", "SOAK_LOG_FORMAT", "SOAK_BACKOFF_MIN", "SOAK_BACKOFF_MAX"} {
		if !regexp.MustCompile(`(?m)^\s+` + v + `\s`).Match(out) {
			t.Errorf("--help does not list %s", v)
		}
	}
	if !strings.Contains(string(out), ":9477") {
		t.Error("--help does not show the default listen address")
	}
}

// TestSecretsNeverLeak runs the agent at debug level with a known token in
// every secret variable and greps its logs, metrics, landing page and --help
// for it, with each driver. (Panic output: a panic that prints a target.Config
// or probe.Target goes through fmt, whose redaction probe's unit tests check.)
func TestSecretsNeverLeak(t *testing.T) {
	const token = "s3cr3t-T0KEN-4f9a"
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("file-"+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	help, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, driver := range []string{"native", "zishang520"} {
		t.Run(driver, func(t *testing.T) {
			a := startAgent(t, "SOAK_DRIVER="+driver, "SOAK_LOG_LEVEL=debug", "SOAK_AUTH_JSON={\"key\":\"json-"+token+"\"}",
				"SOAK_AUTH_TOKEN_FILE="+file, "SOAK_HEADERS=Authorization:Bearer hdr-"+token, "SOAK_QUERY=access_token:q-"+token)
			// Wait until clients are connected and events acked, so that
			// connection and probe code paths have logged what they log.
			var seen string
			if !soaktest.Poll(30*time.Second, 200*time.Millisecond, func() bool {
				seen = a.get(t, "/metrics")
				return metric(t, seen, "soak_events_acked_total", map[string]string{"target": "demo"}) > 0
			}) {
				t.Fatalf("no acked event within 30 s; log:\n%s", a.raw)
			}
			landing := a.get(t, "/")
			seen += landing
			code, _ := a.stop(t, syscall.SIGTERM)
			seen += a.raw.String() + string(help)
			if strings.Contains(seen, token) {
				t.Fatalf("the token appears in logs, metrics, landing page or --help")
			}
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			if !strings.Contains(a.raw.String(), `"level":"debug"`) {
				t.Fatal("debug logging was not on, the test proves little")
			}
			if !strings.Contains(landing, "demo") {
				t.Fatalf("the landing page lacks the target row, the test proves little:\n%s", landing)
			}
		})
	}
}

// selfSigned returns a PEM certificate and its PEM private key.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "soak-exporter test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// TestEveryTypedVariableRejectsGarbage sets each SOAK_ variable that is not a
// plain string to a value of the wrong type, one at a time, and expects exit
// status 2 with one line naming that variable.
func TestEveryTypedVariableRejectsGarbage(t *testing.T) {
	var buf bytes.Buffer
	if err := envconfig.Usagef("soak", &config{}, &buf, "{{range .}}{{usage_key .}}\t{{usage_type .}}\n{{end}}"); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		key, typ, _ := strings.Cut(line, "\t")
		if typ == "String" || typ == "Secret" {
			continue // any text is a string; their checks are in the table test
		}
		checked++
		t.Run(key, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary)
			cmd.Env = append(os.Environ(), "SOAK_LISTEN_ADDRESS=127.0.0.1:0", key+"=@garbage")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			_ = cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("%s (%s): the agent started with a garbage value instead of exiting", key, typ)
			}
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Fatalf("%s (%s): exit %d, want 2; stderr: %s", key, typ, code, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "soak-exporter: "+key+":") {
				t.Fatalf("%s (%s): stderr %q, want one line starting with the variable", key, typ, stderr.String())
			}
		})
	}
	if checked < 30 {
		t.Fatalf("only %d typed variables found; the listing is broken", checked)
	}
}
