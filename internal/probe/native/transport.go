package native

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/coder/websocket"
)

// Transport names, as Engine.IO spells them in its query and upgrades list.
const (
	transportWebSocket = "websocket"
	transportPolling   = "polling"
)

// transport moves whole Engine.IO messages for one conn: the WebSocket
// (wsTransport) or HTTP long-polling (pollingTransport). Packet decoding
// stays in conn; a transport only reads one message, writes one and closes.
type transport interface {
	// name is "websocket" or "polling".
	name() string
	// read returns the next message in a buffer from the Driver's read
	// pool, which the caller returns with putReadBuf. Only the conn's
	// reader (or Dial before it starts) calls it.
	read(ctx context.Context) (websocket.MessageType, *[]byte, error)
	// write sends one text message; safe for concurrent use. msg is not
	// kept after write returns.
	write(ctx context.Context, msg []byte) error
	// writeBinary sends one binary message (a msgpack Socket.IO packet),
	// as write does.
	writeBinary(ctx context.Context, msg []byte) error
	// close ends the transport gracefully (WebSocket close handshake,
	// Engine.IO CLOSE over polling), bounded by ctx.
	close(ctx context.Context) error
	// closeNow drops the transport without a handshake.
	closeNow()
	// abort unblocks every read and write at once; safe from any goroutine.
	abort()
}

// wsDialed is a freshly dialed WebSocket: wsTransport, or loopConn for the
// event loop. setQueued gives it messages to read first.
type wsDialed interface {
	transport
	setQueued(q []queuedMessage)
}

// wsTransport is one WebSocket. queued holds messages already read on
// another transport (the OPEN packet of an upgraded polling session), read
// first.
type wsTransport struct {
	d      *Driver
	ws     *websocket.Conn
	raw    net.Conn // the TCP connection under ws, closed to abort anything
	queued []queuedMessage
}

type queuedMessage struct {
	typ websocket.MessageType
	msg *[]byte
}

var _ transport = (*wsTransport)(nil)

func (w *wsTransport) name() string { return transportWebSocket }

func (w *wsTransport) setQueued(q []queuedMessage) { w.queued = q }

func (w *wsTransport) read(ctx context.Context) (websocket.MessageType, *[]byte, error) {
	if len(w.queued) > 0 {
		q := w.queued[0]
		w.queued = w.queued[1:]
		return q.typ, q.msg, nil
	}
	typ, r, err := w.ws.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	bp := w.d.getReadBuf()
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			*bp = b
			if errors.Is(err, io.EOF) {
				return typ, bp, nil
			}
			w.d.putReadBuf(bp)
			return 0, nil, err
		}
	}
}

func (w *wsTransport) write(ctx context.Context, msg []byte) error {
	return w.ws.Write(ctx, websocket.MessageText, msg)
}

func (w *wsTransport) writeBinary(ctx context.Context, msg []byte) error {
	return w.ws.Write(ctx, websocket.MessageBinary, msg)
}

func (w *wsTransport) close(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = w.raw.Close() })
	defer stop()
	return w.ws.Close(websocket.StatusNormalClosure, "")
}

func (w *wsTransport) closeNow() { _ = w.ws.CloseNow() }

func (w *wsTransport) abort() { _ = w.raw.Close() }
