package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// hubDriver is an in-memory probe.Driver whose connections relay a
// fan-out event to every other open connection, as socket.broadcast.emit
// does, possibly across targets (as the Redis adapter does).
type hubDriver struct {
	mu        sync.Mutex
	conns     []*hubConn
	partition bool // deliver only between connections of the same target
	twice     bool // deliver every copy twice
}

type hubConn struct {
	d      *hubDriver
	target string
	h      probe.Handlers
	once   sync.Once
	closed bool // guarded by d.mu
}

func (d *hubDriver) Name() string { return "hub" }

func (d *hubDriver) Dial(ctx context.Context, t *probe.Target, h probe.Handlers) (probe.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &hubConn{d: d, target: t.Name, h: h}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return c, nil
}

func (d *hubDriver) set(f func(*hubDriver)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func (c *hubConn) Emit(_ context.Context, event string, ackID int64, args ...json.RawMessage) error {
	c.d.mu.Lock()
	if c.closed {
		c.d.mu.Unlock()
		return errors.New("closed")
	}
	var to []*hubConn
	for _, o := range c.d.conns {
		if o != c && !o.closed && (!c.d.partition || o.target == c.target) {
			to = append(to, o)
		}
	}
	n := 1
	if c.d.twice {
		n = 2
	}
	c.d.mu.Unlock()
	if ackID >= 0 {
		c.h.OnAck(uint64(ackID), args)
		return nil
	}
	for _, o := range to {
		for range n {
			if o.h.OnEvent != nil {
				o.h.OnEvent(event, args)
			}
		}
	}
	return nil
}

func (c *hubConn) Close(context.Context) error {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.closed = true
		c.d.mu.Unlock()
		c.h.OnClose(probe.ReasonClientClose, nil)
	})
	return nil
}

func TestFanoutConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  FanoutConfig
		want string
	}{
		{"off", FanoutConfig{Event: "publish", Timeout: time.Second}, ""},
		{"on", FanoutConfig{Event: "publish", Rate: 5, Timeout: time.Second}, ""},
		{"negative rate", FanoutConfig{Event: "publish", Rate: -1, Timeout: time.Second}, "SOAK_FANOUT_RATE: must be in [0, 10000], got -1"},
		{"zero timeout", FanoutConfig{Event: "publish", Rate: 1}, `SOAK_FANOUT_TIMEOUT: must be > 0, got "0s"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errString(tc.cfg.Validate()); got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFanoutIDParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		id   uint64
		want bool
	}{
		{`{"id":42,"t":1}`, 42, true},
		{`{"id":42}`, 42, true},
		{`{"t":1,"id":7}`, 7, true},
		{`{"id":"x"}`, 0, false},
		{`{"id":}`, 0, false},
		{`[1]`, 0, false},
		{`{"id":0}`, 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			id, ok := fanoutID(json.RawMessage(tc.in))
			if ok != tc.want || (ok && id != tc.id) {
				t.Fatalf("fanoutID(%s) = %d, %v; want %d, %v", tc.in, id, ok, tc.id, tc.want)
			}
		})
	}
}

// fanoutRig is two pools, "a" with 3 clients and "b" with 2, on one hub.
type fanoutRig struct {
	t    *testing.T
	d    *hubDriver
	f    *Fanout
	reg  *prometheus.Registry
	send chan time.Time
	stop func()

	lastSent float64
}

func newFanoutRig(t *testing.T) *fanoutRig {
	t.Helper()
	reg := prometheus.NewRegistry()
	d := &hubDriver{}
	f, err := NewFanout(FanoutConfig{Event: "publish", Rate: 1, Timeout: time.Second}, probe.NewFanoutMetrics(reg), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	metrics := probe.NewMetrics(reg)
	u, _ := url.Parse("http://127.0.0.1:1")
	var pools []*Pool
	for _, tc := range []struct {
		name    string
		clients int
	}{{"a", 3}, {"b", 2}} {
		cfg := testConfig()
		cfg.Clients, cfg.EventRate = tc.clients, 0
		p, err := New(cfg, Options{
			Driver: d, Target: &probe.Target{Name: tc.name, URL: u, Path: "/socket.io/", Namespace: "/"},
			Metrics: metrics, Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"pool": tc.name}, reg),
			Fanout: f, Seed: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	var stops []func()
	for _, p := range pools {
		stops = append(stops, startPool(t, p))
	}
	waitFor(t, "5 clients connected", func() bool { return pools[0].Connected() == 3 && pools[1].Connected() == 2 })
	ctx, cancel := context.WithCancel(context.Background())
	send := make(chan time.Time)
	done := make(chan error, 1)
	go func() { done <- f.run(ctx, send, nil) }()
	r := &fanoutRig{t: t, d: d, f: f, reg: reg, send: send}
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fan-out run: %v", err)
		}
		for _, s := range stops {
			s()
		}
	}
	return r
}

// sendN sends n messages and resolves them all.
func (r *fanoutRig) sendN(n int) {
	r.t.Helper()
	for range n {
		r.send <- time.Now()
	}
	// The run loop has taken the last message; wait for it to be written.
	waitFor(r.t, "messages sent", func() bool { return r.sent() >= r.lastSent+float64(n) })
	r.lastSent += float64(n)
	r.f.resolve(time.Now().Add(time.Hour), false)
	if got := r.f.InFlight(); got != 0 {
		r.t.Fatalf("in flight after resolve = %d", got)
	}
}

func (r *fanoutRig) sent() float64 { return counter(r.t, r.reg, "soak_fanout_sent_total") }

func (r *fanoutRig) pair(name, sender, receiver string) float64 {
	return counter(r.t, r.reg, name, "sender_target", sender, "target", receiver)
}

type pairCounts struct{ expected, delivered, lost float64 }

func (r *fanoutRig) counts(sender, receiver string) pairCounts {
	return pairCounts{
		r.pair("soak_fanout_expected_total", sender, receiver),
		r.pair("soak_fanout_delivered_total", sender, receiver),
		r.pair("soak_fanout_lost_total", sender, receiver),
	}
}

func TestFanoutAccounting(t *testing.T) {
	r := newFanoutRig(t)
	defer r.stop()

	// Round robin over a0 a1 a2 b0 b1: 10 messages are 6 from a, 4 from b.
	r.sendN(10)
	if a, b := counter(t, r.reg, "soak_fanout_sent_total", "target", "a"), counter(t, r.reg, "soak_fanout_sent_total", "target", "b"); a != 6 || b != 4 {
		t.Fatalf("sent a=%v b=%v, want 6 and 4", a, b)
	}
	want := map[[2]string]pairCounts{
		{"a", "a"}: {12, 12, 0}, // 6 messages x 2 other clients of a
		{"a", "b"}: {12, 12, 0},
		{"b", "a"}: {12, 12, 0},
		{"b", "b"}: {4, 4, 0},
	}
	check := func(step string) {
		t.Helper()
		for k, w := range want {
			if got := r.counts(k[0], k[1]); got != w {
				t.Errorf("%s: %s->%s = %+v, want %+v", step, k[0], k[1], got, w)
			}
		}
	}
	check("all delivered")
	if n := testutil.CollectAndCount(r.reg, "soak_fanout_latency_seconds"); n != 4 {
		t.Fatalf("latency series = %d, want 4 pairs", n)
	}

	// Copies delivered twice count once.
	r.d.set(func(d *hubDriver) { d.twice = true })
	r.sendN(5) // a a a b b... continuing the round robin: a0 a1 a2 b0 b1
	r.d.set(func(d *hubDriver) { d.twice = false })
	for k, add := range map[[2]string]float64{{"a", "a"}: 6, {"a", "b"}: 6, {"b", "a"}: 6, {"b", "b"}: 2} {
		w := want[k]
		w.expected += add
		w.delivered += add
		want[k] = w
	}
	check("duplicates")

	// A partition between the targets loses exactly the cross-target copies.
	r.d.set(func(d *hubDriver) { d.partition = true })
	r.sendN(5)
	r.d.set(func(d *hubDriver) { d.partition = false })
	for k, add := range map[[2]string]pairCounts{
		{"a", "a"}: {6, 6, 0}, {"a", "b"}: {6, 0, 6}, {"b", "a"}: {6, 0, 6}, {"b", "b"}: {2, 2, 0},
	} {
		w := want[k]
		want[k] = pairCounts{w.expected + add.expected, w.delivered + add.delivered, w.lost + add.lost}
	}
	check("partition")
}

// newBareFanout is a fan-out over one pool of n slots, all connected, with
// its ring allocated, driven by hand (no goroutines).
func newBareFanout(t testing.TB, n int) (*Fanout, *fanoutMember) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := NewFanout(FanoutConfig{Event: "publish", Rate: 10, Timeout: 5 * time.Second}, probe.NewFanoutMetrics(reg), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Clients = n
	u, _ := url.Parse("http://127.0.0.1:1")
	p, err := New(cfg, Options{
		Driver: &hubDriver{}, Target: &probe.Target{Name: "a", URL: u, Path: "/socket.io/", Namespace: "/"},
		Metrics: probe.NewMetrics(reg), Registerer: reg, Fanout: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range *p.snapshot.Load() {
		s.cur.Store(&session{conn: &hubConn{d: &hubDriver{}}, dialStart: time.Unix(0, 0)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // run allocates the ring and returns at once
	if err := f.run(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	return f, p.fanout
}

func TestFanoutDeliveryDoesNotAllocate(t *testing.T) {
	f, fm := newBareFanout(t, 10000)
	f.send(context.Background(), nil)
	slots := *fm.pool.snapshot.Load()
	args := []json.RawMessage{json.RawMessage(`{"id":1,"t":0}`)}
	i := 1
	allocs := testing.AllocsPerRun(1000, func() {
		s := slots[i]
		fm.deliver(s, s.cur.Load(), args)
		i++
	})
	if allocs != 0 {
		t.Fatalf("deliver allocates %v times per call, want 0", allocs)
	}
	f.resolve(time.Now().Add(time.Hour), false)
}

func TestFanoutIgnoresALaterSessionOfTheSlot(t *testing.T) {
	f, fm := newBareFanout(t, 3)
	f.send(context.Background(), nil) // sender slot 0; 1 and 2 expected
	slots := *fm.pool.snapshot.Load()
	args := []json.RawMessage{json.RawMessage(`{"id":1,"t":0}`)}
	fm.deliver(slots[1], &session{dialStart: time.Now().Add(time.Minute)}, args) // slot 1 reconnected since
	fm.deliver(slots[2], slots[2].cur.Load(), args)
	fm.deliver(slots[0], slots[0].cur.Load(), args) // the sender is not expected
	f.resolve(time.Now().Add(time.Hour), false)
	pm := fm.pairs[0]
	if e, d, l := testutil.ToFloat64(pm.Expected), testutil.ToFloat64(pm.Delivered), testutil.ToFloat64(pm.Lost); e != 2 || d != 1 || l != 1 {
		t.Fatalf("expected %v delivered %v lost %v, want 2 1 1", e, d, l)
	}
}

// BenchmarkFanoutSend10k is the cost of one message over 10,000 connected
// clients (expected set built at send time) and of resolving it.
func BenchmarkFanoutSend10k(b *testing.B) {
	f, _ := newBareFanout(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		f.send(context.Background(), nil)
		f.resolve(time.Now(), true)
	}
}
