package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/procfs"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/probe/zishang"
	"github.com/generic-corp/soak-exporter/internal/probes/echo"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	targetcfg "github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
	"github.com/generic-corp/soak-exporter/internal/web"
)

// Settings, overridable from the environment for a quicker or longer run.
func setting(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// latencyObserver feeds the echo latencies to a recorder.
type latencyObserver struct{ r *recorder }

func (latencyObserver) Connection(string, pool.ConnEvent, string, time.Duration) {}
func (o latencyObserver) Event(_, _, _ string, out pool.Outcome, _ int, latency time.Duration) {
	if out == pool.OutcomeAnswered {
		o.r.Observe(latency.Seconds())
	}
}

// recorder keeps every latency observation (bounded by the run's size).
type recorder struct {
	mu sync.Mutex
	v  []float64
}

func (r *recorder) Observe(x float64) { r.mu.Lock(); r.v = append(r.v, x); r.mu.Unlock() }

func (r *recorder) reset() { r.mu.Lock(); r.v = r.v[:0]; r.mu.Unlock() }

func (r *recorder) quantiles(qs ...float64) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := slices.Clone(r.v)
	slices.Sort(s)
	out := make([]float64, len(qs))
	for i, q := range qs {
		if len(s) == 0 {
			out[i] = math.NaN()
			continue
		}
		out[i] = s[min(len(s)-1, int(q*float64(len(s))))]
	}
	return out
}

func rss(b *testing.B) float64 {
	p, err := procfs.Self()
	if err != nil {
		b.Fatal(err)
	}
	st, err := p.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return float64(st.ResidentMemory())
}

func settledRSS(b *testing.B) float64 {
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(2 * time.Second) // benchmark: let the RSS settle after returning memory to the OS; wall time is the measurement
	runtime.GC()
	debug.FreeOSMemory()
	return rss(b)
}

// cpuSeconds returns the process's user and system CPU time.
func cpuSeconds() (user, sys float64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds()
}

func sum(reg *prometheus.Registry, name string, label, value string) float64 {
	mfs, _ := reg.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || (l.GetName() == label && l.GetValue() == value)
			}
			if match {
				total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return total
}

// BenchmarkSoak holds SOAK_BENCH_CLIENTS (10,000) clients against the Node
// fixture at SOAK_BENCH_RATE (2,000) acked events per second for
// SOAK_BENCH_SECONDS (120) per driver and reports the figures of issue #2.
// Run it once per driver: -benchtime 1x.
func BenchmarkSoak(b *testing.B) {
	clients := setting("SOAK_BENCH_CLIENTS", 10000)
	rate := setting("SOAK_BENCH_RATE", 2000)
	seconds := setting("SOAK_BENCH_SECONDS", 120)
	// The floor first, with nothing else running: same connections, rate and
	// tick, no Socket.IO.
	floor := pacedEchoFloor(b, clients, rate, time.Duration(min(seconds, 60))*time.Second)
	b.Logf("bare TCP echo client: %.1f us CPU per event", floor)
	drivers := []probe.Driver{native.New(native.Options{}), zishang.New(zishang.Options{})}
	for _, d := range drivers {
		b.Run(d.Name(), func(b *testing.B) {
			for b.Loop() {
				runSoak(b, d, "websocket", clients, rate, seconds, floor)
			}
		})
	}
}

// BenchmarkTransports reports the native driver's cost per acked event over
// WebSocket beside long-polling (SOAK_TRANSPORTS=polling, never upgraded):
// SOAK_BENCH_CLIENTS (1,000) clients at SOAK_BENCH_RATE (200) acked events
// per second for SOAK_BENCH_SECONDS (30) each. Run it with
// make bench-transports.
func BenchmarkTransports(b *testing.B) {
	clients := setting("SOAK_BENCH_CLIENTS", 1000)
	rate := setting("SOAK_BENCH_RATE", 200)
	seconds := setting("SOAK_BENCH_SECONDS", 30)
	floor := pacedEchoFloor(b, clients, rate, 10*time.Second)
	b.Logf("bare TCP echo client: %.1f us CPU per event", floor)
	for _, transports := range []string{"websocket", "polling"} {
		b.Run(transports, func(b *testing.B) {
			for b.Loop() {
				runSoak(b, native.New(native.Options{}), transports, clients, rate, seconds, floor)
			}
		})
	}
}

