package fanout

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func validConfig() Config {
	return Config{Event: "publish", Rate: 1, Timeout: time.Second, IDField: "id"}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"on", func(*Config) {}, ""},
		{"off", func(c *Config) { c.Rate = 0 }, ""},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "SOAK_FANOUT_RATE: must be in [0, 10000], got -1"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, `SOAK_FANOUT_TIMEOUT: must be > 0, got "0s"`},
		{"payload not an object", func(c *Config) { c.Payload = `[1]` }, "SOAK_FANOUT_PAYLOAD: must be a JSON object"},
		{"payload holds the id", func(c *Config) { c.Payload = `{"id":1}` },
			`SOAK_FANOUT_PAYLOAD: holds "id" already; the agent writes the message id there (SOAK_FANOUT_ID_FIELD)`},
		{"join payload without event", func(c *Config) { c.JoinPayload = `{"roomId":"r"}` }, "SOAK_FANOUT_JOIN_EVENT: required with SOAK_FANOUT_JOIN_PAYLOAD"},
		{"join payload not JSON", func(c *Config) { c.JoinEvent, c.JoinPayload = "join", `{` }, "SOAK_FANOUT_JOIN_PAYLOAD: must be JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			if got := errString(c.Validate()); got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMessageIDAndPayload(t *testing.T) {
	f := &Probe{cfg: validConfig()}
	for _, tc := range []struct {
		in   string
		id   uint64
		want bool
	}{
		{`{"id":42,"t":1}`, 42, true},
		{`{"id":42}`, 42, true},
		{`{"t":1,"id":7}`, 7, true},
		{`{"id":"9"}`, 9, true},
		{`{"id":"x"}`, 0, false},
		{`{"id":}`, 0, false},
		{`[1]`, 0, false},
		{`{"id":0}`, 0, false},
	} {
		id, ok := f.messageID(json.RawMessage(tc.in))
		if ok != tc.want || (ok && id != tc.id) {
			t.Errorf("messageID(%s) = %d, %v; want %d, %v", tc.in, id, ok, tc.id, tc.want)
		}
	}
	// A configured payload gets the id under the configured path.
	cfg := validConfig()
	cfg.Payload, cfg.IDField = `{"roomId":"soak","text":"hi"}`, "meta.clientMsgId"
	g, err := New(cfg, pool.Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	b := g.appendPayload(nil, 17, time.Unix(0, 0))
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["roomId"] != "soak" || got["text"] != "hi" || got["meta"].(map[string]any)["clientMsgId"] != 17.0 {
		t.Fatalf("payload %s", b)
	}
	if id, ok := g.messageID(b); !ok || id != 17 {
		t.Fatalf("the id written is not read back: %d %v", id, ok)
	}
}

// rig is the fan-out probe over two pools, "a" with 3 clients and "b" with
// 2, on one in-memory driver; messages are sent by hand.
type rig struct {
	t    *testing.T
	d    *soaktest.MemDriver
	f    *Probe
	reg  *prometheus.Registry
	send chan time.Time
	stop func()

	lastSent float64
}

func newRig(t *testing.T, cfg Config, d *soaktest.MemDriver) *rig {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := New(cfg, pool.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	m, err := pool.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	var pools []*pool.Pool
	for _, tc := range []struct {
		name    string
		clients int
	}{{"a", 3}, {"b", 2}} {
		p, err := pool.New(pool.Config{Clients: tc.clients, ConnectRate: 1000, ConnectTimeout: time.Second,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, pool.Options{
			Driver: d, Target: &probe.Target{Name: tc.name, URL: u, Path: "/socket.io/", Namespace: "/"},
			Metrics: m, Registerer: reg, Seed: 1, Probes: []pool.Probe{f},
			RuntimeTimer: true, // synctest's fake clock moves runtime timers only
		})
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	for _, p := range pools {
		go func() { done <- p.Run(ctx) }()
	}
	send := make(chan time.Time)
	sweep := make(chan time.Time)
	go func() { done <- f.run(ctx, send, sweep) }()
	r := &rig{t: t, d: d, f: f, reg: reg, send: send}
	r.stop = func() {
		cancel()
		for range 3 {
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	t.Cleanup(r.stop)
	soaktest.Settle(t, "5 clients taking part", time.Millisecond, func() bool {
		n := 0
		for _, fm := range f.members {
			for i := range fm.pool.Desired() {
				if fm.current(i) != nil {
					n++
				}
			}
		}
		return n == 5
	})
	return r
}

// sendN sends n messages and resolves them all.
func (r *rig) sendN(n int) {
	r.t.Helper()
	for range n {
		r.send <- time.Now()
	}
	soaktest.Settle(r.t, "messages sent", time.Millisecond, func() bool { return r.sent() >= r.lastSent+float64(n) })
	r.lastSent += float64(n)
	r.f.resolve(time.Now().Add(time.Hour), false)
	if got := r.f.InFlight(); got != 0 {
		r.t.Fatalf("in flight after resolve = %d", got)
	}
}

func (r *rig) sent() float64 { return soaktest.Sum(r.t, r.reg, MetricSent) }

type pairCounts struct{ expected, delivered, lost float64 }

func (r *rig) counts(sender, receiver string) pairCounts {
	get := func(name string) float64 {
		return soaktest.Sum(r.t, r.reg, name, "sender_target", sender, "target", receiver)
	}
	return pairCounts{get(MetricExpected), get(MetricDelivered), get(MetricLost)}
}

// TestAccounting runs in a synctest bubble: the pools and the probe run on fake
// time, and waits are for their goroutines to block.
func TestAccounting(t *testing.T) { synctest.Test(t, testAccounting) }

func testAccounting(t *testing.T) {
	d := soaktest.NewMemDriver()
	r := newRig(t, validConfig(), d)

	// Round robin over a0 a1 a2 b0 b1: 10 messages are 6 from a, 4 from b.
	r.sendN(10)
	if a, b := soaktest.Sum(t, r.reg, MetricSent, "target", "a"), soaktest.Sum(t, r.reg, MetricSent, "target", "b"); a != 6 || b != 4 {
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
	if n := testutil.CollectAndCount(r.reg, MetricLatency); n != 4 {
		t.Fatalf("latency series = %d, want 4 pairs", n)
	}

	// Copies delivered twice count once.
	d.Set(func(c *soaktest.MemControl) { c.Twice = true })
	r.sendN(5)
	d.Set(func(c *soaktest.MemControl) { c.Twice = false })
	for k, add := range map[[2]string]float64{{"a", "a"}: 6, {"a", "b"}: 6, {"b", "a"}: 6, {"b", "b"}: 2} {
		w := want[k]
		w.expected += add
		w.delivered += add
		want[k] = w
	}
	check("duplicates")

	// A partition between the targets loses exactly the cross-target copies.
	d.Set(func(c *soaktest.MemControl) { c.Partition = true })
	r.sendN(5)
	d.Set(func(c *soaktest.MemControl) { c.Partition = false })
	for k, add := range map[[2]string]pairCounts{
		{"a", "a"}: {6, 6, 0}, {"a", "b"}: {6, 0, 6}, {"b", "a"}: {6, 0, 6}, {"b", "b"}: {2, 2, 0},
	} {
		w := want[k]
		want[k] = pairCounts{w.expected + add.expected, w.delivered + add.delivered, w.lost + add.lost}
	}
	check("partition")
}

// With a join step, a client takes part only once its join is acked; a
// client whose join is never acked neither sends nor is expected. It runs
// in a synctest bubble: the pools and the probe run on fake time, and waits
// are for their goroutines to block.
func TestJoinStep(t *testing.T) { synctest.Test(t, testJoinStep) }

func testJoinStep(t *testing.T) {
	d := soaktest.NewMemDriver()
	cfg := validConfig()
	cfg.JoinEvent, cfg.JoinPayload = "room:join", `{"roomId":"soak"}`
	cfg.ReceiveEvent, cfg.Event = "message:new", "message:send"
	// The in-memory server relays message:send to the others as is; the
	// probe listens for message:new, so relay under that name.
	d.Set(func(c *soaktest.MemControl) {
		c.Rename = func(event string) string {
			if event == "message:send" {
				return "message:new"
			}
			return event
		}
	})
	r := newRig(t, cfg, d)
	if got := soaktest.Sum(t, r.reg, MetricJoins, "result", "ok"); got != 5 {
		t.Fatalf("joins ok = %v, want 5", got)
	}
	r.sendN(5)
	if got := r.counts("a", "b"); got != (pairCounts{6, 6, 0}) {
		t.Fatalf("a->b = %+v", got)
	}
}

// TestDeliveryDoesNotAllocate runs in a synctest bubble: the pools and the
// probe run on fake time, and waits are for their goroutines to block.
func TestDeliveryDoesNotAllocate(t *testing.T) { synctest.Test(t, testDeliveryDoesNotAllocate) }

func testDeliveryDoesNotAllocate(t *testing.T) {
	cfg := validConfig()
	r := newRig(t, cfg, soaktest.NewMemDriver())
	r.send <- time.Now()
	soaktest.Settle(t, "sent", time.Millisecond, func() bool { return r.sent() == 1 })
	fm := r.f.members[0]
	sess := fm.pool.Session(1)
	allocs := testing.AllocsPerRun(1000, func() { fm.deliver(sess, 1) })
	if allocs != 0 {
		t.Fatalf("deliver allocates %v times per call, want 0", allocs)
	}
}

// TestMetricsLint runs in a synctest bubble: the pools and the probe run on fake
// time, and waits are for their goroutines to block.
func TestMetricsLint(t *testing.T) { synctest.Test(t, testMetricsLint) }

func testMetricsLint(t *testing.T) {
	r := newRig(t, validConfig(), soaktest.NewMemDriver())
	problems, err := testutil.GatherAndLint(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
