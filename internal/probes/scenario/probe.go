// Package scenario soaks an application with the flows its clients really
// run, described in a YAML file (SOAK_SCENARIO_FILE): steps each client runs
// once per connection (authenticate, join a room, wait for a welcome event),
// then weighted flows started at a rate over the pool (emit with a templated
// payload, expect an ack or a reply event within a timeout, think, capture a
// field of an answer for a later step). Every step is accounted like the
// echo probe's event: sent, answered, rejected (the answer failed the
// step's assert), lost, late, and latency from the step's scheduled time
// (open loop: the first step's time comes from the flow schedule, a later
// step's from the end of the one before it plus any think time). See
// docs/scenarios.md for the file format.
package scenario

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/jsonpath"
	"github.com/generic-corp/soak-exporter/internal/payload"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/tracker"
)

// Name is the probe's name.
const Name = "scenario"

const (
	sweepInterval = 100 * time.Millisecond
	lateHorizon   = time.Minute
	// workers run the steps after a flow's first (which runs on the
	// session's writer in the pool) and the on_connect steps.
	workers = 4
	// stepBits is how many low bits of a scenario ack id carry the step.
	stepBits = 6 // maxSteps = 64
	// maxEarly bounds the awaited events kept per session and event name
	// until a wait takes them (the newest are kept).
	maxEarly = 8
)

// Config configures the scenario probe.
type Config struct {
	File string `envconfig:"SCENARIO_FILE" default:"" desc:"YAML file of the scenario to run: steps on connect, then weighted flows at a rate (see docs/scenarios.md); empty: no scenario."`
}

// Validate checks the configuration and the file; errors name the variable,
// and the file's errors its line and field.
func (c Config) Validate() error {
	if c.File == "" {
		return nil
	}
	if _, err := Load(c.File); err != nil {
		return fmt.Errorf("SOAK_SCENARIO_FILE: %w", err)
	}
	return nil
}

// Probe runs a scenario through every pool.
type Probe struct {
	sc  *Scenario
	m   *metrics
	log *zap.Logger
	now func() time.Time
	obs pool.Observer
	reg prometheus.Registerer

	flowTable []int // flow index by k mod len: the weights
	steps     []*Step

	mu    sync.Mutex
	parts []*part

	// active counts the runs (flows and on_connect) started and not ended:
	// a run between two steps has nothing in flight but is not done.
	active atomic.Int64

	work  chan task
	later timerQueue
	wake  chan struct{}
	lmu   sync.Mutex
}

// task is a step to run on a worker.
type task struct {
	f *flowRun
}

// New returns the scenario probe, or nil without a scenario file.
func New(cfg Config, d pool.Deps) (*Probe, error) {
	if cfg.File == "" {
		return nil, nil
	}
	sc, err := Load(cfg.File)
	if err != nil {
		return nil, fmt.Errorf("SOAK_SCENARIO_FILE: %w", err)
	}
	return NewFromScenario(sc, d)
}

// NewFromScenario returns the probe for a parsed scenario.
func NewFromScenario(sc *Scenario, d pool.Deps) (*Probe, error) {
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	log := d.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	pr := &Probe{sc: sc, m: m, log: log, now: now, obs: d.Observer, reg: d.Registerer,
		work: make(chan task, 1024), wake: make(chan struct{}, 1), steps: sc.steps()}
	for i, f := range sc.Flows {
		for range f.Weight {
			pr.flowTable = append(pr.flowTable, i)
		}
	}
	return pr, nil
}

// Name implements pool.Probe.
func (pr *Probe) Name() string { return Name }

// Scenario is the probe's scenario.
func (pr *Probe) Scenario() *Scenario { return pr.sc }

// part is the scenario in one pool.
type part struct {
	pr       *Probe
	pool     *pool.Pool
	id       pool.ID
	target   string
	trackers []*tracker.Tracker // by step index (named steps)
	sinks    []*stepSink
	flows    []*flowMetrics
	byEvent  map[string][]*Step // reply and wait events -> steps
}

