package zishang

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/gorilla/websocket"
	engine "github.com/zishang520/socket.io/clients/engine/v3"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	eioparser "github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// transportName is the Engine.IO name of the WebSocket transport; the engine
// puts it in the handshake query (transport=websocket).
const transportName = "websocket"

// aLongTimeAgo returns a deadline in the past: setting it unblocks any
// pending read or write on a net.Conn.
func aLongTimeAgo() time.Time { return time.Unix(1, 0) }

// link is what one Dial shares with the WebSocket transport that the
// library's engine creates for it through wsBuilder.
type link struct {
	writeTimeout time.Duration
	closeTimeout time.Duration

	// gate is closed by Dial once the manager's open, error and timer
	// subscriptions exist; the transport does not dial before.
	gate chan struct{}
	// dial opens the WebSocket, bounded by Dial's ctx; dialDone is that
	// ctx's Done channel.
	dial     func(u *url.URL) (*websocket.Conn, error)
	dialDone <-chan struct{}
	// wg counts the transport's goroutines; Dial and Close wait for it.
	wg sync.WaitGroup
	// parseErr records that the connection ended on a frame over the size
	// limit or an undecodable Engine.IO packet: the library reports those
	// as "transport error".
	parseErr atomic.Bool
	// nsp is the namespace; serverDisconnect records that the server sent
	// it a DISCONNECT packet. The library hands decoded packets to a queue
	// but handles the end of the transport at once, so a server that
	// sends DISCONNECT and closes is reported as "transport close".
	nsp              string
	serverDisconnect atomic.Bool

	mu sync.Mutex
	tr *wsTransport
}

func (l *link) transport() *wsTransport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tr
}

// wsBuilder is the engine.TransportCtor handed to the library: the engine
// calls New once per connection attempt (reconnection is off).
type wsBuilder struct{ l *link }

func (b *wsBuilder) Name() string { return transportName }

func (b *wsBuilder) New(sock engine.Socket, opts engine.SocketOptionsInterface) engine.Transport {
	t := &wsTransport{
		Transport:  engine.MakeTransport(),
		l:          b.l,
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	t.Prototype(t)
	t.Construct(sock, opts)
	b.l.mu.Lock()
	b.l.tr = t
	b.l.mu.Unlock()
	return t
}

// wsTransport is an Engine.IO WebSocket transport for the library's engine
// socket. It replaces the library's own one (websocket.go of
// clients/engine/v3), whose gorilla dialer has no context and no handshake
// timeout (defect 4) and which drops queued writes when closed (defect 6).
// It embeds the library's base transport, so state, events and packet
// decoding stay the library's; it only dials, reads and writes.
type wsTransport struct {
	engine.Transport
	l *link

	mu    sync.Mutex
	conn  *websocket.Conn
	queue [][]*packet.Packet

	wake       chan struct{} // a batch was queued
	stopOnce   sync.Once
	stop       chan struct{} // DoClose: flush, close handshake, close
	stopping   atomic.Bool   // the engine closed us: report nothing more
	readerDone chan struct{}
}

// Name is the transport's Engine.IO name.
func (t *wsTransport) Name() string { return transportName }

// DoOpen starts the connection in a goroutine: the engine calls it from
// inside Manager.Open, before the manager has subscribed to the engine's
// events, so dialing here synchronously (as the library does) loses the
// open event or a dial error (defect 2).
func (t *wsTransport) DoOpen() {
	t.l.wg.Add(1)
	go t.run()
}

// DoClose asks for a graceful close: queued writes are flushed, a close
// frame is sent and the server's answer awaited (bounded), then the TCP
// connection is closed. It does not block: the engine calls it from its own
// event handlers, possibly on our writer goroutine.
func (t *wsTransport) DoClose() {
	t.stopping.Store(true)
	t.stopOnce.Do(func() { close(t.stop) })
}

// Write queues packets for the writer goroutine. The engine calls it with
// its flush lock held and expects "drain" later, never from inside Write.
func (t *wsTransport) Write(packets []*packet.Packet) {
	t.SetWritable(false)
	t.mu.Lock()
	t.queue = append(t.queue, packets)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// forceClose closes the network connection at once (Close's ctx ended).
// Errors that follow are still reported to the engine unless it had already
// closed the transport, so that it clears its timers.
func (t *wsTransport) forceClose() {
	t.mu.Lock()
	c := t.conn
	t.mu.Unlock()
	if c != nil {
		_ = c.NetConn().Close()
	}
	t.stopOnce.Do(func() { close(t.stop) })
}

func (t *wsTransport) run() {
	defer t.l.wg.Done()
	select {
	case <-t.l.gate:
	case <-t.stop:
		return
	case <-t.l.dialDone:
		return
	}
	conn, err := t.l.dial(t.uri())
	if err != nil {
		if !t.stopping.Load() {
			// The engine passes the error unchanged to the manager's open
			// callback, where Dial classifies it.
			t.Emit("error", err)
		}
		return
	}
	t.mu.Lock()
	t.conn = conn
	t.mu.Unlock()
	if t.stopping.Load() {
		_ = conn.Close()
		return
	}
	// Open before the reader starts: the engine answers the server's OPEN
	// packet with writes that it discards unless the transport is open.
	t.OnOpen()
	t.l.wg.Add(1)
	go t.read(conn)
	t.writeLoop(conn)
}

// uri is the handshake URL, built as the library's transport builds it.
func (t *wsTransport) uri() *url.URL {
	scheme := "ws"
	if t.Opts().Secure() {
		scheme = "wss"
	}
	q := url.Values{}
	for k, vs := range t.Query() {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	return t.CreateUri(scheme, q)
}

// dialWebSocket performs the WebSocket handshake, bounded by ctx whether it
// has a deadline or is only cancelled, and limits incoming frames to
// maxFrame bytes.
func dialWebSocket(ctx context.Context, u *url.URL, header http.Header, tlsConf *tls.Config, maxFrame int64) (*websocket.Conn, error) {
	var (
		mu   sync.Mutex
		stop func() bool
	)
	d := &websocket.Dialer{
		Proxy:           http.ProxyFromEnvironment,
		TLSClientConfig: tlsConf,
		// gorilla bounds the handshake only by a ctx deadline; this also
		// unblocks it when ctx is cancelled without one.
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo()) })
			mu.Unlock()
			return c, nil
		},
	}
	conn, resp, err := d.DialContext(ctx, u.String(), header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	mu.Lock()
	interrupted := stop != nil && !stop()
	mu.Unlock()
	if err == nil && interrupted {
		// ctx ended right after the upgrade: the deadline set in the past
		// would fail the first read; report the attempt as cut short.
		_ = conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return nil, &probe.ConnectError{Reason: probe.FailHandshake, Message: resp.Status, Err: err}
		}
		return nil, err
	}
	conn.SetReadLimit(maxFrame)
	return conn, nil
}

