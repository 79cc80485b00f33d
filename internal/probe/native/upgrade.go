package native

import (
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// transportMode is what a Target's Transports asks for.
type transportMode int

const (
	modeWebSocket transportMode = iota // WebSocket from the first request
	modePolling                        // long-polling only
	modeUpgrade                        // long-polling, then upgrade to WebSocket
)

// modeOf reads t.Transports: empty or ["websocket"], ["polling"], or
// ["polling","websocket"] (the official client's default order).
func modeOf(t *probe.Target) (transportMode, error) {
	switch {
	case len(t.Transports) == 0, slices.Equal(t.Transports, []string{transportWebSocket}):
		return modeWebSocket, nil
	case slices.Equal(t.Transports, []string{transportPolling}):
		return modePolling, nil
	case slices.Equal(t.Transports, []string{transportPolling, transportWebSocket}):
		return modeUpgrade, nil
	}
	return 0, fmt.Errorf("unsupported transports %q: want websocket, polling or polling,websocket", t.Transports)
}

// transportURL returns the Engine.IO URL u (as handshakeURL builds it) for
// another transport and, when sid is set, an existing session.
func transportURL(u, name, sid string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("engine.io URL: %w", err)
	}
	if name == transportPolling {
		switch pu.Scheme {
		case "ws":
			pu.Scheme = "http"
		case "wss":
			pu.Scheme = "https"
		}
	}
	q := pu.Query()
	q.Set("transport", name)
	if sid != "" {
		q.Set("sid", sid)
	}
	pu.RawQuery = q.Encode()
	return pu.String(), nil
}

// dialPolling opens a long-polling session and, in modeUpgrade when the
// server offers it, upgrades it to a WebSocket as socket.io-client does:
// "2probe" and "3probe" over the new WebSocket, then "5". The upgrade runs
// before the namespace CONNECT, while no long poll is pending, so polling is
// paused by construction. A failed upgrade keeps the session on polling,
// logged at Debug and visible through the conn's Transport.
func (d *Driver) dialPolling(ctx context.Context, t *probe.Target, u string, mode transportMode) (transport, *probe.ConnectError) {
	pollURL, err := transportURL(u, transportPolling, "")
	if err != nil {
		return nil, &probe.ConnectError{Reason: probe.FailOther, Err: err}
	}
	p := d.newPolling(ctx, t, pollURL)
	open, err := p.open(ctx)
	if err != nil {
		p.closeNow()
		if ce := statusConnectError(err); ce != nil {
			return nil, ce
		}
		return nil, &probe.ConnectError{Reason: probe.ClassifyDialError(err, ctx.Err()), Err: fmt.Errorf("long-polling handshake: %w", err)}
	}
	if mode != modeUpgrade {
		return p, nil
	}
	if !slices.Contains(open.upgrades, transportWebSocket) {
		d.log.Debug("server offers no websocket upgrade; staying on long-polling")
		return p, nil
	}
	ws, err := d.upgrade(ctx, t, u, open.sid)
	if err != nil {
		d.log.Debug("websocket upgrade failed; staying on long-polling", zap.Error(err))
		return p, nil
	}
	ws.setQueued(p.detach())
	return ws, nil
}

// upgrade opens a WebSocket for session sid and runs the probe exchange,
// bounded by ctx and the driver's control write timeout.
func (d *Driver) upgrade(ctx context.Context, t *probe.Target, u, sid string) (wsDialed, error) {
	ctx, cancel := context.WithTimeout(ctx, d.controlTimeout)
	defer cancel()
	wsURL, err := transportURL(u, transportWebSocket, sid)
	if err != nil {
		return nil, err
	}
	ws, ce := d.dialWebSocket(ctx, t, wsURL)
	if ce != nil {
		return nil, ce
	}
	fail := func(err error) (wsDialed, error) {
		ws.closeNow()
		ws.abort()
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	if err := ws.write(ctx, []byte("2probe")); err != nil {
		return fail(err)
	}
	typ, bp, err := ws.read(ctx)
	if err != nil {
		return fail(err)
	}
	ok := typ == websocket.MessageText && string(*bp) == "3probe"
	got := truncateUTF8(string(*bp), 32)
	d.putReadBuf(bp)
	if !ok {
		return fail(fmt.Errorf("answer %q to the probe, want \"3probe\"", got))
	}
	if err := ws.write(ctx, []byte{eioUpgrade}); err != nil {
		return fail(err)
	}
	return ws, nil
}
