package probe

import "context"

// Resume is what a client offers, in its namespace CONNECT auth payload, to
// recover its session after a transport break (Socket.IO 4.6+ with
// connectionStateRecovery on the server), as socket.io-client does: the
// private session id the server gave it and the offset of the last packet
// it received.
type Resume struct {
	PID    string
	Offset string
}

type resumeKey struct{}

// WithResume returns a context that asks Driver.Dial to offer r.
func WithResume(ctx context.Context, r Resume) context.Context {
	return context.WithValue(ctx, resumeKey{}, r)
}

// ResumeOffer returns the Resume set by WithResume, if any.
func ResumeOffer(ctx context.Context) (Resume, bool) {
	r, ok := ctx.Value(resumeKey{}).(Resume)
	return r, ok && r.PID != ""
}

// Recovery is what a connection learnt of connection-state recovery when it
// opened.
type Recovery struct {
	// PID is the private session id of the server's CONNECT answer; empty
	// when the server does not offer recovery.
	PID string
	// Recovered is true when the server took the offered session back (the
	// answer's pid is the one offered).
	Recovered bool
	// Replayed counts the events the server sent before its CONNECT answer:
	// on a recovered session, the packets missed while away.
	Replayed int
}

// Recoverable is implemented by the connections of drivers that support
// connection-state recovery and can break their transport on purpose.
type Recoverable interface {
	// Recovery returns what the connection learnt when it opened.
	Recovery() Recovery
	// LastOffset returns the offset of the last event received (its last
	// argument when the server offers recovery), empty before any.
	LastOffset() string
	// Break closes the transport without a DISCONNECT packet, as a network
	// blip would; the connection then ends with ReasonClientBreak.
	Break()
}
