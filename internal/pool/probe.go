package pool

import (
	"context"
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// Probe is one kind of measurement driven through the clients of every
// pool (one pool per target): echo, push, fan-out, scenario. A probe is
// built once per agent; each pool attaches it and talks to its Part. Adding
// a probe means one package implementing this interface and one line in the
// agent's probe table.
type Probe interface {
	// Name names the probe in logs and in the one-shot report.
	Name() string
	// Attach returns the probe's part for one pool. It is called once per
	// pool, before Run; id is the probe's place in the pool, for
	// Session.State and Session.EmitAck.
	Attach(p *Pool, id ID) (Part, error)
	// Run drives the probe (timeouts, agent-wide senders) until ctx ends,
	// then returns once its goroutines are done. A probe with nothing to
	// drive returns when ctx ends.
	Run(ctx context.Context) error
}

// Part is a probe's part in one pool. The pool calls Init from its dial
// goroutine and the other methods from the driver's reader: they must be
// quick and must not block (hand writes to a Stream or to the probe's own
// goroutines).
type Part interface {
	// Events lists the server events routed to Event.
	Events() []string
	// Init returns the part's state for a session about to be dialled
	// (nil for none); Session.State(id) returns it from then on. Keep
	// per-session state there, not in maps: it goes with the session.
	Init(s *Session) any
	// Open is called once the session is established (the namespace
	// CONNECT was answered). Event may have been called before, since a
	// server may emit as soon as it answers CONNECT.
	Open(s *Session)
	// Event is a server event named in Events.
	Event(s *Session, name string, args []json.RawMessage)
	// Ack is an ack for an id the part sent with Session.EmitAck.
	Ack(s *Session, id uint64, args []json.RawMessage)
	// Close is called once when an opened session ends, after its last
	// Event and Ack.
	Close(s *Session, reason probe.DisconnectReason)
}

// ID is a probe's place in a pool: it selects the probe's session state and
// the probe's share of the connection's ack id space.
type ID uint8

// MaxProbes is the number of probes a pool can hold: the low bits of an ack
// id on the wire carry the ID.
const MaxProbes = 8

const ackIDBits = 3 // log2(MaxProbes)

// Deps are what every probe's constructor receives from the agent.
type Deps struct {
	// Registerer takes the probe's metrics.
	Registerer prometheus.Registerer
	// Logger is named by the agent.
	Logger *zap.Logger
	// Now is the clock.
	Now func() time.Time
	// Observer, if not nil, also receives the probe's outcomes.
	Observer Observer
}

// Outcome is what happened to one request of a probe.
type Outcome uint8

// The outcomes, for Observer.Event.
const (
	// OutcomeSent: written (or about to be) to a connection.
	OutcomeSent Outcome = iota
	// OutcomeAnswered: answered in time; latency from the scheduled time.
	OutcomeAnswered
	// OutcomeRejected: answered in time, but the answer said no.
	OutcomeRejected
	// OutcomeLost: no answer within the timeout.
	OutcomeLost
	// OutcomeLate: a lost request answered afterwards.
	OutcomeLate
	// OutcomeSkipped: due on a client that was not connected; not sent.
	OutcomeSkipped
	// OutcomeDropped: not sent because the agent itself fell behind.
	OutcomeDropped
	// OutcomeUnexpected: an ack for an id never sent or already resolved.
	OutcomeUnexpected
)

// ConnEvent is what happened to a connection, for Observer.Connection.
type ConnEvent uint8

// The connection events.
const (
	// ConnAttempt: a dial started.
	ConnAttempt ConnEvent = iota
	// ConnEstablished: the namespace CONNECT was answered; took is the
	// connect time.
	ConnEstablished
	// ConnFailed: the attempt failed; reason is a probe.FailureReason.
	ConnFailed
	// ConnClosed: an established connection ended; reason is a
	// probe.DisconnectReason.
	ConnClosed
)

// Observer receives what the agent measures as it happens, for reports
// other than Prometheus (the one-shot mode keeps exact figures this way).
// Its methods are called on hot paths, concurrently: keep them cheap.
type Observer interface {
	// Connection reports a connection event of a target.
	Connection(target string, e ConnEvent, reason string, took time.Duration)
	// Event reports n outcomes o of a probe step (the echo probe's event
	// name, a scenario's step name) on a target; latency is set for
	// answered and rejected requests.
	Event(target, probeName, step string, o Outcome, n int, latency time.Duration)
}
