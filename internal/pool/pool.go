// Package pool keeps a pool of Socket.IO clients connected to one target
// forever (ramp-up at a bounded rate, reconnects with the backoff of the
// official socket.io-client) and runs the probes through them. It knows clients only
// through probe.Driver and probes only through the Probe and Part
// interfaces; open-loop sending over the clients is a Stream.
package pool

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

const (
	// closeTimeout bounds the clean close of all connections at shutdown.
	closeTimeout = 5 * time.Second
	// closeParallelism bounds the goroutines closing connections at shutdown.
	closeParallelism = 64
	// statusInterval is the period of the Info summary line.
	statusInterval = 30 * time.Second
)

// Options are a Pool's collaborators.
type Options struct {
	// Driver dials the connections.
	Driver probe.Driver
	// Target is where to connect; Target.Name labels every metric.
	Target *probe.Target
	// Metrics are the shared connection metrics; the pool takes its children.
	Metrics *Metrics
	// Registerer receives the pool's own gauges (desired, connected).
	Registerer prometheus.Registerer
	// Logger is named by the caller.
	Logger *zap.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Seed seeds the jitter; zero picks a random seed.
	Seed uint64
	// Share is the pool's part of the agent's rates (its clients over all
	// the agent's clients); 1 when zero.
	Share float64
	// Observer, if not nil, also receives every connection event.
	Observer Observer
	// Probes run through the pool's clients, in this order; at most
	// MaxProbes.
	Probes []Probe
	// RuntimeTimer makes the send schedule wait on a runtime timer instead
	// of a kernel one (package ktimer): for tests on synctest's fake clock,
	// which moves only runtime timers.
	RuntimeTimer bool
}

// Pool keeps Config.Clients connections to one target and runs the probes
// through them.
type Pool struct {
	cfg    Config
	target *probe.Target
	driver probe.Driver
	log    *zap.Logger
	m      *targetMetrics
	obs    Observer
	now    func() time.Time
	share  float64

	runtimeTimer bool

	parts   []Part
	routes  map[string][]ID // server event -> parts that want it
	streams []*Stream
	bufs    sync.Pool // *[]byte: the writers' scratch buffers

	mu       sync.Mutex
	rnd      *rand.Rand
	slots    []*slot
	queue    dialQueue
	stopping bool
	lastErr  Event
	lastDisc Event

	connected   atomic.Int64
	byTransport [2]atomic.Int64 // by transportIndex
	running     atomic.Bool
	paused      atomic.Bool
	wake        chan struct{}
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
	queued   bool         // guarded by Pool.mu
	attempts int          // guarded by Pool.mu: reconnect delays scheduled since a connection last opened (socket.io-client's backoff.attempts)
	resume   probe.Resume // guarded by Pool.mu: the session to offer on the next dial (connection-state recovery)
	broken   bool         // guarded by Pool.mu: the last session ended with its transport (recoverable), not its socket
	hadPID   bool         // guarded by Pool.mu: the server gave the last session a pid (recovery is on)
	cur      atomic.Pointer[Session]
}

// Session is one connection of a pool's client, as probes see it.
type Session struct {
	pool        *Pool
	slot        *slot
	conn        probe.Conn // set before Open, read-only after
	transport   int        // transportIndex of conn, set before Open, read-only after
	dialStart   time.Time  // set before Dial, read-only after
	established time.Time  // set before Open, read-only after
	state       []any      // by probe ID, set before Dial, read-only after

	afterBreak bool // set before Dial, read-only after: the slot's previous session ended with its transport
	offered    bool // set before Dial, read-only after: the dial offered that session for recovery
	prevPID    bool // set before Dial, read-only after: the server gave that session a pid

	out outbox // the session's scheduled writes (stream.go)

	life   sync.Mutex // orders the parts' Open before their Close
	closed bool       // guarded by Pool.mu: OnClose has run
	opened bool       // guarded by Pool.mu: the parts' Open has been called
}

