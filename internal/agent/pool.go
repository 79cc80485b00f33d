package agent

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

const (
	// stableAfter is how long a connection must last for its slot's backoff
	// to start again from the base: a connection that flaps keeps backing off.
	stableAfter = 10 * time.Second
	// sendWorkers write due events to connections, a tick's batch each, so
	// that one slow connection cannot hold back the open-loop schedule of
	// the others for longer than its own batch.
	sendWorkers = 4
	// SendTick is the finest grid of the send schedule: above 1/SendTick
	// events per second, the events due in a tick are sent together (see
	// schedule).
	SendTick = 5 * time.Millisecond
	// closeTimeout bounds the clean close of all connections at shutdown.
	closeTimeout = 5 * time.Second
	// closeParallelism bounds the goroutines closing connections at shutdown.
	closeParallelism = 64
	// sweepInterval is the resolution of ack timeouts.
	sweepInterval = 100 * time.Millisecond
	// lateHorizon is how long after its timeout a late ack is still
	// recognised (and counted late rather than unexpected).
	lateHorizon = time.Minute
	// statusInterval is the period of the Info summary line.
	statusInterval = 30 * time.Second
)

// Options are a Pool's collaborators.
type Options struct {
	// Driver dials the connections.
	Driver probe.Driver
	// Target is where to connect; Target.Name labels every metric.
	Target *probe.Target
	// Metrics are the shared probe metrics; the pool takes its children.
	Metrics *probe.Metrics
	// Registerer receives the pool's own gauges (desired, connected).
	Registerer prometheus.Registerer
	// Logger is named by the caller.
	Logger *zap.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Seed seeds the jitter; zero picks a random seed.
	Seed uint64
	// Taps, when set, also receive every connect duration and every acked
	// event's latency, in seconds (the one-shot mode keeps exact
	// percentiles this way). They are called on hot paths: keep them cheap.
	ConnectTap, LatencyTap prometheus.Observer
	// Push, when set, runs the server-push probe on the pool's clients.
	Push *Push
	// Fanout, when set, makes the pool's clients senders and receivers of
	// the fan-out probe (shared by the pools of every target).
	Fanout *Fanout
}

// Pool keeps Config.Clients connections to one target and drives the
// acked-echo probe through them. Its gauges and counters are the metrics of
// one target.
type Pool struct {
	cfg     Config
	target  *probe.Target
	driver  probe.Driver
	log     *zap.Logger
	m       *probe.TargetMetrics
	tracker *probe.Tracker
	now     func() time.Time

	mu       sync.Mutex
	rnd      *rand.Rand
	slots    []*slot
	queue    dialQueue
	stopping bool
	lastErr  Event
	lastDisc Event

	snapshot  atomic.Pointer[[]*slot] // slots, for the scheduler's lock-free reads
	connected atomic.Int64
	running   atomic.Bool
	paused    atomic.Bool
	wake      chan struct{}

	push   *pushProbe    // nil when the push probe is off
	fanout *fanoutMember // nil when the fan-out probe is off
}

// Event is a recent noteworthy happening, for the landing page.
type Event struct {
	Time   time.Time
	Reason string
	// Message may come from the server (CONNECT_ERROR): display it escaped,
	// never use it as a label.
	Message string
}

type slot struct {
	idx      int
	removed  bool // guarded by Pool.mu
	queued   bool // guarded by Pool.mu
	failures int  // guarded by Pool.mu: consecutive failed attempts or short-lived connections
	cur      atomic.Pointer[session]
	push     pushSlot
}

type session struct {
	conn        probe.Conn
	acks        *probe.ConnAcks
	established time.Time
	dialStart   time.Time // set before Dial, read-only after
	closed      bool      // guarded by Pool.mu: OnClose has run
}