// Attach implements pool.Probe: trackers per step, a stream of flows.
func (pr *Probe) Attach(p *pool.Pool, id pool.ID) (pool.Part, error) {
	target := p.Target().Name
	pt := &part{pr: pr, pool: p, id: id, target: target, byEvent: map[string][]*Step{}}
	for _, st := range pr.steps {
		if st.Kind == KindThink {
			continue
		}
		for len(pt.trackers) <= st.index {
			pt.trackers = append(pt.trackers, nil)
			pt.sinks = append(pt.sinks, nil)
		}
		s := pr.m.sink(target, st.Name, pr.obs, p.CountUnexpectedAck)
		pt.sinks[st.index] = s
		pt.trackers[st.index] = tracker.New(st.Timeout, lateHorizon, pr.now, s)
		switch {
		case st.Kind == KindWait:
			pt.byEvent[st.Event] = append(pt.byEvent[st.Event], st)
		case st.Expect == ExpectReply:
			pt.byEvent[st.ReplyEvent] = append(pt.byEvent[st.ReplyEvent], st)
		}
	}
	for _, f := range pr.sc.Flows {
		pt.flows = append(pt.flows, pr.m.flow(target, f.Name, pr.obs))
	}
	pr.m.connectFailed.WithLabelValues(target) // the series exists from the start
	err := p.AddStream(&pool.Stream{
		Rate:    pr.sc.Rate * p.Share(),
		MaxLate: time.Second,
		Ready:   func(s *pool.Session) bool { return s.State(id).(*session).ready.Load() },
		Fire:    pt.fire,
		Skipped: pr.m.counts(target, pr.m.skipped, pool.OutcomeSkipped, pr.obs),
		Dropped: pr.m.counts(target, pr.m.dropped, pool.OutcomeDropped, pr.obs),
	})
	if err != nil {
		return nil, err
	}
	pr.mu.Lock()
	pr.parts = append(pr.parts, pt)
	pr.mu.Unlock()
	return pt, nil
}

// session is a session's scenario state.
type session struct {
	s     *pool.Session
	ready atomic.Bool // on_connect is done: the session takes flows
	conns []*tracker.Conn

	mu   sync.Mutex
	vars map[string]json.RawMessage // captured by on_connect steps
	open bool

	// waitMu makes "is the event here already, else register the wait"
	// one step against the reader's "answer a wait, else keep the event":
	// without it an event arriving between the two is kept and the wait,
	// registered after, is never answered. mu may be taken while waitMu is
	// held (a wait answered here can end an on_connect run), never the reverse.
	waitMu sync.Mutex
	seen   map[string][][]json.RawMessage // awaited events that arrived before their wait: their args, oldest first
}

// Events implements pool.Part.
func (pt *part) Events() []string { return pt.pr.sc.Events() }

// Init implements pool.Part.
func (pt *part) Init(s *pool.Session) any {
	st := &session{s: s, conns: make([]*tracker.Conn, len(pt.trackers)), seen: map[string][][]json.RawMessage{}}
	for i, tr := range pt.trackers {
		if tr != nil {
			st.conns[i] = tr.NewConn()
		}
	}
	return st
}

// Open implements pool.Part: the on_connect steps start.
func (pt *part) Open(s *pool.Session) {
	st := s.State(pt.id).(*session)
	st.mu.Lock()
	st.open = true
	st.mu.Unlock()
	if len(pt.pr.sc.OnConnect) == 0 {
		st.ready.Store(true)
		return
	}
	f := &flowRun{pt: pt, sess: st, steps: pt.pr.sc.OnConnect, flow: -1, scheduled: pt.pr.now(), vars: map[string]json.RawMessage{}}
	pt.pr.active.Add(1)
	pt.pr.enqueue(f)
}

// Close implements pool.Part.
func (pt *part) Close(s *pool.Session, _ probe.DisconnectReason) {
	st := s.State(pt.id).(*session)
	st.ready.Store(false)
	st.mu.Lock()
	st.open = false
	st.mu.Unlock()
	st.waitMu.Lock()
	clear(st.seen) // events of the ended connection answer no later wait
	st.waitMu.Unlock()
}

// Ack implements pool.Part: the step is in the low bits.
func (pt *part) Ack(s *pool.Session, id uint64, args []json.RawMessage) {
	st := s.State(pt.id).(*session)
	i := int(id & (1<<stepBits - 1))
	if i >= len(st.conns) || st.conns[i] == nil {
		pt.pool.CountUnexpectedAck()
		return
	}
	st.conns[i].Ack(id>>stepBits, args)
}

// Event implements pool.Part: a reply or an awaited event.
func (pt *part) Event(s *pool.Session, name string, args []json.RawMessage) {
	st := s.State(pt.id).(*session)
	for _, step := range pt.byEvent[name] {
		c := st.conns[step.index]
		if step.Kind == KindWait {
			continue // below, under waitMu
		}
		if len(args) == 0 {
			continue
		}
		if v, ok := jsonpath.Lookup(args[0], step.Match); ok && c.Reply(jsonpath.Canonical(v), args) {
			return
		}
	}
	// An awaited event that no wait has started for yet (a welcome sent on
	// connect) is kept, with its arguments, for the wait that comes: its
	// capture and assert apply to it. The reader reuses args' memory: copy.
	st.waitMu.Lock()
	defer st.waitMu.Unlock()
	waited := false
	for _, step := range pt.byEvent[name] {
		if step.Kind != KindWait {
			continue
		}
		waited = true
		if st.conns[step.index].Reply(name, args) {
			return
		}
	}
	if !waited {
		return
	}
	kept := make([]json.RawMessage, len(args))
	for i, a := range args {
		kept[i] = append(json.RawMessage(nil), a...)
	}
	q := st.seen[name]
	if len(q) == maxEarly {
		q = q[1:] // keep the newest
	}
	st.seen[name] = append(q, kept)
}

