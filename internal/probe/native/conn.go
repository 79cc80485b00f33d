package native

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

var (
	errServerDisconnect = errors.New("server sent DISCONNECT")
	errEngineClose      = errors.New("server sent engine.io CLOSE")
	errAckWithoutID     = errors.New("ACK packet without ack id")
)

// conn is one established connection. Its only goroutine is readLoop (a
// polling transport's GET loop runs on it too).
type conn struct {
	d   *Driver
	tr  transport
	h   probe.Handlers
	nsp string

	pingWait time.Duration // pingInterval + pingTimeout from the OPEN packet
	watchdog *time.Timer   // fires pingWait after the last PING

	closing  atomic.Bool   // set once the end reason is known
	readerID atomic.Uint64 // goroutine id of readLoop, set before it calls any handler
	endMu    sync.Mutex
	reason   probe.DisconnectReason // first recorded end reason
	endErr   error

	done chan struct{} // closed when readLoop has returned, after OnClose
	mp   bool          // Socket.IO packets use socket.io-msgpack-parser's format

	// Connection-state recovery: offered and rec are set by the handshake,
	// early is emptied by the reader before its first read.
	offered probe.Resume
	rec     probe.Recovery
	early   []earlyEvent
	offset  atomic.Pointer[string] // last event's offset, when rec.PID is set
}

var (
	_ probe.Conn   = (*conn)(nil)
	_ probe.Queuer = (*conn)(nil)
)

// outcome is how the reader ends; graceful asks for a WebSocket close
// handshake (the server ended the session but not the WebSocket).
type outcome struct {
	reason   probe.DisconnectReason
	err      error
	graceful bool
}

// end records why the connection ends. The first caller wins, and only the
// winner may start closing the WebSocket; end reports whether it won.
func (c *conn) end(r probe.DisconnectReason, err error) bool {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	if c.reason != "" {
		return false
	}
	c.reason, c.endErr = r, err
	c.closing.Store(true)
	return true
}

func (c *conn) ending() (probe.DisconnectReason, error) {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	return c.reason, c.endErr
}

// readMessage reads one whole Engine.IO message into a pooled buffer, which
// the caller must return with putReadBuf.
func (c *conn) readMessage(ctx context.Context) (websocket.MessageType, *[]byte, error) {
	return c.tr.read(ctx)
}

// handshake reads the Engine.IO OPEN packet, sends the namespace CONNECT and
// waits for the server's answer, all bounded by ctx.
func (c *conn) handshake(ctx context.Context, t *probe.Target) *probe.ConnectError {
	typ, bp, err := c.readMessage(ctx)
	if err != nil {
		return handshakeReadError(ctx, "waiting for the open packet", err)
	}
	open, err := decodeOpenMessage(typ, *bp)
	c.d.putReadBuf(bp)
	if err != nil {
		return &probe.ConnectError{Reason: probe.FailHandshake, Err: err}
	}
	c.pingWait = open.pingInterval + open.pingTimeout

	auth := t.Auth
	if r, ok := probe.ResumeOffer(ctx); ok {
		if auth, err = resumeAuth(t.Auth, r); err != nil {
			return &probe.ConnectError{Reason: probe.FailOther, Err: fmt.Errorf("offering the session to recover: %w", err)}
		}
		c.offered = r
		// Until an event brings a new one, the offset stays the last one
		// received, as socket.io-client keeps it across reconnects: a
		// session broken again before any event offers it again.
		off := r.Offset
		c.offset.Store(&off)
	}
	wb := c.d.getWriteBuf()
	if c.mp {
		if *wb, err = appendMsgpackConnect((*wb)[:0], c.nsp, auth); err == nil {
			err = c.tr.writeBinary(ctx, *wb)
		}
	} else {
		*wb = appendConnect((*wb)[:0], c.nsp, auth)
		err = c.tr.write(ctx, *wb)
	}
	clear(*wb) // it held the auth payload
	c.d.putWriteBuf(wb)
	if err != nil {
		if ce := statusConnectError(err); ce != nil {
			return ce
		}
		return &probe.ConnectError{Reason: probe.ClassifyDialError(err, ctx.Err()), Err: fmt.Errorf("sending connect: %w", err)}
	}

	for {
		typ, bp, err := c.readMessage(ctx)
		if err != nil {
			ce := handshakeReadError(ctx, "waiting for the connect answer", err)
			// socket.io drops the WebSocket without a close status when its
			// parser rejects a packet; a server closing on purpose says why.
			if ce.Reason == probe.FailReset && ce.Message == "" && websocket.CloseStatus(err) == websocket.StatusNoStatusRcvd {
				ce.Message = connectDroppedHint
			}
			return ce
		}
		done, cerr := c.handshakeMessage(ctx, typ, *bp)
		c.d.putReadBuf(bp)
		if done {
			return cerr
		}
	}
}

