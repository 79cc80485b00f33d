// Package push is the server-push probe: every pool client listens for a
// server event carrying a per-process sequence number, and gaps, repeats and
// reorderings are counted per client session.
package push

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/generic-corp/soak-exporter/internal/jsonpath"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
)

// Config configures the server-push probe: every pool client listens for
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
type Config struct {
	Event       string `envconfig:"PUSH_EVENT" default:"" desc:"Server event the push probe listens for (empty disables it); its first argument is a JSON object with a sequence field."`
	SeqField    string `envconfig:"PUSH_SEQ_FIELD" default:"seq" desc:"Field (dotted path allowed) of the push event's object holding the server's sequence number (integer, one sequence per server process)."`
	TimeField   string `envconfig:"PUSH_TIME_FIELD" default:"ts" desc:"Field (dotted path allowed) of the push event's object holding the server's send time in Unix milliseconds (optional; used only with SOAK_PUSH_CLOCK_SHARED)."`
	ClockShared bool   `envconfig:"PUSH_CLOCK_SHARED" default:"false" desc:"Set when the agent and the server share a clock (sidecar, same host): only then is the one-way push latency observed."`
}

// Enabled reports whether the push probe runs.
func (c Config) Enabled() bool { return c.Event != "" }

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	if c.Enabled() && c.SeqField == "" {
		return fmt.Errorf("SOAK_PUSH_SEQ_FIELD: must not be empty when SOAK_PUSH_EVENT is set")
	}
	if c.Enabled() && c.ClockShared && c.TimeField == "" {
		return fmt.Errorf("SOAK_PUSH_TIME_FIELD: must not be empty when SOAK_PUSH_CLOCK_SHARED is set")
	}
	return nil
}

// Name is the probe's name.
const Name = "push"

// Probe is the server-push probe of an agent.
type Probe struct {
	cfg Config
	m   *metrics
	now func() time.Time
}

// New returns the push probe, or nil when cfg disables it.
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
	return &Probe{cfg: cfg, m: m, now: d.Now}, nil
}

// Name implements pool.Probe.
func (pr *Probe) Name() string { return Name }

// Run has nothing to drive: the probe only listens.
func (pr *Probe) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Attach implements pool.Probe.
func (pr *Probe) Attach(p *pool.Pool, _ pool.ID) (pool.Part, error) {
	return &part{cfg: pr.cfg, m: pr.m.forTarget(p.Target().Name), now: pr.now, slots: make([]slotState, p.Desired())}, nil
}

// part is the push probe of one pool.
type part struct {
	cfg   Config
	m     *targetMetrics
	now   func() time.Time
	slots []slotState // by slot: the push state outlives a session
}

func (pt *part) Events() []string                             { return []string{pt.cfg.Event} }
func (pt *part) Init(*pool.Session) any                       { return nil }
func (pt *part) Open(*pool.Session)                           {}
func (pt *part) Ack(*pool.Session, uint64, []json.RawMessage) {}
func (pt *part) Close(*pool.Session, probe.DisconnectReason)  {}
func (pt *part) Event(s *pool.Session, _ string, args []json.RawMessage) {
	pt.observe(&pt.slots[s.Slot()], s, args)
}

// slotState is a slot's push state across its sessions. Sessions of a slot
// follow each other, but the lock keeps that from being a hidden assumption.
type slotState struct {
	mu   sync.Mutex
	sess *pool.Session // session whose numbers last is about
	last int64         // newest sequence number seen by sess
}

// observe accounts one push event received by session sess of a slot.
func (pp *part) observe(ps *slotState, sess *pool.Session, args []json.RawMessage) {
	if len(args) == 0 {
		pp.m.Malformed.Inc()
		return
	}
	if len(args[0]) == 0 || args[0][0] != '{' {
		pp.m.Malformed.Inc()
		return
	}
	seq, ok := number(args[0], pp.cfg.SeqField)
	if !ok {
		pp.m.Malformed.Inc()
		return
	}
	pp.m.Received.Inc()
	if pp.cfg.ClockShared {
		if ts, ok := number(args[0], pp.cfg.TimeField); ok {
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

// number reads the integer at path in an event's object; a JSON string
// is not a number here (the sequence must be one).
func number(arg json.RawMessage, path string) (int64, bool) {
	raw, ok := jsonpath.Lookup(arg, path)
	if !ok || raw[0] == '"' {
		return 0, false
	}
	return jsonpath.Int(raw)
}
