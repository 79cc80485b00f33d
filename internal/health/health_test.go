package health

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is an injected clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fakePools struct {
	mu sync.Mutex
	s  []PoolState
}

func (p *fakePools) get() []PoolState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PoolState(nil), p.s...)
}
func (p *fakePools) set(s ...PoolState) { p.mu.Lock(); defer p.mu.Unlock(); p.s = s }

func newTest(t *testing.T) (*Health, *fakeClock, *fakePools, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel) // the default level
	clk := &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	fp := &fakePools{}
	fp.set(PoolState{Target: "a", Connected: 10, Desired: 10})
	h := New(Config{}, Options{Logger: zap.New(core), Now: clk.Now, Pools: fp.get})
	return h, clk, fp, logs
}

// second feeds one second of traffic and closes it.
func second(h *Health, clk *fakeClock, sent, lost int, lat time.Duration) {
	h.Event("a", "echo", "echo", pool.OutcomeSent, sent, 0)
	for i := 0; i < sent-lost; i++ {
		h.Event("a", "echo", "echo", pool.OutcomeAnswered, 1, lat)
	}
	if lost > 0 {
		h.Event("a", "echo", "echo", pool.OutcomeLost, lost, 0)
	}
	clk.Add(time.Second)
	h.Step()
}

func messages(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, e.Level.String()+" "+e.Message)
	}
	return out
}

