package pool

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

const (
	// sendWorkers write due items to connections, a tick's batch each, so
	// that one slow connection cannot hold back the open-loop schedule of
	// the others for longer than its own batch.
	sendWorkers = 4
	// SendTick is the finest grid of a stream's schedule: above 1/SendTick
	// items per second, the items due in a tick are sent together (see
	// schedule).
	SendTick = 5 * time.Millisecond
)

// Stream is an open-loop schedule of work over a pool's clients: item k is
// due when the schedule says, whatever happened to earlier items, and goes
// to the session of slot k mod size. Probes that send at a rate (echo,
// scenario flows) add one to each pool with AddStream before Run.
type Stream struct {
	// Rate is the pool's items per second; 0 or less: the stream is idle.
	Rate float64
	// MaxLate bounds how far behind its schedule an item may be sent: one
	// due longer ago is dropped (the agent itself fell behind: it was
	// stopped or starved of CPU). It is also the deadline of a batch's
	// writes: an item written later could only be lost.
	MaxLate time.Duration
	// Ready, if set, tells whether a connected session may take an item
	// now (false: the item is skipped).
	Ready func(s *Session) bool
	// Fire sends item k, due at scheduled, on s. It runs on a send worker;
	// buf is the worker's scratch buffer, returned for reuse. ctx is not
	// tied to the pool's run context (a write whose context ends mid-write
	// closes a coder/websocket connection), only bounded by MaxLate.
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
	sess      *Session
	k         uint64
	scheduled time.Time
}

type batch struct {
	st   *Stream
	jobs []job
}

// runStreams starts a scheduler per active stream and the send workers they
// share, tracked in wg.
func (p *Pool) runStreams(ctx context.Context, wg *sync.WaitGroup) {
	var active []*Stream
	total := 0.0
	for _, st := range p.streams {
		if st.Rate > 0 {
			active = append(active, st)
			total += st.Rate
		}
	}
	if len(active) == 0 {
		return
	}
	batches := make(chan batch, sendQueueLen(total))
	wg.Add(len(active) + sendWorkers)
	for _, st := range active {
		go func() { defer wg.Done(); p.scheduleLoop(ctx, st, batches) }()
	}
	for range sendWorkers {
		go func() { defer wg.Done(); p.sendLoop(ctx, batches) }()
	}
}

// sendQueueLen holds about one second of batches, at least 64.
func sendQueueLen(rate float64) int {
	perSecond := min(rate, float64(time.Second/SendTick))
	return max(64, int(perSecond))
}

// scheduleLoop hands the stream's due items to the send workers, one batch
// per tick, on an open-loop schedule.
func (p *Pool) scheduleLoop(ctx context.Context, st *Stream, batches chan<- batch) {
	sched := newSchedule(p.now(), st.Rate, SendTick)
	// A batch goes to a worker, so each tick needs a slice of its own; sized
	// for a tick's items, it never grows.
	batchCap := int(math.Ceil(st.Rate * SendTick.Seconds()))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := p.now()
		b := batch{st: st, jobs: make([]job, 0, batchCap)}
		for k, at := sched.next(); !at.After(now); k, at = sched.next() {
			sched.advance()
			b.jobs = p.route(st, b.jobs, k, at, now)
		}
		if len(b.jobs) > 0 {
			select {
			case batches <- b:
			default:
				st.Dropped(len(b.jobs))
			}
		}
		_, at := sched.next()
		timer.Reset(at.Sub(now))
	}
}

// route appends item k, due at `at`, to jobs with the session of its slot,
// or counts it skipped or dropped.
func (p *Pool) route(st *Stream, jobs []job, k uint64, at, now time.Time) []job {
	if p.paused.Load() {
		return jobs
	}
	if len(p.slots) == 0 {
		st.Skipped(1)
		return jobs
	}
	if now.Sub(at) > st.MaxLate {
		st.Dropped(1)
		return jobs
	}
	sess := p.slots[k%uint64(len(p.slots))].cur.Load()
	if sess == nil || (st.Ready != nil && !st.Ready(sess)) {
		st.Skipped(1)
		return jobs
	}
	return append(jobs, job{sess: sess, k: k, scheduled: at})
}

// sendLoop fires batches of items. The writes of a batch share one
// deadline, MaxLate from the batch's start. The deadline is not tied to
// ctx: coder/websocket closes a connection whose write context ends
// mid-write, which at shutdown would turn a clean close into a transport
// error; instead, once ctx ends, the rest of the batch is not sent.
func (p *Pool) sendLoop(ctx context.Context, batches <-chan batch) {
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-batches:
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.st.MaxLate)
			for _, j := range b.jobs {
				if ctx.Err() != nil {
					break
				}
				// An item reached after MaxLate (the writes before it in
				// its batch were slow) is dropped, not written with a
				// deadline already passed and then counted lost.
				if p.now().Sub(j.scheduled) > b.st.MaxLate {
					b.st.Dropped(1)
					continue
				}
				buf = b.st.Fire(wctx, j.sess, j.k, j.scheduled, buf[:0])
			}
			cancel()
		}
	}
}

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
