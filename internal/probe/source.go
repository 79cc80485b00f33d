package probe

import (
	"context"
	"net/netip"
)

type sourceKey struct{}

// WithSource returns a context that asks Driver.Dial to bind the
// connection's local end to addr (port chosen by the system). The pool sets
// it per client slot from Target.SourceAddrs.
func WithSource(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, sourceKey{}, addr)
}

// Source returns the local address set by WithSource, if any.
func Source(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(sourceKey{}).(netip.Addr)
	return a, ok && a.IsValid()
}
