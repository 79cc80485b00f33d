// Package native is the agent's own Socket.IO v5 client over Engine.IO v4,
// built to hold many thousands of idle connections cheaply and to report its
// own failures precisely, so that they never read as the target's. It speaks
// the transports of socket.io-client (probe.Target.Transports): a single
// WebSocket (github.com/coder/websocket), HTTP long-polling, or long-polling
// upgraded to WebSocket.
//
// Each established connection costs exactly one goroutine (its reader), a
// ping watchdog timer and its transport's buffers: the WebSocket library's
// two 4 KiB buffers, or for long-polling a keep-alive HTTP transport of its
// own (whose connections net/http serves with its usual goroutines). Over
// long-polling the reader runs the GET loop itself, one long poll at a
// time; writers POST on their own goroutine, batched, so that a write never
// waits for the long poll. Read and write scratch buffers are pooled per
// Driver. The reader answers Engine.IO PINGs, delivers ACK and EVENT packets
// to probe.Handlers and classifies how the connection ended. The Socket.IO
// codec lives in codec.go and jsonscan.go as pure functions, the
// socket.io-msgpack-parser format (probe.Target.Parser) in msgpack.go;
// transport.go, polling.go and upgrade.go move whole Engine.IO messages.
// Connection-state recovery (recovery.go) offers the session of a broken
// transport on the next dial, as socket.io-client does.
//
// Not supported: HTTP proxies, WebSocket compression, Socket.IO parsers
// other than the default and msgpack. Socket.IO v2 servers (Engine.IO v3)
// are refused with reason protocol. A refused handshake's
// ConnectError.Message carries the server's reason (read from the body,
// bounded) and a hint naming what to change.
package native

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// Defaults of Options.
const (
	// DefaultControlWriteTimeout bounds the writes the reader makes itself.
	DefaultControlWriteTimeout = 5 * time.Second
	// DefaultCloseTimeout bounds the close handshake after the server ended
	// the connection.
	DefaultCloseTimeout = 2 * time.Second
	// DefaultMaxAttachments caps the binary attachments of one packet.
	DefaultMaxAttachments = 16
)

const (
	defaultPath = "/socket.io/"
	// maxResponseHeaderBytes bounds the HTTP upgrade response headers.
	maxResponseHeaderBytes = 64 << 10
	// sendBufferBytes caps each socket's kernel send buffer (Linux doubles
	// it: 256 KiB). Autotuned, it grows to 4 MiB (tcp_wmem) per connection:
	// at tens of thousands of connections that is kernel memory the agent
	// never needs for a client's events, and a server that stops reading a
	// connection would hide behind megabytes of buffer for minutes instead
	// of showing as blocked writes (soak_writes_stalled_total) within
	// seconds.
	sendBufferBytes = 128 << 10
	// Scratch buffers: initial size, and the size above which a buffer is
	// dropped instead of pooled.
	readBufSize   = 512
	writeBufSize  = 256
	maxPooledSize = 64 << 10
)

// Options configure a Driver. The zero value is usable.
type Options struct {
	// Logger receives Debug-level connection events, used as given (the
	// caller names it); nil discards them.
	Logger *zap.Logger
	// ConnectTimeout bounds a Dial whose ctx has no deadline; zero means
	// probe.DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ControlWriteTimeout bounds the writes the reader makes on its own
	// (PONG, empty ACK to a server event); zero means
	// DefaultControlWriteTimeout. A write that misses it ends the connection
	// with transport_error.
	ControlWriteTimeout time.Duration
	// CloseTimeout bounds the WebSocket close handshake the driver runs
	// after the server ended the connection; zero means DefaultCloseTimeout.
	CloseTimeout time.Duration
	// MaxAttachments caps the binary attachments of one BINARY_EVENT or
	// BINARY_ACK packet; more is a parse_error. Zero means
	// DefaultMaxAttachments.
	MaxAttachments int
	// ReaderGoroutines serves every WebSocket with a reader goroutine and
	// coder/websocket's buffers, as before the event loop. By default, on
	// Linux, plain (ws://) WebSockets are served by a few epoll loops
	// instead (evloop_linux.go); wss:// and long-polling always use a
	// goroutine per connection.
	ReaderGoroutines bool
}

// Driver is the native probe.Driver. It is safe for concurrent use.
type Driver struct {
	log            *zap.Logger
	connectTimeout time.Duration
	controlTimeout time.Duration
	closeTimeout   time.Duration
	maxAttachments int
	dialer         net.Dialer

	mu      sync.Mutex
	clients map[*tls.Config]*http.Client // one per distinct target TLS config

	readBufs  sync.Pool // *[]byte
	writeBufs sync.Pool // *[]byte

	loops    []*evLoop // the event-loop transport's loops, when enabled
	nextLoop atomic.Uint32
}

