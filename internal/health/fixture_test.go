package health_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/health"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestFixtureLossWarnsOnceAndRecovers runs the agent against the real Node
// fixture dropping every 10th ack: at the default level the health window
// logs exactly one loss warning, and one recovery line once the fault is
// cleared. The window's clock is injected and moved by the test.
func TestFixtureLossWarnsOnceAndRecovers(t *testing.T) {
	node := testfixture.Start(t, testfixture.Options{})
	tg, err := target.Config{SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20}.Target(node.URL())
	if err != nil {
		t.Fatal(err)
	}
	var cfg agent.Config
	cfg.PoolConfig = pool.Config{Clients: 5, ConnectRate: 100, ConnectTimeout: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second}
	cfg.EventName, cfg.EventRate, cfg.PayloadBytes, cfg.AckTimeout = "echo", 100, 64, 300*time.Millisecond
	cfg.FanoutConfig.Event, cfg.FanoutConfig.Timeout, cfg.FanoutConfig.IDField = "publish", time.Second, "id"
	cfg.PushConfig.SeqField = "seq"

	core, logs := observer.New(zapcore.InfoLevel)
	clk := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	var ag *agent.Agent
	h := health.New(health.Config{}, health.Options{Logger: zap.New(core), Now: clk.Now, Pools: func() []health.PoolState {
		var out []health.PoolState
		for _, p := range ag.Pools() {
			e := p.LastConnectError()
			out = append(out, health.PoolState{Target: p.Target().Name, Connected: p.Connected(), Desired: p.Desired(),
				LastConnectReason: e.Reason, LastConnectMessage: e.Message})
		}
		return out
	}})
	ag, err = agent.New(cfg, agent.Options{Driver: native.New(native.Options{}), Targets: []*probe.Target{tg},
		Registerer: prometheus.NewRegistry(), Logger: zap.NewNop(), Observer: h})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	view := func() health.View {
		h.Step()
		clk.Add(time.Second)
		return h.Views()[0]
	}
	soaktest.WaitFor(t, "a full pool", func() bool { return ag.Connected() == 5 })
	soaktest.WaitFor(t, "answers", func() bool { return view().Minute.Answered > 50 })
	node.DropEveryNth(10)
	soaktest.WaitFor(t, "lost acks", func() bool { return view().Minute.Lost > 0 })
	for i := 0; i < 61; i++ { // the loss has held for the pending minute
		clk.Add(time.Second)
		h.Step()
	}
	node.ClearFaults()
	// Requests in flight at the clear are resolved within the ack timeout;
	// wait until a batch sent after it is answered, then let the lossy
	// seconds roll out of the last minute.
	var before int64
	soaktest.WaitFor(t, "answers after the clear", func() bool {
		v := view()
		if before == 0 {
			before = v.TenMinutes.Answered
		}
		return v.TenMinutes.Answered > before+200
	})
	for i := 0; i < 61; i++ {
		clk.Add(time.Second)
		h.Step()
	}
	soaktest.WaitFor(t, "recovery line", func() bool {
		view()
		return logs.FilterMessage("target recovered: SoakEventLoss").Len() == 1
	})
	// Loss lines only: on a loaded machine the latency alert may come and
	// go as well, which is right but not what this test is about.
	var got []string
	for _, e := range logs.All() {
		if e.ContextMap()["alert"] != "SoakEventLoss" {
			continue
		}
		got = append(got, e.Level.String()+" "+e.Message+" "+e.ContextMap()["alert"].(string))
	}
	if len(got) != 2 || got[0][:len("warn target unhealthy: loss ")] != "warn target unhealthy: loss " ||
		got[1] != "info target recovered: SoakEventLoss SoakEventLoss" {
		t.Errorf("logs at the default level: %q\nwant one loss warning and one recovery", got)
	}
}