func decodeOpenMessage(typ websocket.MessageType, msg []byte) (openPacket, error) {
	if typ != websocket.MessageText {
		return openPacket{}, errors.New("binary message instead of the open packet")
	}
	et, payload, err := decodeEngine(msg)
	if err != nil {
		return openPacket{}, fmt.Errorf("invalid open packet: %w", err)
	}
	if et != eioOpen {
		return openPacket{}, fmt.Errorf("engine.io packet type %c instead of open", et)
	}
	return decodeOpen(payload)
}

// handshakeMessage handles one message while waiting for the CONNECT answer;
// done means the wait is over, successfully when err is nil.
func (c *conn) handshakeMessage(ctx context.Context, typ websocket.MessageType, msg []byte) (done bool, err *probe.ConnectError) {
	protoErr := func(e error) (bool, *probe.ConnectError) {
		return true, &probe.ConnectError{Reason: probe.FailProtocol, Err: fmt.Errorf("during the handshake: %w", e)}
	}
	if typ != websocket.MessageText {
		if c.mp {
			return c.handshakeMsgpack(msg)
		}
		return protoErr(errors.New("unexpected binary message: does the server use socket.io-msgpack-parser? Then set SOAK_PARSER=msgpack"))
	}
	et, payload, perr := decodeEngine(msg)
	if perr != nil {
		return protoErr(perr)
	}
	switch et {
	case eioPing:
		if werr := c.writePong(ctx, payload); werr != nil {
			return true, &probe.ConnectError{Reason: probe.ClassifyDialError(werr, ctx.Err()), Err: fmt.Errorf("writing pong: %w", werr)}
		}
		return false, nil
	case eioPong, eioNoop:
		return false, nil
	case eioClose:
		return true, &probe.ConnectError{Reason: probe.FailReset, Err: errEngineClose}
	case eioMessage:
	default:
		return protoErr(fmt.Errorf("unexpected engine.io packet type %c", et))
	}
	p, perr := decodeSocket(payload)
	if perr != nil {
		return protoErr(perr)
	}
	if !p.inNamespace(c.nsp) {
		if p.typ == sioBinaryEvent || p.typ == sioBinaryAck {
			return protoErr(errors.New("binary packet before connect"))
		}
		return false, nil
	}
	switch p.typ {
	case sioConnect:
		if perr := checkConnectReply(p.data); perr != nil {
			return protoErr(perr)
		}
		if !connectReplyHasSID(p.data) {
			// Socket.IO v3+ servers (protocol v5) always send the socket's
			// sid; v2 servers answer a bare "40" on their own and speak
			// Engine.IO v3, whose pings go the other way: such a session
			// would look healthy and die of ping timeouts. The official
			// client refuses it too.
			return true, &probe.ConnectError{Reason: probe.FailProtocol, Message: socketIOv2Message,
				Err: errors.New("connect answer without sid")}
		}
		c.rec.PID = connectReplyPID(p.data)
		c.rec.Recovered = c.offered.PID != "" && c.rec.PID == c.offered.PID
		return true, nil
	case sioConnectError:
		m, perr := parseConnectError(p.data)
		if perr != nil {
			return protoErr(perr)
		}
		return true, &probe.ConnectError{Reason: probe.FailConnectError, Message: m, Data: connectErrorData(p.data)}
	case sioDisconnect:
		return protoErr(errors.New("disconnect packet before connect"))
	case sioBinaryEvent, sioBinaryAck:
		return protoErr(errors.New("binary packet before connect"))
	}
	if p.typ == sioEvent {
		// A recovering server replays the missed packets before its
		// answer: keep them for the reader.
		if err := c.keepEarly(payload); err != nil {
			return protoErr(err)
		}
	}
	return false, nil // ACK before the answer: ignored
}

// socketIOv2Message explains a refused Socket.IO v2 server.
const socketIOv2Message = "the server speaks Socket.IO v2 (Engine.IO v3), which this client does not: upgrade the server to Socket.IO v3 or later (Engine.IO v4)"

// connectDroppedHint explains a server that accepted the Engine.IO session
// and closed it on our namespace CONNECT: typically a server whose Socket.IO
// parser is not the default JSON one.
const connectDroppedHint = "the server closed the connection on the namespace CONNECT: its Socket.IO parser is likely not the one SOAK_PARSER names (json, or msgpack for socket.io-msgpack-parser)"

