package agent_test

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// These tests run the agent with the default (native) driver against the real
// Node socket.io fixture.

type harness struct {
	t    *testing.T
	pool *agent.Agent
	reg  *prometheus.Registry
	stop func()
}

func baseConfig() agent.Config {
	c := testConfig()
	c.PoolConfig = pool.Config{
		Clients: 20, ConnectRate: 200, ConnectTimeout: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second,
	}
	c.EventName, c.EventRate, c.PayloadBytes, c.AckTimeout = "echo", 200, 64, time.Second
	return c
}

func startHarness(t *testing.T, cfg agent.Config, url string) *harness {
	t.Helper()
	tg, err := target.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}.Target(url)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := agent.New(cfg, agent.Options{
		Driver: native.New(native.Options{}), Targets: []*probe.Target{tg},
		Registerer: reg, Logger: zaptest.NewLogger(t).Named("agent"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	h := &harness{t: t, pool: p, reg: reg}
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("pool did not stop within 15 s")
		}
	}
	t.Cleanup(h.stop)
	return h
}

// value sums a metric family's samples (counter, gauge or histogram count)
// that carry the given label pair (or all, with an empty name).
func (h *harness) value(name, label, val string) float64 {
	h.t.Helper()
	if label == "" {
		return soaktest.Sum(h.t, h.reg, name)
	}
	return soaktest.Sum(h.t, h.reg, name, label, val)
}

func (h *harness) histogram(name string) *dto.Histogram {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	h.t.Fatalf("no histogram %s", name)
	return nil
}

func (h *harness) meanLatency() (float64, float64) {
	hist := h.histogram("soak_event_latency_seconds")
	return hist.GetSampleSum(), float64(hist.GetSampleCount())
}

// below returns the number of latency observations <= le (a bucket
// boundary) and the total number.
func (h *harness) below(le float64) (float64, float64) {
	h.t.Helper()
	hist := h.histogram("soak_event_latency_seconds")
	for _, b := range hist.GetBucket() {
		if b.GetUpperBound() == le {
			return float64(b.GetCumulativeCount()), float64(hist.GetSampleCount())
		}
	}
	h.t.Fatalf("no latency bucket le=%v", le)
	return 0, 0
}

// TestInjectedDelayShowsInTheHistogram compares two windows of the same run
// by their medians, read from the 0.05 s and 0.1 s bucket boundaries: a mean
// is dragged by the scheduling stalls of a loaded machine, a median is not.
func TestInjectedDelayShowsInTheHistogram(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	node := testfixture.Start(t, testfixture.Options{})
	h := startHarness(t, baseConfig(), node.URL())
	soaktest.WaitWithin(h.t, "all connected", 10*time.Second, func() bool { return h.pool.Connected() == 20 })
	soaktest.WaitWithin(h.t, "first acks", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= 100 })
	// Baseline window, after the ramp-up.
	sumA, nA := h.meanLatency()
	fastA, _ := h.below(0.05)
	soaktest.WaitWithin(h.t, "baseline acks", 10*time.Second, func() bool { _, n := h.meanLatency(); return n >= nA+300 })
	sumB, nB := h.meanLatency()
	fastB, _ := h.below(0.05)
	node.SetAckDelay(50 * time.Millisecond)
	time.Sleep(200 * time.Millisecond) // events scheduled before the change are still in flight
	sum1, n1 := h.meanLatency()
	// Half the delay: Node's timers may fire a little early (libuv's loop
	// time is cached), so some acks land just under 50 ms.
	fast1, _ := h.below(0.025)
	mid1, _ := h.below(0.1)
	soaktest.WaitWithin(h.t, "delayed acks", 10*time.Second, func() bool { _, n := h.meanLatency(); return n >= n1+400 })
	sum2, n2 := h.meanLatency()
	fast2, _ := h.below(0.025)
	mid2, _ := h.below(0.1)
	base := (sumB - sumA) / (nB - nA)
	delayed := (sum2 - sum1) / (n2 - n1)
	baseFast := (fastB - fastA) / (nB - nA)
	delayedFast := (fast2 - fast1) / (n2 - n1)
	delayedMid := (mid2 - mid1) / (n2 - n1)
	t.Logf("mean latency: baseline %.2f ms, with 50 ms ack delay %.2f ms; <= 50 ms before: %.3f; with the delay <= 25 ms: %.3f, <= 100 ms: %.3f",
		base*1000, delayed*1000, baseFast, delayedFast, delayedMid)
	if baseFast < 0.5 {
		t.Fatalf("baseline median above 50 ms (%.3f of acks <= 50 ms)", baseFast)
	}
	if delayedFast > 0.05 || delayedMid < 0.5 {
		t.Fatalf("with a 50 ms ack delay, %.3f of acks <= 25 ms (want none) and %.3f <= 100 ms (want the median): the delay does not show as about 50 ms", delayedFast, delayedMid)
	}
	if lost := h.value("soak_events_lost_total", "", ""); lost != 0 {
		t.Fatalf("lost = %v with a 50 ms delay and a 1 s timeout", lost)
	}
}

