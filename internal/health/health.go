package health

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

const (
	// windowSeconds is the length of the rolling window, one bucket a second.
	windowSeconds = 601 // 600 closed seconds and the current one
	// maxReasons bounds the distinct connect-failure and disconnect reasons
	// kept per target; later ones count under "other".
	maxReasons = 12
	// maxSteps bounds the distinct (probe, step) pairs kept per target.
	maxSteps = 12
	// maxTargets bounds the targets kept; events of later ones are ignored.
	maxTargets = 64
	otherName  = "other"
	// allDownGrace is how long all clients must be down before the warning
	// (a pool that is still dialling at start is not news).
	allDownGrace = 10 * time.Second
)

// PoolState is what the health window asks of a target's pool.
type PoolState struct {
	Target             string
	Connected, Desired int
	// LastConnectError is the reason and server message of the latest failed
	// attempt (untrusted text: logged as a field, escaped on the page).
	LastConnectReason, LastConnectMessage string
}

// Options are the window's collaborators.
type Options struct {
	// Logger receives the state-change warnings.
	Logger *zap.Logger
	// Pools reports connected and desired clients per target (may be nil).
	Pools func() []PoolState
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Tick drives the rotation of the per-second buckets (one tick a
	// second); a time.Ticker's channel when nil.
	Tick <-chan time.Time
}

type stepCounts struct {
	sent, answered, rejected, lost, late, skipped, dropped uint32
}

type bucket struct {
	attempts, established uint32
	failures              [maxReasons]uint32
	disconnects           [maxReasons]uint32
	steps                 [maxSteps]stepCounts
	latency               sketch
	connect               sketch
}

type stepKey struct{ probe, step string }

type cond struct {
	active   bool
	since    time.Time // start of the current bad (or good) run
	lastLog  time.Time
	muted    int // changes not logged because of the rate limit
	logged   bool
	firing   bool
	lastText string
}

type target struct {
	name string

	mu       sync.Mutex
	buckets  [windowSeconds]bucket
	head     int
	reasons  []string // failure reasons by index
	discs    []string // disconnect reasons by index
	steps    []stepKey
	totalAtt uint64
	conds    map[string]*cond
}

// Health is a pool.Observer that keeps a rolling window per target. Build it
// with New, pass it as the agent's Observer and run it with Run.
type Health struct {
	cfg  Config
	opts Options
	log  *zap.Logger

	mu      sync.RWMutex
	targets map[string]*target
	order   []string

	leakMu sync.Mutex
	leaks  map[string]leakState
}

type leakState struct {
	suspected bool
	reason    string
	since     time.Time
}

var _ pool.Observer = (*Health)(nil)

// New builds a Health. Zero fields of cfg take their defaults (1m, 5m); a
// non-zero cfg should be valid (Validate).
func New(cfg Config, o Options) *Health {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if cfg.WarnAfter <= 0 {
		cfg.WarnAfter = time.Minute
	}
	if cfg.WarnEvery <= 0 {
		cfg.WarnEvery = 5 * time.Minute
	}
	return &Health{cfg: cfg, opts: o, log: o.Logger, targets: map[string]*target{}, leaks: map[string]leakState{}}
}

func (h *Health) target(name string) *target {
	h.mu.RLock()
	t := h.targets[name]
	h.mu.RUnlock()
	if t != nil {
		return t
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t = h.targets[name]; t != nil {
		return t
	}
	if len(h.targets) >= maxTargets {
		return nil
	}
	t = &target{name: name, conds: map[string]*cond{}}
	h.targets[name] = t
	h.order = append(h.order, name)
	sort.Strings(h.order)
	return t
}

func intern(list *[]string, s string) int {
	for i, v := range *list {
		if v == s {
			return i
		}
	}
	if len(*list) < maxReasons-1 {
		*list = append(*list, s)
		return len(*list) - 1
	}
	if len(*list) == maxReasons-1 {
		*list = append(*list, otherName)
	}
	return maxReasons - 1
}

// Connection implements pool.Observer.
func (h *Health) Connection(tname string, e pool.ConnEvent, reason string, took time.Duration) {
	t := h.target(tname)
	if t == nil {
		return
	}
	t.mu.Lock()
	b := &t.buckets[t.head]
	switch e {
	case pool.ConnAttempt:
		b.attempts++
		t.totalAtt++
	case pool.ConnEstablished:
		b.established++
		b.connect.add(took, 1)
	case pool.ConnFailed:
		b.failures[intern(&t.reasons, reason)]++
	case pool.ConnClosed:
		b.disconnects[intern(&t.discs, reason)]++
	}
	t.mu.Unlock()
}

// Event implements pool.Observer.
func (h *Health) Event(tname, probeName, step string, o pool.Outcome, n int, latency time.Duration) {
	t := h.target(tname)
	if t == nil || n <= 0 {
		return
	}
	t.mu.Lock()
	i := -1
	for j, k := range t.steps {
		if k.probe == probeName && k.step == step {
			i = j
			break
		}
	}
	if i < 0 {
		if len(t.steps) < maxSteps {
			t.steps = append(t.steps, stepKey{probeName, step})
			i = len(t.steps) - 1
		} else {
			i = maxSteps - 1
		}
	}
	b := &t.buckets[t.head]
	s := &b.steps[i]
	c := uint32(n)
	switch o {
	case pool.OutcomeSent:
		s.sent += c
	case pool.OutcomeAnswered:
		s.answered += c
		b.latency.add(latency, c)
	case pool.OutcomeRejected:
		s.rejected += c
		b.latency.add(latency, c)
	case pool.OutcomeLost:
		s.lost += c
	case pool.OutcomeLate:
		s.late += c
	case pool.OutcomeSkipped:
		s.skipped += c
	case pool.OutcomeDropped:
		s.dropped += c
	}
	t.mu.Unlock()
}

// LeakSuspected records that a memory source is suspected of leaking; the
// lead wires it to the leak monitor. It logs one warning per change.
func (h *Health) LeakSuspected(source, reason string) { h.setLeak(source, true, reason) }

// LeakCleared records that a source is no longer suspected.
func (h *Health) LeakCleared(source, reason string) { h.setLeak(source, false, reason) }

func (h *Health) setLeak(source string, suspected bool, reason string) {
	h.leakMu.Lock()
	defer h.leakMu.Unlock()
	prev, seen := h.leaks[source]
	if seen && prev.suspected == suspected {
		return
	}
	h.leaks[source] = leakState{suspected: suspected, reason: reason, since: h.opts.Now()}
	switch {
	case suspected:
		h.log.Warn("memory leak suspected", zap.String("source", source), zap.String("reason", reason),
			zap.String("alert", AlertLeak), zap.Duration("alert_after", LeakFor))
	case seen:
		h.log.Info("memory leak no longer suspected", zap.String("source", source), zap.String("reason", reason))
	}
}

// Run rotates the buckets once a tick and evaluates the conditions, until ctx
// ends.
func (h *Health) Run(ctx context.Context) error {
	tick := h.opts.Tick
	if tick == nil {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			h.Step()
		}
	}
}

// Step closes the current second: it evaluates the conditions on the window
// and starts a new bucket. Run calls it once a tick; tests may call it.
func (h *Health) Step() {
	now := h.opts.Now()
	pools := h.pools()
	for _, ps := range pools {
		h.target(ps.Target)
	}
	h.mu.RLock()
	ts := make([]*target, 0, len(h.order))
	for _, n := range h.order {
		ts = append(ts, h.targets[n])
	}
	h.mu.RUnlock()
	for _, t := range ts {
		ps := pools[t.name]
		t.mu.Lock()
		f := t.figures(60, 0)
		checks := evaluate(f, ps)
		for _, c := range checks {
			h.transition(t, c, now, ps)
		}
		t.head = (t.head + 1) % windowSeconds
		t.buckets[t.head] = bucket{}
		t.mu.Unlock()
	}
}

func (h *Health) pools() map[string]PoolState {
	out := map[string]PoolState{}
	if h.opts.Pools == nil {
		return out
	}
	for _, p := range h.opts.Pools() {
		out[p.Target] = p
	}
	return out
}

// check is one condition evaluated now.
type check struct {
	alert  string
	bad    bool
	text   string // stated in words when bad, e.g. "p95 latency 402 ms > 200 ms"
	fields []zap.Field
	after  time.Duration // the alert's `for:`
	now    bool          // logged at once rather than after Pending
}

func evaluate(f Figures, ps PoolState) []check {
	var out []check
	down := ps.Desired > 0 && ps.Connected == 0
	out = append(out, check{alert: AlertPoolBelow, bad: ps.Desired > 0 && ps.Connected < ps.Desired,
		text:   fmt.Sprintf("connected %d < desired %d", ps.Connected, ps.Desired),
		fields: []zap.Field{zap.Int("connected", ps.Connected), zap.Int("desired", ps.Desired), zap.Bool("all_down", down)},
		after:  PoolBelowFor, now: down})
	minAttempts := ConnectMinAttemptRate * f.Seconds
	out = append(out, check{alert: AlertConnectSuccess,
		bad:    f.Failures > 0 && float64(f.Attempts) >= minAttempts && !(f.ConnectSuccess >= ConnectSuccessMin),
		text:   fmt.Sprintf("connect success %s < %s", Percent(f.ConnectSuccess), Percent(ConnectSuccessMin)),
		fields: []zap.Field{zap.Int64("attempts", f.Attempts), zap.Int64("failures", f.Failures), zap.Float64("success_ratio", f.ConnectSuccess)},
		after:  ConnectSuccessFor})
	out = append(out, check{alert: AlertConnectLatency,
		bad:    float64(f.Attempts) >= minAttempts && f.ConnectP95 > ConnectP95Max.Seconds(),
		text:   fmt.Sprintf("connect p95 %s > %s", Millis(f.ConnectP95), Millis(ConnectP95Max.Seconds())),
		fields: []zap.Field{zap.Float64("connect_p95_seconds", f.ConnectP95)},
		after:  ConnectP95For})
	out = append(out, check{alert: AlertEventLoss, bad: f.Sent > 0 && f.Loss > EventLossMax,
		text:   fmt.Sprintf("loss %s (%d of %d) > %s", Percent(f.Loss), f.Lost, f.Sent, Percent(EventLossMax)),
		fields: []zap.Field{zap.Int64("lost", f.Lost), zap.Int64("sent", f.Sent), zap.Float64("loss_ratio", f.Loss)},
		after:  EventLossFor})
	out = append(out, check{alert: AlertEventLatency, bad: f.P95 > EventP95Max.Seconds(),
		text:   fmt.Sprintf("p95 latency %s > %s", Millis(f.P95), Millis(EventP95Max.Seconds())),
		fields: []zap.Field{zap.Float64("p95_seconds", f.P95), zap.Float64("p50_seconds", f.P50)},
		after:  EventP95For})
	rate := math.NaN()
	if ps.Desired > 0 && f.Seconds > 0 {
		rate = float64(f.AbnormalDisconnects) * 60 / f.Seconds / float64(ps.Desired)
	}
	out = append(out, check{alert: AlertDisconnects, bad: rate > DisconnectRateMax,
		text:   fmt.Sprintf("abnormal disconnects %s of the pool per minute > %s", Percent(rate), Percent(DisconnectRateMax)),
		fields: []zap.Field{zap.Int64("abnormal_disconnects", f.AbnormalDisconnects)},
		after:  DisconnectRateFor})
	out = append(out, check{alert: AlertOverloaded, bad: f.Dropped > 0,
		text:   fmt.Sprintf("agent dropped %d requests (its own backlog)", f.Dropped),
		fields: []zap.Field{zap.Int64("dropped", f.Dropped)},
		after:  DroppedFor})
	return out
}

// transition moves a condition's state and logs a change, rate-limited: a
// bad state is logged when it has held for WarnAfter (after 10 s for "all clients
// down"), and its recovery only if the bad line was logged.
func (h *Health) transition(t *target, c check, now time.Time, ps PoolState) {
	st := t.conds[c.alert]
	if st == nil {
		st = &cond{}
		t.conds[c.alert] = st
	}
	switch {
	case c.bad:
		st.lastText = c.text
		if st.since.IsZero() {
			st.since = now
		}
		if !st.active && ((c.now && now.Sub(st.since) >= allDownGrace) || now.Sub(st.since) >= h.cfg.WarnAfter) {
			st.active = true
			if st.lastLog.IsZero() || now.Sub(st.lastLog) >= h.cfg.WarnEvery {
				h.logChange(t, c, st, now, ps, true)
				st.logged = true
			} else {
				st.muted++
			}
		}
	case st.active:
		st.active, st.since = false, time.Time{}
		if st.logged {
			h.logChange(t, c, st, now, ps, false)
			st.logged = false
		} else {
			st.muted++
		}
	default:
		st.since = time.Time{}
	}
	st.firing = st.active && now.Sub(st.since) >= c.after
}

func (h *Health) logChange(t *target, c check, st *cond, now time.Time, ps PoolState, bad bool) {
	fields := make([]zap.Field, 0, 8+len(c.fields))
	fields = append(fields, zap.String("target", t.name), zap.String("alert", c.alert))
	if st.muted > 0 {
		fields = append(fields, zap.Int("changes_not_logged", st.muted))
		st.muted = 0
	}
	st.lastLog = now
	if !bad {
		h.log.Info("target recovered: "+c.alert, append(fields, zap.String("was", st.lastText))...)
		return
	}
	fields = append(fields, zap.String("condition", c.text), zap.Duration("alert_after", c.after))
	fields = append(fields, c.fields...)
	if c.alert == AlertConnectSuccess || c.alert == AlertPoolBelow {
		if r := t.topFailures(60, 0); len(r) > 0 {
			fields = append(fields, zap.String("top_reason", r[0].Reason), zap.Int64("top_reason_count", r[0].Count))
		}
		if ps.LastConnectReason != "" {
			fields = append(fields, zap.String("last_reason", ps.LastConnectReason), zap.String("server_message", ps.LastConnectMessage))
		}
	}
	msg := "target unhealthy: " + c.text
	if c.alert == AlertPoolBelow && ps.Connected == 0 {
		msg = "target unhealthy: all clients down"
	}
	h.log.Warn(msg, fields...)
}
