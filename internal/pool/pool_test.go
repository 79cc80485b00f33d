package pool

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig() Config {
	return Config{
		Clients: 4, ConnectRate: 1000, ConnectTimeout: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	}
}

// streamProbe is a probe that sends one event per item of its stream and
// records what the pool tells its part.
type streamProbe struct {
	rate   float64
	mu     sync.Mutex
	opened int
	closed int
	ctxs   chan context.Context
}

func (sp *streamProbe) Name() string                  { return "stream" }
func (sp *streamProbe) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (sp *streamProbe) Attach(p *Pool, id ID) (Part, error) {
	return sp, p.AddStream(&Stream{
		Rate: sp.rate, MaxLate: time.Second,
		Fire: func(ctx context.Context, s *Session, _ uint64, _ time.Time, buf []byte) []byte {
			select {
			case sp.ctxs <- ctx:
			default:
			}
			_ = s.EmitAck(ctx, id, 1, "x", json.RawMessage(`{}`))
			return buf
		},
		Skipped: func(int) {}, Dropped: func(int) {},
	})
}
func (sp *streamProbe) Events() []string  { return nil }
func (sp *streamProbe) Init(*Session) any { return nil }
func (sp *streamProbe) Open(*Session)     { sp.mu.Lock(); sp.opened++; sp.mu.Unlock() }
func (sp *streamProbe) Close(*Session, probe.DisconnectReason) {
	sp.mu.Lock()
	sp.closed++
	sp.mu.Unlock()
}
func (sp *streamProbe) Event(*Session, string, []json.RawMessage) {}
func (sp *streamProbe) Ack(*Session, uint64, []json.RawMessage)   {}

