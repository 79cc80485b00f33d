// Package fanout is the fan-out probe: at a rate over the whole agent, one
// client emits a message with a unique id, the server relays it (to
// everyone, or to the members of a room the clients joined first, across
// replicas through the Redis adapter), and every other client connected (and
// joined) at send time must receive it within the timeout.
package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/jsonpath"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/tracker"
)

// Name is the probe's name.
const Name = "fanout"

// sweepInterval bounds the resolution of fan-out timeouts.
const sweepInterval = 100 * time.Millisecond

// Config configures the fan-out probe.
type Config struct {
	Event        string        `envconfig:"FANOUT_EVENT" default:"publish" desc:"Event a pool client emits for the fan-out probe; its payload carries a unique message id (default payload {\"id\":N,\"t\":UNIX_MS}). Empty disables the probe."`
	Rate         float64       `envconfig:"FANOUT_RATE" default:"0" desc:"Fan-out messages per second over the whole agent, sent by the connected clients in turn (0 disables the probe)."`
	Timeout      time.Duration `envconfig:"FANOUT_TIMEOUT" default:"5s" desc:"An expected fan-out delivery that has not arrived this long after the send counts as lost; also bounds the join step."`
	ReceiveEvent string        `envconfig:"FANOUT_RECEIVE_EVENT" default:"" desc:"Event under which the server relays the message to the other clients (e.g. message:new); empty: the same name as SOAK_FANOUT_EVENT."`
	IDField      string        `envconfig:"FANOUT_ID_FIELD" default:"id" desc:"Field (dotted path allowed) of the relayed message's first argument that holds the message id (a number, or a string of digits)."`
	Payload      string        `envconfig:"FANOUT_PAYLOAD" default:"" desc:"JSON object sent as the message, with the id in SOAK_FANOUT_ID_FIELD added by the agent (e.g. {\"roomId\":\"soak\",\"text\":\"hi\"}); empty: {\"id\":N,\"t\":UNIX_MS}."`
	JoinEvent    string        `envconfig:"FANOUT_JOIN_EVENT" default:"" desc:"Event each client emits once connected, and whose ack it waits for, before it sends or is expected to receive (e.g. room:join); empty: no join step."`
	JoinPayload  string        `envconfig:"FANOUT_JOIN_PAYLOAD" default:"" desc:"JSON payload of the join event (e.g. {\"roomId\":\"soak\"}); empty: no argument."`
}

// Enabled reports whether the fan-out probe runs.
func (c Config) Enabled() bool { return c.Event != "" && c.Rate > 0 }

// receiveEvent is the event the relay arrives under.
func (c Config) receiveEvent() string {
	if c.ReceiveEvent != "" {
		return c.ReceiveEvent
	}
	return c.Event
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	switch {
	case c.Rate < 0 || c.Rate != c.Rate || c.Rate > 10000:
		return fmt.Errorf("SOAK_FANOUT_RATE: must be in [0, 10000], got %v", c.Rate)
	case c.Timeout <= 0:
		return fmt.Errorf("SOAK_FANOUT_TIMEOUT: must be > 0, got %q", c.Timeout)
	case c.IDField == "":
		return errors.New("SOAK_FANOUT_ID_FIELD: must not be empty")
	}
	if c.Payload != "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.Payload), &obj); err != nil || obj == nil {
			return errors.New("SOAK_FANOUT_PAYLOAD: must be a JSON object")
		}
		if _, ok := jsonpath.Lookup([]byte(c.Payload), c.IDField); ok {
			return fmt.Errorf("SOAK_FANOUT_PAYLOAD: holds %q already; the agent writes the message id there (SOAK_FANOUT_ID_FIELD)", c.IDField)
		}
	}
	if c.JoinPayload != "" && !json.Valid([]byte(c.JoinPayload)) {
		return errors.New("SOAK_FANOUT_JOIN_PAYLOAD: must be JSON")
	}
	if c.JoinPayload != "" && c.JoinEvent == "" {
		return errors.New("SOAK_FANOUT_JOIN_EVENT: required with SOAK_FANOUT_JOIN_PAYLOAD")
	}
	return nil
}

