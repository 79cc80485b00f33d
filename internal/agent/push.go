package agent

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// PushConfig configures the server-push probe: every pool client listens for
// a server event whose first argument is a JSON object carrying an integer
// sequence number and, optionally, the server's send time.
//
// The probe expects one sequence per server process, shared by all the
// clients it pushes to (a broadcast carries the same number to everyone), so
// that a gap means the same thing for every client. Per client session:
// a number more than one above the newest seen counts the numbers in between
// as lost; the newest number again counts as duplicated; a number below the
// newest counts as out of order (a lost number that turns up late is thus
// counted both lost and out of order). A new session (reconnect) starts a new
// baseline: the numbers between the previous session's newest and the new
// session's first are counted as missed, not lost; a first number at or below
// the previous newest (the server restarted its sequence) counts nothing.
type PushConfig struct {
	Event       string `envconfig:"PUSH_EVENT" default:"" desc:"Server event the push probe listens for (empty disables it); its first argument is a JSON object with a sequence field."`
	SeqField    string `envconfig:"PUSH_SEQ_FIELD" default:"seq" desc:"Field of the push event's object holding the server's sequence number (integer, one sequence per server process)."`
	TimeField   string `envconfig:"PUSH_TIME_FIELD" default:"ts" desc:"Field of the push event's object holding the server's send time in Unix milliseconds (optional; used only with SOAK_PUSH_CLOCK_SHARED)."`
	ClockShared bool   `envconfig:"PUSH_CLOCK_SHARED" default:"false" desc:"Set when the agent and the server share a clock (sidecar, same host): only then is the one-way push latency observed."`
}

// Enabled reports whether the push probe runs.
func (c PushConfig) Enabled() bool { return c.Event != "" }

// Validate checks the configuration; errors name the variable.
func (c PushConfig) Validate() error {
	if c.Enabled() && c.SeqField == "" {
		return fmt.Errorf("SOAK_PUSH_SEQ_FIELD: must not be empty when SOAK_PUSH_EVENT is set")
	}
	if c.Enabled() && c.ClockShared && c.TimeField == "" {
		return fmt.Errorf("SOAK_PUSH_TIME_FIELD: must not be empty when SOAK_PUSH_CLOCK_SHARED is set")
	}
	return nil
}

// Push is the server-push probe shared by the pools; each pool takes its
// target's part when it is created (Options.Push).
type Push struct {
	cfg PushConfig
	m   *probe.PushMetrics
}

// NewPush returns the push probe, or nil when cfg disables it.
func NewPush(cfg PushConfig, m *probe.PushMetrics) (*Push, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	if m == nil {
		return nil, fmt.Errorf("agent: push metrics are required")
	}
	return &Push{cfg: cfg, m: m}, nil
}

// pushProbe is the push probe of one pool.
type pushProbe struct {
	cfg PushConfig
	m   *probe.PushTargetMetrics
	now func() time.Time
}

func (pu *Push) forTarget(target string, now func() time.Time) *pushProbe {
	return &pushProbe{cfg: pu.cfg, m: pu.m.For(target), now: now}
}

// pushSlot is a slot's push state across its sessions. Sessions of a slot
// follow each other, but the lock keeps that from being a hidden assumption.
type pushSlot struct {
	mu   sync.Mutex
	sess *session // session whose numbers last is about
	last int64    // newest sequence number seen by sess
}

// observe accounts one push event received by session sess of a slot.
func (pp *pushProbe) observe(ps *pushSlot, sess *session, args []json.RawMessage) {
	if len(args) == 0 {
		pp.m.Malformed.Inc()
		return
	}
	fields, ok := objectFields(args[0])
	if !ok {
		pp.m.Malformed.Inc()
		return
	}
	seq, ok := intValue(fields[pp.cfg.SeqField])
	if !ok {
		pp.m.Malformed.Inc()
		return
	}
	pp.m.Received.Inc()
	if pp.cfg.ClockShared {
		if ts, ok := intValue(fields[pp.cfg.TimeField]); ok {
			lat := pp.now().Sub(time.UnixMilli(ts)).Seconds()
			pp.m.Latency.Observe(math.Max(0, lat)) // a skewed clock reads as 0, never negative
		}
	}

	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.sess != sess {
		// A new session: new baseline; what passed while reconnecting is missed.
		if ps.sess != nil && seq > ps.last+1 {
			pp.m.Missed.Add(float64(seq - ps.last - 1))
		}
		ps.sess, ps.last = sess, seq
		return
	}
	switch {
	case seq == ps.last:
		pp.m.Duplicated.Inc()
	case seq < ps.last:
		pp.m.OutOfOrder.Inc()
	default:
		if gap := seq - ps.last - 1; gap > 0 {
			pp.m.Lost.Add(float64(gap))
		}
		ps.last = seq
	}
}

// objectFields splits a JSON object into its fields.
func objectFields(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// intValue reads a JSON number (an integer, possibly written as a float such
// as 1.7e12) as an int64.
func intValue(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	if v, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, false
	}
	return int64(f), true
}

// onEvent routes a server event of session sess of slot s to the probes.
func (p *Pool) onEvent(s *slot, sess *session, name string, args []json.RawMessage) {
	if p.push != nil && name == p.push.cfg.Event {
		p.push.observe(&s.push, sess, args)
	}
	if p.fanout != nil && name == p.fanout.f.cfg.Event {
		p.fanout.deliver(s, sess, args)
	}
}
