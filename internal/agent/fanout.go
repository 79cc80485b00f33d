package agent

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

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// FanoutConfig configures the fan-out probe.
type FanoutConfig struct {
	Event   string        `envconfig:"FANOUT_EVENT" default:"publish" desc:"Event a pool client emits for the fan-out probe ({\"id\":N,\"t\":UNIX_MS}); the server must relay it, under the same name, to the other clients (empty disables the probe)."`
	Rate    float64       `envconfig:"FANOUT_RATE" default:"0" desc:"Fan-out messages per second over the whole agent, sent by the connected clients in turn (0 disables the probe)."`
	Timeout time.Duration `envconfig:"FANOUT_TIMEOUT" default:"5s" desc:"An expected fan-out delivery that has not arrived this long after the send counts as lost."`
}

// Enabled reports whether the fan-out probe runs.
func (c FanoutConfig) Enabled() bool { return c.Event != "" && c.Rate > 0 }

// Validate checks the configuration; errors name the variable.
func (c FanoutConfig) Validate() error {
	switch {
	case c.Rate < 0 || c.Rate != c.Rate || c.Rate > 10000:
		return fmt.Errorf("SOAK_FANOUT_RATE: must be in [0, 10000], got %v", c.Rate)
	case c.Timeout <= 0:
		return fmt.Errorf("SOAK_FANOUT_TIMEOUT: must be > 0, got %q", c.Timeout)
	}
	return nil
}

// Fanout is the fan-out probe over every pool of the agent. At the
// configured rate, the next connected client (round robin over all pools'
// slots) emits {"id":N,"t":UNIX_MS}; every other client connected when it
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
type Fanout struct {
	cfg FanoutConfig
	m   *probe.FanoutMetrics
	log *zap.Logger
	now func() time.Time

	members []*fanoutMember // guarded by mu until Run, read-only after
	started atomic.Bool
	paused  atomic.Bool
	words   int // bitset words per message

	mu     sync.Mutex
	ring   []fanoutMsg
	nextID uint64 // id of the next message; ids start at 1
	oldest uint64 // oldest unresolved id
	rr     int    // round-robin position over the global slot index
}

type fanoutMember struct {
	f      *Fanout
	idx    int
	pool   *Pool
	base   int // first bit of the pool's slots
	size   int // slots covered (the pool's size when attached, 64-aligned)
	sender *probe.FanoutSenderMetrics
	pairs  []*probe.FanoutPairMetrics // by sender member index; this member receives
}

type fanoutMsg struct {
	id        uint64
	active    bool
	sender    int // member index
	sent      time.Time
	expected  []uint64
	delivered []uint64
}

// NewFanout returns the fan-out probe, or nil when cfg disables it. Pools
// join it through Options.Fanout; then Run drives it.
func NewFanout(cfg FanoutConfig, m *probe.FanoutMetrics, log *zap.Logger, now func() time.Time) (*Fanout, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	if m == nil {
		return nil, errors.New("agent: fan-out metrics are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	return &Fanout{cfg: cfg, m: m, log: log, now: now, nextID: 1, oldest: 1}, nil
}

// attach makes p one of the fan-out's pools. Slots the pool gains by a later
// Resize beyond its size now take no part.
func (f *Fanout) attach(p *Pool) (*fanoutMember, error) {
	if f.started.Load() {
		return nil, errors.New("agent: fan-out already running; create every pool before Run")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	base := 0
	if n := len(f.members); n > 0 {
		base = f.members[n-1].base + f.members[n-1].size
	}
	fm := &fanoutMember{
		f: f, idx: len(f.members), pool: p, base: base,
		size:   (p.Desired() + 63) &^ 63,
		sender: f.m.Sender(p.target.Name),
	}
	f.members = append(f.members, fm)
	// Complete the pair matrix, so that every series exists from the start.
	for _, r := range f.members {
		for len(r.pairs) < len(f.members) {
			r.pairs = append(r.pairs, f.m.Pair(f.members[len(r.pairs)].pool.target.Name, r.pool.target.Name))
		}
	}
	return fm, nil
}

// Pause stops (true) or resumes (false) sending; messages sent are still
// resolved.
func (f *Fanout) Pause(paused bool) { f.paused.Store(paused) }

// InFlight is the number of messages sent and not yet resolved.
func (f *Fanout) InFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int(f.nextID - f.oldest)
}

// Run sends at the configured rate and resolves messages at their timeout
// until ctx ends; unresolved messages are then dropped uncounted.
func (f *Fanout) Run(ctx context.Context) error {
	interval := time.Duration(float64(time.Second) / f.cfg.Rate)
	send := time.NewTicker(max(interval, time.Microsecond))
	defer send.Stop()
	sweep := time.NewTicker(max(time.Millisecond, min(sweepInterval, f.cfg.Timeout/2)))
	defer sweep.Stop()
	return f.run(ctx, send.C, sweep.C)
}

func (f *Fanout) run(ctx context.Context, send, sweep <-chan time.Time) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("agent: fan-out already running")
	}
	f.mu.Lock()
	if len(f.members) == 0 {
		f.mu.Unlock()
		return errors.New("agent: fan-out has no pools")
	}
	last := f.members[len(f.members)-1]
	f.words = (last.base + last.size) / 64
	n := int(math.Ceil(f.cfg.Rate*(f.cfg.Timeout+2*sweepInterval).Seconds())) + 16
	f.ring = make([]fanoutMsg, min(n, 1<<16))
	for i := range f.ring {
		f.ring[i].expected = make([]uint64, f.words)
		f.ring[i].delivered = make([]uint64, f.words)
	}
	f.mu.Unlock()
	f.log.Info("fan-out probe started", zap.String("event", f.cfg.Event), zap.Float64("rate", f.cfg.Rate),
		zap.Int("pools", len(f.members)), zap.Int("ring", len(f.ring)))
	buf := make([]byte, 0, 64)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-send:
			if !f.paused.Load() {
				buf = f.send(ctx, buf)
			}
		case <-sweep:
			f.resolve(f.now(), false)
		}
	}
}

