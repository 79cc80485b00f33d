package pool

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/generic-corp/soak-exporter/internal/ktimer"
	"github.com/generic-corp/soak-exporter/internal/probe"
)

// SendTick is the finest grid of a stream's schedule: above 1/SendTick items
// per second, the items due in a tick are handed to their sessions together
// (see schedule).
const SendTick = 5 * time.Millisecond

// Stream is an open-loop schedule of work over a pool's clients: item k is
// due when the schedule says, whatever happened to earlier items, and goes
// to the session of slot k mod size. Probes that send at a rate (echo,
// scenario flows) add one to each pool with AddStream before Run.
type Stream struct {
	// Rate is the pool's items per second; 0 or less: the stream is idle.
	Rate float64
	// MaxLate bounds how far behind its schedule an item may be sent: one
	// the scheduler reaches later is dropped (the agent itself fell behind:
	// it was stopped or starved of CPU). It is also the deadline of the
	// item's write: an item written later could only be lost.
	MaxLate time.Duration
	// Ready, if set, tells whether a connected session may take an item
	// now (false: the item is skipped).
	Ready func(s *Session) bool
	// Fire sends item k, due at scheduled, on s. It runs one item at a time
	// per session, in schedule order, and must not wait for anything but
	// its writes; buf is scratch space, returned for reuse. ctx is not tied
	// to the pool's run context (a write whose context ends mid-write closes
	// a coder/websocket connection), only bounded by scheduled+MaxLate; it
	// has already ended when earlier writes to the session took that long
	// (the item must then be accounted as sent and lost). On a connection
	// that queues (probe.Queuer) with nothing queued, Fire runs on the
	// scheduler itself under probe.WithoutWaiting: its writes do not wait.
	Fire func(ctx context.Context, s *Session, k uint64, scheduled time.Time, buf []byte) []byte
	// Skipped counts items due on a client that was not connected (or not
	// Ready): not sent, not lost.
	Skipped func(n int)
	// Dropped counts items not sent because the agent fell behind.
	Dropped func(n int)
}

// AddStream adds a stream to the pool; call it before Run (from a probe's
// Attach).
func (p *Pool) AddStream(st *Stream) error {
	if p.running.Load() {
		return errors.New("pool: streams must be added before Run")
	}
	if st.Fire == nil || st.Skipped == nil || st.Dropped == nil || st.MaxLate <= 0 {
		return errors.New("pool: a stream needs Fire, Skipped, Dropped and MaxLate")
	}
	p.streams = append(p.streams, st)
	return nil
}

type job struct {
	st        *Stream
	k         uint64
	scheduled time.Time
}

// outbox holds a session's scheduled writes in order. A writer goroutine
// runs while it is not empty and exits when it is: a connection whose
// server stopped reading blocks only its own writer, so the schedule and
// the writes of every other connection go on (no shared send worker to
// hold), and an idle connection costs no goroutine. A connection that can
// take a write without waiting (probe.Queuer, nothing queued) gets it from
// the scheduler directly (claim, then release), which spares a goroutine
// start and exit per item: most of the CPU a write costs besides its
// syscall (docs/benchmarks.md).
type outbox struct {
	mu      sync.Mutex
	jobs    []job
	head    int  // next job to write
	writing bool // a writer goroutine owns the outbox
}

// push appends j and reports whether the caller must start a writer.
func (o *outbox) push(j job) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.jobs = append(o.jobs, j)
	if o.writing {
		return false
	}
	o.writing = true
	return true
}

// claim takes the idle outbox for the caller, who writes directly and then
// calls release; false when a writer owns it (the item must queue behind).
func (o *outbox) claim() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.writing {
		return false
	}
	o.writing = true
	return true
}

// release gives a claimed outbox back, and reports whether jobs were
// pushed meanwhile: the caller must then start a writer for them.
func (o *outbox) release() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.head < len(o.jobs) {
		return true
	}
	o.writing = false
	return false
}

// pop returns the next job, or false (releasing the outbox) when it is
// empty or stop is set; a stopped writer leaves the rest unsent, as a
// shutdown does.
func (o *outbox) pop(stop bool) (job, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if stop || o.head == len(o.jobs) {
		clear(o.jobs)
		o.jobs, o.head, o.writing = o.jobs[:0], 0, false
		return job{}, false
	}
	j := o.jobs[o.head]
	o.jobs[o.head] = job{}
	o.head++
	return j, true
}

// runStreams starts a scheduler per active stream, tracked in wg; the
// schedulers start the sessions' writers, tracked in wg too.
func (p *Pool) runStreams(ctx context.Context, wg *sync.WaitGroup) {
	var active []*Stream
	for _, st := range p.streams {
		if st.Rate > 0 {
			active = append(active, st)
		}
	}
	wg.Add(len(active))
	for _, st := range active {
		go func() { defer wg.Done(); p.scheduleLoop(ctx, st, wg) }()
	}
}

