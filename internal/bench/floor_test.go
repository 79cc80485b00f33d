package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	targetcfg "github.com/generic-corp/soak-exporter/internal/target"
)

// echoServerJS is a bare TCP echo server for Node: no Engine.IO, no
// Socket.IO, no JSON. It prints its port.
const echoServerJS = `
const net = require('net');
const srv = net.createServer((s) => {
  s.setNoDelay(true);
  s.on('data', (d) => s.write(d));
  s.on('error', () => {});
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
`

// floors are the two bare TCP echo clients of a BenchmarkSoak run, in CPU
// microseconds per echoed message: goroutines is a Go client with a reader
// goroutine per connection (the native driver's first model, the floor that
// issue 16's targets name), kernel a C client with one epoll set on one
// thread (testdata/epollclient.c), what the kernel's side of the work costs
// without a language runtime.
type floors struct{ goroutines, kernel float64 }

// measureFloors measures both floors against one Node echo server, one after
// the other, with nothing else running.
func measureFloors(b *testing.B, clients, rate int, d time.Duration) floors {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "-e", echoServerJS)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start node (is Node.js installed?): %v", err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("node echo server: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strings.TrimSpace(line))
	// The agent's source addresses (SOAK_BENCH_SOURCES), in turn: more
	// clients than one address has ports need them here too.
	sources, err := targetcfg.ParseSourceAddrs(os.Getenv("SOAK_BENCH_SOURCES"))
	if err != nil {
		b.Fatal(err)
	}
	return floors{
		goroutines: pacedEchoFloor(b, addr, sources, clients, rate, d),
		kernel:     epollEchoFloor(b, addr, sources, clients, rate, d),
	}
}

// pacedEchoFloor is what the agent's work costs a plain Go client: as many
// TCP connections as clients to the echo server at addr, each with a reader
// goroutine, and rate 100-byte writes per second spread over them on the
// agent's tick grid, for the given time. It returns the process's CPU
// microseconds per echoed message: the kernel's share and the Go runtime's
// wake-ups of one event in that model.
func pacedEchoFloor(b *testing.B, addr string, sources []netip.Addr, clients, rate int, d time.Duration) float64 {
	b.Helper()
	conns := make([]net.Conn, 0, clients)
	var echoed atomic.Int64
	var wg sync.WaitGroup
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
		wg.Wait()
	}()
	for i := range clients {
		var dl net.Dialer
		if len(sources) > 0 {
			dl.LocalAddr = &net.TCPAddr{IP: sources[i%len(sources)].AsSlice()}
		}
		c, err := dl.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("dial echo server: %v", err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				echoed.Add(int64(n))
			}
		}()
	}

	msg := make([]byte, 100)
	tick := max(pool.SendTick, time.Second/time.Duration(rate))
	perTick := float64(rate) * tick.Seconds()
	user0, sys0 := cpuSeconds()
	start := time.Now()
	sent := 0
	for i := 1; time.Since(start) < d; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * tick))) // benchmark: paces the sends in wall time, as the agent's send tick does
		for due := int(float64(i) * perTick); sent < due; sent++ {
			if _, err := conns[sent%len(conns)].Write(msg); err != nil {
				b.Fatalf("write: %v", err)
			}
		}
	}
	// Wait for the last echoes, so that their reads are in the figure.
	soaktest.Poll(5*time.Second, time.Millisecond, func() bool { return echoed.Load() >= int64(sent*len(msg)) })
	user1, sys1 := cpuSeconds()
	if got := echoed.Load(); got < int64(sent*len(msg)) {
		b.Fatalf("echo floor: %d of %d bytes came back", got, sent*len(msg))
	}
	return (user1 - user0 + sys1 - sys0) / float64(sent) * 1e6
}

// epollEchoFloor runs testdata/epollclient.c, built with the C compiler ($CC,
// else gcc), against the echo server at addr with the same connections, rate
// and tick as pacedEchoFloor, and returns its CPU microseconds per echoed
// message.
func epollEchoFloor(b *testing.B, addr string, sources []netip.Addr, clients, rate int, d time.Duration) float64 {
	b.Helper()
	cc := cmp.Or(os.Getenv("CC"), "gcc")
	bin := filepath.Join(b.TempDir(), "epollclient")
	if out, err := exec.Command(cc, "-O2", "-o", bin, filepath.Join("testdata", "epollclient.c")).CombinedOutput(); err != nil {
		b.Fatalf("build testdata/epollclient.c with %s (is a C compiler installed?): %v\n%s", cc, err, out)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	tick := max(pool.SendTick, time.Second/time.Duration(rate))
	args := []string{host, port, strconv.Itoa(clients), strconv.Itoa(rate),
		strconv.FormatFloat(d.Seconds(), 'f', -1, 64), strconv.FormatInt(tick.Microseconds(), 10)}
	for _, s := range sources {
		args = append(args, s.String())
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.Fatalf("epollclient: %v: %s", err, ee.Stderr)
		}
		b.Fatalf("epollclient: %v", err)
	}
	var sent int
	var cpu float64
	if _, err := fmt.Sscan(string(out), &sent, &cpu); err != nil || sent == 0 {
		b.Fatalf("epollclient printed %q: %v", out, err)
	}
	return cpu / float64(sent) * 1e6
}
