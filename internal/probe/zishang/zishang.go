// Package zishang is a probe.Driver over the zishang520 Socket.IO client
// (github.com/zishang520/socket.io/clients/socket/v3, v3.0.6), selected
// with SOAK_DRIVER=zishang520. It exists to cross-check the native driver
// with an independent Socket.IO implementation.
//
// The library's Manager, Socket, parsers and Engine.IO socket (heartbeat,
// packet buffering) do the protocol work. The WebSocket transport is this
// package's own (transport.go), plugged in through the engine's public
// TransportCtor option, because the library's transport cannot be given a
// context or a handshake timeout. Each client is one Manager with ForceNew,
// reconnection off and autoConnect off: one Dial = one Engine.IO connection.
//
// Workarounds for the defects listed in
// shared/reference/socketio-client-findings.md:
//
//  1. Duplicate CONNECT: Socket.Connect is called only from the manager's
//     open callback, when the manager is already open and has already
//     emitted "open", so the socket sends CONNECT exactly once.
//  2. Missed open: the engine dials inside Manager.Open before the manager
//     subscribes to its events. Our transport dials in its own goroutine
//     and only after Dial opens a gate, once Manager.Open has returned, so
//     neither the open event nor a dial error can be missed.
//  3. Stale connect timer: with the gate, the timer is in the manager's
//     subscriptions before the engine can open, so the open handler clears
//     it; it is also set past Dial's deadline, which is enforced with ctx.
//  4. Dial hang: our transport dials with gorilla's DialContext bound to
//     Dial's ctx (a deadline, and cancellation through the connection's
//     deadline); Dial also waits for ctx itself. Nothing is left running.
//  5. init() of clients/engine/v3 (imported by this package): in a binary
//     whose name does not end in ".test" it calls signal.NotifyContext for
//     SIGINT, SIGTERM and SIGQUIT with a goroutine that waits for the first
//     of them, stops the interface polling, emits a process-wide
//     "beforeunload" and unregisters; so that first signal does not kill a
//     program that handles no signals itself. In every binary it starts a
//     goroutine that runs net.Interfaces every 3 s for ever. Neither can be
//     stopped from outside. See package zishangtest for goleak options.
//  6. Disconnect closes the transport before the DISCONNECT packet is
//     written: our transport flushes its queue, sends a close frame and
//     waits (CloseTimeout) for the server's before closing TCP.
//  7. CONNECT_ERROR without a "data" field reads as "missing 'data'
//     field" (and the Go server's "data":null as "invalid type"): Dial
//     listens to the manager's decoded packets and takes the message from
//     the CONNECT_ERROR packet itself.
//
// Found while writing this driver (v3.0.6), beyond the findings:
//   - With the library's transport, a dial error is emitted inside
//     Manager.Open too, before the manager listens: a refused port or an
//     HTTP 403 reads as "timeout" after the connect timer (read in
//     manager.go and websocket.go; reproduced by making our dial
//     synchronous again: both cases ended as timeout). The gate of (2)
//     fixes it.
//   - Decoded Socket.IO packets are delivered through a queue while the end
//     of the transport is handled at once, so a server that sends
//     DISCONNECT and closes reads as "transport close", and an ack or event
//     decoded just before the end is reported after it. The transport spots
//     DISCONNECT packets of our namespace so that the reason is right; such
//     late acks and events are dropped (OnClose has been called).
//
// Deviations from the probe contract, all from the library's design: Emit
// only queues (the library writes asynchronously), so it cannot report a
// write failure; arguments of acks and events are decoded by the library
// into Go values and re-encoded, so object keys come out sorted, numbers
// beyond 2^53 lose precision and binary attachments arrive as base64
// strings rather than placeholders; the library keeps a timer goroutine per
// ack in flight (SetAckTimeout, Options.AckRetention) so that unanswered
// acks do not accumulate. Goroutines per connection: our reader and writer
// and the engine's ping timer, plus one per ack in flight.
//
// The library logs packets, auth included, to stderr when its log.DEBUG
// flag is set in code and $DEBUG names its namespaces; nothing here sets
// the flag.
package zishang

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/gorilla/websocket"
	engine "github.com/zishang520/socket.io/clients/engine/v3"
	sio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"go.uber.org/zap"
)

