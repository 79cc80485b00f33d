package tracker

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// tallies are outcome counts.
type tallies struct {
	sent, answered, rejected, lost, late, unexpect int
	latencySum                                     time.Duration
}

// countSink counts outcomes.
type countSink struct {
	mu sync.Mutex
	tallies
}

func (s *countSink) Sent() { s.mu.Lock(); s.sent++; s.mu.Unlock() }
func (s *countSink) Answered(d time.Duration) {
	s.mu.Lock()
	s.answered++
	s.latencySum += d
	s.mu.Unlock()
}
func (s *countSink) Rejected(d time.Duration) { s.mu.Lock(); s.rejected++; s.mu.Unlock() }
func (s *countSink) Lost(n int)               { s.mu.Lock(); s.lost += n; s.mu.Unlock() }
func (s *countSink) Late()                    { s.mu.Lock(); s.late++; s.mu.Unlock() }
func (s *countSink) Unexpected()              { s.mu.Lock(); s.unexpect++; s.mu.Unlock() }

func newTestTracker(t *testing.T) (*Tracker, *countSink, *fakeClock) {
	t.Helper()
	sink := &countSink{}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return New(5*time.Second, time.Minute, clk.now, sink), sink, clk
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
			tr, m, clk := newTestTracker(t)
			c := tr.NewConn()
			ids := make([]uint64, tc.events)
			for i := range ids {
				ids[i] = c.Register(clk.now(), nil)
			}
			for _, s := range tc.steps {
				clk.advance(s.advance)
				if s.ack >= 0 {
					c.Ack(ids[s.ack], nil)
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
			check("sent", float64(m.sent), float64(tc.events))
			check("acked", float64(m.answered), tc.acked)
			check("lost", float64(m.lost), tc.lost)
			check("late", float64(m.late), tc.late)
			check("unexpected", float64(m.unexpect), tc.unexpected)
			check("latency sum", m.latencySum.Seconds(), tc.latencySum)
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
	tr, m, clk := newTestTracker(t)
	a, b := tr.NewConn(), tr.NewConn()
	id := a.Register(clk.now(), nil)
	b.Ack(id, nil) // same id number, other connection
	if got := m.unexpect; got != 1 {
		t.Fatalf("unexpected = %v, want 1", got)
	}
	a.Ack(id, nil)
	if got := m.answered; got != 1 {
		t.Fatalf("acked = %v, want 1", got)
	}
}

func TestTrackerLatencyFromScheduledTime(t *testing.T) {
	tr, m, clk := newTestTracker(t)
	c := tr.NewConn()
	scheduled := clk.now()
	clk.advance(300 * time.Millisecond) // the send itself was late
	id := c.Register(scheduled, nil)
	clk.advance(200 * time.Millisecond)
	c.Ack(id, nil)
	if m.latencySum != 500*time.Millisecond {
		t.Fatalf("latency = %v, want 500ms (from the scheduled time)", m.latencySum)
	}
}

func TestTrackerMemoryReturnsAfterBurst(t *testing.T) {
	tr, _, clk := newTestTracker(t)
	c := tr.NewConn()
	for range 10000 {
		c.Register(clk.now(), nil)
	}
	clk.advance(2 * time.Minute)
	tr.Sweep(clk.now()) // lost
	tr.Sweep(clk.now()) // forgotten
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.acks) != 0 || len(tr.replies) != 0 || tr.queue.size != 0 || tr.expired.size != 0 {
		t.Fatalf("entries=%d pending=%d expired=%d, want all 0", len(tr.acks)+len(tr.replies), tr.queue.size, tr.expired.size)
	}
}

// recWaiter records what a Waiter is told.
type recWaiter struct {
	accept       bool
	calls        int
	answered, ok bool
	args         []json.RawMessage
}

func (w *recWaiter) Check([]json.RawMessage) bool { return w.accept }
func (w *recWaiter) Done(answered, ok bool, args []json.RawMessage) {
	w.calls++
	w.answered, w.ok, w.args = answered, ok, args
}

func TestTrackerRepliesAndWaiters(t *testing.T) {
	tests := []struct {
		name     string
		accept   bool
		answerAt time.Duration // < 0: never
		wantSink tallies
		wantDone recWaiter
	}{
		{"answered", true, 100 * time.Millisecond,
			tallies{sent: 1, answered: 1, latencySum: 100 * time.Millisecond}, recWaiter{calls: 1, answered: true, ok: true}},
		{"rejected by the check", false, 100 * time.Millisecond,
			tallies{sent: 1, rejected: 1}, recWaiter{calls: 1, answered: true}},
		{"lost, then late", true, 6 * time.Second,
			tallies{sent: 1, lost: 1, late: 1}, recWaiter{calls: 1}},
		{"lost", true, -1,
			tallies{sent: 1, lost: 1}, recWaiter{calls: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, m, clk := newTestTracker(t)
			a, b := tr.NewConn(), tr.NewConn()
			w := &recWaiter{accept: tc.accept}
			if !a.RegisterReply(clk.now(), `"m-1"`, w) {
				t.Fatal("RegisterReply refused a fresh key")
			}
			if a.RegisterReply(clk.now(), `"m-1"`, nil) {
				t.Fatal("RegisterReply took a key that is still pending")
			}
			// The same key on another connection is not an answer (a
			// broadcast reaches every member of the room).
			if b.Reply(`"m-1"`, nil) {
				t.Fatal("a reply on another connection resolved the request")
			}
			if tc.answerAt >= 0 {
				clk.advance(tc.answerAt)
				tr.Sweep(clk.now())
				if !a.Reply(`"m-1"`, []json.RawMessage{json.RawMessage(`{}`)}) {
					t.Fatal("Reply did not know the key")
				}
			} else {
				clk.advance(10 * time.Second)
				tr.Sweep(clk.now())
			}
			if tc.answerAt >= 0 && a.Reply(`"m-1"`, nil) {
				t.Error("a repeated reply was taken again")
			}
			got := m.tallies
			if got != tc.wantSink {
				t.Errorf("sink = %+v, want %+v", got, tc.wantSink)
			}
			if w.calls != tc.wantDone.calls || w.answered != tc.wantDone.answered || w.ok != tc.wantDone.ok {
				t.Errorf("waiter = %d calls answered=%v ok=%v, want %+v", w.calls, w.answered, w.ok, tc.wantDone)
			}
			if tr.InFlight() != 0 {
				t.Errorf("in flight = %d", tr.InFlight())
			}
		})
	}
}

func BenchmarkTrackerRegisterAck(b *testing.B) {
	tr := New(5*time.Second, time.Minute, time.Now, &countSink{})
	c := tr.NewConn()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := c.Register(time.Now(), nil)
		c.Ack(id, nil)
		if i%1024 == 0 {
			tr.Sweep(time.Now())
		}
	}
}