// Slot is the index of the session's client in its pool, stable across
// reconnects.
func (s *Session) Slot() int { return s.slot.idx }

// Pool is the session's pool.
func (s *Session) Pool() *Pool { return s.pool }

// DialStart is when the session's dial started: anything sent before that
// cannot have reached it.
func (s *Session) DialStart() time.Time { return s.dialStart }

// State is the state the probe's Part.Init returned for this session.
func (s *Session) State(id ID) any { return s.state[id] }

// Emit sends an event that wants no ack. It blocks at most until ctx ends.
func (s *Session) Emit(ctx context.Context, event string, args ...json.RawMessage) error {
	return s.conn.Emit(ctx, event, probe.NoAck, args...)
}

// Recovery is what a session knows of connection-state recovery.
type Recovery struct {
	// AfterBreak: the slot's previous session lost its transport (a break
	// a Socket.IO server can recover from), so this session is a reconnect
	// that socket.io-client would have tried to recover.
	AfterBreak bool
	// PrevPID: the server gave the previous session a pid (recovery is on).
	PrevPID bool
	// Offered: the dial offered the previous session's pid and offset, as
	// socket.io-client does when it has both (a session that received no
	// event before its break has no offset, and is not offered).
	Offered bool
	// Supported: the driver reports recovery; Conn is then valid.
	Supported bool
	// Conn is what the connection learnt when it opened.
	Conn probe.Recovery
}

// Recovery reports the session's connection-state recovery. Valid from
// Part.Open on.
func (s *Session) Recovery() Recovery {
	r := Recovery{AfterBreak: s.afterBreak, PrevPID: s.prevPID, Offered: s.offered}
	if rc, ok := s.conn.(probe.Recoverable); ok {
		r.Supported, r.Conn = true, rc.Recovery()
	}
	return r
}

// Break breaks the session's transport on purpose, as a network blip would
// (no DISCONNECT packet); false when the driver cannot. The session then
// ends with probe.ReasonClientBreak and its slot offers it for recovery.
func (s *Session) Break() bool {
	rc, ok := s.conn.(probe.Recoverable)
	if ok {
		rc.Break()
	}
	return ok
}

// recoverable lists the disconnects after which a Socket.IO server keeps the
// session for recovery (the transport went away, not the socket).
func recoverable(r probe.DisconnectReason) bool {
	switch r {
	case probe.ReasonTransportClose, probe.ReasonTransportError, probe.ReasonPingTimeout, probe.ReasonClientBreak:
		return true
	}
	return false
}

// queues reports whether the session's connection takes a write without
// waiting now (see probe.Queuer).
func (s *Session) queues() bool {
	q, ok := s.conn.(probe.Queuer)
	if !ok {
		return false
	}
	n, ok := q.Backlog()
	return ok && n == 0
}

// EmitAck sends an event that asks for an ack; the ack reaches probe id's
// Part.Ack with ack as its id. ack must be below 2^50.
func (s *Session) EmitAck(ctx context.Context, id ID, ack uint64, event string, args ...json.RawMessage) error {
	return s.conn.Emit(ctx, event, int64(ack<<ackIDBits|uint64(id)), args...)
}