// Name is the driver's name, the SOAK_DRIVER value that selects it.
const Name = "zishang520"

// Defaults for Options fields left zero.
const (
	DefaultAckRetention = 2 * time.Minute
	DefaultWriteTimeout = 10 * time.Second
	DefaultCloseTimeout = 2 * time.Second
)

// Options tune the driver. The zero value is usable.
type Options struct {
	// Log receives per-connection Debug entries; nil discards them.
	Log *zap.Logger
	// AckRetention is how long the library keeps the callback of an
	// unanswered ack (its SetAckTimeout). An ack that arrives later is not
	// delivered. It must exceed the probe's ack timeout so that late acks
	// are still seen. Zero means DefaultAckRetention.
	AckRetention time.Duration
	// WriteTimeout bounds one WebSocket write. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// CloseTimeout bounds the wait for the server's close frame in a
	// graceful close. Zero means DefaultCloseTimeout.
	CloseTimeout time.Duration
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case o.AckRetention < 0:
		return fmt.Errorf("zishang ack retention: must be >= 0, got %q", o.AckRetention)
	case o.WriteTimeout < 0:
		return fmt.Errorf("zishang write timeout: must be >= 0, got %q", o.WriteTimeout)
	case o.CloseTimeout < 0:
		return fmt.Errorf("zishang close timeout: must be >= 0, got %q", o.CloseTimeout)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.AckRetention <= 0 {
		o.AckRetention = DefaultAckRetention
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	return o
}

// Driver dials Socket.IO connections with the zishang520 client. It is safe
// for concurrent use.
type Driver struct {
	opts Options
	log  *zap.Logger
	// timerSlack is how long after ctx's deadline the library's own
	// connect timer is set to fire (tests set it to 0).
	timerSlack time.Duration
}

var _ probe.Driver = (*Driver)(nil)

// New returns a driver. Invalid options are replaced by their defaults;
// call Options.Validate first to reject them.
func New(opts Options) *Driver {
	opts = opts.withDefaults()
	return &Driver{opts: opts, log: opts.Log.Named("zishang"), timerSlack: 5 * time.Second}
}

// Name returns "zishang520".
func (d *Driver) Name() string { return Name }

// Dial opens one Engine.IO connection over WebSocket and connects to the
// target's namespace; see probe.Driver. It returns within ctx (or
// probe.DefaultConnectTimeout when ctx has no deadline), plus the time to
// stop what it started, which does not wait on the network.
func (d *Driver) Dial(ctx context.Context, t *probe.Target, h probe.Handlers) (probe.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probe.DefaultConnectTimeout)
		defer cancel()
	}
	base, nsp, auth, err := checkTarget(t)
	if err != nil {
		return nil, &probe.ConnectError{Reason: probe.FailOther, Err: err}
	}
	dialCtx, cancelDial := context.WithCancel(ctx)
	defer cancelDial()

	maxFrame := t.MaxFrameBytes
	if maxFrame <= 0 {
		maxFrame = probe.DefaultMaxFrameBytes
	}
	header := t.Header.Clone()
	var tlsConf = t.TLS
	if tlsConf != nil {
		tlsConf = tlsConf.Clone()
	}
	l := &link{
		nsp:          nsp,
		writeTimeout: d.opts.WriteTimeout,
		closeTimeout: d.opts.CloseTimeout,
		gate:         make(chan struct{}),
		dialDone:     dialCtx.Done(),
		dial: func(u *url.URL) (*websocket.Conn, error) {
			return dialWebSocket(dialCtx, u, header, tlsConf, maxFrame)
		},
	}
	c := &conn{
		h:       h,
		nsp:     nsp,
		l:       l,
		log:     d.log,
		settled: make(chan struct{}),
	}

	opts := sio.DefaultOptions()
	opts.SetTransports(types.NewSet[engine.TransportCtor](&wsBuilder{l: l}))
	opts.SetUpgrade(false)
	opts.SetRememberUpgrade(false)
	opts.SetForceNew(true)
	opts.SetMultiplex(false)
	opts.SetAutoConnect(false)
	opts.SetReconnection(false)
	path := t.Path
	if path == "" {
		path = "/socket.io/"
	}
	opts.SetPath(path)
	if len(t.Query) > 0 {
		opts.SetQuery(cloneValues(t.Query))
	}
	if len(header) > 0 {
		opts.SetExtraHeaders(header)
	}
	if tlsConf != nil {
		opts.SetTLSClientConfig(tlsConf)
	}
	if auth != nil {
		opts.SetAuth(auth)
	}
	opts.SetAckTimeout(d.opts.AckRetention)
	// The library's connect timer cannot be disabled. Let it fire only
	// after ctx would have; the open handler or the close clears it.
	if dl, ok := ctx.Deadline(); ok {
		opts.SetTimeout(max(time.Until(dl), 0) + d.timerSlack)
	}

	c.mgr = sio.NewManager(base, opts)
	c.sock = c.mgr.Socket(nsp, opts)
	// Registered before the socket subscribes (in Connect), so that the
	// CONNECT_ERROR message is known when "connect_error" fires.
	_ = c.mgr.On("packet", c.onManagerPacket)
	_ = c.sock.On("connect", c.onConnect)
	_ = c.sock.On("connect_error", c.onConnectError)
	_ = c.sock.On("disconnect", c.onDisconnect)
	c.sock.OnAny(c.onEvent)
	c.mgr.Open(func(err error) {
		if err != nil {
			c.settle(err)
			return
		}
		c.sock.Connect()
	})
	close(l.gate)

	select {
	case <-c.settled:
	case <-ctx.Done():
		c.settle(ctx.Err())
		<-c.settled
	}
	if c.dialErr == nil {
		c.log.Debug("connected", zap.String("sid", c.sock.Id()))
		return c, nil
	}
	ce := asConnectError(c.dialErr, ctx.Err())
	if l.parseErr.Load() && ce.Reason != probe.FailConnectError {
		ce = &probe.ConnectError{Reason: probe.FailProtocol, Err: ce.Err}
	}
	cancelDial() // a dial still in flight returns at once
	c.abort(ctx)
	c.log.Debug("connect failed", zap.String("reason", string(ce.Reason)), zap.Error(ce))
	return nil, ce
}

