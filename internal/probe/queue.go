package probe

import "context"

// Queuer is implemented by a Conn whose writes can be handed over without
// waiting for the server (the native driver's event-loop transport): Emit
// under a context made by WithoutWaiting writes what the socket takes at
// once and leaves the rest queued on the connection, which sends it when the
// socket is writable again. A caller that must not block (a scheduler
// sending many clients' events from one goroutine) writes that way while
// Backlog reports nothing queued, and otherwise from a goroutine of its own
// with an ordinary, bounded context, so that a server that stopped reading
// still shows as a write that waited.
type Queuer interface {
	// Backlog returns the bytes accepted by Emit that the socket has not
	// taken yet, and whether Emit honours WithoutWaiting on this connection
	// now (false: every Emit may wait, bounded by its ctx).
	Backlog() (bytes int, queues bool)
}

type noWaitKey struct{}

// WithoutWaiting returns a copy of ctx under which Emit on a Queuer that
// queues does not wait for the socket. Other connections ignore it.
func WithoutWaiting(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWaitKey{}, true)
}

// MayWait reports whether a write under ctx may wait for the socket, i.e.
// ctx was not made by WithoutWaiting.
func MayWait(ctx context.Context) bool {
	v, _ := ctx.Value(noWaitKey{}).(bool)
	return !v
}