// frameLimitHint explains a message larger than the driver's frame limit.
const frameLimitHint = "the server sent a message larger than the frame limit: raise SOAK_MAX_FRAME_BYTES"

// handshakeReadError classifies a read failure during the handshake.
func handshakeReadError(ctx context.Context, what string, err error) *probe.ConnectError {
	err = fmt.Errorf("%s: %w", what, err)
	if ce := statusConnectError(err); ce != nil {
		return ce
	}
	var r probe.FailureReason
	switch {
	case ctx.Err() != nil:
		r = probe.ClassifyDialError(err, ctx.Err())
	case errors.Is(err, websocket.ErrMessageTooBig):
		return &probe.ConnectError{Reason: probe.FailProtocol, Message: frameLimitHint, Err: err}
	case websocket.CloseStatus(err) != -1:
		r = probe.FailReset
	default:
		r = probe.ClassifyDialError(err, nil)
	}
	return &probe.ConnectError{Reason: r, Err: err}
}

// start arms the ping watchdog and starts the reader: a goroutine, or for
// the event-loop transport, the hand-over of the socket to a loop.
func (c *conn) start() error {
	c.watchdog = time.AfterFunc(c.pingWait, c.pingExpired)
	if h, ok := c.tr.(interface{ handOver(*conn) error }); ok {
		if err := h.handOver(c); err != nil {
			c.watchdog.Stop()
			return err
		}
		return nil
	}
	go func() {
		c.readerID.Store(goroutineID())
		c.readLoop()
	}()
	return nil
}

func (c *conn) pingExpired() {
	if c.end(probe.ReasonPingTimeout, fmt.Errorf("no ping from the server for %v", c.pingWait)) {
		c.tr.abort()
	}
}

// readLoop is the connection's goroutine: it reads until the connection
// ends, closes the WebSocket unless Close does, then calls OnClose.
func (c *conn) readLoop() { c.finish(c.read()) }

// finish ends the connection once reading has stopped with o; it runs on
// the goroutine that readerID names.
func (c *conn) finish(o outcome) {
	c.watchdog.Stop()
	c.end(o.reason, o.err)
	reason, err := c.ending()
	switch {
	case reason == probe.ReasonClientClose:
		// Close runs the close handshake and waits for us.
	case o.graceful && reason == o.reason:
		c.closeGracefully()
	default:
		c.tr.closeNow()
	}
	c.d.log.Debug("connection ended", zap.String("reason", string(reason)), zap.Error(err))
	if c.h.OnClose != nil {
		c.h.OnClose(reason, err)
	}
	close(c.done)
}

// closeGracefully runs the transport's close handshake, bounded by the
// driver's close timeout.
func (c *conn) closeGracefully() {
	ctx, cancel := context.WithTimeout(context.Background(), c.d.closeTimeout)
	_ = c.tr.close(ctx)
	cancel()
	c.tr.closeNow()
}

// pendingBinary is a BINARY_EVENT or BINARY_ACK waiting for attachments.
type pendingBinary struct {
	remaining int
	skip      bool // another namespace's packet: just consume attachments
	ack       bool
	id        uint64
	hasID     bool
	name      string
	args      []json.RawMessage
}

func (c *conn) read() outcome {
	var pend pendingBinary
	ctx := context.Background() // no per-read timer: the watchdog bounds reads
	if o := c.deliverEarly(); o.reason != "" {
		return o
	}
	for {
		typ, bp, err := c.readMessage(ctx)
		if err != nil {
			return classifyReadError(err)
		}
		o := c.handleMessage(typ, *bp, &pend)
		c.d.putReadBuf(bp)
		if o.reason != "" {
			return o
		}
	}
}

// classifyReadError names why a read on an established connection failed.
func classifyReadError(err error) outcome {
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		return outcome{reason: probe.ReasonParseError, err: fmt.Errorf("%s: %w", frameLimitHint, err)}
	case websocket.CloseStatus(err) != -1, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return outcome{reason: probe.ReasonTransportClose, err: err}
	}
	return outcome{reason: probe.ReasonTransportError, err: err}
}

func parseError(err error) outcome {
	return outcome{reason: probe.ReasonParseError, err: err}
}