// New creates a pool for one target, registering its gauges. The pool does
// nothing until Run.
func New(cfg Config, o Options) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Driver == nil || o.Target == nil || o.Metrics == nil || o.Registerer == nil {
		return nil, errors.New("agent: driver, target, metrics and registerer are required")
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	tm := o.Metrics.For(o.Target.Name, cfg.EventName)
	if o.ConnectTap != nil {
		tm.ConnectDuration = tee{tm.ConnectDuration, o.ConnectTap}
	}
	if o.LatencyTap != nil {
		tm.Latency = tee{tm.Latency, o.LatencyTap}
	}
	p := &Pool{
		cfg:     cfg,
		target:  o.Target,
		driver:  o.Driver,
		log:     log,
		m:       tm,
		tracker: probe.NewTracker(cfg.AckTimeout, lateHorizon, now, tm),
		now:     now,
		rnd:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		wake:    make(chan struct{}, 1),
	}
	labels := prometheus.Labels{"target": o.Target.Name}
	desired := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "soak_clients_desired",
		Help:        "Clients the pool keeps connected to the target.",
		ConstLabels: labels,
	}, func() float64 { return float64(p.Desired()) })
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "soak_clients_connected",
		Help:        "Clients connected to the target now (namespace CONNECT answered, not yet closed).",
		ConstLabels: labels,
	}, func() float64 { return float64(p.connected.Load()) })
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "soak_events_in_flight",
		Help:        "Acked-echo events sent and neither acked nor lost yet.",
		ConstLabels: labels,
	}, func() float64 { return float64(p.tracker.InFlight()) })
	for _, c := range []prometheus.Collector{desired, connected, inflight} {
		if err := o.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	p.resizeLocked(cfg.Clients)
	if o.Push != nil {
		p.push = o.Push.forTarget(o.Target.Name, now)
	}
	if o.Fanout != nil {
		fm, err := o.Fanout.attach(p)
		if err != nil {
			return nil, err
		}
		p.fanout = fm
	}
	return p, nil
}

// Target is the pool's target.
func (p *Pool) Target() *probe.Target { return p.target }

// Desired is the pool's size.
func (p *Pool) Desired() int { return len(*p.snapshot.Load()) }

// Connected is the number of connected clients now.
func (p *Pool) Connected() int { return int(p.connected.Load()) }

// Running reports whether Run has started and not yet returned.
func (p *Pool) Running() bool { return p.running.Load() }

// InFlight is the number of events awaiting their ack.
func (p *Pool) InFlight() int { return p.tracker.InFlight() }

// LastConnectError and LastDisconnect report recent events for the landing page.
func (p *Pool) LastConnectError() Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// LastDisconnect is the most recent end of an established connection.
func (p *Pool) LastDisconnect() Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastDisc
}

// PauseProbe stops (true) or resumes (false) the scheduling of new events;
// events already sent are still resolved. While paused, due events are
// neither sent nor counted. The one-shot mode pauses before it stops so that
// every event it sent is accounted for.
func (p *Pool) PauseProbe(paused bool) { p.paused.Store(paused) }

// tee observes into two observers.
type tee [2]prometheus.Observer

func (t tee) Observe(v float64) { t[0].Observe(v); t[1].Observe(v) }

// Resize changes the pool's size. New slots are dialled at the connect rate;
// removed ones are closed cleanly, bounded by ctx.
func (p *Pool) Resize(ctx context.Context, n int) error {
	if n < 0 {
		return errors.New("agent: negative pool size")
	}
	p.mu.Lock()
	closing := p.resizeLocked(n)
	p.mu.Unlock()
	p.closeAll(ctx, closing)
	return ctx.Err()
}

// resizeLocked grows or shrinks the slot list and returns the sessions of
// removed slots, to be closed by the caller outside the lock.
func (p *Pool) resizeLocked(n int) []*session {
	var closing []*session
	for len(p.slots) < n {
		s := &slot{idx: len(p.slots)}
		p.slots = append(p.slots, s)
		p.scheduleLocked(s, 0)
	}
	for len(p.slots) > n {
		s := p.slots[len(p.slots)-1]
		p.slots = p.slots[:len(p.slots)-1]
		s.removed = true
		if sess := s.cur.Load(); sess != nil {
			closing = append(closing, sess)
		}
	}
	snap := make([]*slot, len(p.slots))
	copy(snap, p.slots)
	p.snapshot.Store(&snap)
	return closing
}

