package main

import (
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStaticBuildRunsUnprivileged checks what the Dockerfile relies on
// without a Docker engine: the release build flags (the Makefile's, which the
// Dockerfile uses) give a static binary with the version stamped into
// soak_build_info, and it runs as the image's unprivileged UID 65532.
func TestStaticBuildRunsUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test switches to UID 65532 and must run as root (CI does)")
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} { // t.TempDir's parent is 0700 too
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "soak-exporter")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command("make", "-s", "build", "VERSION=9.9.9-test", "BIN="+bin)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("binary is dynamically linked (program header %v)", p.Type)
		}
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin)
	cmd.Env = []string{"SOAK_LISTEN_ADDRESS=127.0.0.1:0", "SOAK_LOG_FORMAT=json", "SOAK_CLIENTS=5"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	addr := make(chan string, 1)
	go func() {
		b := make([]byte, 0, 1<<16)
		buf := make([]byte, 4096)
		for {
			n, err := stderr.Read(buf)
			b = append(b, buf[:n]...)
			if i := strings.Index(string(b), `"msg":"serving metrics","address":"`); i >= 0 {
				rest := string(b[i+len(`"msg":"serving metrics","address":"`):])
				if j := strings.IndexByte(rest, '"'); j >= 0 {
					addr <- rest[:j]
					_, _ = io.Copy(io.Discard, stderr)
					return
				}
			}
			if err != nil {
				close(addr)
				return
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatal("no metrics address logged")
	}
	if a == "" {
		t.Fatal("the unprivileged binary exited before serving metrics")
	}
	resp, err := http.Get("http://" + a + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `soak_build_info{`) || !strings.Contains(string(body), `version="9.9.9-test"`) {
		t.Fatalf("soak_build_info lacks the stamped version:\n%s", grepLines(string(body), "soak_build_info"))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
