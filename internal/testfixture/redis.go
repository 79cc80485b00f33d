package testfixture

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

// Redis is a redis-server process on 127.0.0.1 for one test: no persistence
// (--save "" --appendonly no), a free port, stopped when the test ends. It
// needs Debian's redis-server on PATH (apt-get install -y
// --no-install-recommends redis-server); without it the test fails.
type Redis struct {
	t    testing.TB
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *syncBuffer
}

// StartRedis starts redis-server and waits until it answers PING.
func StartRedis(t testing.TB) *Redis {
	if testing.Short() {
		t.Skip("fast tier (-short): needs redis-server")
	}
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("testfixture: redis-server is not on PATH (install it: apt-get install -y --no-install-recommends redis-server): %v", err)
	}
	r := &Redis{t: t}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			r.mu.Lock()
			if r.stderr != nil {
				t.Logf("testfixture: redis output:\n%s", r.stderr.String())
			}
			r.mu.Unlock()
		}
	})
	var err error
	for range 3 { // a free port may be taken between its discovery and the bind
		if r.port, err = freePort(); err != nil {
			break
		}
		if err = r.start(); err == nil {
			return r
		}
	}
	t.Fatalf("testfixture: start redis: %v", err)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (r *Redis) start() error {
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited, r.stderr = cmd, exited, out
	r.mu.Unlock()
	var pingErr error
	exitedNow := func() bool {
		select {
		case <-exited:
			return true
		default:
			return false
		}
	}
	// An external process's readiness has nothing to wait on but PING.
	soaktest.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		pingErr = r.ping()
		return pingErr == nil || exitedNow()
	})
	switch {
	case pingErr == nil:
		return nil
	case exitedNow():
		return fmt.Errorf("redis-server exited: %s", out.String())
	default:
		r.stop()
		return fmt.Errorf("redis-server not answering PING within 10 s: %s", out.String())
	}
}

func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Addr is "127.0.0.1:PORT".
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL is "redis://127.0.0.1:PORT", for Options.RedisURL.
func (r *Redis) URL() string { return "redis://" + r.Addr() }

// Signal sends sig to redis-server: SIGSTOP freezes it (connections stay
// open, nothing is answered or relayed), SIGCONT lets it go on.
func (r *Redis) Signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("testfixture: redis signal %v: %v", sig, err)
	}
}

func (r *Redis) stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}
