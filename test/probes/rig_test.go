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
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/probes/echo"
	"github.com/generic-corp/soak-exporter/internal/probes/fanout"
	"github.com/generic-corp/soak-exporter/internal/probes/push"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/target"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type targetSpec struct{ name, url string }

// rig is the agent's pools (one per target), the push probe and the fan-out
// probe, with metrics in their own registry.
type rig struct {
	t      *testing.T
	reg    *prometheus.Registry
	agent  *agent.Agent
	pools  map[string]*pool.Pool
	fanout *fanout.Probe
	stop   func()
}

func rigConfig(clients int, pc push.Config, fc fanout.Config) agent.Config {
	var c agent.Config
	c.PoolConfig = pool.Config{
		Clients: clients, ConnectRate: 200, ConnectTimeout: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
	}
	c.EchoConfig = echo.Config{EventName: "echo", EventRate: 0, PayloadBytes: 64, AckTimeout: time.Second}
	if fc.IDField == "" {
		fc.IDField = "id"
	}
	if pc.SeqField == "" {
		pc.SeqField = "seq"
	}
	c.PushConfig, c.FanoutConfig = pc, fc
	return c
}

// startRig starts clientsPer clients per target. The fan-out probe (if
// enabled) starts paused.
func startRig(t *testing.T, targets []targetSpec, clientsPer int, pc push.Config, fc fanout.Config) *rig {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := zaptest.NewLogger(t)
	var tgs []*probe.Target
	for _, ts := range targets {
		tg, err := target.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}.Target(ts.url)
		if err != nil {
			t.Fatal(err)
		}
		tg.Name = ts.name
		tgs = append(tgs, tg)
	}
	a, err := agent.New(rigConfig(clientsPer*len(targets), pc, fc), agent.Options{
		Driver: native.New(native.Options{}), Targets: tgs, Registerer: reg, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, reg: reg, agent: a, pools: map[string]*pool.Pool{}}
	for _, p := range a.Pools() {
		r.pools[p.Target().Name] = p
	}
	for _, pr := range a.Probes() {
		if f, ok := pr.(*fanout.Probe); ok {
			r.fanout = f
			f.Pause(true)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the rig did not stop within 20 s")
		}
	}
	t.Cleanup(r.stop)
	return r
}

// value sums the samples of a metric (counter or gauge value, histogram
// count) that carry every given label pair.
func (r *rig) value(name string, labels ...string) float64 {
	r.t.Helper()
	return soaktest.Sum(r.t, r.reg, name, labels...)
}

func (r *rig) waitConnected(timeout time.Duration) {
	r.t.Helper()
	soaktest.WaitWithin(r.t, "every client connected", timeout, func() bool {
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
	soaktest.WaitWithin(r.t, "fan-out messages sent", timeout, func() bool { return r.value("soak_fanout_sent_total") >= base+n })
	r.fanout.Pause(true)
	soaktest.WaitWithin(r.t, "fan-out messages resolved", timeout, func() bool { return r.fanout.InFlight() == 0 })
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