// checkTarget returns the base URL (scheme and host only), the namespace
// and the auth object of t.
func checkTarget(t *probe.Target) (base, nsp string, auth map[string]any, err error) {
	if t == nil || t.URL == nil {
		return "", "", nil, errors.New("zishang dial: no target URL")
	}
	if len(t.Transports) > 0 && !slices.Equal(t.Transports, []string{probe.TransportWebSocket}) {
		return "", "", nil, fmt.Errorf("zishang dial: transports %q: this driver speaks websocket only (SOAK_TRANSPORTS=websocket)", t.Transports)
	}
	switch t.URL.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return "", "", nil, fmt.Errorf("zishang dial: unsupported URL scheme %q", t.URL.Scheme)
	}
	if t.URL.Host == "" {
		return "", "", nil, errors.New("zishang dial: URL has no host")
	}
	base = (&url.URL{Scheme: t.URL.Scheme, Host: t.URL.Host}).String()
	nsp = t.Namespace
	if nsp == "" {
		nsp = "/"
	}
	if !strings.HasPrefix(nsp, "/") {
		nsp = "/" + nsp
	}
	if raw := bytes.TrimSpace(t.Auth); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&auth) != nil || auth == nil {
			// Never echo the payload: it is a secret.
			return "", "", nil, errors.New("zishang dial: auth is not a JSON object")
		}
	}
	return base, nsp, auth, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// asConnectError classifies a failed attempt.
func asConnectError(err, ctxErr error) *probe.ConnectError {
	var ce *probe.ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	if err != nil && err.Error() == "timeout" {
		// The library's own connect timer.
		return &probe.ConnectError{Reason: probe.FailTimeout, Err: err}
	}
	return &probe.ConnectError{Reason: probe.ClassifyDialError(err, ctxErr), Err: err}
}

const (
	stateDialing int32 = iota
	stateOpen
	stateFailed
)

// conn is one connection. Its handlers run on the library's goroutines.
type conn struct {
	h    probe.Handlers
	nsp  string
	l    *link
	log  *zap.Logger
	mgr  *sio.Manager
	sock *sio.Socket

	state   atomic.Int32
	settled chan struct{}
	dialErr error // set before settled is closed

	connectErrMsg atomic.Pointer[string]
	badHandshake  atomic.Bool

	// mu serialises handler calls with the end of the connection: no
	// OnAck or OnEvent starts after ended is set, and OnClose waits for
	// one in progress.
	mu       sync.Mutex
	ended    bool // OnClose called or about to be
	closing  bool // Close began: handlers stop, Close reports the end
	closeOne sync.Once
	closeErr error
}