// handleMessage handles one message of an established connection; a
// non-empty reason ends the connection.
func (c *conn) handleMessage(typ websocket.MessageType, msg []byte, pend *pendingBinary) outcome {
	if typ == websocket.MessageBinary && c.mp {
		return c.handleMsgpack(msg)
	}
	if typ == websocket.MessageBinary {
		if pend.remaining == 0 {
			return parseError(errors.New("unexpected binary message"))
		}
		pend.remaining--
		if pend.remaining == 0 {
			return c.deliverBinary(pend)
		}
		return outcome{}
	}
	if pend.remaining > 0 {
		return parseError(fmt.Errorf("text message while %d binary attachments are missing", pend.remaining))
	}
	et, payload, err := decodeEngine(msg)
	if err != nil {
		return parseError(err)
	}
	switch et {
	case eioMessage:
		return c.handleSocket(payload, pend)
	case eioPing:
		c.watchdog.Reset(c.pingWait)
		ctx, cancel := context.WithTimeout(context.Background(), c.d.controlTimeout)
		err := c.writePong(ctx, payload)
		cancel()
		if err != nil {
			return outcome{reason: probe.ReasonTransportError, err: fmt.Errorf("writing pong: %w", err)}
		}
	case eioClose:
		return outcome{reason: probe.ReasonTransportClose, err: errEngineClose, graceful: true}
	case eioPong, eioNoop:
		// A server never sends PONG to a client that does not ping; harmless.
	default: // OPEN or UPGRADE: not valid on an open WebSocket session
		return parseError(fmt.Errorf("unexpected engine.io packet type %c", et))
	}
	return outcome{}
}

// handleSocket handles one Socket.IO packet.
func (c *conn) handleSocket(payload []byte, pend *pendingBinary) outcome {
	p, err := decodeSocket(payload)
	if err != nil {
		return parseError(err)
	}
	binary := p.typ == sioBinaryEvent || p.typ == sioBinaryAck
	if binary && p.attachments > c.d.maxAttachments {
		return parseError(fmt.Errorf("%d binary attachments, more than %d", p.attachments, c.d.maxAttachments))
	}
	if !p.inNamespace(c.nsp) {
		if binary {
			*pend = pendingBinary{remaining: p.attachments, skip: true}
		}
		return outcome{}
	}
	switch p.typ {
	case sioEvent, sioBinaryEvent:
		data := p.data
		if c.h.OnEvent != nil {
			data = clone(data)
		}
		name, args, err := parseEvent(data, nil)
		if err != nil {
			return parseError(err)
		}
		if binary {
			*pend = pendingBinary{remaining: p.attachments, id: p.id, hasID: p.hasID, name: name, args: args}
			if p.attachments == 0 {
				return c.deliverBinary(pend)
			}
			return outcome{}
		}
		return c.deliverEvent(name, args, p.id, p.hasID)
	case sioAck, sioBinaryAck:
		if !p.hasID {
			return parseError(errAckWithoutID)
		}
		data := p.data
		if c.h.OnAck != nil {
			data = clone(data)
		}
		args, err := splitArray(data, nil)
		if err != nil {
			return parseError(err)
		}
		if binary {
			*pend = pendingBinary{remaining: p.attachments, ack: true, id: p.id, args: args}
			if p.attachments == 0 {
				return c.deliverBinary(pend)
			}
			return outcome{}
		}
		c.onAck(p.id, args)
	case sioDisconnect:
		return outcome{reason: probe.ReasonServerDisconnect, err: errServerDisconnect, graceful: true}
	case sioConnectError:
		msg, _ := parseConnectError(p.data)
		return outcome{reason: probe.ReasonServerDisconnect, err: fmt.Errorf("server sent CONNECT_ERROR after connect: %q", msg), graceful: true}
	case sioConnect:
		// A repeated CONNECT answer changes nothing.
	}
	return outcome{}
}

func (c *conn) onAck(id uint64, args []json.RawMessage) {
	if c.h.OnAck != nil {
		c.h.OnAck(id, args)
	}
}

// deliverBinary delivers a binary packet whose attachments all arrived.
func (c *conn) deliverBinary(pend *pendingBinary) outcome {
	p := *pend
	*pend = pendingBinary{}
	switch {
	case p.skip:
	case p.ack:
		c.onAck(p.id, p.args)
	default:
		return c.deliverEvent(p.name, p.args, p.id, p.hasID)
	}
	return outcome{}
}