// scheduleLoop hands the stream's due items to their sessions, once per
// tick, on an open-loop schedule: written at once on connections that take
// a write without waiting (for at most half a tick of the scheduler's time,
// so that a high rate spreads over writer goroutines instead of making the
// schedule late), else queued in the session's outbox for its writer. The
// wait between ticks is a timerfd in the runtime's poller (ktimer.Loop),
// unless Options.RuntimeTimer asks for a runtime timer.
func (p *Pool) scheduleLoop(ctx context.Context, st *Stream, wg *sync.WaitGroup) {
	sched := newSchedule(p.now(), st.Rate, SendTick)
	direct := probe.WithoutWaiting(context.WithoutCancel(ctx))
	bp := p.bufs.Get().(*[]byte)
	defer func() { p.bufs.Put(bp) }()
	startWriter := func(sess *Session) {
		wg.Add(1) // the scheduler holds a count: Wait cannot have returned
		go func() { defer wg.Done(); p.write(ctx, sess) }()
	}
	tick := func() time.Duration {
		now := p.now()
		budget := now.Add(SendTick / 2)
		for k, at := sched.next(); !at.After(now); k, at = sched.next() {
			sched.advance()
			sess := p.route(st, k, at, now)
			switch {
			case sess == nil:
			case sess.queues() && sess.out.claim():
				if t := p.now(); t.Before(budget) && t.Sub(at) < st.MaxLate {
					*bp = st.Fire(direct, sess, k, at, (*bp)[:0])
					if cap(*bp) > maxPooledWriteBuf {
						*bp = nil
					}
					if sess.out.release() {
						startWriter(sess)
					}
					continue
				}
				// Out of time on this goroutine: the item goes to a
				// writer, which the claim already stands for.
				sess.out.push(job{st: st, k: k, scheduled: at})
				startWriter(sess)
			case sess.out.push(job{st: st, k: k, scheduled: at}):
				startWriter(sess)
			}
		}
		_, at := sched.next()
		return at.Sub(now)
	}
	if p.runtimeTimer {
		_ = ktimer.RuntimeLoop(ctx, tick)
	} else {
		_ = ktimer.Loop(ctx, tick)
	}
}

// route returns the session that takes item k, due at `at`, or nil after
// counting it skipped or dropped.
func (p *Pool) route(st *Stream, k uint64, at, now time.Time) *Session {
	if p.paused.Load() {
		return nil
	}
	if len(p.slots) == 0 {
		st.Skipped(1)
		return nil
	}
	if now.Sub(at) > st.MaxLate {
		st.Dropped(1) // the scheduler itself is that late: the agent fell behind
		return nil
	}
	sess := p.slots[k%uint64(len(p.slots))].cur.Load()
	if sess == nil || (st.Ready != nil && !st.Ready(sess)) {
		st.Skipped(1)
		return nil
	}
	return sess
}

// write is a session's writer: it fires the session's items in order until
// its outbox is empty. Each write's deadline is its item's scheduled time
// plus MaxLate, not tied to ctx: coder/websocket closes a connection whose
// write context ends mid-write, which at shutdown would turn a clean close
// into a transport error; instead, once ctx ends, the rest is not sent. A
// write that blocks until its deadline (the server stopped reading the
// connection) is counted in soak_writes_stalled_total; so is an item whose
// turn comes after its deadline because of such a write, which is still
// fired, with an ended context, so that the probe counts it sent and lost:
// the target's doing, never dropped.
func (p *Pool) write(ctx context.Context, s *Session) {
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	for {
		j, ok := s.out.pop(ctx.Err() != nil)
		if !ok {
			return
		}
		left := j.st.MaxLate - p.now().Sub(j.scheduled)
		var wctx context.Context
		var cancel context.CancelFunc
		if left > 0 {
			wctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), left)
		} else {
			p.m.stalled.Inc()
			wctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
			cancel()
		}
		*bp = j.st.Fire(wctx, s, j.k, j.scheduled, (*bp)[:0])
		cancel()
		if left > 0 && p.now().Sub(j.scheduled) >= j.st.MaxLate {
			p.m.stalled.Inc() // the write itself blocked until its deadline
		}
		if cap(*bp) > maxPooledWriteBuf {
			*bp = nil
		}
	}
}

// maxPooledWriteBuf is the largest scratch buffer kept for reuse.
const maxPooledWriteBuf = 64 << 10

// schedule computes the open-loop send times, from k (not accumulated) so
// that there is no drift. Item k is ideally due at start + k/rate. Up to
// 1/minTick items per second, that is when it goes. Above, it goes at the
// first tick of the grid start + i*minTick at or after that time: the items
// of a tick are sent together, so the agent wakes once per tick rather than
// once per item (docs/benchmarks.md measures the saving); the price is that
// items of a tick queue behind each other. Latency is measured from the
// tick, which is when the item is meant to go.
type schedule struct {
	start time.Time
	rate  float64
	tick  time.Duration // 0: every item at its ideal time
	k     uint64
}

func newSchedule(start time.Time, rate float64, minTick time.Duration) *schedule {
	s := &schedule{start: start, rate: rate}
	if float64(minTick) > float64(time.Second)/rate {
		s.tick = minTick
	}
	return s
}

func (s *schedule) next() (uint64, time.Time) {
	// Rounded to the nanosecond first, so that an item whose exact time is
	// on the grid is not pushed to the next tick by a rounding error.
	ideal := time.Duration(math.Round(float64(s.k) / s.rate * float64(time.Second)))
	if s.tick > 0 {
		ideal = (ideal + s.tick - 1) / s.tick * s.tick
	}
	return s.k, s.start.Add(ideal)
}

func (s *schedule) advance() { s.k++ }
