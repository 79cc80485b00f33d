package faults

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/generic-corp/soak-exporter/internal/agent"
	poolpkg "github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/probes/echo"
	"github.com/generic-corp/soak-exporter/internal/probes/fanout"
	"github.com/generic-corp/soak-exporter/internal/probes/push"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	targetcfg "github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/web"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// stopLimit is how long Run may take to return after cancel, whatever the
// target does (the pool's clean close is bounded by 5 s).
const stopLimit = 7 * time.Second

// pool is one agent pool running against a target, with its own registry.
type pool struct {
	t      testing.TB
	p      *agent.Agent
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	// stopTook is how long the last stop took.
	stopTook time.Duration
	stopped  bool
}

func config() agent.Config {
	var c agent.Config
	c.PoolConfig = poolpkg.Config{
		Clients: 20, ConnectRate: 200, ConnectTimeout: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
	}
	c.EchoConfig = echo.Config{EventName: "echo", EventRate: 200, PayloadBytes: 64, AckTimeout: time.Second}
	c.FanoutConfig = fanout.Config{Event: "publish", Timeout: time.Second, IDField: "id"}
	c.PushConfig = push.Config{SeqField: "seq"}
	return c
}

// target builds the target for url with a frame limit.
func target(t testing.TB, url string, maxFrame int64) *probe.Target {
	t.Helper()
	tg, err := targetcfg.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: maxFrame}.Target(url)
	if err != nil {
		t.Fatalf("target %s: %v", url, err)
	}
	return tg
}

// startPool starts a pool; it is stopped when the test ends at the latest.
func startPool(t testing.TB, cfg agent.Config, tg *probe.Target) *pool {
	t.Helper()
	reg := prometheus.NewRegistry()
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.InfoLevel)).Named("pool")
	} else {
		log = zap.NewNop()
	}
	p, err := agent.New(cfg, agent.Options{
		Driver: native.New(native.Options{}), Targets: []*probe.Target{tg},
		Registerer: reg, Logger: log,
	})
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &pool{t: t, p: p, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- p.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop cancels Run and fails the test if it does not return within
// stopLimit (a wedged agent).
func (h *pool) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	start := time.Now()
	h.cancel()
	select {
	case err := <-h.done:
		h.stopTook = time.Since(start)
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(stopLimit):
		h.t.Fatalf("Run did not return within %v of cancel: the agent is wedged", stopLimit)
	}
}

// value sums the samples of a metric family (counter, gauge, or histogram
// count) that carry label=val (all samples when label is empty).
func (h *pool) value(name, label, val string) float64 {
	h.t.Helper()
	if label == "" {
		return soaktest.Sum(h.t, h.reg, name)
	}
	return soaktest.Sum(h.t, h.reg, name, label, val)
}

// reasons returns the non-zero values of a counter by its reason label.
func (h *pool) reasons(name string) map[string]float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && m.GetCounter().GetValue() > 0 {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func (h *pool) failures() map[string]float64    { return h.reasons("soak_connect_failures_total") }
func (h *pool) disconnects() map[string]float64 { return h.reasons("soak_disconnects_total") }

// onlyReasons fails the test when got holds a reason outside allowed.
func onlyReasons(t testing.TB, what string, got map[string]float64, allowed ...string) {
	t.Helper()
	rest := map[string]float64{}
	for r, v := range got {
		rest[r] = v
	}
	for _, a := range allowed {
		delete(rest, a)
	}
	if len(rest) > 0 {
		t.Errorf("%s: unexpected reasons %v (all: %v, allowed %v)", what, rest, got, allowed)
	}
}

// accounted pauses the probe, waits until nothing is in flight and
// sent == acked + lost (failing the test if that takes over 10 s), and
// returns the three.
func (h *pool) accounted() (sent, acked, lost float64) {
	h.t.Helper()
	h.p.Pause(true)
	// An item queued in a session's outbox before the pause is still
	// written after it, so "nothing in flight" can hold for a moment before
	// that write: wait until nothing is in flight and the counters agree (a
	// sent event that is never acked nor counted lost keeps them apart).
	balanced := soaktest.Poll(10*time.Second, 5*time.Millisecond, func() bool {
		sent = h.value("soak_events_sent_total", "", "")
		acked = h.value("soak_events_acked_total", "", "")
		lost = h.value("soak_events_lost_total", "", "")
		return h.p.InFlight() == 0 && sent == acked+lost
	})
	if !balanced {
		h.t.Errorf("after 10 s paused: sent %v != acked %v + lost %v (in flight %d)", sent, acked, lost, h.p.InFlight())
	}
	return sent, acked, lost
}

// metricsServer serves the pool's registry with the agent's own web handler.
func (h *pool) metricsServer() *httptest.Server {
	srv := httptest.NewServer(web.New(web.Config{ListenAddress: "127.0.0.1:0"}, zap.NewNop(),
		web.Options{Gatherer: h.reg}).Handler())
	h.t.Cleanup(srv.Close)
	return srv
}

// scrape GETs /metrics once and returns how long it took.
func scrape(t testing.TB, client *http.Client, url string) time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("scrape: read: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %s", resp.Status)
	}
	return time.Since(start)
}

// medianScrape is the median of n scrapes.
func medianScrape(t testing.TB, client *http.Client, url string, n int) time.Duration {
	t.Helper()
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = scrape(t, client, url)
	}
	for i := 1; i < n; i++ {
		for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
	return ds[n/2]
}

// resources is what the process holds at one moment.
type resources struct {
	goroutines int
	heap       uint64
	fds        int
}

// measure settles the runtime (GC twice) and reads goroutines, live heap
// and open file descriptors.
func measure(t testing.TB) resources {
	t.Helper()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count fds: %v", err)
	}
	return resources{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, fds: len(fds)}
}