// New creates a pool for one target, registering its gauges and attaching
// its probes. The pool does nothing until Run.
func New(cfg Config, o Options) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Driver == nil || o.Target == nil || o.Metrics == nil || o.Registerer == nil {
		return nil, errors.New("pool: driver, target, metrics and registerer are required")
	}
	if len(o.Probes) > MaxProbes {
		return nil, errors.New("pool: too many probes")
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
	share := o.Share
	if share == 0 {
		share = 1
	}
	p := &Pool{
		cfg:    cfg,
		target: o.Target,
		driver: o.Driver,
		log:    log,
		m:      o.Metrics.forTarget(o.Target.Name),
		obs:    o.Observer,
		now:    now,
		share:  share,
		bufs:   sync.Pool{New: func() any { return new([]byte) }},
		routes: map[string][]ID{},
		rnd:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		wake:   make(chan struct{}, 1),

		runtimeTimer: o.RuntimeTimer,
	}
	labels := prometheus.Labels{"target": o.Target.Name}
	desired := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        MetricClientsDesired,
		Help:        "Clients the pool keeps connected to the target.",
		ConstLabels: labels,
	}, func() float64 { return float64(p.Desired()) })
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        MetricClientsConnected,
		Help:        "Clients connected to the target now (namespace CONNECT answered, not yet closed).",
		ConstLabels: labels,
	}, func() float64 { return float64(p.connected.Load()) })
	collectors := []prometheus.Collector{desired, connected}
	for i, name := range probe.Transports {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        MetricClientsByTransport,
			Help:        "Clients connected to the target now, by the Engine.IO transport they run on (polling: long-polling, never upgraded).",
			ConstLabels: prometheus.Labels{"target": o.Target.Name, "transport": name},
		}, func() float64 { return float64(p.byTransport[i].Load()) }))
	}
	for _, c := range collectors {
		if err := o.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Clients {
		s := &slot{idx: i}
		p.slots = append(p.slots, s)
		p.scheduleLocked(s, 0)
	}
	for i, pr := range o.Probes {
		part, err := pr.Attach(p, ID(i))
		if err != nil {
			return nil, err
		}
		p.parts = append(p.parts, part)
		for _, ev := range part.Events() {
			p.routes[ev] = append(p.routes[ev], ID(i))
		}
	}
	return p, nil
}

// Target is the pool's target.
func (p *Pool) Target() *probe.Target { return p.target }

// Share is the pool's part of the agent's rates.
func (p *Pool) Share() float64 { return p.share }

// Desired is the pool's size.
func (p *Pool) Desired() int { return len(p.slots) }

// transportIndex is the index in probe.Transports of the transport c runs on.
func transportIndex(c probe.Conn) int {
	if probe.TransportOf(c) == probe.TransportPolling {
		return 1
	}
	return 0
}

// ConnectedByTransport is the number of connected clients now on transport
// (one of probe.Transports).
func (p *Pool) ConnectedByTransport(transport string) int {
	for i, name := range probe.Transports {
		if name == transport {
			return int(p.byTransport[i].Load())
		}
	}
	return 0
}

// Connected is the number of connected clients now.
func (p *Pool) Connected() int { return int(p.connected.Load()) }

// Running reports whether Run has started and not yet returned.
func (p *Pool) Running() bool { return p.running.Load() }

// Session returns the current session of slot i, or nil when that client is
// not connected.
func (p *Pool) Session(i int) *Session {
	if i < 0 || i >= len(p.slots) {
		return nil
	}
	return p.slots[i].cur.Load()
}

// LastConnectError reports the most recent failed attempt, for the landing page.
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

// Pause stops (true) or resumes (false) the pool's streams; requests already
// sent are still resolved. While paused, due items are neither sent nor
// counted. The one-shot mode pauses before it stops so that every request
// it sent is accounted for.
func (p *Pool) Pause(paused bool) { p.paused.Store(paused) }

