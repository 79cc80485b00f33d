package testfixture

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

// NginxOptions configure a reverse proxy started by StartNginx.
type NginxOptions struct {
	// Upstreams are the servers proxied to, as "127.0.0.1:PORT"; several are
	// balanced round-robin without sticky sessions.
	Upstreams []string
	// ForwardUpgrade adds the Upgrade and Connection headers (and HTTP/1.1)
	// that WebSocket needs; without it nginx proxies the handshake as a plain
	// HTTP request, as a proxy configured for ordinary sites does.
	ForwardUpgrade bool
}

// Nginx is an nginx reverse proxy run as a child process of the test, with
// its own configuration in t.TempDir(), listening on 127.0.0.1.
type Nginx struct {
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncBuffer
	once   sync.Once
}

// StartNginx starts nginx (from Debian's nginx or nginx-light package) and
// registers its stop with t.Cleanup. Without nginx the test fails (make
// deps installs it), except in the fast tier (-short), where it skips.
func StartNginx(t testing.TB, opts NginxOptions) *Nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			if testing.Short() {
				t.Skip("fast tier (-short): needs nginx")
			}
			t.Fatal("testfixture: nginx is not installed: run make deps (apt-get install nginx-light)")
		}
		bin = "/usr/sbin/nginx"
	}
	if len(opts.Upstreams) == 0 {
		t.Fatal("testfixture: nginx without upstreams")
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConfig(dir, port, opts)), 0o600); err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	n := &Nginx{port: port, exited: make(chan struct{}), out: &syncBuffer{}}
	n.cmd = exec.Command(bin, "-p", dir, "-c", conf, "-e", "stderr")
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = sysProcAttr()
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("testfixture: start nginx: %v", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("testfixture: nginx output:\n%s", n.out.String())
		}
	})
	listening := func() bool {
		c, err := net.DialTimeout("tcp", n.Addr(), time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
	exited := func() bool {
		select {
		case <-n.exited:
			return true
		default:
			return false
		}
	}
	// An external process's readiness has nothing to wait on but its port.
	soaktest.Poll(10*time.Second, 20*time.Millisecond, func() bool { return listening() || exited() })
	switch {
	case listening():
		return n
	case exited():
		t.Fatalf("testfixture: nginx exited: %s", n.out.String())
	default:
		t.Fatalf("testfixture: nginx not listening within 10 s: %s", n.out.String())
	}
	return nil
}

func nginxConfig(dir string, port int, opts NginxOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "daemon off;\nmaster_process off;\npid %s;\nerror_log stderr warn;\n", filepath.Join(dir, "nginx.pid"))
	b.WriteString("events { worker_connections 1024; }\nhttp {\n  access_log off;\n")
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "  %s_temp_path %s;\n", p, filepath.Join(dir, p))
	}
	b.WriteString("  upstream app {\n")
	for _, u := range opts.Upstreams {
		fmt.Fprintf(&b, "    server %s;\n", u)
	}
	b.WriteString("  }\n")
	fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d;\n    location / {\n      proxy_pass http://app;\n", port)
	if opts.ForwardUpgrade {
		b.WriteString("      proxy_http_version 1.1;\n      proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection \"upgrade\";\n")
	}
	b.WriteString("    }\n  }\n}\n")
	return b.String()
}

// Addr is "127.0.0.1:PORT".
func (n *Nginx) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// URL is "http://127.0.0.1:PORT".
func (n *Nginx) URL() string { return "http://" + n.Addr() }

func (n *Nginx) stop() {
	n.once.Do(func() {
		_ = n.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-n.exited:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	})
}