// scheduleLocked queues a slot for a dial attempt after delay.
func (p *Pool) scheduleLocked(s *slot, delay time.Duration) {
	if s.queued || s.removed || p.stopping {
		return
	}
	s.queued = true
	heap.Push(&p.queue, dialItem{at: p.now().Add(delay), s: s})
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// backoffLocked returns the full-jitter delay before attempt n (n >= 1).
func (p *Pool) backoffLocked(n int) time.Duration {
	return fullJitter(p.cfg.BackoffMin, p.cfg.BackoffMax, n, p.rnd.Float64())
}

// fullJitter is u * min(max, base * 2^(n-1)) with u uniform in [0, 1).
func fullJitter(base, maxDelay time.Duration, n int, u float64) time.Duration {
	if n < 1 {
		n = 1
	}
	ceil := float64(base) * math.Pow(2, float64(n-1))
	if ceil > float64(maxDelay) || math.IsInf(ceil, 0) {
		ceil = float64(maxDelay)
	}
	return time.Duration(u * ceil)
}

// Run connects the pool and probes through it until ctx ends, then closes
// every connection cleanly and returns once all its goroutines are done.
func (p *Pool) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("agent: pool already running")
	}
	defer p.running.Store(false)

	var wg sync.WaitGroup
	jobs := make(chan []sendJob, sendQueueLen(p.cfg.EventRate))
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()

	wg.Add(3 + sendWorkers)
	go func() { defer wg.Done(); p.dialLoop(ctx, &wg) }()
	go func() { defer wg.Done(); p.scheduleLoop(ctx, jobs) }()
	go func() { defer wg.Done(); _ = p.tracker.Run(ctx, sweep.C) }()
	for range sendWorkers {
		go func() { defer wg.Done(); p.sendLoop(ctx, jobs) }()
	}
	p.log.Info("pool started", zap.String("driver", p.driver.Name()),
		zap.Int("clients", p.Desired()), zap.Float64("event_rate", p.cfg.EventRate))
	p.statusLoop(ctx)

	// Shutdown: stop dialling, close what is connected, wait for everyone.
	p.mu.Lock()
	p.stopping = true
	var open []*session
	for _, s := range p.slots {
		if sess := s.cur.Load(); sess != nil {
			open = append(open, sess)
		}
	}
	p.mu.Unlock()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	p.closeAll(cctx, open)
	wg.Wait()
	p.log.Info("pool stopped", zap.Int("closed", len(open)))
	return nil
}

// statusLoop logs a one-line summary when something changed, until ctx ends.
func (p *Pool) statusLoop(ctx context.Context) {
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	last := -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c := p.Connected()
			if c != last {
				p.log.Info("pool status", zap.Int("connected", c), zap.Int("desired", p.Desired()), zap.Int("in_flight", p.InFlight()))
				last = c
			}
		}
	}
}

func (p *Pool) closeAll(ctx context.Context, sessions []*session) {
	if len(sessions) == 0 {
		return
	}
	ch := make(chan *session)
	var wg sync.WaitGroup
	workers := min(closeParallelism, len(sessions))
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			for sess := range ch {
				if err := sess.conn.Close(ctx); err != nil {
					p.log.Debug("close failed", zap.Error(err))
				}
			}
		}()
	}
	for _, sess := range sessions {
		ch <- sess
	}
	close(ch)
	wg.Wait()
}

// maxInflightDials bounds concurrent dial goroutines: the connect rate times
// the connect timeout (what a target that never answers can pile up), capped.
func (p *Pool) maxInflightDials() int {
	n := int(math.Ceil(p.cfg.ConnectRate*p.cfg.ConnectTimeout.Seconds())) + 1
	return max(1, min(n, 2048))
}