// scheduleLocked queues a slot for a dial attempt after delay.
func (p *Pool) scheduleLocked(s *slot, delay time.Duration) {
	if s.queued || p.stopping {
		return
	}
	s.queued = true
	heap.Push(&p.queue, dialItem{at: p.now().Add(delay), s: s})
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// reconnectLocked schedules the next attempt of slot s as socket.io-client
// does: the n-th delay since the slot's connection last opened (or since
// the start) is backoff(n), n from 0, so the attempts after a disconnect
// wait about 1 s, 2 s, 4 s, then the cap.
func (p *Pool) reconnectLocked(s *slot) {
	d := backoff(p.cfg.BackoffMin, p.cfg.BackoffMax, p.cfg.BackoffJitter, s.attempts, p.rnd.Float64())
	s.attempts++
	p.scheduleLocked(s, d)
}

// backoff is socket.io-client's reconnect delay: base*2^n, moved by up to
// jitter times itself (down for u < 0.5, up above; u uniform in [0, 1)),
// then capped at maxDelay. As in the client, the cap applies after the
// jitter, so no delay exceeds it.
func backoff(base, maxDelay time.Duration, jitter float64, n int, u float64) time.Duration {
	n = max(0, min(n, 62))
	d := float64(base) * math.Exp2(float64(n)) * (1 + jitter*(2*u-1))
	if d >= float64(maxDelay) {
		return maxDelay
	}
	return time.Duration(max(0, d))
}

// Run connects the pool and runs its streams until ctx ends, then closes
// every connection cleanly and returns once all its goroutines are done.
func (p *Pool) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("pool: already running")
	}
	defer p.running.Store(false)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.dialLoop(ctx, &wg) }()
	p.runStreams(ctx, &wg)
	p.log.Info("pool started", zap.String("driver", p.driver.Name()), zap.Int("clients", p.Desired()))
	p.statusLoop(ctx)

	// Shutdown: stop dialling, close what is connected, wait for everyone.
	p.mu.Lock()
	p.stopping = true
	var open []*Session
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
				p.log.Info("pool status", zap.Int("connected", c), zap.Int("desired", p.Desired()))
				last = c
			}
		}
	}
}

func (p *Pool) closeAll(ctx context.Context, sessions []*Session) {
	if len(sessions) == 0 {
		return
	}
	ch := make(chan *Session)
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
		if p.queue.Len() > 0 {
			top := p.queue[0]
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
	sess := &Session{pool: p, slot: s, dialStart: p.now()}
	sess.state = make([]any, len(p.parts))
	for i, part := range p.parts {
		sess.state[i] = part.Init(sess)
	}
	h := probe.Handlers{
		OnClose: func(r probe.DisconnectReason, err error) { p.onClose(s, sess, r, err) },
	}
	if len(p.parts) > 0 {
		h.OnAck = func(id uint64, args []json.RawMessage) { p.onAck(sess, id, args) }
	}
	if len(p.routes) > 0 {
		h.OnEvent = func(name string, args []json.RawMessage) { p.onEvent(sess, name, args) }
	}
	p.m.attempts.Inc()
	if p.obs != nil {
		p.obs.Connection(p.target.Name, ConnAttempt, "", 0)
	}
	start := p.now()
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	p.mu.Lock()
	resume, broken, hadPID := s.resume, s.broken, s.hadPID
	// Put back if the dial fails: socket.io-client offers the session until
	// a connection opens.
	s.resume, s.broken, s.hadPID = probe.Resume{}, false, false
	p.mu.Unlock()
	sess.afterBreak, sess.prevPID = broken, hadPID
	if resume.PID != "" && resume.Offset != "" {
		dctx = probe.WithResume(dctx, resume)
		sess.offered = true
	}
	if n := len(p.target.SourceAddrs); n > 0 {
		dctx = probe.WithSource(dctx, p.target.SourceAddrs[s.idx%n])
	}
	conn, err := p.driver.Dial(dctx, p.target, h)
	dctxErr := dctx.Err()
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not the target's failure
		}
		reason := probe.ClassifyDialError(err, dctxErr)
		p.m.failed(reason)
		if p.obs != nil {
			p.obs.Connection(p.target.Name, ConnFailed, string(reason), 0)
		}
		msg := ""
		var ce *probe.ConnectError
		if errors.As(err, &ce) {
			msg = ce.Message
			if ce.Data != "" {
				msg += " (data " + ce.Data + ")" // redacted by the driver when it looks like a secret
			}
		}
		p.log.Debug("connect failed", zap.Int("slot", s.idx), zap.String("reason", string(reason)), zap.Error(err))
		p.mu.Lock()
		p.lastErr = Event{Time: p.now(), Reason: string(reason), Message: msg}
		s.resume, s.broken, s.hadPID = resume, broken, hadPID
		p.reconnectLocked(s)
		p.mu.Unlock()
		return
	}
	took := p.now().Sub(start)
	p.m.duration.Observe(took.Seconds())
	if p.obs != nil {
		p.obs.Connection(p.target.Name, ConnEstablished, "", took)
	}

	sess.life.Lock()
	p.mu.Lock()
	sess.conn = conn
	sess.transport = transportIndex(conn)
	sess.established = p.now()
	switch {
	case sess.closed: // ended before Dial returned; onClose left the reconnect to us
		// It opened, so the backoff starts again as after any disconnect.
		p.m.shortLived.Inc()
		s.attempts = 0
		p.reconnectLocked(s)
		p.mu.Unlock()
		sess.life.Unlock()
	case p.stopping:
		p.mu.Unlock()
		sess.life.Unlock()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		_ = conn.Close(cctx)
		cancel()
	default:
		sess.opened = true
		p.mu.Unlock()
		for _, part := range p.parts {
			part.Open(sess)
		}
		sess.life.Unlock()
		// Offered to the streams only once every part has opened it.
		p.mu.Lock()
		if !sess.closed {
			s.cur.Store(sess)
			p.connected.Add(1)
			p.byTransport[sess.transport].Add(1)
		}
		p.mu.Unlock()
	}
}