// fire starts flow k on s (on the session's writer in the pool).
func (pt *part) fire(ctx context.Context, s *pool.Session, k uint64, scheduled time.Time, buf []byte) []byte {
	pr := pt.pr
	fi := pr.flowTable[k%uint64(len(pr.flowTable))]
	st := s.State(pt.id).(*session)
	f := &flowRun{pt: pt, sess: st, steps: pr.sc.Flows[fi].Steps, flow: fi, scheduled: scheduled, seq: k}
	st.mu.Lock()
	if len(st.vars) > 0 {
		f.vars = make(map[string]json.RawMessage, len(st.vars))
		for k, v := range st.vars {
			f.vars[k] = v
		}
	}
	st.mu.Unlock()
	pt.flows[fi].started.Inc()
	pr.active.Add(1)
	f.bounded = true // the stream's ctx is already detached and bounded
	return f.run(ctx, buf)
}

// flowRun is one run of a flow (or of on_connect, flow -1) on a session.
type flowRun struct {
	pt        *part
	sess      *session
	steps     []*Step
	flow      int
	i         int       // current step
	scheduled time.Time // of the current step
	seq       uint64
	vars      map[string]json.RawMessage
	// bounded: the ctx run gets next is detached from shutdown and carries
	// a write deadline already (the pool's stream); else run bounds each
	// write by the step's timeout itself.
	bounded bool
}

// run executes steps from f.i until one waits for an answer or a think
// time, or the flow ends; buf is scratch space, returned.
func (f *flowRun) run(ctx context.Context, buf []byte) []byte {
	pr := f.pt.pr
	for f.i < len(f.steps) {
		step := f.steps[f.i]
		switch step.Kind {
		case KindThink:
			f.i++
			f.scheduled = f.scheduled.Add(step.Think)
			if wait := f.scheduled.Sub(pr.now()); wait > 0 {
				pr.schedule(f.scheduled, f)
				return buf
			}
			continue
		case KindWait:
			c := f.sess.conns[step.index]
			f.sess.waitMu.Lock()
			var earlyArgs []json.RawMessage
			q := f.sess.seen[step.Event]
			early := len(q) > 0
			if early {
				earlyArgs = q[0]
				if len(q) == 1 {
					delete(f.sess.seen, step.Event)
				} else {
					f.sess.seen[step.Event] = q[1:]
				}
			}
			registered := c.RegisterReply(f.scheduled, step.Event, f)
			f.sess.waitMu.Unlock()
			if !registered {
				f.end(false) // another run waits for the same event on this session
				return buf
			}
			if early {
				c.Reply(step.Event, earlyArgs)
			}
			return buf
		}
		// KindEmit.
		var v payload.Vars
		var arg []json.RawMessage
		if step.Payload != nil {
			v = payload.Vars{Seq: f.seq, TS: f.scheduled, Client: f.sess.s.Slot(), Vars: f.vars}
			if step.Payload.NeedsUUID() {
				v.NewUUID(rand.Uint64(), rand.Uint64())
			}
			buf = step.Payload.Append(buf[:0], &v)
			arg = []json.RawMessage{buf}
		}
		c := f.sess.conns[step.index]
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if !f.bounded {
			wctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), step.Timeout)
		}
		f.bounded = false // later steps run on the probe's workers
		var err error
		switch step.Expect {
		case ExpectAck:
			id := c.Register(f.scheduled, f)
			err = f.sess.s.EmitAck(wctx, f.pt.id, id<<stepBits|uint64(step.index), step.Event, arg...)
		case ExpectReply:
			if !c.RegisterReply(f.scheduled, jsonpath.Canonical(step.MatchKey.Append(nil, &v)), f) {
				cancel()
				f.end(false)
				return buf
			}
			err = f.sess.s.Emit(wctx, step.Event, arg...)
		case ExpectNone:
			s := f.pt.sinks[step.index]
			s.Sent()
			err = f.sess.s.Emit(wctx, step.Event, arg...)
			if err == nil {
				s.Answered(pr.now().Sub(f.scheduled))
			} else {
				s.Lost(1)
			}
		}
		cancel()
		if err != nil {
			pr.log.Debug("scenario emit failed", zap.String("step", step.Name), zap.Error(err))
		}
		if step.Expect != ExpectNone {
			return buf // the answer (or its timeout) continues the run
		}
		if err != nil {
			f.end(false)
			return buf
		}
		f.i++
		f.scheduled = pr.now()
	}
	f.end(true)
	return buf
}

