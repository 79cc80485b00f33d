package pool

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
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
	rate      float64
	dropped   atomic.Int64 // items the stream counted dropped
	lateFires atomic.Int64 // items fired more than MaxLate after they were due
	mu        sync.Mutex
	opened    int
	closed    int
	ctxs      chan context.Context
}

func (sp *streamProbe) Name() string                  { return "stream" }
func (sp *streamProbe) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (sp *streamProbe) Attach(p *Pool, id ID) (Part, error) {
	return sp, p.AddStream(&Stream{
		Rate: sp.rate, MaxLate: time.Second,
		Fire: func(ctx context.Context, s *Session, _ uint64, scheduled time.Time, buf []byte) []byte {
			if time.Since(scheduled) > time.Second {
				sp.lateFires.Add(1)
			}
			select {
			case sp.ctxs <- ctx:
			default:
			}
			_ = s.EmitAck(ctx, id, 1, "x", json.RawMessage(`{}`))
			return buf
		},
		Skipped: func(int) {}, Dropped: func(n int) { sp.dropped.Add(int64(n)) },
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
	return newTestPoolReg(t, prometheus.NewRegistry(), cfg, d, probes...)
}

func newTestPoolReg(t *testing.T, reg *prometheus.Registry, cfg Config, d probe.Driver, probes ...Probe) *Pool {
	t.Helper()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	p, err := New(cfg, Options{
		Driver: d, Target: &probe.Target{Name: "t1", URL: u, Path: "/socket.io/", Namespace: "/"},
		Metrics: m, Registerer: reg, Seed: 1, Probes: probes,
		RuntimeTimer: true, // synctest's fake clock moves runtime timers only
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPartsAreOpenedAndClosedOncePerSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := soaktest.NewMemDriver()
		sp := &streamProbe{ctxs: make(chan context.Context, 1)}
		p := newTestPool(t, testConfig(), d, sp)
		stop := runPool(t, p)
		time.Sleep(100 * time.Millisecond) // fake time (synctest): the ramp-up
		synctest.Wait()
		if got := p.Connected(); got != 4 {
			t.Fatalf("connected %d, want 4", got)
		}
		d.Kick()
		time.Sleep(100 * time.Millisecond) // fake time (synctest): past SOAK_BACKOFF_MAX of the test config
		synctest.Wait()
		if got, dials := p.Connected(), d.Dials(); got != 4 || dials != 8 {
			t.Fatalf("after a kick: connected %d, dials %d, want 4 and 8", got, dials)
		}
		stop()
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if sp.opened != 8 || sp.closed != 8 {
			t.Fatalf("opened %d closed %d, want 8 and 8", sp.opened, sp.closed)
		}
	})
}

func TestBackoffIsSocketIOClients(t *testing.T) {
	const base, maxDelay = time.Second, 5 * time.Second
	tests := []struct {
		name   string
		n      int
		jitter float64
		u      float64
		want   time.Duration
	}{
		{"first, no jitter", 0, 0, 0.3, time.Second},
		{"first, lowest", 0, 0.5, 0, 500 * time.Millisecond},
		{"first, middle", 0, 0.5, 0.5, time.Second},
		{"first, near highest", 0, 0.5, 0.999, 1499 * time.Millisecond},
		{"second, middle", 1, 0.5, 0.5, 2 * time.Second},
		{"third, lowest", 2, 0.5, 0, 2 * time.Second},
		{"third, above the cap", 2, 0.5, 0.9, maxDelay}, // 4 s * 1.4: capped after the jitter
		{"fourth, lowest", 3, 0.5, 0, 4 * time.Second},
		{"far, lowest", 40, 0.5, 0, maxDelay},
		{"huge n, no overflow", 5000, 0.5, 0.5, maxDelay},
		{"negative n as 0", -3, 0, 0, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := backoff(base, maxDelay, tc.jitter, tc.n, tc.u)
			if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("backoff(n=%d, jitter=%v, u=%v) = %v, want %v", tc.n, tc.jitter, tc.u, got, tc.want)
			}
		})
	}
}

// socketIOConfig is the pool configuration with socket.io-client's
// reconnect defaults (those of the envconfig tags).
func socketIOConfig(clients int) Config {
	return Config{
		Clients: clients, ConnectRate: 1000, ConnectTimeout: time.Second,
		BackoffMin: time.Second, BackoffMax: 5 * time.Second, BackoffJitter: 0.5, ShortLived: 10 * time.Second,
	}
}

// runPool starts p.Run and returns a function that stops it and checks its
// result.
func runPool(t *testing.T, p *Pool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
}