var _ probe.Driver = (*Driver)(nil)

// New returns a Driver.
func New(opts Options) *Driver {
	d := &Driver{
		log:            opts.Logger,
		connectTimeout: opts.ConnectTimeout,
		controlTimeout: opts.ControlWriteTimeout,
		closeTimeout:   opts.CloseTimeout,
		maxAttachments: opts.MaxAttachments,
		clients:        make(map[*tls.Config]*http.Client),
		dialer:         net.Dialer{Control: socketControl(false)},
	}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	if d.connectTimeout <= 0 {
		d.connectTimeout = probe.DefaultConnectTimeout
	}
	if d.controlTimeout <= 0 {
		d.controlTimeout = DefaultControlWriteTimeout
	}
	if d.closeTimeout <= 0 {
		d.closeTimeout = DefaultCloseTimeout
	}
	if d.maxAttachments <= 0 {
		d.maxAttachments = DefaultMaxAttachments
	}
	if !opts.ReaderGoroutines && eventLoopSupported {
		d.loops = newLoops(d)
	}
	d.readBufs.New = func() any { b := make([]byte, 0, readBufSize); return &b }
	d.writeBufs.New = func() any { b := make([]byte, 0, writeBufSize); return &b }
	return d
}

// EventLoop reports whether plain WebSocket connections are served by the
// event-loop transport.
func (d *Driver) EventLoop() bool { return len(d.loops) > 0 }

// Name returns "native".
func (d *Driver) Name() string { return "native" }

// Dial opens one connection; see probe.Driver. Errors are *probe.ConnectError.
func (d *Driver) Dial(ctx context.Context, t *probe.Target, h probe.Handlers) (probe.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.connectTimeout)
		defer cancel()
	}
	u, nsp, err := handshakeURL(t)
	if err != nil {
		return nil, &probe.ConnectError{Reason: probe.FailOther, Err: err}
	}
	mode, err := modeOf(t)
	if err != nil {
		return nil, &probe.ConnectError{Reason: probe.FailOther, Err: err}
	}
	var tr transport
	if mode == modeWebSocket {
		ws, ce := d.dialWebSocket(ctx, t, u)
		if ce != nil {
			return nil, ce
		}
		tr = ws
	} else {
		var ce *probe.ConnectError
		if tr, ce = d.dialPolling(ctx, t, u, mode); ce != nil {
			return nil, ce
		}
	}
	c := &conn{d: d, tr: tr, h: h, nsp: nsp, done: make(chan struct{}), mp: t.Parser == ParserMsgpack}
	if err := c.handshake(ctx, t); err != nil {
		tr.closeNow()
		tr.abort()
		return nil, err
	}
	if err := c.start(); err != nil {
		tr.closeNow()
		tr.abort()
		return nil, &probe.ConnectError{Reason: probe.FailOther, Err: err}
	}
	return c, nil
}

// dialWebSocket opens the WebSocket at u.
func (d *Driver) dialWebSocket(ctx context.Context, t *probe.Target, u string) (wsDialed, *probe.ConnectError) {
	if tr, ok, ce := d.dialLoop(ctx, t, u); ok {
		if ce != nil {
			return nil, ce
		}
		return tr, nil
	}
	opts := &websocket.DialOptions{
		HTTPClient:      d.client(t.TLS),
		HTTPHeader:      t.Header,
		Host:            t.Header.Get("Host"),
		CompressionMode: websocket.CompressionDisabled,
	}
	// The transport dials with a context detached from the request's; the
	// values below let our dial functions honour ctx anyway and record the
	// raw connection, so that nothing outlives a failed Dial and Close can
	// always be bounded.
	hold := new(rawHold)
	dctx := context.WithValue(context.WithValue(ctx, dialCtxKey{}, ctx), rawHoldKey{}, hold)
	ws, resp, err := websocket.Dial(dctx, u, opts)
	if err != nil {
		hold.close()
		return nil, upgradeError(resp, err, ctx.Err())
	}
	raw := hold.get()
	if raw == nil { // cannot happen with our transport; be safe
		ws.CloseNow()
		return nil, &probe.ConnectError{Reason: probe.FailOther, Err: errors.New("no connection recorded")}
	}
	maxFrame := t.MaxFrameBytes
	if maxFrame <= 0 {
		maxFrame = probe.DefaultMaxFrameBytes
	}
	ws.SetReadLimit(maxFrame)
	return &wsTransport{d: d, ws: ws, raw: raw}, nil
}