// Check implements tracker.Waiter: the step's assert.
func (f *flowRun) Check(args []json.RawMessage) bool {
	step := f.steps[f.i]
	if step.Assert == nil {
		return true
	}
	return len(args) > 0 && step.Assert.matches(args[0])
}

// Done implements tracker.Waiter: the current step resolved.
func (f *flowRun) Done(answered, ok bool, args []json.RawMessage) {
	if !answered || !ok {
		f.end(false)
		return
	}
	step := f.steps[f.i]
	if len(step.Capture) > 0 && len(args) > 0 {
		if f.vars == nil {
			f.vars = map[string]json.RawMessage{}
		}
		for _, c := range step.Capture {
			if v, ok := jsonpath.Lookup(args[0], c.Path); ok {
				f.vars[c.Var] = append(json.RawMessage(nil), v...)
			}
		}
	}
	f.i++
	if f.i == len(f.steps) {
		f.end(true) // nothing left to send: no need for a worker
		return
	}
	f.scheduled = f.pt.pr.now()
	f.pt.pr.enqueue(f)
}

// end finishes the run: counted per flow, or, for on_connect, the session
// becomes ready (or stays out of the flows until it reconnects).
func (f *flowRun) end(ok bool) {
	f.pt.pr.active.Add(-1)
	if f.flow < 0 {
		if !ok {
			f.pt.pr.m.connectFailed.WithLabelValues(f.pt.target).Inc()
			return
		}
		f.sess.mu.Lock()
		if f.sess.open {
			f.sess.vars = f.vars
			f.sess.ready.Store(true)
		}
		f.sess.mu.Unlock()
		return
	}
	fm := f.pt.flows[f.flow]
	if ok {
		fm.completed.Inc()
	} else {
		fm.aborted.Inc()
	}
}

// enqueue hands a run to the workers.
func (pr *Probe) enqueue(f *flowRun) {
	select {
	case pr.work <- task{f: f}:
	default:
		// The workers are behind by a whole queue: the agent's own
		// overload. The run ends here.
		pr.m.overload.Inc()
		f.end(false)
	}
}

// schedule runs f at time at.
func (pr *Probe) schedule(at time.Time, f *flowRun) {
	pr.lmu.Lock()
	heap.Push(&pr.later, timed{at: at, f: f})
	pr.lmu.Unlock()
	select {
	case pr.wake <- struct{}{}:
	default:
	}
}

// Run drives the answer timeouts, the think times and the workers until
// ctx ends.
func (pr *Probe) Run(ctx context.Context) error {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	pr.log.Info("scenario probe started", zap.Float64("rate", pr.sc.Rate), zap.Int("flows", len(pr.sc.Flows)),
		zap.Int("on_connect_steps", len(pr.sc.OnConnect)))
	var wg sync.WaitGroup
	wg.Add(workers + 1)
	for range workers {
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				select {
				case <-ctx.Done():
					return
				case tk := <-pr.work:
					buf = tk.f.run(ctx, buf)
				}
			}
		}()
	}
	go func() { defer wg.Done(); pr.timerLoop(ctx) }()
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			now := pr.now()
			pr.mu.Lock()
			parts := pr.parts
			pr.mu.Unlock()
			for _, pt := range parts {
				for _, tr := range pt.trackers {
					if tr != nil {
						tr.Sweep(now)
					}
				}
			}
		}
	}
}

// timerLoop hands runs whose think time is over to the workers.
func (pr *Probe) timerLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pr.lmu.Lock()
		wait := time.Hour
		var due []*flowRun
		now := pr.now()
		for pr.later.Len() > 0 {
			top := pr.later[0]
			if d := top.at.Sub(now); d > 0 {
				wait = d
				break
			}
			heap.Pop(&pr.later)
			due = append(due, top.f)
		}
		pr.lmu.Unlock()
		for _, f := range due {
			pr.enqueue(f)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-pr.wake:
		case <-timer.C:
		}
	}
}

// InFlight is the number of runs (flows and on_connect steps) started and
// not ended: every step in flight belongs to one, and a run waiting out a
// think time is not done either.
func (pr *Probe) InFlight() int { return int(pr.active.Load()) }

type timed struct {
	at time.Time
	f  *flowRun
}

type timerQueue []timed

func (q timerQueue) Len() int           { return len(q) }
func (q timerQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q timerQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *timerQueue) Push(x any)        { *q = append(*q, x.(timed)) }
func (q *timerQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}
