package probe

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestTracker(t *testing.T) (*Tracker, *TargetMetrics, *fakeClock, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg).For("t1", "echo")
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return NewTracker(5*time.Second, time.Minute, clk.now, m), m, clk, reg
}

func TestTrackerAccounting(t *testing.T) {
	type step struct {
		advance time.Duration
		sweep   bool
		ack     int // index of registered event to ack, -1 none
	}
	tests := []struct {
		name                          string
		events                        int
		steps                         []step
		acked, lost, late, unexpected float64
		inFlight                      int
		latencySum                    float64
	}{
		{
			name:   "ack within timeout",
			events: 1,
			steps:  []step{{advance: 50 * time.Millisecond, ack: 0}},
			acked:  1, latencySum: 0.05,
		},
		{
			name:     "no ack is lost at the deadline, not before",
			events:   1,
			steps:    []step{{advance: 4999 * time.Millisecond, sweep: true, ack: -1}},
			inFlight: 1,
		},
		{
			name:   "no ack is lost",
			events: 1,
			steps:  []step{{advance: 5 * time.Second, sweep: true, ack: -1}},
			lost:   1,
		},
		{
			name:   "ack after the sweep is late, counted once",
			events: 1,
			steps: []step{
				{advance: 6 * time.Second, sweep: true, ack: -1},
				{advance: time.Second, ack: 0},
				{advance: time.Second, ack: 0},
			},
			lost: 1, late: 1, unexpected: 1,
		},
		{
			name:   "ack past the deadline before the sweep is lost and late",
			events: 1,
			steps:  []step{{advance: 5100 * time.Millisecond, ack: 0}, {sweep: true, ack: -1}},
			lost:   1, late: 1,
		},
		{
			name:   "ack after the late horizon is unexpected",
			events: 1,
			steps: []step{
				{advance: 6 * time.Second, sweep: true, ack: -1},
				{advance: 2 * time.Minute, sweep: true, ack: -1},
				{ack: 0},
			},
			lost: 1, unexpected: 1,
		},
		{
			name:   "duplicate ack is unexpected",
			events: 2,
			steps:  []step{{advance: 10 * time.Millisecond, ack: 1}, {ack: 1}, {sweep: true, ack: -1}},
			acked:  1, unexpected: 1, inFlight: 1, latencySum: 0.01,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, m, clk, _ := newTestTracker(t)
			c := tr.NewConn()
			ids := make([]uint64, tc.events)
			for i := range ids {
				ids[i] = c.Register(clk.now())
			}
			for _, s := range tc.steps {
				clk.advance(s.advance)
				if s.ack >= 0 {
					c.Ack(ids[s.ack])
				}
				if s.sweep {
					tr.Sweep(clk.now())
				}
			}
			check := func(name string, got, want float64) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			check("sent", testutil.ToFloat64(m.Sent), float64(tc.events))
			check("acked", testutil.ToFloat64(m.Acked), tc.acked)
			check("lost", testutil.ToFloat64(m.Lost), tc.lost)
			check("late", testutil.ToFloat64(m.Late), tc.late)
			check("unexpected", testutil.ToFloat64(m.UnexpectedAcks), tc.unexpected)
			if got := tr.InFlight(); got != tc.inFlight {
				t.Errorf("in flight = %d, want %d", got, tc.inFlight)
			}
			// Conservation: every sent event is acked, lost or in flight.
			if got := tc.acked + tc.lost + float64(tc.inFlight); got != float64(tc.events) {
				t.Errorf("acked+lost+inflight = %v, sent %d", got, tc.events)
			}
		})
	}
}

func TestTrackerAcksAreScopedToTheirConnection(t *testing.T) {
	tr, m, clk, _ := newTestTracker(t)
	a, b := tr.NewConn(), tr.NewConn()
	id := a.Register(clk.now())
	b.Ack(id) // same id number, other connection
	if got := testutil.ToFloat64(m.UnexpectedAcks); got != 1 {
		t.Fatalf("unexpected = %v, want 1", got)
	}
	a.Ack(id)
	if got := testutil.ToFloat64(m.Acked); got != 1 {
		t.Fatalf("acked = %v, want 1", got)
	}
}

func TestTrackerLatencyFromScheduledTime(t *testing.T) {
	tr, _, clk, reg := newTestTracker(t)
	c := tr.NewConn()
	scheduled := clk.now()
	clk.advance(300 * time.Millisecond) // the send itself was late
	id := c.Register(scheduled)
	clk.advance(200 * time.Millisecond)
	c.Ack(id)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "soak_event_latency_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if got := h.GetSampleSum(); got < 0.4999 || got > 0.5001 {
				t.Fatalf("latency sum = %v, want 0.5 (from the scheduled time)", got)
			}
			return
		}
	}
	t.Fatal("no latency histogram")
}

func TestTrackerMemoryReturnsAfterBurst(t *testing.T) {
	tr, _, clk, _ := newTestTracker(t)
	c := tr.NewConn()
	for range 10000 {
		c.Register(clk.now())
	}
	clk.advance(2 * time.Minute)
	tr.Sweep(clk.now()) // lost
	tr.Sweep(clk.now()) // forgotten
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.entries) != 0 || tr.pending.size != 0 || tr.expired.size != 0 {
		t.Fatalf("entries=%d pending=%d expired=%d, want all 0", len(tr.entries), tr.pending.size, tr.expired.size)
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg).For("t1", "echo")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func BenchmarkTrackerRegisterAck(b *testing.B) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg).For("t1", "echo")
	tr := NewTracker(5*time.Second, time.Minute, time.Now, m)
	c := tr.NewConn()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := c.Register(time.Now())
		c.Ack(id)
		if i%1024 == 0 {
			tr.Sweep(time.Now())
		}
	}
}
