package native

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// The benchmarks measure the client alone: the server runs in a child
// process (this test binary with helperServerEnv set), so that the
// process's memory and CPU are the driver's.
//
//	go test -run='^$' -bench=. -benchtime=1x ./internal/probe/native        # memory
//	SOAK_NATIVE_BENCH_CONNS=10000 go test -run='^$' -bench=Idle -benchtime=1x ./internal/probe/native
//	go test -run='^$' -bench=AckRoundTrip -benchtime=20000x ./internal/probe/native

const helperServerEnv = "SOAK_NATIVE_HELPER_SERVER"

// runHelperServer serves a well-behaved Engine.IO/Socket.IO echo server on
// a loopback port, prints the address, and stops when stdin closes.
func runHelperServer() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(helperHandler), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with the process
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func helperHandler(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := context.Background()
	write := func(s string) bool { return ws.Write(ctx, websocket.MessageText, []byte(s)) == nil }
	if !write(`0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`) {
		return
	}
	if _, m, err := ws.Read(ctx); err != nil || !strings.HasPrefix(string(m), "40") {
		return
	}
	if !write(`40{"sid":"x"}`) {
		return
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(25 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				write("2")
			case <-stop:
				return
			}
		}
	}()
	for {
		_, m, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if reply, ok := echoReply(string(m)); ok && !write(reply) {
			return
		}
	}
}

// startHelperServer runs the helper server in a child process.
func startHelperServer(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperServerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("helper server: %v", err)
	}
	return strings.TrimSpace(line)
}

type memSample struct {
	heap, stack, rss uint64
	goroutines       int
}

func sampleMem() memSample {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{heap: ms.HeapInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			s.rss = pages * uint64(os.Getpagesize())
		}
	}
	return s
}

// dialMany opens n connections, 32 at a time.
func dialMany(tb testing.TB, d *Driver, target *probe.Target, n int, h func(i int) probe.Handlers) []probe.Conn {
	conns := make([]probe.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, err := d.Dial(ctx, target, h(i))
				cancel()
				if err != nil {
					if failed.Add(1) == 1 {
						tb.Errorf("dial: %v", err)
					}
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		tb.Fatalf("%d dials failed", failed.Load())
	}
	return conns
}

func closeMany(conns []probe.Conn) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = conns[i].Close(ctx)
				cancel()
			}
		})
	}
	wg.Wait()
}

// BenchmarkIdleConnections reports what one idle connection costs the
// client process (SOAK_NATIVE_BENCH_CONNS connections, default 1000), on the
// event loop and on the goroutine-per-connection transport. Run it with
// -benchtime=1x: it measures once whatever b.N is.
func BenchmarkIdleConnections(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("SOAK_NATIVE_BENCH_CONNS")); err == nil && v > 0 {
		n = v
	}
	target := &probe.Target{URL: mustURL(b, "http://"+startHelperServer(b))}
	for _, tc := range []struct {
		name       string
		goroutines bool
	}{{"event-loop", false}, {"goroutines", true}} {
		b.Run(tc.name, func(b *testing.B) {
			d := New(Options{ReaderGoroutines: tc.goroutines})
			// Warm up pools and the transport so that they are not counted.
			closeMany(dialMany(b, d, target, 32, func(int) probe.Handlers { return probe.Handlers{} }))
			before := sampleMem()
			conns := dialMany(b, d, target, n, func(int) probe.Handlers { return probe.Handlers{} })
			after := sampleMem()
			per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
			b.ReportMetric(per(after.heap, before.heap), "heap-B/conn")
			b.ReportMetric(per(after.stack, before.stack), "stack-B/conn")
			b.ReportMetric(per(after.rss, before.rss), "rss-B/conn")
			b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/conn")
			closeMany(conns)
		})
	}
}

// BenchmarkAckRoundTrip measures the client CPU per acked event, with 32
// connections each keeping one event in flight.
func BenchmarkAckRoundTrip(b *testing.B) {
	target := &probe.Target{URL: mustURL(b, "http://"+startHelperServer(b))}
	d := newTestDriver(Options{})
	const n = 32
	chans := make([]chan struct{}, n)
	conns := dialMany(b, d, target, n, func(i int) probe.Handlers {
		chans[i] = make(chan struct{}, 1)
		ch := chans[i]
		return probe.Handlers{OnAck: func(uint64, []json.RawMessage) { ch <- struct{}{} }}
	})
	defer closeMany(conns)
	payload := json.RawMessage(`{"seq":123456,"t":1700000000000000000,"pad":"` + strings.Repeat("x", 60) + `"}`)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := range n {
		wg.Go(func() {
			for {
				k := next.Add(1)
				if k > int64(b.N) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := conns[i].Emit(ctx, "echo", k, payload)
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
				select {
				case <-chans[i]:
				case <-time.After(10 * time.Second):
					b.Error("ack timeout")
					return
				}
			}
		})
	}
	wg.Wait()
	cpu := processCPU() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/ack")
}

func BenchmarkAppendEvent(b *testing.B) {
	payload := json.RawMessage(`{"seq":123456,"t":1700000000000000000,"pad":"` + strings.Repeat("x", 60) + `"}`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEvent(buf[:0], "/", 123456, "echo", []json.RawMessage{payload})
	}
}

func BenchmarkDecodeAck(b *testing.B) {
	msg := []byte(`43123456[{"seq":123456,"t":1700000000000000000,"pad":"` + strings.Repeat("x", 60) + `"}]`)
	dst := make([]json.RawMessage, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		_, payload, _ := decodeEngine(msg)
		p, err := decodeSocket(payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := splitArray(p.data, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
