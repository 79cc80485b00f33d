package probe

import (
	"context"
	"sync"
	"time"
)

// Tracker does the ack accounting of one target: it hands out ack ids per
// connection, remembers each pending ack with its scheduled send time, and
// resolves it exactly once as acked (ack within the timeout), or lost (no ack
// within the timeout). An ack that arrives after the timeout, up to the late
// horizon, is also counted as late, once. Acks for ids that were never sent,
// or arrive twice, are counted as unexpected.
//
// Every event is accounted for: sent = acked + lost + in flight.
//
// Timeouts are handled by one sweep over a FIFO queue per target, not by a
// goroutine or timer per pending ack: the ack timeout is the same for every
// event, so deadlines arrive (almost) in order. Run drives the sweep.
type Tracker struct {
	timeout     time.Duration
	lateHorizon time.Duration
	now         func() time.Time
	m           *TargetMetrics

	mu       sync.Mutex
	serial   uint64
	entries  map[ackKey]*pendingAck
	pending  fifo // ordered by deadline
	expired  fifo // ordered by forget time
	inFlight int
}

type ackKey struct {
	conn uint64
	id   uint64
}

type ackState uint8

const (
	statePending ackState = iota
	stateExpired
	stateDone
)

type pendingAck struct {
	key       ackKey
	scheduled time.Time
	deadline  time.Time // scheduled + timeout
	forget    time.Time // deadline + late horizon
	state     ackState
}

// NewTracker creates a Tracker. timeout is the ack timeout measured from the
// scheduled send time; lateHorizon is how long after the timeout a late ack is
// still recognised as late (and not as unexpected).
func NewTracker(timeout, lateHorizon time.Duration, now func() time.Time, m *TargetMetrics) *Tracker {
	return &Tracker{
		timeout:     timeout,
		lateHorizon: lateHorizon,
		now:         now,
		m:           m,
		entries:     make(map[ackKey]*pendingAck),
	}
}

// ConnAcks is the ack id space of one connection. Acks received on a
// connection are resolved against the ids sent on that same connection only.
type ConnAcks struct {
	t      *Tracker
	serial uint64
	nextID uint64
}

// NewConn returns a fresh ack id space for a new connection.
func (t *Tracker) NewConn() *ConnAcks {
	t.mu.Lock()
	t.serial++
	s := t.serial
	t.mu.Unlock()
	return &ConnAcks{t: t, serial: s}
}

// Register records an event about to be sent on this connection, counts it
// as sent, and returns the ack id to send it with. It is registered before the
// write so that an ack can never arrive for an unknown id. If the write then
// fails, the event stays pending and is counted lost at its deadline: it was
// due, and no ack will come.
func (c *ConnAcks) Register(scheduled time.Time) uint64 {
	t := c.t
	t.mu.Lock()
	id := c.nextID
	c.nextID++
	deadline := scheduled.Add(t.timeout)
	e := &pendingAck{
		key:       ackKey{conn: c.serial, id: id},
		scheduled: scheduled,
		deadline:  deadline,
		forget:    deadline.Add(t.lateHorizon),
	}
	t.entries[e.key] = e
	t.pending.push(e)
	t.inFlight++
	t.mu.Unlock()
	t.m.Sent.Inc()
	return id
}

// Ack resolves the ack with this id on this connection. It is safe to call
// from a driver's reader goroutine.
func (c *ConnAcks) Ack(id uint64) {
	t := c.t
	now := t.now()
	t.mu.Lock()
	e, ok := t.entries[ackKey{conn: c.serial, id: id}]
	if !ok || e.state == stateDone {
		t.mu.Unlock()
		t.m.UnexpectedAcks.Inc()
		return
	}
	latency := now.Sub(e.scheduled)
	prev := e.state
	e.state = stateDone
	delete(t.entries, e.key)
	if prev == statePending {
		t.inFlight--
	}
	t.mu.Unlock()

	switch {
	case prev == statePending && latency <= t.timeout:
		t.m.Acked.Inc()
		t.m.Latency.Observe(latency.Seconds())
	case prev == statePending:
		// Past its deadline but not swept yet: the same outcome as a sweep
		// followed by a late ack.
		t.m.Lost.Inc()
		t.m.Late.Inc()
	default: // expired: already counted lost
		t.m.Late.Inc()
	}
}

// Sweep resolves every pending ack whose deadline has passed as lost, and
// forgets expired ones past the late horizon. It returns how many were lost.
func (t *Tracker) Sweep(now time.Time) int {
	lost := 0
	t.mu.Lock()
	for e := t.pending.peek(); e != nil && !e.deadline.After(now); e = t.pending.peek() {
		t.pending.pop()
		if e.state != statePending {
			continue
		}
		e.state = stateExpired
		t.inFlight--
		lost++
		t.expired.push(e)
	}
	for e := t.expired.peek(); e != nil && !e.forget.After(now); e = t.expired.peek() {
		t.expired.pop()
		if e.state == stateExpired {
			e.state = stateDone
			delete(t.entries, e.key)
		}
	}
	t.mu.Unlock()
	if lost > 0 {
		t.m.Lost.Add(float64(lost))
	}
	return lost
}

// InFlight is the number of events sent and not yet acked or lost.
func (t *Tracker) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight
}

// Run sweeps on every tick until ctx ends. tick is injected so tests can
// drive it; in production it is a time.Ticker's channel.
func (t *Tracker) Run(ctx context.Context, tick <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			t.Sweep(t.now())
		}
	}
}

// fifo is a growable ring buffer of pending acks.
type fifo struct {
	buf        []*pendingAck
	head, size int
}

func (q *fifo) push(e *pendingAck) {
	if q.size == len(q.buf) {
		n := 2 * len(q.buf)
		if n < 64 {
			n = 64
		}
		nb := make([]*pendingAck, n)
		for i := 0; i < q.size; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = e
	q.size++
}

func (q *fifo) peek() *pendingAck {
	if q.size == 0 {
		return nil
	}
	return q.buf[q.head]
}

func (q *fifo) pop() {
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if q.size == 0 && len(q.buf) > 4096 {
		q.buf, q.head = nil, 0 // give a burst's memory back
	}
}
