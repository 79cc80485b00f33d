package bench

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
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

// pacedEchoFloor is what the agent's work costs without the agent: as many
// TCP connections as clients to a Node echo server, each with a reader goroutine (the
// native driver's model), and rate 100-byte writes per second spread over
// them on the agent's tick grid, for the given time. It returns the
// process's CPU microseconds per echoed message: the kernel's and the Go
// runtime's share of one event, which no client written in Go on this
// machine can go below. BenchmarkSoak reports its drivers against it.
func pacedEchoFloor(b *testing.B, clients, rate int, d time.Duration) float64 {
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

	conns := make([]net.Conn, 0, clients)
	var echoed atomic.Int64
	var wg sync.WaitGroup
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
		wg.Wait()
	}()
	// The agent's source addresses (SOAK_BENCH_SOURCES), in turn: more
	// clients than one address has ports need them here too.
	sources, err := targetcfg.ParseSourceAddrs(os.Getenv("SOAK_BENCH_SOURCES"))
	if err != nil {
		b.Fatal(err)
	}
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