func (c *conn) settle(err error) {
	want := stateOpen
	if err != nil {
		want = stateFailed
	}
	if c.state.CompareAndSwap(stateDialing, want) {
		c.dialErr = err
		close(c.settled)
	}
}

func (c *conn) onConnect(...any) { c.settle(nil) }

func (c *conn) onManagerPacket(args ...any) {
	p, _ := firstArg[*parser.Packet](args)
	if p == nil || p.Nsp != c.nsp {
		return
	}
	switch p.Type {
	case parser.CONNECT_ERROR:
		var msg string
		switch d := p.Data.(type) {
		case map[string]any:
			msg, _ = d["message"].(string)
		case string:
			msg = d
		}
		c.connectErrMsg.Store(&msg)
	case parser.CONNECT:
		if d, _ := p.Data.(map[string]any); d == nil {
			c.badHandshake.Store(true)
		} else if sid, _ := d["sid"].(string); sid == "" {
			c.badHandshake.Store(true)
		}
	}
}

func (c *conn) onConnectError(args ...any) {
	libErr, _ := firstArg[error](args)
	switch msg := c.connectErrMsg.Load(); {
	case msg != nil:
		c.settle(&probe.ConnectError{Reason: probe.FailConnectError, Message: *msg})
	case c.badHandshake.Load():
		c.settle(&probe.ConnectError{Reason: probe.FailProtocol, Err: libErr})
	case libErr != nil:
		c.settle(libErr)
	default:
		c.settle(&probe.ConnectError{Reason: probe.FailOther, Err: errors.New("connect_error without detail")})
	}
}

func (c *conn) onDisconnect(args ...any) {
	reason, _ := firstArg[string](args)
	desc, _ := secondArg[error](args)
	if c.state.Load() == stateDialing {
		c.settle(&probe.ConnectError{Reason: c.failureFromDisconnect(reason, desc), Err: libError(reason, desc)})
		return
	}
	c.mu.Lock()
	byClose := c.closing
	c.mu.Unlock()
	if byClose {
		return // Close reports io_client_disconnect when it is done
	}
	c.end(c.disconnectReason(reason), libError(reason, desc))
}

// end calls OnClose once.
func (c *conn) end(reason probe.DisconnectReason, err error) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	c.mu.Unlock()
	c.log.Debug("disconnected", zap.String("reason", string(reason)), zap.Error(err))
	if c.h.OnClose != nil {
		c.h.OnClose(reason, err)
	}
}

func libError(reason string, desc error) error {
	if desc != nil {
		return fmt.Errorf("%s: %w", reason, desc)
	}
	return errors.New(reason)
}

// disconnectReason maps the library's reason strings.
func (c *conn) disconnectReason(reason string) probe.DisconnectReason {
	switch {
	case c.l.parseErr.Load():
		return probe.ReasonParseError
	case c.l.serverDisconnect.Load():
		return probe.ReasonServerDisconnect
	}
	switch reason {
	case "io server disconnect":
		return probe.ReasonServerDisconnect
	case "io client disconnect", "forced close":
		return probe.ReasonClientClose
	case "ping timeout":
		return probe.ReasonPingTimeout
	case "transport close":
		return probe.ReasonTransportClose
	case "parse error":
		return probe.ReasonParseError
	default: // "transport error" and anything new
		return probe.ReasonTransportError
	}
}

// failureFromDisconnect maps a connection that ended between the Engine.IO
// handshake and the namespace's answer.
func (c *conn) failureFromDisconnect(reason string, desc error) probe.FailureReason {
	if c.l.parseErr.Load() {
		return probe.FailProtocol
	}
	switch reason {
	case "transport close":
		return probe.FailReset
	case "ping timeout":
		return probe.FailTimeout
	case "parse error", "io server disconnect":
		return probe.FailProtocol
	case "transport error":
		if r := probe.ClassifyDialError(desc, nil); r != probe.FailOther {
			return r
		}
		return probe.FailReset
	}
	return probe.FailOther
}