func (t *wsTransport) read(conn *websocket.Conn) {
	defer t.l.wg.Done()
	defer close(t.readerDone)
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			t.readFailed(err)
			return
		}
		var buf types.BufferInterface
		switch mt {
		case websocket.TextMessage:
			if isDisconnect(data, t.l.nsp) {
				t.l.serverDisconnect.Store(true)
			}
			buf = types.NewStringBuffer(data)
		case websocket.BinaryMessage:
			buf = types.NewBytesBuffer(data)
		default:
			continue
		}
		p, err := eioparser.Parserv4().DecodePacket(buf)
		if err != nil {
			// The library's transport ignores decode errors; the contract
			// wants them to end the connection as a parse error.
			t.l.parseErr.Store(true)
			_ = conn.Close()
			if !t.stopping.Load() {
				t.OnError("engine.io parse error", err, nil)
			}
			return
		}
		t.OnPacket(p)
	}
}

// isDisconnect reports whether msg is an Engine.IO MESSAGE carrying a
// Socket.IO DISCONNECT packet for namespace nsp: "41" for "/", "41/nsp,"
// otherwise.
func isDisconnect(msg []byte, nsp string) bool {
	if len(msg) < 2 || msg[0] != '4' || msg[1] != '1' {
		return false
	}
	rest := string(msg[2:])
	if nsp == "/" {
		return rest == "" || !strings.HasPrefix(rest, "/")
	}
	return strings.HasPrefix(rest, nsp+",") || rest == nsp
}

func (t *wsTransport) readFailed(err error) {
	if t.stopping.Load() {
		return
	}
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		t.l.parseErr.Store(true)
		t.OnError("websocket frame over the size limit", err, nil)
	case errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The server closed the WebSocket or the TCP connection: the
		// engine reports "transport close".
		t.OnClose(engine.NewTransportError("websocket connection closed", err, nil).Err())
	default:
		t.OnError("websocket error", err, nil)
	}
}

func (t *wsTransport) writeLoop(conn *websocket.Conn) {
	for {
		select {
		case <-t.wake:
			if err := t.flush(conn); err != nil {
				_ = conn.Close()
				if !t.stopping.Load() {
					t.OnError("websocket write error", err, nil)
				}
				return
			}
		case <-t.stop:
			t.closeGracefully(conn)
			return
		case <-t.readerDone:
			_ = conn.Close()
			return
		}
	}
}

// flush writes every queued batch, then tells the engine it may send more.
func (t *wsTransport) flush(conn *websocket.Conn) error {
	for {
		t.mu.Lock()
		batches := t.queue
		t.queue = nil
		t.mu.Unlock()
		if len(batches) == 0 {
			return nil
		}
		for _, packets := range batches {
			for _, p := range packets {
				if err := t.writePacket(conn, p); err != nil {
					return err
				}
			}
		}
		t.SetWritable(true)
		t.Emit("drain")
	}
}

func (t *wsTransport) writePacket(conn *websocket.Conn, p *packet.Packet) error {
	data, err := eioparser.Parserv4().EncodePacket(p, t.SupportsBinary())
	if err != nil {
		return err
	}
	mt := websocket.BinaryMessage
	if _, ok := data.(*types.StringBuffer); ok {
		mt = websocket.TextMessage
	}
	if err := conn.SetWriteDeadline(time.Now().Add(t.l.writeTimeout)); err != nil {
		return err
	}
	return conn.WriteMessage(mt, data.Bytes())
}

// closeGracefully flushes what the engine queued before it closed us (the
// DISCONNECT packet of Close, defect 6), sends a close frame and waits for
// the server's one, at most closeTimeout, then closes the TCP connection.
func (t *wsTransport) closeGracefully(conn *websocket.Conn) {
	defer func() { _ = conn.Close() }()
	if err := t.flush(conn); err != nil {
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(t.l.closeTimeout)); err != nil {
		return
	}
	timer := time.NewTimer(t.l.closeTimeout)
	defer timer.Stop()
	select {
	case <-t.readerDone:
	case <-timer.C:
	}
}
