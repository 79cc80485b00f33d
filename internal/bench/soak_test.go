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
	"strings"
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
	"github.com/generic-corp/soak-exporter/internal/selfmem"
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

// rss is the resident memory of process pid (0: this process).
func rss(b *testing.B, pid int) float64 {
	b.Helper()
	st, err := procStat(pid)
	if err != nil {
		b.Fatal(err)
	}
	return float64(st.ResidentMemory())
}

func procStat(pid int) (procfs.ProcStat, error) {
	var p procfs.Proc
	var err error
	if pid == 0 {
		p, err = procfs.Self()
	} else {
		p, err = procfs.NewProc(pid)
	}
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return p.Stat()
}

// settledRSS is this process's RSS after a forced GC that returned the free
// memory to the OS.
func settledRSS(b *testing.B) float64 {
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(2 * time.Second) // benchmark: let the RSS settle after returning memory to the OS; wall time is the measurement
	runtime.GC()
	debug.FreeOSMemory()
	return rss(b, 0)
}

// procCPUSeconds returns the user and system CPU time of process pid, from
// /proc/<pid>/stat (utime and stime, in clock ticks).
func procCPUSeconds(b *testing.B, pid int) (user, sys float64) {
	b.Helper()
	st, err := procStat(pid)
	if err != nil {
		b.Fatal(err)
	}
	return float64(st.UTime) / userHZ, float64(st.STime) / userHZ
}

// userHZ is the unit of /proc/<pid>/stat's CPU times: USER_HZ, 100 on Linux
// for every architecture's user-space ABI.
const userHZ = 100

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
// Beside the agent's drivers, the nodepool row holds the same clients with
// the npm socket.io-client in one Node process (test/fixture/node/clientpool.js),
// the approach of the load suites the agent replaces, as an anchor measured in
// the same run. SOAK_BENCH_SOURCES sets the agent's SOAK_SOURCE_ADDRESSES
// (127.0.0.2-127.0.0.3 for 50,000 clients: one address gives about 28,000
// ports; raise ulimit -n too). SOAK_BENCH_DRIVERS (native,
// native-goroutines,zishang520,nodepool; native-goroutines is the native
// driver with a reader goroutine per connection, SOAK_NATIVE_EVENT_LOOP=false)
// chooses the rows and their order. Run it once per row: -benchtime 1x.
func BenchmarkSoak(b *testing.B) {
	clients := setting("SOAK_BENCH_CLIENTS", 10000)
	rate := setting("SOAK_BENCH_RATE", 2000)
	seconds := setting("SOAK_BENCH_SECONDS", 120)
	rows, err := soakRows(os.Getenv("SOAK_BENCH_DRIVERS"))
	if err != nil {
		b.Fatal(err)
	}
	// The floor first, with nothing else running: same connections, rate and
	// tick, no Socket.IO.
	floor := measureFloors(b, clients, rate, time.Duration(min(seconds, 60))*time.Second)
	b.Logf("bare TCP echo clients: %.1f us CPU per event in Go, %.1f us in C", floor.goroutines, floor.kernel)
	for _, name := range rows {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if name == nodePoolRow {
					runNodePool(b, clients, rate, seconds, floor)
					continue
				}
				runSoak(b, newDriver(name), "websocket", clients, rate, seconds, floor)
			}
		})
	}
}

// nodePoolRow is the name of BenchmarkSoak's socket.io-client pool row.
const nodePoolRow = "nodepool"

// soakRows parses SOAK_BENCH_DRIVERS: row names separated by commas, each
// once; empty means every row.
func soakRows(v string) ([]string, error) {
	all := []string{"native", "native-goroutines", "zishang520", nodePoolRow}
	if strings.TrimSpace(v) == "" {
		return all, nil
	}
	var rows []string
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(all, name) {
			return nil, fmt.Errorf("SOAK_BENCH_DRIVERS: unknown row %q (want some of %s)", name, strings.Join(all, ","))
		}
		if slices.Contains(rows, name) {
			return nil, fmt.Errorf("SOAK_BENCH_DRIVERS: %q given twice", name)
		}
		rows = append(rows, name)
	}
	return rows, nil
}