// dialLoop takes due slots from the queue at the connect rate, with jitter,
// and dials each in a goroutine it tracks in wg.
func (p *Pool) dialLoop(ctx context.Context, wg *sync.WaitGroup) {
	interval := time.Duration(float64(time.Second) / p.cfg.ConnectRate)
	sem := make(chan struct{}, p.maxInflightDials())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var nextToken time.Time
	for {
		now := p.now()
		var due *slot
		wait := time.Hour
		p.mu.Lock()
		for p.queue.Len() > 0 {
			top := p.queue[0]
			if top.s.removed {
				heap.Pop(&p.queue)
				top.s.queued = false
				continue
			}
			if d := top.at.Sub(now); d > 0 {
				wait = d
			} else if d := nextToken.Sub(now); d > 0 {
				wait = d
			} else {
				heap.Pop(&p.queue)
				top.s.queued = false
				due = top.s
				nextToken = now.Add(time.Duration(float64(interval) * (0.5 + p.rnd.Float64())))
			}
			break
		}
		p.mu.Unlock()
		if due != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(s *slot) {
				defer wg.Done()
				defer func() { <-sem }()
				p.dial(ctx, s)
			}(due)
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// dial makes one connection attempt for slot s.
func (p *Pool) dial(ctx context.Context, s *slot) {
	acks := p.tracker.NewConn()
	sess := &session{acks: acks, dialStart: p.now()}
	h := probe.Handlers{
		OnAck:   func(id uint64, _ []json.RawMessage) { acks.Ack(id) },
		OnClose: func(r probe.DisconnectReason, err error) { p.onClose(s, sess, r, err) },
	}
	if p.push != nil || p.fanout != nil {
		h.OnEvent = func(name string, args []json.RawMessage) { p.onEvent(s, sess, name, args) }
	}
	p.m.ConnectAttempts.Inc()
	start := p.now()
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	conn, err := p.driver.Dial(dctx, p.target, h)
	dctxErr := dctx.Err()
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not the target's failure
		}
		reason := probe.ClassifyDialError(err, dctxErr)
		p.m.ConnectFailed(reason)
		msg := ""
		var ce *probe.ConnectError
		if errors.As(err, &ce) {
			msg = ce.Message
		}
		p.log.Debug("connect failed", zap.Int("slot", s.idx), zap.String("reason", string(reason)), zap.Error(err))
		p.mu.Lock()
		p.lastErr = Event{Time: p.now(), Reason: string(reason), Message: msg}
		s.failures++
		p.scheduleLocked(s, p.backoffLocked(s.failures))
		p.mu.Unlock()
		return
	}
	p.m.ConnectDuration.Observe(p.now().Sub(start).Seconds())

	p.mu.Lock()
	sess.conn = conn
	sess.established = p.now()
	switch {
	case sess.closed: // ended before Dial returned; onClose left the reconnect to us
		s.failures++
		p.scheduleLocked(s, p.backoffLocked(s.failures))
		p.mu.Unlock()
	case s.removed || p.stopping:
		p.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		_ = conn.Close(cctx)
		cancel()
	default:
		s.cur.Store(sess)
		p.connected.Add(1)
		p.mu.Unlock()
	}
}

// onClose is the driver's OnClose for one session.
func (p *Pool) onClose(s *slot, sess *session, r probe.DisconnectReason, err error) {
	p.m.Disconnected(r)
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	sess.closed = true
	if r != probe.ReasonClientClose {
		p.lastDisc = Event{Time: now, Reason: string(r)}
		p.log.Debug("disconnected", zap.Int("slot", s.idx), zap.String("reason", string(r)), zap.Error(err))
	}
	if s.cur.Load() != sess {
		return // Dial has not returned yet, or the slot was closed on purpose
	}
	s.cur.Store(nil)
	p.connected.Add(-1)
	if now.Sub(sess.established) >= stableAfter {
		s.failures = 0
	}
	s.failures++
	p.scheduleLocked(s, p.backoffLocked(s.failures))
}

type sendJob struct {
	sess      *session
	seq       uint64
	scheduled time.Time
}

// sendQueueLen holds about one second of batches, at least 64.
func sendQueueLen(rate float64) int {
	perSecond := min(rate, float64(time.Second/SendTick))
	return max(64, int(perSecond))
}

// scheduleLoop hands due events to the send workers, one batch per tick, on
// an open-loop schedule (see schedule): event k is due when the schedule
// says whatever happened to earlier events, and goes to slot k mod size.
func (p *Pool) scheduleLoop(ctx context.Context, jobs chan<- []sendJob) {
	if p.cfg.EventRate <= 0 {
		<-ctx.Done()
		return
	}
	sched := newSchedule(p.now(), p.cfg.EventRate, SendTick)
	// A batch goes to a worker, so each tick needs a slice of its own; sized
	// for a tick's events, it never grows.
	batchCap := int(math.Ceil(p.cfg.EventRate * SendTick.Seconds()))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := p.now()
		batch := make([]sendJob, 0, batchCap)
		for k, at := sched.next(); !at.After(now); k, at = sched.next() {
			sched.advance()
			batch = p.route(batch, k, at, now)
		}
		if len(batch) > 0 {
			select {
			case jobs <- batch:
			default:
				p.m.Dropped.Add(float64(len(batch)))
			}
		}
		_, at := sched.next()
		timer.Reset(at.Sub(now))
	}
}