// runSoak holds clients on d with SOAK_TRANSPORTS=transports and measures.
func runSoak(b *testing.B, d probe.Driver, transports string, clients, rate, seconds int, floor float64) {
	node := testfixture.Start(b, testfixture.Options{StartTimeout: 30 * time.Second})
	target, err := targetcfg.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20, Transports: transports}.Target(node.URL())
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	lat := &recorder{}
	var cfg agent.Config
	cfg.PoolConfig = pool.Config{
		Clients: clients, ConnectRate: 1000, ConnectTimeout: 20 * time.Second,
		BackoffMin: 500 * time.Millisecond, BackoffMax: 10 * time.Second,
	}
	cfg.EchoConfig = echo.Config{EventName: "echo", EventRate: float64(rate), PayloadBytes: 64, AckTimeout: 5 * time.Second}
	cfg.FanoutConfig.IDField, cfg.FanoutConfig.Timeout = "id", time.Second
	p, err := agent.New(cfg, agent.Options{Driver: d, Targets: []*probe.Target{target}, Registerer: reg,
		Logger: zap.NewNop(), Observer: latencyObserver{lat}})
	if err != nil {
		b.Fatal(err)
	}
	base := settledRSS(b)
	p.Pause(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if !soaktest.Poll(5*time.Minute-time.Since(start), 50*time.Millisecond, func() bool { return p.Connected() >= clients }) {
		b.Fatalf("only %d of %d connected after 5 min", p.Connected(), clients)
	}
	connectAll := time.Since(start)
	idle := settledRSS(b)
	perConn := (idle - base) / float64(clients)

	// Scrape time with every client connected.
	srv := web.New(web.Config{ListenAddress: "127.0.0.1:0"}, zap.NewNop(), web.Options{Gatherer: reg})
	var scrapes []time.Duration
	for range 20 {
		rec := httptest.NewRecorder()
		t0 := time.Now()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		scrapes = append(scrapes, time.Since(t0))
		if rec.Code != http.StatusOK {
			b.Fatalf("scrape: %d", rec.Code)
		}
	}
	slices.Sort(scrapes)

	// Idle cost of holding the connections (pings and pongs, timers, GC),
	// so that the per-event figure can be split into holding and probing.
	idleSeconds := max(10, seconds/4)
	iu0, is0 := cpuSeconds()
	time.Sleep(time.Duration(idleSeconds) * time.Second) // benchmark: the idle window measured in wall time
	iu1, is1 := cpuSeconds()
	idleCores := (iu1 - iu0 + is1 - is0) / float64(idleSeconds)

	// Steady phase: warm up 10 s, then measure.
	p.Pause(false)
	time.Sleep(10 * time.Second) // benchmark: warm-up in wall time before the measured window
	lat.reset()
	acked0 := sum(reg, "soak_events_acked_total", "", "")
	user0, sys0 := cpuSeconds()
	node.Reset()
	if path := os.Getenv("SOAK_BENCH_CPUPROFILE"); path != "" { // the steady phase only
		f, err := os.Create(path + "." + d.Name())
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
	}
	time.Sleep(time.Duration(seconds) * time.Second) // benchmark: the measured steady window in wall time
	pprof.StopCPUProfile()
	user1, sys1 := cpuSeconds()
	user, sys := user1-user0, sys1-sys0
	cpu := user + sys
	acked := sum(reg, "soak_events_acked_total", "", "") - acked0
	stats := node.Stats()
	q := lat.quantiles(0.5, 0.99)
	failures := sum(reg, "soak_connect_failures_total", "", "")
	disconnects := sum(reg, "soak_disconnects_total", "", "")
	lost := sum(reg, "soak_events_lost_total", "", "")

	b.ReportMetric(connectAll.Seconds(), "s-connect-all")
	b.ReportMetric(failures+disconnects, "spurious")
	b.ReportMetric(perConn/1024, "KB-RSS/conn")
	b.ReportMetric(cpu/acked*1e6, "us-CPU/event")
	b.ReportMetric(q[0]*1000, "ms-p50")
	b.ReportMetric(q[1]*1000, "ms-p99")
	b.ReportMetric(float64(scrapes[len(scrapes)/2].Microseconds())/1000, "ms-scrape-p50")
	b.ReportMetric(user/acked*1e6, "us-user-CPU/event")
	marginal := (cpu - idleCores*float64(seconds)) / acked * 1e6
	b.ReportMetric(marginal, "us-marginal-CPU/event")
	b.ReportMetric(idleCores*100, "%core-idle")
	b.ReportMetric(cpu/acked*1e6/floor, "x-floor")
	name := d.Name()
	if transports != "websocket" {
		name += " (" + transports + ")"
	}
	row := fmt.Sprintf("| %s | %d | %d/s | %.1f s | %.0f (%.0f failures, %.0f disconnects) | %.1f KB | %.1f%% of a core | %.1f us = %.1f user + %.1f system (%.3f s per 1,000); %.1f us above idle; %.1fx a bare TCP echo client's %.1f us | %.2f / %.2f ms | %.2f / %.2f ms | %.1f / %.1f ms | %.0f lost of %.0f acked |\n",
		name, clients, rate, connectAll.Seconds(), failures+disconnects, failures, disconnects, perConn/1024,
		idleCores*100, cpu/acked*1e6, user/acked*1e6, sys/acked*1e6, cpu/acked*1000, marginal, cpu/acked*1e6/floor, floor, q[0]*1000, q[1]*1000,
		float64(stats.EchoProcessing.P50Micros)/1000, float64(stats.EchoProcessing.P99Micros)/1000,
		float64(scrapes[len(scrapes)/2].Microseconds())/1000, float64(scrapes[len(scrapes)-1].Microseconds())/1000,
		lost, acked)
	b.Logf("\n%s", row)
	if out := os.Getenv("SOAK_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(row); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopbackFloor is the kernel's share that no client can avoid: one
// small write and one small read on a loopback TCP connection per event (the
// peer echoes in this process too, so the figure covers both ends: halve it
// for one side). It puts the agent's CPU per event in proportion on the
// machine at hand.
func BenchmarkLoopbackFloor(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 128)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 100)
	buf := make([]byte, 128)
	user0, sys0 := cpuSeconds()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:100]); err != nil {
			b.Fatal(err)
		}
	}
	user1, sys1 := cpuSeconds()
	b.ReportMetric((user1-user0)/float64(b.N)*1e6, "us-user-CPU/op")
	b.ReportMetric((sys1-sys0)/float64(b.N)*1e6, "us-sys-CPU/op")
}
