package scenario_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// soak runs the agent with an example scenario against url.
func soak(t *testing.T, file, url string, clients int, mod func(*agent.Config)) (*agent.Agent, *prometheus.Registry, func()) {
	t.Helper()
	var cfg agent.Config
	cfg.PoolConfig = pool.Config{Clients: clients, ConnectRate: 200, ConnectTimeout: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second}
	cfg.EventName, cfg.PayloadBytes, cfg.AckTimeout = "echo", 64, time.Second // echo off: rate 0
	cfg.FanoutConfig.Event, cfg.FanoutConfig.Timeout, cfg.FanoutConfig.IDField = "publish", time.Second, "id"
	cfg.PushConfig.SeqField = "seq"
	cfg.ScenarioConfig.File = filepath.Join("..", "..", "..", "examples", file)
	if mod != nil {
		mod(&cfg)
	}
	tg, err := target.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}.Target(url)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := agent.New(cfg, agent.Options{Driver: native.New(native.Options{}), Targets: []*probe.Target{tg},
		Registerer: reg, Logger: zaptest.NewLogger(t).Named("agent")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
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
			t.Fatal("the agent did not stop")
		}
	}
	t.Cleanup(stop)
	return a, reg, stop
}

type appStats struct {
	Connections int `json:"connections"`
	Replies     int `json:"replies"`
	Dropped     int `json:"dropped"`
	Invalid     int `json:"invalid"`
}

// drain pauses the flows and waits until every step sent is resolved.
func drain(t *testing.T, a *agent.Agent) {
	t.Helper()
	a.Pause(true)
	soaktest.WaitFor(t, "steps resolved", func() bool { return a.InFlight() == 0 })
}

func TestChatExample(t *testing.T) {
	app := testfixture.StartScript(t, "apps/chat.js", nil)
	const clients = 10
	a, reg, stop := soak(t, "chat.yaml", app.URL(), clients, nil)
	sum := func(name string, labels ...string) float64 { return soaktest.Sum(t, reg, name, labels...) }
	soaktest.WaitFor(t, "every client joined", func() bool {
		return sum("soak_scenario_steps_answered_total", "step", "join") >= clients
	})
	soaktest.WaitFor(t, "messages answered", func() bool {
		return sum("soak_scenario_steps_answered_total", "step", "send") >= 40 &&
			sum("soak_scenario_steps_answered_total", "step", "rejoin") >= 2
	})
	drain(t, a)
	if lost, rej := sum("soak_scenario_steps_lost_total"), sum("soak_scenario_steps_rejected_total"); lost != 0 || rej != 0 {
		t.Fatalf("healthy app: %v lost, %v rejected", lost, rej)
	}
	var st appStats
	app.Get("/stats", &st)
	if st.Invalid != 0 {
		t.Fatalf("the app refused %d payloads as invalid", st.Invalid)
	}

	// The app drops every 4th reply: exactly those steps are lost.
	app.Get("/control/faults?drop_every=4", nil)
	var before appStats
	app.Get("/stats", &before)
	lost0 := sum("soak_scenario_steps_lost_total")
	a.Pause(false)
	soaktest.WaitFor(t, "lost steps", func() bool { return sum("soak_scenario_steps_lost_total") >= lost0+10 })
	drain(t, a)
	var after appStats
	app.Get("/stats", &after)
	if got, want := sum("soak_scenario_steps_lost_total")-lost0, float64(after.Dropped-before.Dropped); got != want {
		t.Fatalf("lost %v steps, the app dropped %v replies", got, want)
	}
	if sum("soak_scenario_flows_aborted_total") == 0 {
		t.Fatal("no flow aborted after a lost step")
	}

	// A 150 ms delay on every reply reads back in the step latency.
	app.Get("/control/faults?delay_ms=150", nil)
	h0 := histogram(t, reg, "send")
	a.Pause(false)
	soaktest.WaitFor(t, "delayed sends", func() bool {
		h := histogram(t, reg, "send")
		return h.GetSampleCount()-h0.GetSampleCount() >= 20
	})
	stop()
	h := histogram(t, reg, "send")
	n := float64(h.GetSampleCount() - h0.GetSampleCount())
	below := float64(bucket(h, 0.1) - bucket(h0, 0.1))
	if below > n/4 {
		t.Fatalf("%v of %v delayed sends answered within 100 ms; the app delays every reply by 150 ms", below, n)
	}
}

func TestDashboardExample(t *testing.T) {
	app := testfixture.StartScript(t, "apps/dashboard.js", []string{"PUSH_MS=100"})
	const clients = 8
	a, reg, _ := soak(t, "dashboard.yaml", app.URL(), clients, func(c *agent.Config) {
		c.PushConfig.Event = "session:update"
	})
	sum := func(name string, labels ...string) float64 { return soaktest.Sum(t, reg, name, labels...) }
	soaktest.WaitFor(t, "subscribed", func() bool {
		return sum("soak_scenario_steps_answered_total", "step", "subscribe") >= clients
	})
	soaktest.WaitFor(t, "actions and pushes", func() bool {
		return sum("soak_scenario_steps_answered_total", "step", "resume") >= 10 &&
			sum("soak_scenario_steps_answered_total", "step", "stop") >= 3 &&
			sum("soak_push_received_total") >= 50
	})
	drain(t, a)
	if lost, rej := sum("soak_scenario_steps_lost_total"), sum("soak_scenario_steps_rejected_total"); lost != 0 || rej != 0 {
		t.Fatalf("healthy app: %v lost, %v rejected", lost, rej)
	}
	if lost := sum("soak_push_lost_total"); lost != 0 {
		t.Fatalf("%v pushed updates lost", lost)
	}
	// Every 3rd reply dropped: the acked actions are lost exactly.
	app.Get("/control/faults?drop_every=3", nil)
	var before, after appStats
	app.Get("/stats", &before)
	lost0 := sum("soak_scenario_steps_lost_total")
	a.Pause(false)
	soaktest.WaitFor(t, "lost actions", func() bool { return sum("soak_scenario_steps_lost_total") >= lost0+5 })
	drain(t, a)
	app.Get("/stats", &after)
	if got, want := sum("soak_scenario_steps_lost_total")-lost0, float64(after.Dropped-before.Dropped); got != want {
		t.Fatalf("lost %v steps, the app dropped %v replies", got, want)
	}
}

func histogram(t *testing.T, reg *prometheus.Registry, step string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "soak_scenario_step_latency_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "step" && l.GetValue() == step {
					return m.GetHistogram()
				}
			}
		}
	}
	t.Fatalf("no latency histogram for step %s", step)
	return nil
}

func bucket(h *dto.Histogram, le float64) uint64 {
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	return 0
}