// Probe is the fan-out probe over every pool of the agent. At the
// configured rate, the next connected client (round robin over all pools'
// slots) emits a message; every other client connected (and joined) when it
// was sent is expected to receive it.
//
// Book-keeping: messages live in a ring sized for rate*timeout (plus
// margin), allocated once. Each message holds two bitsets over the agent's
// slot indexes (each pool's slots occupy a 64-aligned range): the expected
// receivers, set at send time from the slots' current sessions, and the
// receivers that got it. A delivery costs one map-free lookup (id modulo the
// ring size) and one bit test-and-set under a mutex: nothing is allocated per
// receiver. A session that started dialling after the send is not the one
// that was expected (the slot reconnected) and its copy does not count.
// Expected, delivered and lost are counted when a message resolves, at its
// timeout, so that expected = delivered + lost holds exactly at all times
// for every (sender target, receiver target) pair; latency is observed at
// arrival. A copy that arrives after its message resolved is ignored. Memory
// is 2 * slots/8 bytes per message in the ring (10,000 clients at 10/s with a
// 5 s timeout: about 170 KB).
type Probe struct {
	cfg  Config
	m    *metrics
	log  *zap.Logger
	now  func() time.Time
	head map[string]json.RawMessage // the payload's other fields, nil for the default

	members []*member // guarded by mu until Run, read-only after
	started atomic.Bool
	paused  atomic.Bool
	words   int // bitset words per message
	joinMu  sync.Mutex
	joinQ   []*sessionState // sessions waiting for their join step
	joinSig chan struct{}   // a session joined the queue

	mu     sync.Mutex
	ring   []message
	nextID uint64 // id of the next message; ids start at 1
	oldest uint64 // oldest unresolved id
	rr     int    // round-robin position over the global slot index
}

// member is the fan-out probe's part in one pool.
type member struct {
	f      *Probe
	idx    int
	id     pool.ID
	pool   *pool.Pool
	base   int // first bit of the pool's slots
	size   int // slots covered (the pool's size, 64-aligned)
	sender *senderMetrics
	pairs  []*pairMetrics // by sender member index; this member receives
	joins  *tracker.Tracker
}

// sessionState is a session's part in the fan-out.
type sessionState struct {
	joined atomic.Bool   // may send and is expected to receive
	acks   *tracker.Conn // the join's ack, with a join step
	m      *member
	s      *pool.Session
}

type message struct {
	id        uint64
	active    bool
	sender    int // member index
	sent      time.Time
	expected  []uint64
	delivered []uint64
}

// New returns the fan-out probe, or nil when cfg disables it. Pools attach
// it; then Run drives it.
func New(cfg Config, d pool.Deps) (*Probe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
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
	f := &Probe{cfg: cfg, m: m, log: log, now: now, nextID: 1, oldest: 1, joinSig: make(chan struct{}, 1)}
	if cfg.Payload != "" {
		_ = json.Unmarshal([]byte(cfg.Payload), &f.head) // validated
	}
	return f, nil
}

// Name implements pool.Probe.
func (f *Probe) Name() string { return Name }

// Attach makes p one of the fan-out's pools.
func (f *Probe) Attach(p *pool.Pool, id pool.ID) (pool.Part, error) {
	if f.started.Load() {
		return nil, errors.New("fanout: already running; attach every pool before Run")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	base := 0
	if n := len(f.members); n > 0 {
		base = f.members[n-1].base + f.members[n-1].size
	}
	target := p.Target().Name
	fm := &member{
		f: f, idx: len(f.members), id: id, pool: p, base: base,
		size:   (p.Desired() + 63) &^ 63,
		sender: f.m.sender(target),
	}
	if f.cfg.JoinEvent != "" {
		fm.joins = tracker.New(f.cfg.Timeout, time.Minute, f.now, f.m.joinSink(target))
	}
	f.members = append(f.members, fm)
	// Complete the pair matrix, so that every series exists from the start.
	for _, r := range f.members {
		for len(r.pairs) < len(f.members) {
			r.pairs = append(r.pairs, f.m.pair(f.members[len(r.pairs)].pool.Target().Name, r.pool.Target().Name))
		}
	}
	return fm, nil
}

// Pause stops (true) or resumes (false) sending; messages sent are still
// resolved.
func (f *Probe) Pause(paused bool) { f.paused.Store(paused) }

// InFlight is the number of messages sent and not yet resolved.
func (f *Probe) InFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int(f.nextID - f.oldest)
}