// Kicking every client again and again (a rolling deploy) must not grow the
// reconnect delay: a connection that opened resets its slot's backoff, as
// socket.io-client's does, so each round the pool is back between
// base*(1-jitter) and base*(1+jitter) after the kick; the flapping shows in
// the counters instead. Time is synctest's fake clock.
func TestKicksDoNotGrowTheReconnectDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const clients = 20
		d := soaktest.NewMemDriver()
		reg := prometheus.NewRegistry()
		p := newTestPoolReg(t, reg, socketIOConfig(clients), d)
		stop := runPool(t, p)
		defer stop()
		time.Sleep(100 * time.Millisecond) // fake time: the ramp-up at SOAK_CONNECT_RATE
		synctest.Wait()
		if got := p.Connected(); got != clients {
			t.Fatalf("connected %d of %d at start", got, clients)
		}
		for round := 1; round <= 10; round++ {
			if n := d.Kick(); n != clients {
				t.Fatalf("round %d: kicked %d, want %d", round, n, clients)
			}
			time.Sleep(499 * time.Millisecond) // fake time (synctest): just below base*(1-jitter)
			synctest.Wait()
			if got := p.Connected(); got != 0 {
				t.Fatalf("round %d: %d clients back before base*(1-jitter)", round, got)
			}
			time.Sleep(time.Second + 30*time.Millisecond) // fake time (synctest): to base*(1+jitter), plus the connect-rate spacing of 20 dials
			synctest.Wait()
			if got := p.Connected(); got != clients {
				t.Fatalf("round %d: %d of %d clients back 1.53 s after the kick", round, got, clients)
			}
			time.Sleep(20 * time.Second) // fake time (synctest): the connections outlive SOAK_SHORT_LIVED before the next kick
		}
		if got := soaktest.Sum(t, reg, MetricDisconnects, "reason", string(probe.ReasonServerDisconnect)); got != 10*clients {
			t.Errorf("%s = %v, want %d", MetricDisconnects, got, 10*clients)
		}
		// Only the first round kicked connections younger than SOAK_SHORT_LIVED.
		if got := soaktest.Sum(t, reg, MetricShortLived); got != clients {
			t.Errorf("%s = %v, want %d (the first round only)", MetricShortLived, got, clients)
		}
	})
}

// Connections that end within SOAK_SHORT_LIVED of opening are counted as
// flapping, and still reconnect after the base delay only.
func TestFlappingIsCountedNotBackedOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const clients = 5
		d := soaktest.NewMemDriver()
		reg := prometheus.NewRegistry()
		p := newTestPoolReg(t, reg, socketIOConfig(clients), d)
		stop := runPool(t, p)
		defer stop()
		time.Sleep(100 * time.Millisecond) // fake time: the ramp-up at SOAK_CONNECT_RATE
		synctest.Wait()
		for round := 1; round <= 6; round++ {
			d.Kick()
			time.Sleep(1510 * time.Millisecond) // fake time: base*(1+jitter) plus the connect-rate spacing
			synctest.Wait()
			if got := p.Connected(); got != clients {
				t.Fatalf("round %d: %d of %d clients back", round, got, clients)
			}
		}
		if got := soaktest.Sum(t, reg, MetricShortLived, "target", "t1"); got != 6*clients {
			t.Errorf("%s = %v, want %d", MetricShortLived, got, 6*clients)
		}
	})
}

// dialClock records when each Dial is called, on the pool's clock.
type dialClock struct {
	probe.Driver
	mu    sync.Mutex
	times []time.Time
}

func (d *dialClock) Dial(ctx context.Context, t *probe.Target, h probe.Handlers) (probe.Conn, error) {
	d.mu.Lock()
	d.times = append(d.times, time.Now())
	d.mu.Unlock()
	return d.Driver.Dial(ctx, t, h)
}

// Failed attempts back off as socket.io-client's: about 1, 2, 4 s, then the
// 5 s cap, never more.
func TestFailedAttemptsBackOffToTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := soaktest.NewMemDriver()
		mem.Set(func(c *soaktest.MemControl) { c.Refuse = true })
		d := &dialClock{Driver: mem}
		p := newTestPool(t, socketIOConfig(1), d)
		stop := runPool(t, p)
		time.Sleep(40 * time.Second) // fake time (synctest): room for 7 attempts
		synctest.Wait()
		stop()
		d.mu.Lock()
		defer d.mu.Unlock()
		bounds := [][2]time.Duration{ // gap before attempt i+1, inclusive, plus up to 1.5 ms of rate spacing
			{500 * time.Millisecond, 1500 * time.Millisecond},
			{time.Second, 3 * time.Second},
			{2 * time.Second, 5 * time.Second},
			{4 * time.Second, 5 * time.Second},
			{5 * time.Second, 5 * time.Second},
			{5 * time.Second, 5 * time.Second},
		}
		if len(d.times) < len(bounds)+1 {
			t.Fatalf("%d attempts in 40 s, want at least %d", len(d.times), len(bounds)+1)
		}
		for i, b := range bounds {
			gap := d.times[i+1].Sub(d.times[i])
			if gap < b[0] || gap > b[1]+2*time.Millisecond {
				t.Errorf("gap before attempt %d = %v, want in [%v, %v]", i+2, gap, b[0], b[1])
			}
		}
	})
}

// A write in flight when the pool stops must not see its context end:
// coder/websocket closes the connection of a write whose context ends, and a
// clean shutdown would read as a transport error.
func TestStopDoesNotCancelWritesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		case <-time.After(10 * time.Second): // fake time (synctest)
			t.Fatal("no event was sent in 10 s")
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
	})
}