func TestDroppedAcksAreCountedLostExactly(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	node := testfixture.Start(t, testfixture.Options{})
	cfg := baseConfig()
	cfg.AckTimeout = 500 * time.Millisecond
	h := startHarness(t, cfg, node.URL())
	soaktest.WaitWithin(h.t, "acks", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= 100 })
	const drops = 37
	node.DropNextAcks(drops)
	node.WaitStats(10*time.Second, func(s testfixture.Stats) bool { return s.AcksDropped == drops })
	soaktest.WaitWithin(h.t, "losses", 10*time.Second, func() bool { return h.value("soak_events_lost_total", "", "") >= drops })
	// Traffic goes on after the drops: 100 more acks, then every request
	// is resolved, and only the dropped ones may be lost.
	acked0 := h.value("soak_events_acked_total", "", "")
	soaktest.WaitWithin(h.t, "acks after the drops", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= acked0+100 })
	h.pool.Pause(true)
	soaktest.WaitWithin(h.t, "nothing in flight", 5*time.Second, func() bool { return h.pool.InFlight() == 0 })
	sent := h.value("soak_events_sent_total", "", "")
	acked := h.value("soak_events_acked_total", "", "")
	lost := h.value("soak_events_lost_total", "", "")
	if lost != drops {
		t.Fatalf("lost = %v, want exactly %d (the server dropped %d)", lost, drops, node.Stats().AcksDropped)
	}
	if sent != acked+lost {
		t.Fatalf("sent %v != acked %v + lost %v", sent, acked, lost)
	}
	if late := h.value("soak_events_late_total", "", ""); late != 0 {
		t.Fatalf("late = %v", late)
	}
	if st := node.Stats(); float64(st.EchoesReceived) != sent {
		t.Fatalf("server received %d echoes, agent sent %v", st.EchoesReceived, sent)
	}
}

func TestKicksAreCountedAndThePoolRefills(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	node := testfixture.Start(t, testfixture.Options{})
	h := startHarness(t, baseConfig(), node.URL())
	for i := 1; i <= 3; i++ {
		soaktest.WaitWithin(h.t, "all connected", 10*time.Second, func() bool { return h.pool.Connected() == 20 })
		node.WaitStats(5*time.Second, func(s testfixture.Stats) bool { return s.Connected == 20 })
		if n := node.KickAll(); n != 20 {
			t.Fatalf("kicked %d, want 20", n)
		}
		soaktest.WaitWithin(h.t, "kicks counted", 5*time.Second, func() bool {
			return h.value("soak_disconnects_total", "reason", "io_server_disconnect") == float64(20*i)
		})
	}
	soaktest.WaitWithin(h.t, "refill", 10*time.Second, func() bool { return h.pool.Connected() == 20 })
	if f := h.value("soak_connect_failures_total", "", ""); f != 0 {
		t.Fatalf("connect failures = %v", f)
	}
	if other := h.value("soak_disconnects_total", "", "") - h.value("soak_disconnects_total", "reason", "io_server_disconnect"); other != 0 {
		t.Fatalf("%v disconnects with another reason", other)
	}
}