// deliverEvent calls OnEvent and, when the server asked for an ack, answers
// it with an empty one.
func (c *conn) deliverEvent(name string, args []json.RawMessage, id uint64, hasID bool) outcome {
	c.noteOffset(args)
	if c.h.OnEvent != nil {
		c.h.OnEvent(name, args)
	}
	if !hasID {
		return outcome{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.d.controlTimeout)
	defer cancel()
	wb := c.d.getWriteBuf()
	var err error
	if c.mp {
		if *wb, err = appendMsgpack((*wb)[:0], sioAck, c.nsp, []any{}, true, int64(id)); err == nil {
			err = c.tr.writeBinary(ctx, *wb)
		}
	} else {
		*wb = appendEmptyAck((*wb)[:0], c.nsp, id)
		err = c.tr.write(ctx, *wb)
	}
	c.d.putWriteBuf(wb)
	if err != nil {
		return outcome{reason: probe.ReasonTransportError, err: fmt.Errorf("writing ack: %w", err)}
	}
	return outcome{}
}

func (c *conn) writePong(ctx context.Context, payload []byte) error {
	wb := c.d.getWriteBuf()
	*wb = append(append((*wb)[:0], eioPong), payload...)
	err := c.tr.write(ctx, *wb)
	c.d.putWriteBuf(wb)
	return err
}

// goroutineID returns the id of the calling goroutine, read from the header
// line of its stack trace ("goroutine 123 [running]:"). Close uses it to tell
// a call from the reader's own handlers (which must not wait for the reader)
// from a call on any other goroutine (which must): a flag set around handler
// calls cannot tell the two apart. It costs about a microsecond and is only
// called by start and Close.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	var id uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			break
		}
		id = id*10 + uint64(ch-'0')
	}
	return id
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// errConnClosed is returned by Emit once the connection is ending.
var errConnClosed = fmt.Errorf("connection closed: %w", net.ErrClosed)

// Emit sends an EVENT packet; see probe.Conn. It is safe for concurrent use.
// The args are copied before Emit returns.
func (c *conn) Emit(ctx context.Context, event string, ackID int64, args ...json.RawMessage) error {
	if c.closing.Load() {
		return errConnClosed
	}
	// coder/websocket closes the connection when ctx ends during a write:
	// never start one with a dead ctx, or the caller's lateness would read
	// as a transport error.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	for i, a := range args {
		if len(a) == 0 {
			return fmt.Errorf("emit: argument %d is empty", i)
		}
	}
	wb := c.d.getWriteBuf()
	var err error
	if c.mp {
		if *wb, err = appendMsgpackEvent((*wb)[:0], c.nsp, ackID, event, args); err == nil {
			err = c.tr.writeBinary(ctx, *wb)
		}
	} else {
		*wb = appendEvent((*wb)[:0], c.nsp, ackID, event, args)
		err = c.tr.write(ctx, *wb)
	}
	c.d.putWriteBuf(wb)
	if err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	return nil
}

// Backlog implements probe.Queuer: only the event-loop transport queues
// writes without waiting.
func (c *conn) Backlog() (int, bool) {
	if q, ok := c.tr.(interface{ backlog() (int, bool) }); ok {
		return q.backlog()
	}
	return 0, false
}

// Close sends DISCONNECT, then runs the transport's close handshake, all
// bounded by ctx, and waits (also bounded by ctx) for OnClose to have run.
// On a connection that already ended it only waits. Called from OnAck or
// OnEvent (on the reader), it does not wait for OnClose, which runs once the
// handler returns; called from any other goroutine it waits, even while the
// reader is inside a handler.
func (c *conn) Close(ctx context.Context) error {
	if !c.end(probe.ReasonClientClose, nil) {
		c.waitReader(ctx)
		return nil
	}
	// Closing the TCP connection unblocks every step below at once.
	stop := context.AfterFunc(ctx, c.tr.abort)
	defer stop()
	err := ctx.Err()
	if err == nil {
		wb := c.d.getWriteBuf()
		// Write returns once the packet is in the socket, before the close
		// frame: the server sees a namespace disconnect, not a transport close.
		if c.mp {
			if *wb, err = appendMsgpack((*wb)[:0], sioDisconnect, c.nsp, nil, false, -1); err == nil {
				err = c.tr.writeBinary(ctx, *wb)
			}
		} else {
			*wb = appendDisconnect((*wb)[:0], c.nsp)
			err = c.tr.write(ctx, *wb)
		}
		c.d.putWriteBuf(wb)
		if err == nil {
			err = c.tr.close(ctx)
		}
	}
	if err != nil {
		c.tr.closeNow()
	}
	if !c.waitReader(ctx) && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// waitReader waits, bounded by ctx, until the reader has called OnClose; it
// does not wait when called on the reader's own goroutine (from a handler),
// which would wait for itself. Any other goroutine waits, even while the
// reader is inside a handler. It reports false when ctx ended first.
func (c *conn) waitReader(ctx context.Context) bool {
	if c.readerID.Load() == goroutineID() {
		return true
	}
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Transport returns the transport the connection runs on: "websocket", or
// "polling" when it stayed on HTTP long-polling.
func (c *conn) Transport() string { return c.tr.name() }