// stallProbe is a stream whose Fire blocks, once, for stall on the first
// write to each slot in stalling at or after 100 ms: a server that stops
// reading one connection, whose write then blocks until its deadline.
type stallProbe struct {
	rate     float64
	stalling map[int]bool
	stall    time.Duration
	start    time.Time
	stalled  sync.Map // slot -> *atomic.Bool: its stall happened

	dropped       atomic.Int64
	lateOthers    atomic.Int64 // items of non-stalling slots fired more than 20 ms after they were due
	deadFires     atomic.Int64 // items fired with their context already ended
	liveLateFires atomic.Int64 // items fired more than MaxLate late with a live context
}

func (sp *stallProbe) Name() string                  { return "stall" }
func (sp *stallProbe) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (sp *stallProbe) Attach(p *Pool, id ID) (Part, error) {
	return sp, p.AddStream(&Stream{
		Rate: sp.rate, MaxLate: time.Second,
		Fire: func(ctx context.Context, s *Session, _ uint64, scheduled time.Time, buf []byte) []byte {
			late := time.Since(scheduled)
			switch {
			case ctx.Err() != nil:
				sp.deadFires.Add(1)
			case late > time.Second:
				sp.liveLateFires.Add(1)
			}
			if !sp.stalling[s.Slot()] {
				if late > 20*time.Millisecond {
					sp.lateOthers.Add(1)
				}
				return buf
			}
			b, _ := sp.stalled.LoadOrStore(s.Slot(), new(atomic.Bool))
			if time.Since(sp.start) >= 100*time.Millisecond && b.(*atomic.Bool).CompareAndSwap(false, true) {
				time.Sleep(sp.stall) // fake time (synctest): this connection's write blocks
			}
			return buf
		},
		Skipped: func(int) {}, Dropped: func(n int) { sp.dropped.Add(int64(n)) },
	})
}
func (sp *stallProbe) Events() []string                          { return nil }
func (sp *stallProbe) Init(*Session) any                         { return nil }
func (sp *stallProbe) Open(*Session)                             {}
func (sp *stallProbe) Close(*Session, probe.DisconnectReason)    {}
func (sp *stallProbe) Event(*Session, string, []json.RawMessage) {}
func (sp *stallProbe) Ack(*Session, uint64, []json.RawMessage)   {}

// A connection whose writes block (its server stopped reading) holds only
// its own items: the other connections' items go out on time, nothing is
// dropped (dropped is the agent's own backlog), and the items that waited
// behind the blocked write past their deadline are fired with an ended
// context (so the probe counts them sent and lost) and counted in
// soak_writes_stalled_total. With shared send workers, ten stalled
// connections of a hundred parked every worker and the others' items were
// dropped.
func TestStalledConnectionHoldsOnlyItsOwnWrites(t *testing.T) {
	for _, tc := range []struct {
		name              string
		clients, stalling int
	}{
		{"one of one", 1, 1},
		{"ten of a hundred", 100, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sp := &stallProbe{rate: 2000, stalling: map[int]bool{}, stall: 3 * time.Second, start: time.Now()}
				for i := range tc.stalling {
					sp.stalling[i] = true
				}
				cfg := testConfig()
				cfg.Clients = tc.clients
				reg := prometheus.NewRegistry()
				p := newTestPoolReg(t, reg, cfg, soaktest.NewMemDriver(), sp)
				stop := runPool(t, p)
				time.Sleep(5 * time.Second) // fake time (synctest): the stalls and what follows them
				synctest.Wait()
				stop()
				if n := sp.dropped.Load(); n != 0 {
					t.Errorf("dropped %d items, want 0: a stalled connection is the target's doing", n)
				}
				if n := sp.lateOthers.Load(); n != 0 {
					t.Errorf("%d items of connections that did not stall went out late", n)
				}
				if n := sp.liveLateFires.Load(); n != 0 {
					t.Errorf("%d items written more than MaxLate late with a live context, want 0", n)
				}
				dead := sp.deadFires.Load()
				// Each stalling slot gets 2000/clients items a second; those
				// due more than MaxLate (1 s) before its 3 s stall ended
				// waited past their deadline: about 2 s worth.
				if want := int64(tc.stalling) * 2 * 2000 / int64(tc.clients) * 9 / 10; dead < want {
					t.Errorf("%d items fired with an ended context, want at least %d", dead, want)
				}
				// Each stalled write blocked past its deadline, and the items
				// behind it waited past theirs.
				if got, want := soaktest.Sum(t, reg, MetricWritesStalled), float64(dead)+float64(tc.stalling); got != want {
					t.Errorf("%s = %v, want %v: %d blocked writes and the %d items that waited past their deadline", MetricWritesStalled, got, want, tc.stalling, dead)
				}
			})
		})
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
		{"jitter above 1", func(c *Config) { c.BackoffJitter = 1.5 }, "SOAK_BACKOFF_JITTER"},
		{"negative jitter", func(c *Config) { c.BackoffJitter = -0.1 }, "SOAK_BACKOFF_JITTER"},
		{"negative short-lived", func(c *Config) { c.ShortLived = -time.Second }, "SOAK_SHORT_LIVED"},
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