// newDriver is the agent's driver of a BenchmarkSoak row.
func newDriver(name string) probe.Driver {
	switch name {
	case "zishang520":
		return zishang.New(zishang.Options{})
	case "native-goroutines":
		return native.New(native.Options{ReaderGoroutines: true})
	}
	return native.New(native.Options{})
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
	floor := measureFloors(b, clients, rate, 10*time.Second)
	b.Logf("bare TCP echo clients: %.1f us CPU per event in Go, %.1f us in C", floor.goroutines, floor.kernel)
	for _, transports := range []string{"websocket", "polling"} {
		b.Run(transports, func(b *testing.B) {
			for b.Loop() {
				runSoak(b, native.New(native.Options{}), transports, clients, rate, seconds, floor)
			}
		})
	}
}

// holder is one way of holding the clients that a BenchmarkSoak row
// measures: the agent with one driver in this process, or the Node
// socket.io-client pool in its own process. Its methods fail the benchmark
// on error.
type holder interface {
	// settledRSS is the holding process's RSS after a full garbage
	// collection; rss is its RSS as it is.
	settledRSS(b *testing.B) float64
	rss(b *testing.B) float64
	// cpu is the holding process's user and system CPU time.
	cpu(b *testing.B) (user, sys float64)
	// connect starts connecting the clients, connected counts them.
	connect(b *testing.B)
	connected(b *testing.B) int
	// scrapes times /metrics scrapes; nil when the holder has none.
	scrapes(b *testing.B) []time.Duration
	// send starts the events.
	send(b *testing.B)
	// startWindow starts the measured window: the counters of endWindow
	// count from here.
	startWindow(b *testing.B)
	endWindow(b *testing.B) windowCounts
}

// windowCounts are a holder's counters over the measured window; lost
// counts from the first event, failures and disconnects from the first
// connect.
type windowCounts struct {
	acked, lost, failures, disconnects float64
	p50, p99                           float64 // ack latency, seconds
}

// soakResult is what one row measured.
type soakResult struct {
	connectAll         time.Duration
	perConn, loadedRSS float64 // RSS per idle connection, RSS at the window's end (bytes)
	scrapes            []time.Duration
	idleCores          float64
	seconds            int
	user, sys          float64 // CPU seconds over the window
	window             windowCounts
	node               testfixture.Stats
}

// measure runs a row's phases on h: connect every client, RSS per idle
// connection, scrapes, the CPU of holding the idle connections, then the
// events: 10 s of warm-up and the measured window of seconds.
func measure(b *testing.B, h holder, node *testfixture.Node, clients, seconds int) soakResult {
	b.Helper()
	var r soakResult
	base := h.settledRSS(b)
	start := time.Now()
	h.connect(b)
	if !soaktest.Poll(5*time.Minute, 50*time.Millisecond, func() bool { return h.connected(b) >= clients }) {
		b.Fatalf("only %d of %d connected after 5 min", h.connected(b), clients)
	}
	r.connectAll = time.Since(start)
	r.perConn = (h.settledRSS(b) - base) / float64(clients)
	r.scrapes = h.scrapes(b)

	// Idle cost of holding the connections (pings and pongs, timers, GC),
	// so that the per-event figure can be split into holding and probing.
	idleSeconds := max(10, seconds/4)
	iu0, is0 := h.cpu(b)
	time.Sleep(time.Duration(idleSeconds) * time.Second) // benchmark: the idle window measured in wall time
	iu1, is1 := h.cpu(b)
	r.idleCores = (iu1 - iu0 + is1 - is0) / float64(idleSeconds)

	// Steady phase: warm up 10 s, then measure.
	h.send(b)
	time.Sleep(10 * time.Second) // benchmark: warm-up in wall time before the measured window
	h.startWindow(b)
	user0, sys0 := h.cpu(b)
	node.Reset()
	time.Sleep(time.Duration(seconds) * time.Second) // benchmark: the measured steady window in wall time
	user1, sys1 := h.cpu(b)
	r.window = h.endWindow(b)
	r.seconds, r.user, r.sys = seconds, user1-user0, sys1-sys0
	r.loadedRSS = h.rss(b)
	r.node = node.Stats()
	return r
}