// Run sends at the configured rate, runs the join steps, and resolves
// messages at their timeout until ctx ends; unresolved messages are then
// dropped uncounted.
func (f *Probe) Run(ctx context.Context) error {
	interval := time.Duration(float64(time.Second) / f.cfg.Rate)
	send := time.NewTicker(max(interval, time.Microsecond))
	defer send.Stop()
	sweep := time.NewTicker(max(time.Millisecond, min(sweepInterval, f.cfg.Timeout/2)))
	defer sweep.Stop()
	return f.run(ctx, send.C, sweep.C)
}

func (f *Probe) run(ctx context.Context, send, sweep <-chan time.Time) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("fanout: already running")
	}
	if err := f.allocate(); err != nil {
		return err
	}
	f.log.Info("fan-out probe started", zap.String("event", f.cfg.Event), zap.String("receive_event", f.cfg.receiveEvent()),
		zap.Float64("rate", f.cfg.Rate), zap.Int("pools", len(f.members)), zap.Int("ring", len(f.ring)))
	var wg sync.WaitGroup
	defer wg.Wait()
	if f.cfg.JoinEvent != "" {
		wg.Add(1)
		go func() { defer wg.Done(); f.joinLoop(ctx) }()
	}
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-send:
			if !f.paused.Load() {
				buf = f.send(ctx, buf)
			}
		case <-sweep:
			now := f.now()
			f.resolve(now, false)
			for _, fm := range f.members {
				if fm.joins != nil {
					fm.joins.Sweep(now)
				}
			}
		}
	}
}

// allocate sizes the ring once every pool is attached.
func (f *Probe) allocate() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.members) == 0 {
		return errors.New("fanout: no pools")
	}
	last := f.members[len(f.members)-1]
	f.words = (last.base + last.size) / 64
	n := int(math.Ceil(f.cfg.Rate*(f.cfg.Timeout+2*sweepInterval).Seconds())) + 16
	f.ring = make([]message, min(n, 1<<16))
	for i := range f.ring {
		f.ring[i].expected = make([]uint64, f.words)
		f.ring[i].delivered = make([]uint64, f.words)
	}
	return nil
}

// joinLoop emits the join event of every session handed over by Open.
func (f *Probe) joinLoop(ctx context.Context) {
	var payload []json.RawMessage
	if f.cfg.JoinPayload != "" {
		payload = []json.RawMessage{json.RawMessage(f.cfg.JoinPayload)}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.joinSig:
		}
		f.joinMu.Lock()
		queue := f.joinQ
		f.joinQ = nil
		f.joinMu.Unlock()
		for _, st := range queue {
			ack := st.acks.Register(f.now(), st)
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
			if err := st.s.EmitAck(wctx, st.m.id, ack, f.cfg.JoinEvent, payload...); err != nil {
				f.log.Debug("fan-out join emit failed", zap.Error(err))
			}
			cancel()
		}
	}
}

// Check implements tracker.Waiter for the join: any ack will do.
func (st *sessionState) Check([]json.RawMessage) bool { return true }

// Done implements tracker.Waiter: an acked join makes the session a member.
func (st *sessionState) Done(answered, _ bool, _ []json.RawMessage) {
	if answered {
		st.joined.Store(true)
	}
}

// current returns the slot's session if it takes part in the fan-out now.
func (fm *member) current(i int) *pool.Session {
	s := fm.pool.Session(i)
	if s == nil || !s.State(fm.id).(*sessionState).joined.Load() {
		return nil
	}
	return s
}

