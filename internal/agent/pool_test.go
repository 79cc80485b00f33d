package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memDriver is an in-memory probe.Driver for the pool's own logic: it acks
// every event at once (unless told to drop), and can refuse dials or kick
// every connection. The real drivers are tested against real servers.
type memDriver struct {
	mu      sync.Mutex
	conns   map[*memConn]bool
	refuse  bool
	dropAck bool
	dials   int
	// onEmit, when set, is called by every Emit with its context, before
	// the event is acked.
	onEmit func(ctx context.Context)
}

func newMemDriver() *memDriver { return &memDriver{conns: map[*memConn]bool{}} }

func (d *memDriver) Name() string { return "mem" }

func (d *memDriver) Dial(ctx context.Context, _ *probe.Target, h probe.Handlers) (probe.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials++
	if d.refuse {
		return nil, &probe.ConnectError{Reason: probe.FailRefused}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &memConn{d: d, h: h}
	d.conns[c] = true
	return c, nil
}

func (d *memDriver) set(f func(d *memDriver)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func (d *memDriver) open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// kick ends every connection as the server would.
func (d *memDriver) kick() int {
	d.mu.Lock()
	var cs []*memConn
	for c := range d.conns {
		cs = append(cs, c)
	}
	d.mu.Unlock()
	for _, c := range cs {
		c.end(probe.ReasonServerDisconnect)
	}
	return len(cs)
}

type memConn struct {
	d    *memDriver
	h    probe.Handlers
	once sync.Once
}

func (c *memConn) Emit(ctx context.Context, _ string, ackID int64, args ...json.RawMessage) error {
	c.d.mu.Lock()
	open, drop, hook := c.d.conns[c], c.d.dropAck, c.d.onEmit
	c.d.mu.Unlock()
	if hook != nil {
		hook(ctx)
	}
	if !open {
		return errors.New("closed")
	}
	if len(args) != 1 || !json.Valid(args[0]) {
		return errors.New("bad payload")
	}
	if ackID >= 0 && !drop {
		c.h.OnAck(uint64(ackID), args)
	}
	return nil
}

func (c *memConn) Close(context.Context) error {
	c.end(probe.ReasonClientClose)
	return nil
}

func (c *memConn) end(r probe.DisconnectReason) {
	c.once.Do(func() {
		c.d.mu.Lock()
		delete(c.d.conns, c)
		c.d.mu.Unlock()
		c.h.OnClose(r, nil)
	})
}

func testConfig() Config {
	return Config{
		Clients: 20, ConnectRate: 1000, ConnectTimeout: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		EventName: "echo", EventRate: 400, PayloadBytes: 100, AckTimeout: 200 * time.Millisecond,
	}
}

func newTestPool(t *testing.T, cfg Config, d probe.Driver) (*Pool, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	u, _ := url.Parse("http://127.0.0.1:1")
	p, err := New(cfg, Options{
		Driver: d, Target: &probe.Target{Name: "t1", URL: u, Path: "/socket.io/", Namespace: "/"},
		Metrics: probe.NewMetrics(reg), Registerer: reg, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

func startPool(t *testing.T, p *Pool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
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
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func TestPoolConnectsProbesAndShutsDownCleanly(t *testing.T) {
	d := newMemDriver()
	p, reg := newTestPool(t, testConfig(), d)
	stop := startPool(t, p)
	waitFor(t, "all connected", func() bool { return p.Connected() == 20 })
	waitFor(t, "acks", func() bool { return counter(t, reg, "soak_events_acked_total") >= 100 })
	stop()
	if n := d.open(); n != 0 {
		t.Fatalf("%d connections left open after Run returned", n)
	}
	if p.Connected() != 0 {
		t.Fatalf("connected gauge = %d after shutdown", p.Connected())
	}
	sent := counter(t, reg, "soak_events_sent_total")
	acked := counter(t, reg, "soak_events_acked_total")
	lost := counter(t, reg, "soak_events_lost_total")
	if sent != acked+lost+float64(p.InFlight()) {
		t.Fatalf("sent %v != acked %v + lost %v + in flight %d", sent, acked, lost, p.InFlight())
	}
	if got := counter(t, reg, "soak_disconnects_total", "reason", "io_client_disconnect"); got != 20 {
		t.Fatalf("client disconnects = %v, want 20", got)
	}
	if got := counter(t, reg, "soak_connect_attempts_total"); got != 20 {
		t.Fatalf("attempts = %v, want 20", got)
	}
}

func TestPoolReconnectsAfterKick(t *testing.T) {
	d := newMemDriver()
	p, reg := newTestPool(t, testConfig(), d)
	stop := startPool(t, p)
	defer stop()
	waitFor(t, "all connected", func() bool { return p.Connected() == 20 })
	for i := 1; i <= 3; i++ {
		if n := d.kick(); n != 20 {
			t.Fatalf("kicked %d, want 20", n)
		}
		waitFor(t, "refill", func() bool { return p.Connected() == 20 })
		if got := counter(t, reg, "soak_disconnects_total", "reason", "io_server_disconnect"); got != float64(20*i) {
			t.Fatalf("server disconnects = %v, want %d", got, 20*i)
		}
	}
}

func TestPoolBacksOffWhileRefused(t *testing.T) {
	d := newMemDriver()
	d.set(func(d *memDriver) { d.refuse = true })
	cfg := testConfig()
	cfg.Clients = 2
	cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 100*time.Millisecond
	p, reg := newTestPool(t, cfg, d)
	stop := startPool(t, p)
	time.Sleep(time.Second)
	refused := counter(t, reg, "soak_connect_failures_total", "reason", "refused")
	// Without backoff 2 slots at 1000/s would make ~1000 attempts; with a cap
	// of 100 ms and full jitter, about 2 x 1 s / 50 ms = 40.
	if refused < 4 || refused > 200 {
		t.Errorf("refused attempts in 1 s = %v, want backoff-bounded (4..200)", refused)
	}
	if got := counter(t, reg, "soak_events_skipped_total"); got == 0 {
		t.Error("events due on disconnected clients were not counted as skipped")
	}
	if got := counter(t, reg, "soak_events_sent_total"); got != 0 {
		t.Errorf("sent = %v with no connection", got)
	}
	d.set(func(d *memDriver) { d.refuse = false })
	waitFor(t, "recovery", func() bool { return p.Connected() == 2 })
	stop()
}

func TestPoolCountsLostAcks(t *testing.T) {
	d := newMemDriver()
	d.set(func(d *memDriver) { d.dropAck = true })
	p, reg := newTestPool(t, testConfig(), d)
	stop := startPool(t, p)
	waitFor(t, "lost events", func() bool { return counter(t, reg, "soak_events_lost_total") >= 50 })
	stop()
	if got := counter(t, reg, "soak_events_acked_total"); got != 0 {
		t.Fatalf("acked = %v with every ack dropped", got)
	}
}

func TestPoolResize(t *testing.T) {
	d := newMemDriver()
	p, reg := newTestPool(t, testConfig(), d)
	stop := startPool(t, p)
	defer stop()
	waitFor(t, "20 connected", func() bool { return p.Connected() == 20 })
	ctx := context.Background()
	if err := p.Resize(ctx, 5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 connected", func() bool { return p.Connected() == 5 && d.open() == 5 })
	if got := counter(t, reg, "soak_clients_desired"); got != 5 {
		t.Fatalf("desired = %v", got)
	}
	if err := p.Resize(ctx, 30); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "30 connected", func() bool { return p.Connected() == 30 && d.open() == 30 })
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
// clean shutdown would read as a transport error (seen in CI: 1 of 1,000
// clients closed that way).
func TestStopDoesNotCancelWritesInFlight(t *testing.T) {
	d := newMemDriver()
	inEmit := make(chan context.Context, 1)
	release := make(chan struct{})
	var once sync.Once
	d.set(func(d *memDriver) {
		d.onEmit = func(ctx context.Context) {
			once.Do(func() {
				inEmit <- ctx
				<-release
			})
		}
	})
	cfg := testConfig()
	cfg.Clients = 1
	p, _ := newTestPool(t, cfg, d)
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

func TestAppendPayload(t *testing.T) {
	at := time.Unix(1700000000, 123)
	for _, size := range []int{64, 100, 1000} {
		b := appendPayload(nil, 42, at, size)
		if len(b) != size {
			t.Errorf("size %d: got %d bytes", size, len(b))
		}
		var v struct {
			Seq uint64 `json:"seq"`
			T   int64  `json:"t"`
			Pad string `json:"pad"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("size %d: %v: %s", size, err, b)
		}
		if v.Seq != 42 || v.T != at.UnixNano() || strings.Trim(v.Pad, "x") != "" {
			t.Errorf("size %d: decoded %+v", size, v)
		}
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
		{"zero timeout", func(c *Config) { c.AckTimeout = 0 }, "SOAK_ACK_TIMEOUT"},
		{"max below min", func(c *Config) { c.BackoffMax = time.Millisecond }, "SOAK_BACKOFF_MAX"},
		{"tiny payload", func(c *Config) { c.PayloadBytes = 10 }, "SOAK_EVENT_PAYLOAD_BYTES"},
		{"empty event", func(c *Config) { c.EventName = "" }, "SOAK_EVENT_NAME"},
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

func TestPoolMetricsLint(t *testing.T) {
	_, reg := newTestPool(t, testConfig(), newMemDriver())
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestConfigSplit(t *testing.T) {
	c := testConfig()
	c.Clients, c.EventRate = 5, 100
	parts := c.Split(2)
	if parts[0].Clients != 3 || parts[1].Clients != 2 {
		t.Fatalf("clients split %d/%d, want 3/2", parts[0].Clients, parts[1].Clients)
	}
	if parts[0].EventRate != 60 || parts[1].EventRate != 40 {
		t.Fatalf("rate split %v/%v, want 60/40", parts[0].EventRate, parts[1].EventRate)
	}
}

func TestPoolPauseAndTaps(t *testing.T) {
	d := newMemDriver()
	reg := prometheus.NewRegistry()
	u, _ := url.Parse("http://127.0.0.1:1")
	var mu sync.Mutex
	var lat, conn int
	p, err := New(testConfig(), Options{
		Driver: d, Target: &probe.Target{Name: "t1", URL: u}, Metrics: probe.NewMetrics(reg), Registerer: reg,
		ConnectTap: prometheus.ObserverFunc(func(float64) { mu.Lock(); conn++; mu.Unlock() }),
		LatencyTap: prometheus.ObserverFunc(func(float64) { mu.Lock(); lat++; mu.Unlock() }),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := startPool(t, p)
	defer stop()
	waitFor(t, "acks", func() bool { return counter(t, reg, "soak_events_acked_total") >= 20 })
	p.PauseProbe(true)
	time.Sleep(50 * time.Millisecond) // let a dispatch already under way finish
	sent := counter(t, reg, "soak_events_sent_total")
	time.Sleep(200 * time.Millisecond)
	if got := counter(t, reg, "soak_events_sent_total"); got != sent {
		t.Fatalf("sent went from %v to %v while paused", sent, got)
	}
	mu.Lock()
	defer mu.Unlock()
	if acked := counter(t, reg, "soak_events_acked_total"); float64(lat) != acked {
		t.Errorf("latency tap saw %d, acked %v", lat, acked)
	}
	if conn != 20 {
		t.Errorf("connect tap saw %d, want 20", conn)
	}
}