func TestStateChangesLogOnce(t *testing.T) {
	tests := []struct {
		name  string
		fault func(h *Health, clk *fakeClock, fp *fakePools)
		want  []string
	}{
		{
			name: "loss then recovery",
			fault: func(h *Health, clk *fakeClock, _ *fakePools) {
				for i := 0; i < 120; i++ {
					second(h, clk, 100, 5, 3*time.Millisecond)
				}
			},
			want: []string{"warn target unhealthy: loss 5% (300 of 6000) > 0%", "info target recovered: SoakEventLoss"},
		},
		{
			name: "latency",
			fault: func(h *Health, clk *fakeClock, _ *fakePools) {
				for i := 0; i < 90; i++ {
					second(h, clk, 100, 0, 400*time.Millisecond)
				}
			},
			want: []string{"warn target unhealthy: p95 latency 403 ms > 200 ms", "info target recovered: SoakEventLatencyHigh"},
		},
		{
			name: "all clients down with connect failures",
			fault: func(h *Health, clk *fakeClock, fp *fakePools) {
				fp.set(PoolState{Target: "a", Connected: 0, Desired: 10, LastConnectReason: "connect_error", LastConnectMessage: "unauthorized"})
				for i := 0; i < 90; i++ {
					h.Connection("a", pool.ConnAttempt, "", 0)
					h.Connection("a", pool.ConnFailed, "connect_error", 0)
					clk.Add(time.Second)
					h.Step()
				}
				fp.set(PoolState{Target: "a", Connected: 10, Desired: 10})
				for i := 0; i < 10; i++ {
					h.Connection("a", pool.ConnAttempt, "", 0)
					h.Connection("a", pool.ConnEstablished, "", 20*time.Millisecond)
				}
			},
			want: []string{
				"warn target unhealthy: all clients down",
				"warn target unhealthy: connect success 0% < 99.5%",
				"info target recovered: SoakPoolBelowDesired",
				"info target recovered: SoakConnectionSuccessRatioLow",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, clk, fp, logs := newTest(t)
			for i := 0; i < 5; i++ {
				second(h, clk, 100, 0, 3*time.Millisecond)
			}
			tt.fault(h, clk, fp)
			for i := 0; i < 70; i++ {
				second(h, clk, 100, 0, 3*time.Millisecond)
			}
			got := messages(logs)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("logs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestServerMessageAndReasonsLogged(t *testing.T) {
	h, clk, fp, logs := newTest(t)
	fp.set(PoolState{Target: "a", Connected: 0, Desired: 10, LastConnectReason: "connect_error", LastConnectMessage: "<b>unauthorized</b>"})
	for i := 0; i < 12; i++ {
		h.Connection("a", pool.ConnAttempt, "", 0)
		h.Connection("a", pool.ConnFailed, "connect_error", 0)
		clk.Add(time.Second)
		h.Step()
	}
	e := logs.FilterMessage("target unhealthy: all clients down").All()
	if len(e) != 1 {
		t.Fatalf("want one all-down warning, got %v", messages(logs))
	}
	f := e[0].ContextMap()
	if f["server_message"] != "<b>unauthorized</b>" || f["top_reason"] != "connect_error" || f["target"] != "a" {
		t.Errorf("fields: %v", f)
	}
}

func TestRateLimit(t *testing.T) {
	h, clk, _, logs := newTest(t)
	// Loss that comes and goes every 70 s: one warning and its recovery per
	// LogEvery (5 min), the rest counted.
	for cycle := 0; cycle < 6; cycle++ {
		for i := 0; i < 70; i++ {
			second(h, clk, 100, 1, time.Millisecond)
		}
		for i := 0; i < 70; i++ {
			second(h, clk, 100, 0, time.Millisecond)
		}
	}
	warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) < 2 || len(warns) > 3 {
		t.Fatalf("want 2-3 warnings over 14 min with a 5 min limit, got %d: %v", len(warns), messages(logs))
	}
	if _, ok := warns[1].ContextMap()["changes_not_logged"]; !ok {
		t.Errorf("second warning should count the changes not logged: %v", warns[1].ContextMap())
	}
}

func TestViews(t *testing.T) {
	h, clk, fp, _ := newTest(t)
	fp.set(PoolState{Target: "a", Connected: 9, Desired: 10})
	h.Connection("a", pool.ConnClosed, "transport_close", 0)
	h.Connection("a", pool.ConnClosed, "io_client_disconnect", 0)
	h.Connection("a", pool.ConnClosed, "transport_close", 0)
	for i := 0; i < 601; i++ {
		lat := 2340 * time.Microsecond
		if i >= 501 {
			lat = 400 * time.Millisecond
		}
		second(h, clk, 10, 0, lat)
	}
	v := h.Views()
	if len(v) != 1 {
		t.Fatalf("views: %+v", v)
	}
	m, ten := v[0].Minute, v[0].TenMinutes
	if m.Sent != 600 || ten.Sent != 6000 {
		t.Errorf("sent: minute %d, ten %d", m.Sent, ten.Sent)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"minute p50", m.P50, 0.4}, {"ten-minute p50", ten.P50, 0.00234}, {"ten-minute p95", ten.P95, 0.4}} {
		if rel := math.Abs(c.got-c.want) / c.want; rel > 0.045 {
			t.Errorf("%s: %v, want %v within 4.5%%", c.name, c.got, c.want)
		}
	}
	if len(v[0].Disconnects) != 0 {
		t.Errorf("disconnects of 10 min ago should have rolled out: %v", v[0].Disconnects)
	}
	if len(v[0].Conditions) != 2 { // pool below desired and p95
		t.Errorf("conditions: %+v", v[0].Conditions)
	}
}

func TestRunRotatesOnTick(t *testing.T) {
	tick := make(chan time.Time)
	h := New(Config{}, Options{Tick: tick})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	h.Event("a", "echo", "echo", pool.OutcomeSent, 3, 0)
	for i := 0; i < 60; i++ {
		tick <- time.Time{}
	}
	tick <- time.Time{} // the 61st tick has begun: the 60 before are done
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := h.Views()[0].Minute.Sent; s != 0 {
		t.Errorf("after 61 ticks the minute should be empty, got %d sent", s)
	}
	if s := h.Views()[0].TenMinutes.Sent; s != 3 {
		t.Errorf("ten minutes: got %d sent, want 3", s)
	}
}

func TestTee(t *testing.T) {
	a, b := New(Config{}, Options{}), New(Config{}, Options{})
	o := Tee(a, nil, b)
	o.Event("x", "echo", "echo", pool.OutcomeSent, 2, 0)
	o.Connection("x", pool.ConnAttempt, "", 0)
	for _, h := range []*Health{a, b} {
		h.Step()
		if v := h.Views(); len(v) != 1 || v[0].Minute.Sent != 2 || v[0].Minute.Attempts != 1 {
			t.Errorf("tee: %+v", v)
		}
	}
}

func TestLeakHook(t *testing.T) {
	h, _, _, logs := newTest(t)
	h.LeakCleared("node", "flat") // first report, not suspected: silent
	h.LeakSuspected("node", "slope 3 MiB/h")
	h.LeakSuspected("node", "slope 3 MiB/h")
	h.LeakCleared("node", "flat")
	want := "warn memory leak suspected\ninfo memory leak no longer suspected"
	if got := strings.Join(messages(logs), "\n"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{WarnAfter: time.Minute, WarnEvery: 5 * time.Minute}, ""},
		{"zero after", Config{WarnEvery: time.Minute}, "SOAK_HEALTH_WARN_AFTER: must be > 0 and <= 10m, got 0s"},
		{"after past the window", Config{WarnAfter: 11 * time.Minute, WarnEvery: time.Minute}, "SOAK_HEALTH_WARN_AFTER: must be > 0 and <= 10m, got 11m0s"},
		{"negative every", Config{WarnAfter: time.Minute, WarnEvery: -time.Second}, "SOAK_HEALTH_WARN_EVERY: must be > 0, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