// upgradeError classifies a failed WebSocket dial. When the server answered
// with an HTTP status other than 101, the Message holds the status, the
// server's own reason read from the body (Engine.IO answers either
// {"code":N,"message":"..."} or, on a refused upgrade, the bare message) and
// a hint a user can act on.
func upgradeError(resp *http.Response, err, ctxErr error) *probe.ConnectError {
	err = redactURL(err)
	if resp != nil {
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return &probe.ConnectError{Reason: probe.FailHandshake, Err: err}
		}
		var body []byte
		if resp.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
		}
		reason, msg := explainStatus(resp.StatusCode, resp.Status, body)
		return &probe.ConnectError{Reason: reason, Message: msg, Err: err}
	}
	ce := &probe.ConnectError{Reason: probe.ClassifyDialError(err, ctxErr), Err: err}
	if ce.Reason == probe.FailReset {
		// Node's HTTP server drops an upgrade that no handler claims, which
		// is what a socket.io server does for another path.
		ce.Message = "connection closed on the WebSocket upgrade (does SOAK_SOCKETIO_PATH match the server's path option?)"
	}
	return ce
}

// maxErrorBodyBytes bounds the part of a refused handshake's body read for
// its reason.
const maxErrorBodyBytes = 4 << 10

// Engine.IO's error codes (engine.io Server.errors).
const (
	eioErrUnknownTransport = 0
	eioErrBadRequest       = 3
	eioErrForbidden        = 4
	eioErrUnsupportedProto = 5
)

// explainStatus turns a refused handshake's status and body into a reason
// and a message: the status line, the server's reason and a hint.
func explainStatus(code int, status string, body []byte) (probe.FailureReason, string) {
	eioCode, serverMsg := -1, ""
	var v struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil && v.Code != nil {
		eioCode, serverMsg = *v.Code, v.Message
	} else {
		serverMsg = printable(body)
	}
	serverMsg = truncateUTF8(serverMsg, maxErrorMessage)
	reason := probe.FailHandshake
	hint := ""
	switch {
	case eioCode == eioErrUnknownTransport || serverMsg == "Transport unknown":
		hint = "websocket transport disabled on the server (its transports option lacks \"websocket\"): set SOAK_TRANSPORTS=polling"
	case eioCode == eioErrUnsupportedProto || serverMsg == "Unsupported protocol version":
		reason = probe.FailProtocol
		hint = "the server does not speak Engine.IO v4 (Socket.IO v3+)"
	case eioCode == eioErrBadRequest && code == http.StatusBadRequest:
		// Engine.IO answers a JSON body only to a plain HTTP request: the
		// Upgrade header never reached it.
		hint = "upgrade refused: the server got a plain HTTP request; is the proxy forwarding the Upgrade/Connection headers?"
	case code == http.StatusBadRequest && eioCode == -1 && serverMsg != "" && !knownEngineIOMessage(serverMsg):
		// Engine.IO refuses an upgrade with a bare 400 and the reason its
		// allowRequest hook (or a middleware) gave.
		hint = "rejected by the server's allowRequest or a middleware"
	case code == http.StatusForbidden || eioCode == eioErrForbidden:
		hint = "refused by the server (allowRequest, CORS or an auth proxy)"
	case code == http.StatusNotFound:
		hint = "nothing at this path: check SOAK_SOCKETIO_PATH against the server's path option"
	case code >= 200 && code < 300:
		hint = "upgrade refused: the server answered without switching protocols; is the proxy forwarding the Upgrade/Connection headers?"
	}
	msg := status
	if serverMsg != "" {
		msg += ": " + strconv.Quote(serverMsg)
	}
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return reason, msg
}

// knownEngineIOMessage reports whether s is one of Engine.IO's own error
// messages (engine.io Server.errorMessages).
func knownEngineIOMessage(s string) bool {
	switch s {
	case "Transport unknown", "Session ID unknown", "Bad handshake method", "Bad request", "Forbidden", "Unsupported protocol version":
		return true
	}
	return false
}