func TestKilledAndRestartedServerIsSurvived(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	node := testfixture.Start(t, testfixture.Options{})
	h := startHarness(t, baseConfig(), node.URL())
	soaktest.WaitWithin(h.t, "all connected", 10*time.Second, func() bool { return h.pool.Connected() == 20 })
	node.Kill()
	soaktest.WaitWithin(h.t, "all dropped", 10*time.Second, func() bool { return h.pool.Connected() == 0 })
	if got := h.value("soak_disconnects_total", "reason", "transport_close") + h.value("soak_disconnects_total", "reason", "transport_error"); got != 20 {
		t.Fatalf("transport disconnects = %v, want 20", got)
	}
	time.Sleep(500 * time.Millisecond) // some refused attempts
	node.Restart()
	soaktest.WaitWithin(h.t, "all back", 20*time.Second, func() bool { return h.pool.Connected() == 20 })
	if refused := h.value("soak_connect_failures_total", "reason", "refused"); refused == 0 {
		t.Error("no refused attempt counted while the server was down")
	}
	soaktest.WaitWithin(h.t, "acks after restart", 10*time.Second, func() bool { return node.Stats().AcksSent > 50 })
}

func TestSilentServerDoesNotHangClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		held []net.Conn
	)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // hold it open, never answer
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		<-acceptDone
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	cfg := baseConfig()
	cfg.Clients, cfg.ConnectTimeout = 10, 300*time.Millisecond
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	before := runtime.NumGoroutine()
	h := startHarness(t, cfg, "http://"+ln.Addr().String())
	soaktest.WaitWithin(h.t, "timeouts", 5*time.Second, func() bool { return h.value("soak_connect_failures_total", "reason", "timeout") >= 20 })
	if g := runtime.NumGoroutine() - before; g > 100 {
		t.Errorf("%d goroutines over the baseline with 10 clients dialling a silent server", g)
	}
	start := time.Now()
	h.stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stopping took %v with dials hanging on a silent server", d)
	}
	if c := h.value("soak_clients_connected", "", ""); c != 0 {
		t.Fatalf("connected = %v", c)
	}
}

func TestThousandClientsWithoutSpuriousFailures(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	node := testfixture.Start(t, testfixture.Options{})
	cfg := baseConfig()
	cfg.Clients, cfg.ConnectRate, cfg.EventRate, cfg.ConnectTimeout = 1000, 500, 500, 10*time.Second
	h := startHarness(t, cfg, node.URL())
	soaktest.WaitWithin(h.t, "1000 connected", 30*time.Second, func() bool { return h.pool.Connected() == 1000 })
	node.WaitStats(10*time.Second, func(s testfixture.Stats) bool { return s.Connected == 1000 })
	time.Sleep(5 * time.Second) // observation window on a real server: spurious failures or disconnects would show within it
	if f := h.value("soak_connect_failures_total", "", ""); f != 0 {
		t.Errorf("connect failures = %v, want 0", f)
	}
	if a := h.value("soak_connect_attempts_total", "", ""); a != 1000 {
		t.Errorf("attempts = %v, want 1000", a)
	}
	if d := h.value("soak_disconnects_total", "", ""); d != 0 {
		t.Errorf("disconnects = %v, want 0", d)
	}
	if lost := h.value("soak_events_lost_total", "", ""); lost != 0 {
		t.Errorf("lost = %v, want 0", lost)
	}
	h.stop()
	st := node.WaitStats(10*time.Second, func(s testfixture.Stats) bool { return s.Connected == 0 })
	if n := st.DisconnectReasons["client namespace disconnect"]; n != 1000 {
		t.Errorf("server saw %d clean client disconnects, want 1000 (reasons %v)", n, st.DisconnectReasons)
	}
}