// pick returns the next connected client in round-robin order.
func (f *Fanout) pick() (*fanoutMember, int, *session) {
	total := f.words * 64
	for range total {
		g := f.rr
		f.rr = (f.rr + 1) % total
		for _, fm := range f.members {
			if g < fm.base || g >= fm.base+fm.size {
				continue
			}
			slots := *fm.pool.snapshot.Load()
			if i := g - fm.base; i < len(slots) {
				if sess := slots[i].cur.Load(); sess != nil {
					return fm, g, sess
				}
			}
		}
	}
	return nil, 0, nil
}

// send emits one message and returns buf for reuse.
func (f *Fanout) send(ctx context.Context, buf []byte) []byte {
	f.mu.Lock()
	fm, senderBit, sess := f.pick()
	if fm == nil {
		f.mu.Unlock()
		f.members[0].sender.SendFailures.Inc()
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
		slots := *r.pool.snapshot.Load()
		for i := range min(len(slots), r.size) {
			if g := r.base + i; g != senderBit && slots[i].cur.Load() != nil {
				e.expected[g>>6] |= 1 << (g & 63)
			}
		}
	}
	f.mu.Unlock()

	buf = append(buf[:0], `{"id":`...)
	buf = strconv.AppendUint(buf, id, 10)
	buf = append(buf, `,"t":`...)
	buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
	buf = append(buf, '}')
	// Not tied to ctx: a write context that ends mid-write makes
	// coder/websocket close the connection (see Pool.sendLoop).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
	err := sess.conn.Emit(wctx, f.cfg.Event, probe.NoAck, buf)
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
		fm.sender.SendFailures.Inc()
		f.log.Debug("fan-out emit failed", zap.Error(err))
		return buf
	}
	fm.sender.Sent.Inc()
	return buf
}

// advanceLocked moves oldest past messages that are no longer active.
func (f *Fanout) advanceLocked() {
	for f.oldest < f.nextID && !f.ring[f.oldest%uint64(len(f.ring))].active {
		f.oldest++
	}
}

// resolve counts the messages whose timeout has passed (all, with force).
func (f *Fanout) resolve(now time.Time, force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolveLocked(now, force, -1)
}

// resolveLocked resolves due messages, oldest first; limit < 0 means all due.
func (f *Fanout) resolveLocked(now time.Time, force bool, limit int) {
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
			pm.Expected.Add(float64(exp))
			pm.Delivered.Add(float64(del))
			if exp > del {
				pm.Lost.Add(float64(exp - del))
			}
		}
	}
}

// deliver accounts one copy of a fan-out message received by session sess
// of the member's slot s.
func (fm *fanoutMember) deliver(s *slot, sess *session, args []json.RawMessage) {
	if len(args) == 0 || s.idx >= fm.size {
		return
	}
	id, ok := fanoutID(args[0])
	if !ok {
		return
	}
	f := fm.f
	now := f.now()
	g := fm.base + s.idx
	f.mu.Lock()
	if len(f.ring) == 0 {
		f.mu.Unlock()
		return
	}
	e := &f.ring[id%uint64(len(f.ring))]
	w, bit := g>>6, uint64(1)<<(g&63)
	if !e.active || e.id != id || e.expected[w]&bit == 0 || e.delivered[w]&bit != 0 || sess.dialStart.After(e.sent) {
		f.mu.Unlock()
		return // resolved already, not expected here, a repeat, or a later session of the slot
	}
	e.delivered[w] |= bit
	lat := now.Sub(e.sent).Seconds()
	pm := fm.pairs[e.sender]
	f.mu.Unlock()
	pm.Latency.Observe(lat)
}

// fanoutID reads the id of a fan-out payload: {"id":N,...} as the agent
// wrote it (fast path), or any JSON object with an integer id field.
func fanoutID(raw json.RawMessage) (uint64, bool) {
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
	fields, ok := objectFields(raw)
	if !ok {
		return 0, false
	}
	v, ok := intValue(fields["id"])
	return uint64(v), ok && v > 0
}
