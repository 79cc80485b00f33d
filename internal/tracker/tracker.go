// Package tracker does the exact-once accounting of requests that expect an
// answer: an ack, or a reply event matched by a key. Every request resolves
// exactly once, as answered (in time, passing its check), rejected (answered
// in time but failing its check), or lost (no answer within the timeout); an
// answer after the timeout is also counted late, once. The probes that send
// requests (echo, scenario) share it, so their figures mean the same thing.
//
// Every request is accounted for: sent = answered + rejected + lost + in
// flight. Timeouts are handled by one sweep over a FIFO queue, not by a timer
// or goroutine per request: the timeout is the same for every request of a
// tracker, so deadlines arrive (almost) in order. Run drives the sweep.
package tracker

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Sink receives the outcomes of one tracker. Its methods are called on hot
// paths, outside the tracker's lock: keep them cheap.
type Sink interface {
	// Sent counts a request registered (about to be written).
	Sent()
	// Answered counts a request answered in time, with its latency from the
	// scheduled send time.
	Answered(latency time.Duration)
	// Rejected counts a request answered in time whose answer failed its
	// check (the server said no).
	Rejected(latency time.Duration)
	// Lost counts n requests not answered within the timeout.
	Lost(n int)
	// Late counts a lost request whose answer came afterwards (once).
	Late()
	// Unexpected counts an ack for an id never sent or already resolved.
	Unexpected()
}

// Waiter follows one request: a scenario step that continues when its
// answer comes. Nil for plain accounting.
type Waiter interface {
	// Check reports whether an answer that arrived in time is a good one;
	// false counts the request rejected. It runs under the tracker's lock:
	// no calls back into the tracker.
	Check(args []json.RawMessage) bool
	// Done is called once, outside the tracker's lock, when the request
	// resolves: answered in time (ok tells whether it passed Check, args
	// are the answer's), or lost (answered false, args nil).
	Done(answered, ok bool, args []json.RawMessage)
}

// Tracker accounts the requests of one probe step on one target.
type Tracker struct {
	timeout     time.Duration
	lateHorizon time.Duration
	now         func() time.Time
	sink        Sink

	mu       sync.Mutex
	serial   uint64
	acks     map[ackKey]*pending   // requests answered by an ack
	replies  map[replyKey]*pending // requests answered by a reply event
	queue    fifo                  // pending, ordered by deadline
	expired  fifo                  // ordered by forget time
	inFlight int
	lostBuf  []Waiter // waiters of requests lost in one sweep, reused
}

// ackKey identifies a request answered by an ack: its connection and id.
type ackKey struct {
	conn uint64
	id   uint64
}

// replyKey identifies a request answered by a reply event: its connection
// and the matched value. Kept apart from ackKey so that the echo probe's hot
// path hashes two integers, not a string.
type replyKey struct {
	conn uint64
	k    string
}

type state uint8

const (
	statePending state = iota
	stateExpired
	stateDone
)

type pending struct {
	ack       ackKey
	reply     replyKey
	isReply   bool
	scheduled time.Time
	deadline  time.Time // scheduled + timeout
	forget    time.Time // deadline + late horizon
	state     state
	w         Waiter
}

// New creates a Tracker. timeout is measured from the scheduled send time;
// lateHorizon is how long after the timeout a late answer is still
// recognised as late (and an ack not counted as unexpected).
func New(timeout, lateHorizon time.Duration, now func() time.Time, sink Sink) *Tracker {
	return &Tracker{
		timeout:     timeout,
		lateHorizon: lateHorizon,
		now:         now,
		sink:        sink,
		acks:        make(map[ackKey]*pending),
		replies:     make(map[replyKey]*pending),
	}
}

// Conn is the request space of one connection: answers received on a
// connection resolve the requests sent on that same connection only.
type Conn struct {
	t      *Tracker
	serial uint64
	nextID uint64
}

// NewConn returns a fresh request space for a new connection.
func (t *Tracker) NewConn() *Conn {
	t.mu.Lock()
	t.serial++
	s := t.serial
	t.mu.Unlock()
	return &Conn{t: t, serial: s}
}

// Register records a request answered by an ack, about to be sent on this
// connection, counts it sent, and returns the ack id to send it with. It is
// registered before the write so that an ack can never arrive for an unknown
// id. If the write then fails, the request stays pending and is lost at its
// deadline: it was due, and no answer will come. w may be nil.
func (c *Conn) Register(scheduled time.Time, w Waiter) uint64 {
	t := c.t
	t.mu.Lock()
	id := c.nextID
	c.nextID++
	e := t.newLocked(scheduled, w)
	e.ack = ackKey{conn: c.serial, id: id}
	t.acks[e.ack] = e
	t.mu.Unlock()
	t.sink.Sent()
	return id
}