// route appends event k, due at `at`, to batch with the session of its
// slot, or counts it skipped or dropped.
func (p *Pool) route(batch []sendJob, k uint64, at, now time.Time) []sendJob {
	if p.paused.Load() {
		return batch
	}
	slots := *p.snapshot.Load()
	if len(slots) == 0 {
		p.m.Skipped.Inc()
		return batch
	}
	if now.Sub(at) > p.cfg.AckTimeout {
		// The agent itself fell behind by more than the ack timeout (it was
		// stopped, starved of CPU): its own fault, not the target's.
		p.m.Dropped.Inc()
		return batch
	}
	sess := slots[k%uint64(len(slots))].cur.Load()
	if sess == nil {
		p.m.Skipped.Inc()
		return batch
	}
	return append(batch, sendJob{sess: sess, seq: k, scheduled: at})
}

// sendLoop writes batches of events to their connections. The writes of a
// batch share one deadline, the ack timeout from the batch's start: an
// event written later than that could only be lost. The deadline is not
// tied to ctx: coder/websocket closes a connection whose write context ends
// mid-write, which at shutdown would turn a clean close into a transport
// error; instead, once ctx ends, the rest of the batch is not sent.
func (p *Pool) sendLoop(ctx context.Context, jobs <-chan []sendJob) {
	buf := make([]byte, 0, p.cfg.PayloadBytes)
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-jobs:
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AckTimeout)
			for _, j := range batch {
				if ctx.Err() != nil {
					break
				}
				id := j.sess.acks.Register(j.scheduled)
				buf = appendPayload(buf[:0], j.seq, j.scheduled, p.cfg.PayloadBytes)
				if err := j.sess.conn.Emit(wctx, p.cfg.EventName, int64(id), buf); err != nil {
					p.log.Debug("emit failed", zap.Error(err))
				}
			}
			cancel()
		}
	}
}

// appendPayload appends {"seq":N,"t":UNIXNANO,"pad":"xx..."} padded to size
// bytes (or more, if size is too small to hold the numbers).
func appendPayload(b []byte, seq uint64, at time.Time, size int) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, at.UnixNano(), 10)
	b = append(b, `,"pad":"`...)
	for n := size - len(b) - 2; n > 0; n-- {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// schedule computes the open-loop send times, from k (not accumulated) so
// that there is no drift. Event k is ideally due at start + k/rate. Up to
// 1/minTick events per second, that is when it goes. Above, it goes at the
// first tick of the grid start + i*minTick at or after that time: the events
// of a tick are sent together, so the agent wakes once per tick rather than
// once per event. Measured with 10,000 clients at 2,000 events/s (docs/
// benchmarks.md), 5 ms ticks took agent CPU per event from about 150 us
// to 120 us, most of the saving in going idle and waking up between
// events; the price is that events of a tick queue behind each other (p50
// latency 0.8 ms -> 2 ms there). Latency is measured from the tick, which is
// when the event is meant to go.
type schedule struct {
	start time.Time
	rate  float64
	tick  time.Duration // 0: every event at its ideal time
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
	// Rounded to the nanosecond first, so that an event whose exact time
	// is on the grid is not pushed to the next tick by a rounding error.
	ideal := time.Duration(math.Round(float64(s.k) / s.rate * float64(time.Second)))
	if s.tick > 0 {
		ideal = (ideal + s.tick - 1) / s.tick * s.tick
	}
	return s.k, s.start.Add(ideal)
}

func (s *schedule) advance() { s.k++ }

// dialQueue is a min-heap of slots by the time of their next attempt.
type dialQueue []dialItem

type dialItem struct {
	at time.Time
	s  *slot
}

func (q dialQueue) Len() int           { return len(q) }
func (q dialQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q dialQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *dialQueue) Push(x any)        { *q = append(*q, x.(dialItem)) }
func (q *dialQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}
