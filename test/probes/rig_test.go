// Package probes_test runs the server-push and fan-out probes of the agent
// with the native driver against real Node socket.io fixtures: one process,
// and two replicas joined by the Socket.IO Redis adapter over a real
// redis-server. Needs node with the fixture installed (npm ci --prefix
// test/fixture/node) and redis-server (apt-get install -y
// --no-install-recommends redis-server); without them the tests fail.
package probes_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type targetSpec struct{ name, url string }

// rig is the agent's pools (one per target), the push probe and the fan-out
// probe, with metrics in their own registry.
type rig struct {
	t      *testing.T
	reg    *prometheus.Registry
	pools  map[string]*agent.Pool
	fanout *agent.Fanout
	stop   func()
}

func poolConfig(clients int) agent.Config {
	return agent.Config{
		Clients: clients, ConnectRate: 200, ConnectTimeout: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		EventName: "echo", EventRate: 0, PayloadBytes: 64, AckTimeout: time.Second,
	}
}

// startRig starts clientsPer clients per target. The fan-out probe (if
// enabled) starts paused.
func startRig(t *testing.T, targets []targetSpec, clientsPer int, pc agent.PushConfig, fc agent.FanoutConfig) *rig {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := zaptest.NewLogger(t)
	push, err := agent.NewPush(pc, probe.NewPushMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	fanout, err := agent.NewFanout(fc, probe.NewFanoutMetrics(reg), log.Named("fanout"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fanout != nil {
		fanout.Pause(true)
	}
	metrics := probe.NewMetrics(reg)
	driver := native.New(native.Options{})
	r := &rig{t: t, reg: reg, pools: map[string]*agent.Pool{}, fanout: fanout}
	var runs []func(context.Context) error
	for _, ts := range targets {
		target, err := probe.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}.Target(ts.url)
		if err != nil {
			t.Fatal(err)
		}
		target.Name = ts.name
		p, err := agent.New(poolConfig(clientsPer), agent.Options{
			Driver: driver, Target: target, Metrics: metrics,
			Registerer: reg, Logger: log.Named("pool").Named(ts.name), Push: push, Fanout: fanout,
		})
		if err != nil {
			t.Fatal(err)
		}
		r.pools[ts.name] = p
		runs = append(runs, p.Run)
	}
	if fanout != nil {
		runs = append(runs, fanout.Run)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(runs))
	for _, run := range runs {
		go func() { done <- run(ctx) }()
	}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		timeout := time.After(20 * time.Second)
		for range runs {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-timeout:
				t.Fatal("the rig did not stop within 20 s")
			}
		}
	}
	t.Cleanup(r.stop)
	return r
}

// value sums the samples of a metric (counter or gauge value, histogram
// count) that carry every given label pair.
func (r *rig) value(name string, labels ...string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func (r *rig) waitFor(what string, timeout time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) waitConnected(timeout time.Duration) {
	r.t.Helper()
	r.waitFor("every client connected", timeout, func() bool {
		for _, p := range r.pools {
			if p.Connected() != p.Desired() {
				return false
			}
		}
		return true
	})
}

// fanoutRound unpauses the fan-out probe until n more messages are sent,
// pauses it and waits until every message sent is resolved.
func (r *rig) fanoutRound(n float64, timeout time.Duration) {
	r.t.Helper()
	base := r.value("soak_fanout_sent_total")
	r.fanout.Pause(false)
	r.waitFor("fan-out messages sent", timeout, func() bool { return r.value("soak_fanout_sent_total") >= base+n })
	r.fanout.Pause(true)
	r.waitFor("fan-out messages resolved", timeout, func() bool { return r.fanout.InFlight() == 0 })
}

type pairCounts struct{ expected, delivered, lost, latency float64 }

func (r *rig) pair(sender, receiver string) pairCounts {
	l := []string{"sender_target", sender, "target", receiver}
	return pairCounts{
		r.value("soak_fanout_expected_total", l...),
		r.value("soak_fanout_delivered_total", l...),
		r.value("soak_fanout_lost_total", l...),
		r.value("soak_fanout_latency_seconds", l...),
	}
}

func (a pairCounts) minus(b pairCounts) pairCounts {
	return pairCounts{a.expected - b.expected, a.delivered - b.delivered, a.lost - b.lost, a.latency - b.latency}
}