// onAck routes an ack to the part whose id its low bits carry.
func (p *Pool) onAck(sess *Session, id uint64, args []json.RawMessage) {
	pid := ID(id & (1<<ackIDBits - 1))
	if int(pid) >= len(p.parts) {
		p.CountUnexpectedAck()
		return
	}
	p.parts[pid].Ack(sess, id>>ackIDBits, args)
}

// CountUnexpectedAck counts an ack for an id this agent never sent or
// already resolved; parts call it for unknown ids of their own.
func (p *Pool) CountUnexpectedAck() {
	p.m.unexpected.Inc()
	if p.obs != nil {
		p.obs.Event(p.target.Name, "", "", OutcomeUnexpected, 1, 0)
	}
}

// onEvent routes a server event to the parts that want it.
func (p *Pool) onEvent(sess *Session, name string, args []json.RawMessage) {
	for _, id := range p.routes[name] {
		p.parts[id].Event(sess, name, args)
	}
}

// onClose is the driver's OnClose for one session.
func (p *Pool) onClose(s *slot, sess *Session, r probe.DisconnectReason, err error) {
	p.m.disconnected(r)
	if p.obs != nil {
		p.obs.Connection(p.target.Name, ConnClosed, string(r), 0)
	}
	now := p.now()
	sess.life.Lock()
	defer sess.life.Unlock()
	p.mu.Lock()
	sess.closed = true
	opened := sess.opened
	if r != probe.ReasonClientClose {
		p.lastDisc = Event{Time: now, Reason: string(r)}
		p.log.Debug("disconnected", zap.Int("slot", s.idx), zap.String("reason", string(r)), zap.Error(err))
	}
	if s.cur.Load() == sess {
		s.cur.Store(nil)
		p.connected.Add(-1)
		p.byTransport[sess.transport].Add(-1)
	}
	s.resume, s.broken, s.hadPID = probe.Resume{}, opened && recoverable(r), false
	if rc, ok := sess.conn.(probe.Recoverable); ok && s.broken {
		if pid := rc.Recovery().PID; pid != "" {
			s.resume, s.hadPID = probe.Resume{PID: pid, Offset: rc.LastOffset()}, true
		}
	}
	if opened {
		// As socket.io-client: a connection that opened resets the
		// backoff, however short its life; flapping shows in the counters.
		if now.Sub(sess.established) < p.cfg.shortLived() {
			p.m.shortLived.Inc()
		}
		s.attempts = 0
		p.reconnectLocked(s)
	}
	p.mu.Unlock()
	if opened {
		for _, part := range p.parts {
			part.Close(sess, r)
		}
	}
}

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