// abort tears down a failed attempt and waits for the transport's
// goroutines; when ctx has ended it closes the network connection first,
// so the wait does not depend on the server.
func (c *conn) abort(ctx context.Context) {
	c.mu.Lock()
	c.closing, c.ended = true, true
	c.mu.Unlock()
	c.sock.Disconnect()
	_ = c.waitTransport(ctx)
}

// waitTransport waits for the transport's goroutines, forcing the network
// connection closed when ctx ends first.
func (c *conn) waitTransport(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	if t := c.l.transport(); t != nil {
		t.forceClose()
	}
	<-done
	return ctx.Err()
}

// Emit sends an EVENT packet; see probe.Conn. The library queues it and
// writes it from the transport's writer goroutine, so Emit never blocks and
// cannot see a write error (the connection then ends with
// transport_error).
func (c *conn) Emit(ctx context.Context, event string, ackID int64, args ...json.RawMessage) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("zishang emit %q: %w", event, err)
	}
	if event == "" {
		return errors.New("zishang emit: empty event name")
	}
	c.mu.Lock()
	over := c.ended || c.closing
	c.mu.Unlock()
	if over || !c.sock.Connected() {
		return fmt.Errorf("zishang emit %q: connection closed", event)
	}
	// The library drops the whole payload silently when it does not
	// encode, so check the arguments here.
	data := make([]any, 0, len(args)+1)
	for i, a := range args {
		if !json.Valid(a) {
			return fmt.Errorf("zishang emit %q: argument %d is not valid JSON", event, i)
		}
		data = append(data, a)
	}
	if ackID >= 0 {
		id := uint64(ackID)
		// The library allocates its own ack ids; this closure maps the
		// answer back to ours. It is called with an error when the
		// library gives up on the ack (retention or disconnect): the
		// probe layer does its own timeout accounting, so that is ignored.
		data = append(data, func(args []any, err error) {
			if err == nil {
				c.deliverAck(id, args)
			}
		})
	}
	if err := c.sock.Emit(event, data...); err != nil {
		return fmt.Errorf("zishang emit %q: %w", event, err)
	}
	return nil
}

func (c *conn) deliverAck(id uint64, args []any) {
	if c.h.OnAck == nil {
		return
	}
	raw := encodeArgs(args)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.closing || c.state.Load() != stateOpen {
		return
	}
	c.h.OnAck(id, raw)
}

// onEvent receives every server EVENT once the socket is connected: the
// event name, its arguments and, when the server asked for an ack, an ack
// function last. Events that ask for an ack are not the probe's and are
// not delivered (probe.Handlers.OnEvent).
func (c *conn) onEvent(args ...any) {
	if c.h.OnEvent == nil || len(args) == 0 {
		return
	}
	name, ok := args[0].(string)
	if !ok {
		return
	}
	rest := args[1:]
	if n := len(rest); n > 0 {
		if _, ok := rest[n-1].(func([]any, error)); ok {
			return
		}
	}
	raw := encodeArgs(rest)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.closing || c.state.Load() != stateOpen {
		return
	}
	c.h.OnEvent(name, raw)
}

// encodeArgs turns the library's decoded arguments back into JSON.
func encodeArgs(args []any) []json.RawMessage {
	out := make([]json.RawMessage, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			b = []byte("null")
		}
		out[i] = b
	}
	return out
}

// Close ends the connection: the library sends DISCONNECT and closes the
// engine; the transport flushes, sends a close frame and waits for the
// server's. When ctx ends first the network connection is closed at once
// and ctx's error returned. OnClose(io_client_disconnect) follows unless
// the connection had already ended. Close is idempotent.
func (c *conn) Close(ctx context.Context) error {
	c.closeOne.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.sock.Disconnect()
		if err := c.waitTransport(ctx); err != nil {
			c.closeErr = fmt.Errorf("zishang close: %w", err)
		}
		c.end(probe.ReasonClientClose, nil)
	})
	return c.closeErr
}

func firstArg[T any](args []any) (T, bool) {
	var zero T
	if len(args) < 1 {
		return zero, false
	}
	v, ok := args[0].(T)
	return v, ok
}

func secondArg[T any](args []any) (T, bool) {
	var zero T
	if len(args) < 2 {
		return zero, false
	}
	v, ok := args[1].(T)
	return v, ok
}