func newTestPool(t *testing.T, cfg Config, d probe.Driver, probes ...Probe) *Pool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	p, err := New(cfg, Options{
		Driver: d, Target: &probe.Target{Name: "t1", URL: u, Path: "/socket.io/", Namespace: "/"},
		Metrics: m, Registerer: reg, Seed: 1, Probes: probes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPartsAreOpenedAndClosedOncePerSession(t *testing.T) {
	d := soaktest.NewMemDriver()
	sp := &streamProbe{ctxs: make(chan context.Context, 1)}
	p := newTestPool(t, testConfig(), d, sp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	soaktest.WaitFor(t, "connected", func() bool { return p.Connected() == 4 })
	d.Kick()
	soaktest.WaitFor(t, "reconnected", func() bool { return p.Connected() == 4 && d.Dials() == 8 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.opened != 8 || sp.closed != 8 {
		t.Fatalf("opened %d closed %d, want 8 and 8", sp.opened, sp.closed)
	}
}

func TestFullJitter(t *testing.T) {
	tests := []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{n: 1, u: 0.5, want: 50 * time.Millisecond},
		{n: 2, u: 0.5, want: 100 * time.Millisecond},
		{n: 4, u: 0.999, want: 799200 * time.Microsecond},
		{n: 10, u: 0.5, want: 500 * time.Millisecond}, // capped at max
		{n: 5000, u: 1, want: time.Second},            // no overflow
		{n: 0, u: 0, want: 0},
	}
	for _, tc := range tests {
		got := fullJitter(100*time.Millisecond, time.Second, tc.n, tc.u)
		if got != tc.want {
			t.Errorf("fullJitter(n=%d,u=%v) = %v, want %v", tc.n, tc.u, got, tc.want)
		}
	}
}

// A write in flight when the pool stops must not see its context end:
// coder/websocket closes the connection of a write whose context ends, and a
// clean shutdown would read as a transport error.
func TestStopDoesNotCancelWritesInFlight(t *testing.T) {
	d := soaktest.NewMemDriver()
	inEmit := make(chan context.Context, 1)
	release := make(chan struct{})
	var once sync.Once
	d.Set(func(c *soaktest.MemControl) {
		c.OnEmit = func(ctx context.Context, _ string) {
			once.Do(func() {
				inEmit <- ctx
				<-release
			})
		}
	})
	cfg := testConfig()
	cfg.Clients = 1
	p := newTestPool(t, cfg, d, &streamProbe{rate: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var emitCtx context.Context
	select {
	case emitCtx = <-inEmit:
	case <-time.After(10 * time.Second):
		t.Fatal("no event was sent")
	}
	cancel() // propagates synchronously to every context derived from ctx
	err := emitCtx.Err()
	close(release)
	if runErr := <-done; runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}
	if err != nil {
		t.Fatalf("the context of the write in flight ended with the pool's: %v", err)
	}
	if _, ok := emitCtx.Deadline(); !ok {
		t.Fatal("the write has no deadline")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"negative clients", func(c *Config) { c.Clients = -1 }, "SOAK_CLIENTS"},
		{"zero rate", func(c *Config) { c.ConnectRate = 0 }, "SOAK_CONNECT_RATE"},
		{"zero timeout", func(c *Config) { c.ConnectTimeout = 0 }, "SOAK_CONNECT_TIMEOUT"},
		{"max below min", func(c *Config) { c.BackoffMax = time.Millisecond }, "SOAK_BACKOFF_MAX"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
				t.Fatalf("err = %v, want prefix %s:", err, tc.want)
			}
		})
	}
}

func TestConfigSplit(t *testing.T) {
	c := testConfig()
	c.Clients = 5
	parts := c.Split(2)
	if parts[0].Clients != 3 || parts[1].Clients != 2 {
		t.Fatalf("clients split %d/%d, want 3/2", parts[0].Clients, parts[1].Clients)
	}
	if s := Share(3, 5, 2); s != 0.6 {
		t.Fatalf("share = %v", s)
	}
	if s := Share(0, 0, 2); s != 0.5 {
		t.Fatalf("share with no clients = %v", s)
	}
}

func TestScheduleHasNoDrift(t *testing.T) {
	start := time.Unix(0, 0)
	s := newSchedule(start, 3, 0) // 1/3 s is not representable exactly
	var at time.Time
	for range 3_000_000 {
		s.advance()
	}
	_, at = s.next()
	if want := start.Add(1_000_000 * time.Second); at.Sub(want).Abs() > time.Microsecond {
		t.Fatalf("event 3e6 at %v, want %v", at, want)
	}
}

func TestScheduleGroupsEventsIntoTicks(t *testing.T) {
	start := time.Unix(0, 0)
	tests := []struct {
		name    string
		rate    float64
		minTick time.Duration
		want    []time.Duration // due times of events 0, 1, 2...
	}{
		{"below one event per tick", 100, 5 * time.Millisecond,
			[]time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond}},
		{"exactly one per tick", 200, 5 * time.Millisecond,
			[]time.Duration{0, 5 * time.Millisecond, 10 * time.Millisecond}},
		{"two per tick", 400, 5 * time.Millisecond,
			[]time.Duration{0, 5 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 15 * time.Millisecond}},
		{"2.5 per tick", 500, 5 * time.Millisecond,
			[]time.Duration{0, 5 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 15 * time.Millisecond, 15 * time.Millisecond}},
		{"no grid", 2000, 0,
			[]time.Duration{0, 500 * time.Microsecond, time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSchedule(start, tc.rate, tc.minTick)
			for k, want := range tc.want {
				gotK, at := s.next()
				if gotK != uint64(k) || at.Sub(start) != want {
					t.Fatalf("event %d: got k=%d at %v, want %v", k, gotK, at.Sub(start), want)
				}
				s.advance()
			}
		})
	}
	// Over a long run the grid neither gains nor loses events: 2000/s on
	// 5 ms ticks is 10 per tick, every tick.
	s := newSchedule(start, 2000, 5*time.Millisecond)
	perTick := map[time.Time]int{}
	for range 2_000_000 {
		_, at := s.next()
		perTick[at]++
		s.advance()
	}
	for at, n := range perTick {
		if at.Equal(start) {
			continue // event 0 alone
		}
		if n != 10 && at.Sub(start) < 1000*time.Second {
			t.Fatalf("tick %v holds %d events, want 10", at.Sub(start), n)
		}
	}
}