// printable returns b as text with control characters and invalid UTF-8
// replaced, trimmed; HTML bodies (proxies' error pages) are dropped.
func printable(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if strings.HasPrefix(s, "<") {
		return ""
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// redactURL removes the query, which may hold secrets, from the URL that
// net/http puts in its errors (and that wrappers have copied into their
// messages). The error chain stays intact for errors.Is and errors.As.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	i := strings.IndexByte(ue.URL, '?')
	if i < 0 {
		return err
	}
	full, short := ue.URL, ue.URL[:i]
	msg := strings.ReplaceAll(err.Error(), full, short)
	ue.URL = short
	return &redactedError{msg: msg, err: err}
}

// redactedError replaces the message of err.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// handshakeURL builds the Engine.IO WebSocket URL of t and its namespace.
func handshakeURL(t *probe.Target) (string, string, error) {
	if t == nil || t.URL == nil {
		return "", "", errors.New("target has no URL")
	}
	u := url.URL{Host: t.URL.Host}
	switch strings.ToLower(t.URL.Scheme) {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", "", fmt.Errorf("unsupported URL scheme %q", t.URL.Scheme)
	}
	if u.Host == "" {
		return "", "", errors.New("target URL has no host")
	}
	u.Path = t.Path
	switch {
	case u.Path == "":
		u.Path = defaultPath
	case !strings.HasSuffix(u.Path, "/"):
		// As socket.io-client (addTrailingSlash): servers match their path
		// with the slash, "/ws" reaching a server on "/ws/".
		u.Path += "/"
	}
	q := make(url.Values, len(t.Query)+2)
	for k, v := range t.Query {
		q[k] = v
	}
	q.Set("EIO", "4")
	q.Set("transport", "websocket")
	u.RawQuery = q.Encode()
	nsp := t.Namespace
	switch {
	case nsp == "":
		nsp = mainNamespace
	case nsp[0] != '/':
		nsp = "/" + nsp
	}
	if strings.ContainsAny(nsp, ",") {
		return "", "", fmt.Errorf("invalid namespace %q", nsp)
	}
	return u.String(), nsp, nil
}

// client returns the shared HTTP client for a TLS configuration.
func (d *Driver) client(cfg *tls.Config) *http.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.clients[cfg]; ok {
		return c
	}
	base := &tls.Config{}
	if cfg != nil {
		base = cfg.Clone()
	}
	base.NextProtos = []string{"http/1.1"} // WebSocket needs HTTP/1.1
	tr := &http.Transport{
		DialContext: d.dialContext,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.dialTLS(ctx, network, addr, base)
		},
		// Upgraded connections never return to a pool; refused upgrades
		// must not leave idle connections behind either.
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	c := &http.Client{Transport: tr}
	d.clients[cfg] = c
	return c
}

type (
	dialCtxKey struct{}
	rawHoldKey struct{}
)

// rawHold records the TCP connection dialed for one Dial.
type rawHold struct {
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

// set records c; it reports false when the Dial has already given up.
func (h *rawHold) set(c net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conn = c
	return true
}

func (h *rawHold) get() net.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conn
}

// close closes the recorded connection, if any, and any recorded later.
func (h *rawHold) close() {
	h.mu.Lock()
	c := h.conn
	h.closed = true
	h.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// dialCtx returns the Dial's own context, which net/http's transport strips
// of its deadline and cancellation before dialing.
func dialCtx(ctx context.Context) context.Context {
	if p, ok := ctx.Value(dialCtxKey{}).(context.Context); ok {
		return p
	}
	return ctx
}

// dialContext dials TCP bounded by the Dial's context and records the
// connection.
func (d *Driver) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	hold, _ := ctx.Value(rawHoldKey{}).(*rawHold)
	dctx := dialCtx(ctx)
	dl := &d.dialer
	if src, ok := probe.Source(dctx); ok {
		local := d.dialer // a copy per dial: the Driver's dialer is shared
		local.LocalAddr = &net.TCPAddr{IP: src.AsSlice(), Zone: src.Zone()}
		local.Control = socketControl(true)
		dl = &local
	}
	c, err := dl.DialContext(dctx, network, addr)
	if err != nil {
		return nil, err
	}
	if hold != nil && !hold.set(c) {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return c, nil
}

// dialTLS dials TCP and runs the TLS handshake, both bounded by the Dial's
// context.
func (d *Driver) dialTLS(ctx context.Context, network, addr string, base *tls.Config) (net.Conn, error) {
	raw, err := d.dialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := base
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg = base.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(dialCtx(ctx)); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

// Scratch buffers.

func (d *Driver) getReadBuf() *[]byte  { return d.readBufs.Get().(*[]byte) }
func (d *Driver) getWriteBuf() *[]byte { return d.writeBufs.Get().(*[]byte) }

func (d *Driver) putReadBuf(b *[]byte) {
	if cap(*b) <= maxPooledSize {
		*b = (*b)[:0]
		d.readBufs.Put(b)
	}
}

func (d *Driver) putWriteBuf(b *[]byte) {
	if cap(*b) <= maxPooledSize {
		*b = (*b)[:0]
		d.writeBufs.Put(b)
	}
}