// agentHolder is the agent with one driver, in this process.
type agentHolder struct {
	a      *agent.Agent
	reg    *prometheus.Registry
	lat    *recorder
	name   string
	run    func() // starts a.Run
	acked0 float64
	prof   *os.File
}

// settledRSS releases the executable's start-up pages first, as the agent
// of soak-exporter's main does once its pool is up, so that the RSS before
// connecting and after are measured alike. The agent here is not given
// Options.ReleasePages: its own release, a minute after the start, would
// fall in the middle of a row, at a different point for each size.
func (h *agentHolder) settledRSS(b *testing.B) float64 {
	if release := releasePages(); release != nil {
		if _, err := release(); err != nil {
			b.Logf("start-up pages not released: %v", err)
		}
	}
	return settledRSS(b)
}

// releasePages is selfmem.ReleaseStartupPages, what soak-exporter's main
// gives the agent as Options.ReleasePages, unless SOAK_BENCH_RELEASE_PAGES=0
// (to measure without it).
func releasePages() func() (int64, error) {
	if os.Getenv("SOAK_BENCH_RELEASE_PAGES") == "0" {
		return nil
	}
	return selfmem.ReleaseStartupPages
}
func (h *agentHolder) rss(b *testing.B) float64             { return rss(b, 0) }
func (h *agentHolder) cpu(*testing.B) (user, sys float64)   { return cpuSeconds() }
func (h *agentHolder) connect(*testing.B)                   { h.run() }
func (h *agentHolder) connected(*testing.B) int             { return h.a.Connected() }
func (h *agentHolder) send(*testing.B)                      { h.a.Pause(false) }
func (h *agentHolder) count(name string) float64            { return sum(h.reg, name, "", "") }
func (h *agentHolder) scrapes(b *testing.B) []time.Duration { return scrapeTimes(b, h.reg) }

func (h *agentHolder) startWindow(b *testing.B) {
	h.lat.reset()
	h.acked0 = h.count("soak_events_acked_total")
	if path := os.Getenv("SOAK_BENCH_CPUPROFILE"); path != "" { // the steady phase only
		f, err := os.Create(path + "." + h.name)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		h.prof = f
	}
}

func (h *agentHolder) endWindow(*testing.B) windowCounts {
	if h.prof != nil {
		pprof.StopCPUProfile()
		_ = h.prof.Close()
	}
	q := h.lat.quantiles(0.5, 0.99)
	return windowCounts{
		acked: h.count("soak_events_acked_total") - h.acked0, lost: h.count("soak_events_lost_total"),
		failures: h.count("soak_connect_failures_total"), disconnects: h.count("soak_disconnects_total"),
		p50: q[0], p99: q[1],
	}
}

// scrapeTimes times 20 in-process /metrics scrapes of reg.
func scrapeTimes(b *testing.B, reg prometheus.Gatherer) []time.Duration {
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
	return scrapes
}