// pick returns the next taking part client in round-robin order.
func (f *Probe) pick() (*member, int, *pool.Session) {
	total := f.words * 64
	for range total {
		g := f.rr
		f.rr = (f.rr + 1) % total
		for _, fm := range f.members {
			if g < fm.base || g >= fm.base+fm.size {
				continue
			}
			if s := fm.current(g - fm.base); s != nil {
				return fm, g, s
			}
		}
	}
	return nil, 0, nil
}

// send emits one message and returns buf for reuse.
func (f *Probe) send(ctx context.Context, buf []byte) []byte {
	f.mu.Lock()
	fm, senderBit, sess := f.pick()
	if fm == nil {
		f.mu.Unlock()
		f.members[0].sender.sendFailures.Inc()
		return buf
	}
	now := f.now()
	id := f.nextID
	e := &f.ring[id%uint64(len(f.ring))]
	if e.active { // the ring is full: the agent stalled for longer than the timeout
		f.resolveLocked(now, true, 1)
	}
	f.nextID++
	e.id, e.active, e.sender, e.sent = id, true, fm.idx, now
	clear(e.expected)
	clear(e.delivered)
	for _, r := range f.members {
		for i := range min(r.pool.Desired(), r.size) {
			if g := r.base + i; g != senderBit && r.current(i) != nil {
				e.expected[g>>6] |= 1 << (g & 63)
			}
		}
	}
	f.mu.Unlock()

	buf = f.appendPayload(buf[:0], id, now)
	// Not tied to ctx: a write context that ends mid-write makes
	// coder/websocket close the connection (see pool.Stream).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
	err := sess.Emit(wctx, f.cfg.Event, buf)
	cancel()
	if err != nil {
		// Not sent: forget it rather than count its receivers as lost.
		f.mu.Lock()
		if e.id == id && e.active {
			e.active = false
			if f.oldest == id {
				f.advanceLocked()
			}
		}
		f.mu.Unlock()
		fm.sender.sendFailures.Inc()
		f.log.Debug("fan-out emit failed", zap.Error(err))
		return buf
	}
	fm.sender.sent.Inc()
	return buf
}

// appendPayload writes message id: {"id":N,"t":UNIX_MS} by default, or the
// configured object with the id added under the id field's path.
func (f *Probe) appendPayload(b []byte, id uint64, now time.Time) []byte {
	if f.head == nil && f.cfg.IDField == "id" {
		b = append(b, `{"id":`...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, now.UnixMilli(), 10)
		return append(b, '}')
	}
	obj := make(map[string]any, len(f.head)+2)
	for k, v := range f.head {
		obj[k] = v
	}
	if _, ok := obj["t"]; !ok && f.head == nil {
		obj["t"] = now.UnixMilli()
	}
	setPath(obj, f.cfg.IDField, id)
	out, err := json.Marshal(obj)
	if err != nil {
		return b
	}
	return append(b, out...)
}

// setPath sets a dotted path in nested objects, creating them.
func setPath(obj map[string]any, path string, v any) {
	for {
		i := indexDot(path)
		if i < 0 {
			obj[path] = v
			return
		}
		next, ok := obj[path[:i]].(map[string]any)
		if !ok {
			next = map[string]any{}
			if raw, isRaw := obj[path[:i]].(json.RawMessage); isRaw {
				_ = json.Unmarshal(raw, &next)
			}
			obj[path[:i]] = next
		}
		obj, path = next, path[i+1:]
	}
}

