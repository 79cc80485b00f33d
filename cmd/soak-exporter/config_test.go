package main

import (
	"bytes"
	"context"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitLog waits for a JSON log line whose message contains msg.
func (a *agentProc) waitLog(t *testing.T, msg string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-a.lines:
			if s, _ := m["msg"].(string); strings.Contains(s, msg) {
				return m
			}
		case <-deadline:
			t.Fatalf("no log line with %q within %v", msg, within)
		}
	}
}

// TestSIGHUPIsLoggedAndIgnored: SIGHUP used to kill the agent at once (exit
// 129, no clean disconnect, no log). Now it is logged, the agent keeps
// serving, and SIGTERM still stops it cleanly. The agent is started with
// plain-second durations and a misspelt variable, which it accepts and
// warns about.
func TestSIGHUPIsLoggedAndIgnored(t *testing.T) {
	const value = "unknown-v4lue-9c1e"
	a := startAgent(t, "SOAK_ACK_TIMEOUT=5", "SOAK_BACKOFF_MAX=2.5", "SOAK_LEAK_WINDOWS=3600,5h",
		"SOAK_CLIENT="+value, "SOAK_QUERRY=access_token:"+value)
	for i := range 2 {
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		m := a.waitLog(t, "SIGHUP received", 10*time.Second)
		if m["level"] != "info" {
			t.Errorf("SIGHUP %d logged at %v, want info", i+1, m["level"])
		}
		body := a.get(t, "/metrics")
		if metric(t, body, "soak_clients_desired", map[string]string{"target": "demo"}) != 50 {
			t.Fatalf("after SIGHUP %d /metrics lacks soak_clients_desired 50", i+1)
		}
	}
	code, _ := a.stop(t, syscall.SIGTERM)
	log := a.raw.String()
	if code != 0 {
		t.Fatalf("exit %d after SIGHUP then SIGTERM, want 0; log:\n%s", code, log)
	}
	for _, want := range []string{
		"stopped cleanly", "pool stopped",
		"restart the agent to apply",
		"SOAK_CLIENT is not a known variable; did you mean SOAK_CLIENTS?",
		"SOAK_QUERRY is not a known variable; did you mean SOAK_QUERY?",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, value) {
		t.Errorf("the log shows the value of an unknown variable:\n%s", log)
	}
}

// TestOneShotConfigTraps: the one-shot commands take durations in either
// syntax (SOAK_ACK_TIMEOUT=0.5 used to be refused), warn on stderr about
// unknown variables, and explain a positional URL without a scheme.
func TestOneShotConfigTraps(t *testing.T) {
	for _, command := range []string{"loadtest", "leaktest"} {
		t.Run(command, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, command, "127.0.0.1:1")
			cmd.Env = append(os.Environ(), "SOAK_ACK_TIMEOUT=0.5", "SOAK_CONNECT_TIMEOUT=2", "SOAK_CONECT_RATE=5")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			want := "soak-exporter " + command + ": warning: SOAK_CONECT_RATE is not a known variable; did you mean SOAK_CONNECT_RATE?\n" +
				"soak-exporter " + command + `: server_url: "127.0.0.1:1" has no scheme; did you mean http://127.0.0.1:1?` + "\n"
			if !strings.HasPrefix(stderr.String(), want) {
				t.Fatalf("stderr:\n%s\nwant it to start with:\n%s", stderr.String(), want)
			}
		})
	}
}

// TestVersionFromBuildInfo builds the binary as `go build` does in a
// checkout, without ldflags, and expects --version, soak_build_info and the
// landing page to show the module version and the VCS revision (they were
// empty unless built with make build).
func TestVersionFromBuildInfo(t *testing.T) {
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (git rev-parse: %v): no VCS information to stamp", err)
	}
	head := strings.TrimSpace(string(rev))
	bin := filepath.Join(t.TempDir(), "soak-exporter-vcs")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`version (\S+) \(branch: [^,]*, revision: (\S+)\)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("--version:\n%s", out)
	}
	ver, revision := m[1], m[2]
	if ver == "unknown" || !strings.Contains(ver, head[:12]) {
		t.Errorf("--version shows version %q, want the pseudo-version of %s", ver, head[:12])
	}
	if !strings.HasPrefix(revision, head) {
		t.Errorf("--version shows revision %q, want %s", revision, head)
	}
	if !strings.Contains(string(out), "build date:       2") {
		t.Errorf("--version lacks the commit time:\n%s", out)
	}

	a := startBinary(t, bin)
	body := a.get(t, "/metrics")
	if metric(t, body, "soak_build_info", map[string]string{"version": ver, "revision": revision}) != 1 {
		t.Errorf("soak_build_info lacks version=%q revision=%q:\n%s", ver, revision, grepLines(body, "soak_build_info"))
	}
	if page := html.UnescapeString(a.get(t, "/")); !strings.Contains(page, ver) {
		t.Errorf("the landing page does not show the version %q", ver)
	}
	if code, _ := a.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