// runSoak holds clients on d with SOAK_TRANSPORTS=transports and measures.
func runSoak(b *testing.B, d probe.Driver, transports string, clients, rate, seconds int, floor floors) {
	node := testfixture.Start(b, testfixture.Options{StartTimeout: 30 * time.Second})
	target, err := targetcfg.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20, Transports: transports,
		SourceAddrs: os.Getenv("SOAK_BENCH_SOURCES")}.Target(node.URL())
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
	cfg.EchoConfig = echo.Config{EventName: "echo", EventRate: float64(rate), PayloadBytes: soakPayloadBytes, AckTimeout: soakAckTimeout}
	cfg.FanoutConfig.IDField, cfg.FanoutConfig.Timeout = "id", time.Second
	a, err := agent.New(cfg, agent.Options{Driver: d, Targets: []*probe.Target{target}, Registerer: reg,
		Logger: zap.NewNop(), Observer: latencyObserver{lat}})
	if err != nil {
		b.Fatal(err)
	}
	a.Pause(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := false
	defer func() {
		cancel()
		if started {
			<-done
		}
	}()
	h := &agentHolder{a: a, reg: reg, lat: lat, name: d.Name(), run: func() {
		started = true
		go func() { done <- a.Run(ctx) }()
	}}
	r := measure(b, h, node, clients, seconds)
	name := d.Name()
	if nd, ok := d.(*native.Driver); ok && !nd.EventLoop() {
		name += "-goroutines"
	}
	if transports != "websocket" {
		name += " (" + transports + ")"
	}
	report(b, name, clients, rate, floor, r)
}

// The echo events of every row: the agent's default payload size and ack
// timeout.
const (
	soakPayloadBytes = 64
	soakAckTimeout   = 5 * time.Second
)

// report writes a row's metrics, logs its table row and appends the row to
// SOAK_BENCH_OUT if set.
func report(b *testing.B, name string, clients, rate int, floor floors, r soakResult) {
	w := r.window
	cpu := r.user + r.sys
	marginal := (cpu - r.idleCores*float64(r.seconds)) / w.acked * 1e6
	b.ReportMetric(r.connectAll.Seconds(), "s-connect-all")
	b.ReportMetric(w.failures+w.disconnects, "spurious")
	b.ReportMetric(r.perConn/1024, "KB-RSS/conn")
	b.ReportMetric(r.loadedRSS/float64(clients)/1024, "KB-RSS/client-loaded")
	b.ReportMetric(cpu/w.acked*1e6, "us-CPU/event")
	b.ReportMetric(w.p50*1000, "ms-p50")
	b.ReportMetric(w.p99*1000, "ms-p99")
	scrapes := "n/a"
	if len(r.scrapes) > 0 {
		p50, top := r.scrapes[len(r.scrapes)/2], r.scrapes[len(r.scrapes)-1]
		b.ReportMetric(float64(p50.Microseconds())/1000, "ms-scrape-p50")
		scrapes = fmt.Sprintf("%.1f / %.1f ms", float64(p50.Microseconds())/1000, float64(top.Microseconds())/1000)
	}
	b.ReportMetric(r.user/w.acked*1e6, "us-user-CPU/event")
	b.ReportMetric(marginal, "us-marginal-CPU/event")
	b.ReportMetric(r.idleCores*100, "%core-idle")
	b.ReportMetric(cpu/w.acked*1e6/floor.goroutines, "x-floor")
	b.ReportMetric(cpu/w.acked*1e6/floor.kernel, "x-kernel-floor")
	row := fmt.Sprintf("| %s | %d | %d/s | %.1f s | %.0f (%.0f failures, %.0f disconnects) | %.1f KB (%.1f KB per client under load, whole process) | %.1f%% of a core | %.1f us = %.1f user + %.1f system (%.3f s per 1,000); %.1f us above idle; %.1fx a bare TCP echo client's %.1f us (Go), %.1fx its %.1f us in C | %.2f / %.2f ms | %.2f / %.2f ms | %s | %.0f lost of %.0f acked |\n",
		name, clients, rate, r.connectAll.Seconds(), w.failures+w.disconnects, w.failures, w.disconnects, r.perConn/1024, r.loadedRSS/float64(clients)/1024,
		r.idleCores*100, cpu/w.acked*1e6, r.user/w.acked*1e6, r.sys/w.acked*1e6, cpu/w.acked*1000, marginal, cpu/w.acked*1e6/floor.goroutines, floor.goroutines, cpu/w.acked*1e6/floor.kernel, floor.kernel, w.p50*1000, w.p99*1000,
		float64(r.node.EchoProcessing.P50Micros)/1000, float64(r.node.EchoProcessing.P99Micros)/1000,
		scrapes, w.lost, w.acked)
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
