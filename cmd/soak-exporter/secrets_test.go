package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/secret"
)

// TestSecretsNeverLeakFromAnyCommand sets each secret variable, with a well
// formed and with malformed values holding a known token, and greps the
// output of every command (the agent's logs, metrics and landing page;
// loadtest and leaktest runs and their --help; leak analyze; --help) for
// the token. The secret variables are those secret.IsSecretVar names among
// the variables the configs declare: a new one fails the test until it has
// cases here.
func TestSecretsNeverLeakFromAnyCommand(t *testing.T) {
	const token = "s3cr3t-T0KEN-77ab"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "file-"+token)
	emptyFile := filepath.Join(dir, "empty-"+token)
	keyFile := filepath.Join(dir, "key-"+token)
	certFile := filepath.Join(dir, "cert.pem")
	cert, key := selfSigned(t)
	for f, b := range map[string][]byte{tokenFile: []byte(token + "\n"), emptyFile: nil, keyFile: key, certFile: cert} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		env  []string
		bad  bool // the agent refuses the configuration
	}{
		{"token", []string{"SOAK_AUTH_TOKEN=tok-" + token}, false},
		{"json", []string{`SOAK_AUTH_JSON={"key":"json-` + token + `"}`}, false},
		{"json not an object", []string{`SOAK_AUTH_JSON=["` + token + `"]`}, true},
		{"json malformed", []string{`SOAK_AUTH_JSON={"key":"` + token}, true},
		{"headers", []string{"SOAK_HEADERS=Authorization:Bearer hdr-" + token}, false},
		{"headers without colon", []string{"SOAK_HEADERS=Authorization-" + token}, true},
		{"query", []string{"SOAK_QUERY=access_token:q-" + token}, false},
		{"query with two colons", []string{"SOAK_QUERY=access_token:" + token + ":x"}, true},
		{"token file", []string{"SOAK_AUTH_TOKEN_FILE=" + tokenFile}, false},
		{"token file missing", []string{"SOAK_AUTH_TOKEN_FILE=" + filepath.Join(dir, "missing-"+token)}, true},
		{"token file empty", []string{"SOAK_AUTH_TOKEN_FILE=" + emptyFile}, true},
		{"token and token file", []string{"SOAK_AUTH_TOKEN=" + token, "SOAK_AUTH_TOKEN_FILE=" + tokenFile}, true},
		{"key file", []string{"SOAK_TLS_KEY_FILE=" + keyFile, "SOAK_TLS_CERT_FILE=" + certFile}, false},
		{"key file missing", []string{"SOAK_TLS_KEY_FILE=" + filepath.Join(dir, "nokey-"+token), "SOAK_TLS_CERT_FILE=" + certFile}, true},
		{"key file not a key", []string{"SOAK_TLS_KEY_FILE=" + tokenFile, "SOAK_TLS_CERT_FILE=" + certFile}, true},
		{"inspector", []string{"SOAK_HEAP_SNAPSHOT=node", "SOAK_HEAP_SNAPSHOT_INSPECTOR=127.0.0.1:9" + "229", "SOAK_HEAP_SNAPSHOT_DIR=" + filepath.Join(dir, "heap-"+token)}, false},
		{"inspector malformed", []string{"SOAK_HEAP_SNAPSHOT=node", "SOAK_HEAP_SNAPSHOT_INSPECTOR=" + token}, true},
		{"redis password file", []string{"SOAK_MEMORY_REDIS_URL=redis://127.0.0.1:1", "SOAK_MEMORY_REDIS_PASSWORD_FILE=" + tokenFile}, false},
		{"redis password file missing", []string{"SOAK_MEMORY_REDIS_URL=redis://127.0.0.1:1", "SOAK_MEMORY_REDIS_PASSWORD_FILE=" + filepath.Join(dir, "nopw-"+token)}, true},
	}

	vars, err := knownVars()
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range cases {
		for _, kv := range c.env {
			name, _, _ := strings.Cut(kv, "=")
			covered[name] = true
		}
	}
	for _, v := range vars {
		if secret.IsSecretVar(v.Key) && !covered[v.Key] {
			t.Errorf("secret variable %s has no case in this test", v.Key)
		}
	}

	// run runs the binary with args and env to its end (bounded) and
	// returns its output.
	run := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env = append(append(os.Environ(), "SOAK_LOG_LEVEL=debug", "SOAK_CONNECT_TIMEOUT=2"), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		_ = cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("%v did not end within 20 s:\n%s", args, out.String())
		}
		return out.String()
	}
	// The one-shot runs dial a closed port: they go through the
	// configuration, the dial and the error report, then exit 2.
	unreachable := "http://127.0.0.1:1/?room=soak"
	commands := [][]string{
		{"--help"},
		{"loadtest", "--help"},
		{"leaktest", "--help"},
		{"loadtest", unreachable, "2", "5", "1", "0"},
		{"leaktest", unreachable, "1", "1", "5"},
		{"leak", "analyze", filepath.Join(dir, "no-such-samples.csv")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range commands {
				if out := run(t, c.env, args...); strings.Contains(out, token) {
					t.Errorf("%s: the token appears in the output of %v:\n%s", c.env, args, out)
				}
			}
			if c.bad {
				out := run(t, append([]string{"SOAK_LISTEN_ADDRESS=127.0.0.1:0"}, c.env...))
				if !strings.HasPrefix(out, "soak-exporter: SOAK_") {
					t.Errorf("%s: the agent did not refuse the configuration in one line naming the variable:\n%s", c.env, out)
				}
				if strings.Contains(out, token) {
					t.Errorf("%s: the agent's error shows the token:\n%s", c.env, out)
				}
				return
			}
			a := startAgent(t, append([]string{"SOAK_LOG_LEVEL=debug", "SOAK_TARGET_URL=" + unreachable, "SOAK_CONNECT_TIMEOUT=2"}, c.env...)...)
			a.waitLog(t, "connect failed", 10*time.Second) // the dial error path has logged
			seen := a.get(t, "/metrics") + a.get(t, "/")
			if code, _ := a.stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("exit %d", code)
			}
			seen += a.raw.String()
			if strings.Contains(seen, token) {
				t.Errorf("%s: the token appears in the agent's logs, metrics or landing page", c.env)
			}
		})
	}
}