// RegisterReply records a request answered by a reply event carrying k (the
// matched field's value, as canonical JSON). It reports false, and counts
// nothing, when a request with the same key is still pending on this
// connection: the caller must not send it (keys must be unique).
func (c *Conn) RegisterReply(scheduled time.Time, k string, w Waiter) bool {
	t := c.t
	kk := replyKey{conn: c.serial, k: k}
	t.mu.Lock()
	if e, ok := t.replies[kk]; ok && e.state == statePending {
		t.mu.Unlock()
		return false
	}
	e := t.newLocked(scheduled, w)
	e.reply, e.isReply = kk, true
	t.replies[kk] = e
	t.mu.Unlock()
	t.sink.Sent()
	return true
}

// newLocked queues a new pending request; the caller files it in its map.
func (t *Tracker) newLocked(scheduled time.Time, w Waiter) *pending {
	deadline := scheduled.Add(t.timeout)
	e := &pending{
		scheduled: scheduled,
		deadline:  deadline,
		forget:    deadline.Add(t.lateHorizon),
		w:         w,
	}
	t.queue.push(e)
	t.inFlight++
	return e
}

// forgetLocked removes e from its map.
func (t *Tracker) forgetLocked(e *pending) {
	if e.isReply {
		delete(t.replies, e.reply)
	} else {
		delete(t.acks, e.ack)
	}
}

// Ack resolves the request sent with this ack id on this connection. It is
// safe to call from a driver's reader goroutine. An ack for an unknown id
// counts as unexpected.
func (c *Conn) Ack(id uint64, args []json.RawMessage) {
	t := c.t
	t.mu.Lock()
	e := t.acks[ackKey{conn: c.serial, id: id}]
	if !t.resolveLocked(e, args) {
		c.t.sink.Unexpected()
	}
}

// Reply resolves the request whose reply key is k on this connection. A
// reply that matches nothing is ignored (it reports false): a broadcast
// reaches clients that did not ask for it.
func (c *Conn) Reply(k string, args []json.RawMessage) bool {
	t := c.t
	t.mu.Lock()
	return t.resolveLocked(t.replies[replyKey{conn: c.serial, k: k}], args)
}

// resolveLocked accounts one answer to e (nil: unknown) and unlocks t; it
// reports whether e was known.
func (t *Tracker) resolveLocked(e *pending, args []json.RawMessage) bool {
	if e == nil || e.state == stateDone {
		t.mu.Unlock()
		return false
	}
	latency := t.now().Sub(e.scheduled)
	prev := e.state
	e.state = stateDone
	t.forgetLocked(e)
	inTime := prev == statePending && latency <= t.timeout
	good := true
	if prev == statePending {
		t.inFlight--
		if inTime && e.w != nil {
			good = e.w.Check(args)
		}
	}
	w := e.w
	e.w = nil
	t.mu.Unlock()

	switch {
	case inTime && good:
		t.sink.Answered(latency)
	case inTime:
		t.sink.Rejected(latency)
	case prev == statePending:
		// Past its deadline but not swept yet: the same outcome as a sweep
		// followed by a late answer.
		t.sink.Lost(1)
		t.sink.Late()
	default: // expired: already counted lost
		t.sink.Late()
		return true
	}
	if w != nil {
		if inTime {
			w.Done(true, good, args)
		} else {
			w.Done(false, false, nil)
		}
	}
	return true
}

// Sweep resolves every pending request whose deadline has passed as lost,
// and forgets expired ones past the late horizon. It returns how many were
// lost.
func (t *Tracker) Sweep(now time.Time) int {
	lost := 0
	t.mu.Lock()
	waiters := t.lostBuf[:0]
	for e := t.queue.peek(); e != nil && !e.deadline.After(now); e = t.queue.peek() {
		t.queue.pop()
		if e.state != statePending {
			continue
		}
		e.state = stateExpired
		t.inFlight--
		lost++
		if e.w != nil {
			waiters = append(waiters, e.w)
			e.w = nil
		}
		t.expired.push(e)
	}
	for e := t.expired.peek(); e != nil && !e.forget.After(now); e = t.expired.peek() {
		t.expired.pop()
		if e.state == stateExpired {
			e.state = stateDone
			t.forgetLocked(e)
		}
	}
	t.lostBuf = nil // owned by this sweep until it is done with it
	t.mu.Unlock()
	if lost > 0 {
		t.sink.Lost(lost)
	}
	for i, w := range waiters {
		w.Done(false, false, nil)
		waiters[i] = nil
	}
	t.mu.Lock()
	if t.lostBuf == nil {
		t.lostBuf = waiters[:0]
	}
	t.mu.Unlock()
	return lost
}

// InFlight is the number of requests sent and not yet resolved.
func (t *Tracker) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight
}

// Timeout is the tracker's answer timeout.
func (t *Tracker) Timeout() time.Duration { return t.timeout }

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

// fifo is a growable ring buffer of pending requests.
type fifo struct {
	buf        []*pending
	head, size int
}

func (q *fifo) push(e *pending) {
	if q.size == len(q.buf) {
		n := max(2*len(q.buf), 64)
		nb := make([]*pending, n)
		for i := 0; i < q.size; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = e
	q.size++
}

func (q *fifo) peek() *pending {
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