func indexDot(s string) int {
	for i := range len(s) {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// advanceLocked moves oldest past messages that are no longer active.
func (f *Probe) advanceLocked() {
	for f.oldest < f.nextID && !f.ring[f.oldest%uint64(len(f.ring))].active {
		f.oldest++
	}
}

// resolve counts the messages whose timeout has passed (all, with force).
func (f *Probe) resolve(now time.Time, force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolveLocked(now, force, -1)
}

// resolveLocked resolves due messages, oldest first; limit < 0 means all due.
func (f *Probe) resolveLocked(now time.Time, force bool, limit int) {
	for ; f.oldest < f.nextID && limit != 0; f.oldest++ {
		e := &f.ring[f.oldest%uint64(len(f.ring))]
		if !e.active {
			continue
		}
		if !force && now.Sub(e.sent) < f.cfg.Timeout {
			return
		}
		e.active = false
		limit--
		for _, r := range f.members {
			var exp, del int
			for w := r.base / 64; w < (r.base+r.size)/64; w++ {
				exp += bits.OnesCount64(e.expected[w])
				del += bits.OnesCount64(e.expected[w] & e.delivered[w])
			}
			if exp == 0 {
				continue
			}
			pm := r.pairs[e.sender]
			pm.expected.Add(float64(exp))
			pm.delivered.Add(float64(del))
			if exp > del {
				pm.lost.Add(float64(exp - del))
			}
		}
	}
}

// Events implements pool.Part.
func (fm *member) Events() []string { return []string{fm.f.cfg.receiveEvent()} }

// Init implements pool.Part: without a join step a session takes part as
// soon as it is established.
func (fm *member) Init(s *pool.Session) any {
	st := &sessionState{m: fm, s: s}
	if fm.joins != nil {
		st.acks = fm.joins.NewConn()
	}
	return st
}

// Open implements pool.Part.
func (fm *member) Open(s *pool.Session) {
	st := s.State(fm.id).(*sessionState)
	if fm.joins == nil {
		st.joined.Store(true)
		return
	}
	f := fm.f
	f.joinMu.Lock()
	f.joinQ = append(f.joinQ, st)
	f.joinMu.Unlock()
	select {
	case f.joinSig <- struct{}{}:
	default:
	}
}

// Close implements pool.Part.
func (fm *member) Close(s *pool.Session, _ probe.DisconnectReason) {
	s.State(fm.id).(*sessionState).joined.Store(false)
}

// Ack implements pool.Part: the join's ack.
func (fm *member) Ack(s *pool.Session, id uint64, args []json.RawMessage) {
	if st := s.State(fm.id).(*sessionState); st.acks != nil {
		st.acks.Ack(id, args)
	}
}

// Event implements pool.Part: one copy of a message received by session
// sess of the member's slot.
func (fm *member) Event(sess *pool.Session, _ string, args []json.RawMessage) {
	if len(args) == 0 {
		return
	}
	id, ok := fm.f.messageID(args[0])
	if !ok {
		return
	}
	fm.deliver(sess, id)
}

func (fm *member) deliver(sess *pool.Session, id uint64) {
	i := sess.Slot()
	if i >= fm.size {
		return
	}
	f := fm.f
	now := f.now()
	g := fm.base + i
	f.mu.Lock()
	if len(f.ring) == 0 {
		f.mu.Unlock()
		return
	}
	e := &f.ring[id%uint64(len(f.ring))]
	w, bit := g>>6, uint64(1)<<(g&63)
	if !e.active || e.id != id || e.expected[w]&bit == 0 || e.delivered[w]&bit != 0 || sess.DialStart().After(e.sent) {
		f.mu.Unlock()
		return // resolved already, not expected here, a repeat, or a later session of the slot
	}
	e.delivered[w] |= bit
	lat := now.Sub(e.sent).Seconds()
	pm := fm.pairs[e.sender]
	f.mu.Unlock()
	pm.latency.Observe(lat)
}

// messageID reads the id of a relayed message: {"id":N,...} as the agent
// wrote it by default (fast path), or the id field of any JSON object.
func (f *Probe) messageID(raw json.RawMessage) (uint64, bool) {
	if f.cfg.IDField == "id" {
		const prefix = `{"id":`
		if len(raw) > len(prefix) && string(raw[:len(prefix)]) == prefix {
			var id uint64
			i := len(prefix)
			for ; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
				id = id*10 + uint64(raw[i]-'0')
			}
			if i > len(prefix) && i < len(raw) && (raw[i] == ',' || raw[i] == '}') && id > 0 {
				return id, true
			}
		}
	}
	v, ok := jsonpath.Lookup(raw, f.cfg.IDField)
	if !ok {
		return 0, false
	}
	id, ok := jsonpath.Int(v)
	return uint64(id), ok && id > 0
}
