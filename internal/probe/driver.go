package probe

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Target is one Socket.IO endpoint as a driver needs it. It is built once
// from configuration and shared, read-only, by every connection to it.
type Target struct {
	// Name is the bounded label value that identifies the target in metrics.
	Name string
	// URL is the server's base URL (http, https, ws or wss). Its path is
	// ignored by drivers: Namespace carries it.
	URL *url.URL
	// Path is the Engine.IO request path, "/socket.io/" unless configured.
	Path string
	// Namespace is the Socket.IO namespace, "/" for the main one.
	Namespace string
	// Auth is the JSON object sent with the namespace CONNECT packet, or nil.
	// It is a secret: never log it or put it in an error message.
	Auth json.RawMessage
	// Header holds extra HTTP headers for the WebSocket handshake. Values may
	// be secrets.
	Header http.Header
	// Query holds extra query parameters for the handshake URL.
	Query url.Values
	// TLS configures https/wss targets; nil means Go's defaults. Drivers may
	// cache an HTTP client per *tls.Config pointer: share one config per
	// target, never build one per dial.
	TLS *tls.Config
	// MaxFrameBytes bounds one incoming WebSocket message; a larger one is a
	// protocol error that closes the connection. Zero means 1 MiB.
	MaxFrameBytes int64
	// SourceAddrs are the local addresses the connections bind to, one per
	// client slot in turn (slot i uses SourceAddrs[i % len]), so that one
	// agent can hold more connections to one server address than the
	// ephemeral ports of a single source address allow. Empty: the system
	// chooses. Drivers read the one for a dial with Source(ctx).
	SourceAddrs []netip.Addr
	// Transports lists the Engine.IO transports to use, as socket.io-client's
	// transports option: ["websocket"], ["polling"] or ["polling",
	// "websocket"] (long-polling, then upgrade). Empty means ["websocket"].
	// Drivers refuse a list they do not support.
	Transports []string
	// Parser is the Socket.IO parser the server uses: "json" (the default,
	// also when empty) or "msgpack" (socket.io-msgpack-parser). Drivers
	// refuse one they do not speak.
	Parser string
}

// Transport names a connection may report through TransportReporter.
const (
	TransportWebSocket = "websocket"
	TransportPolling   = "polling"
)

// Transports lists every transport name TransportReporter may return, the
// bounded values of the transport label.
var Transports = [...]string{TransportWebSocket, TransportPolling}

// TransportReporter is optionally implemented by a Conn that can tell the
// Engine.IO transport it runs on (after any upgrade): TransportWebSocket or
// TransportPolling. A Conn that does not implement it runs on WebSocket.
type TransportReporter interface {
	Transport() string
}

// TransportOf returns the transport c runs on, one of Transports.
func TransportOf(c Conn) string {
	if r, ok := c.(TransportReporter); ok && r.Transport() == TransportPolling {
		return TransportPolling
	}
	return TransportWebSocket
}

// Handlers receive what an established connection sees. Drivers call them
// from the connection's reader: they must be quick and must not block. Any of
// them may be nil.
type Handlers struct {
	// OnAck is called for every ACK (or BINARY_ACK) packet of the namespace
	// with the packet's ack id and its arguments. Binary attachments stay as
	// their JSON placeholders.
	OnAck func(id uint64, args []json.RawMessage)
	// OnEvent is called for every EVENT (or BINARY_EVENT) packet the server
	// sends to the namespace. When the server asks for an ack, the driver
	// answers it itself (with no arguments).
	OnEvent func(name string, args []json.RawMessage)
	// OnClose is called exactly once when a connection returned by Dial ends,
	// whoever ended it, after the driver has stopped calling OnAck and OnEvent
	// for it. It may run before Dial has returned to its caller. err carries
	// detail for logs; reason is the bounded label.
	OnClose func(reason DisconnectReason, err error)
}

// Driver dials Socket.IO connections. Implementations must be safe for
// concurrent use by many goroutines.
type Driver interface {
	// Name is the driver's name as selected by SOAK_DRIVER.
	Name() string
	// Dial opens one Engine.IO connection over WebSocket and connects to the
	// target's namespace. It returns once the server has answered the
	// namespace CONNECT, or with an error when ctx ends first; it never
	// outlives ctx. Errors are *ConnectError. No handler is called for a
	// connection whose Dial failed.
	Dial(ctx context.Context, t *Target, h Handlers) (Conn, error)
}

// NoAck is the ackID given to Conn.Emit for an event that wants no ack.
const NoAck int64 = -1

// Conn is one established Socket.IO connection (one Engine.IO session).
type Conn interface {
	// Emit sends an EVENT packet to the namespace: the event name followed by
	// args, each a complete JSON value. With ackID >= 0 the packet asks for an
	// ack with that id; the caller owns the id space of its connection, so it
	// can register the id before the ack can possibly arrive. Emit writes the
	// packet or fails; it blocks at most until ctx ends.
	Emit(ctx context.Context, event string, ackID int64, args ...json.RawMessage) error
	// Close ends the connection cleanly: DISCONNECT packet, then the
	// WebSocket close handshake, bounded by ctx. OnClose is then called with
	// ReasonClientClose. Close is idempotent.
	Close(ctx context.Context) error
}

// DisconnectReason is why an established connection ended. Values are the
// Socket.IO client's reasons, in snake case, and are bounded label values.
type DisconnectReason string

// The disconnect reasons.
const (
	// ReasonServerDisconnect: the server sent DISCONNECT (socket.disconnect()).
	ReasonServerDisconnect DisconnectReason = "io_server_disconnect"
	// ReasonClientClose: this agent closed the connection (resize, shutdown).
	ReasonClientClose DisconnectReason = "io_client_disconnect"
	// ReasonPingTimeout: no PING from the server within pingInterval+pingTimeout.
	ReasonPingTimeout DisconnectReason = "ping_timeout"
	// ReasonTransportClose: the server closed the WebSocket or TCP connection
	// (Engine.IO CLOSE packet, WebSocket close frame or EOF).
	ReasonTransportClose DisconnectReason = "transport_close"
	// ReasonTransportError: a read or write failed (reset, timeout...).
	ReasonTransportError DisconnectReason = "transport_error"
	// ReasonParseError: the server sent something that is not valid
	// Engine.IO/Socket.IO (bad packet, frame over the size limit, missing
	// binary attachment, unexpected packet type).
	ReasonParseError DisconnectReason = "parse_error"
	// ReasonClientBreak: this agent broke the transport on purpose, without
	// a DISCONNECT packet, as a network blip would (the recovery probe).
	ReasonClientBreak DisconnectReason = "client_break"
)

// DisconnectReasons lists every DisconnectReason, for pre-initialised metrics.
var DisconnectReasons = [...]DisconnectReason{
	ReasonServerDisconnect, ReasonClientClose, ReasonPingTimeout,
	ReasonTransportClose, ReasonTransportError, ReasonParseError,
	ReasonClientBreak,
}

// FailureReason is why a connection attempt failed; a bounded label value.
type FailureReason string

// The connect failure reasons.
const (
	// FailTimeout: the attempt did not complete within the connect timeout.
	FailTimeout FailureReason = "timeout"
	// FailRefused: the TCP connection was refused.
	FailRefused FailureReason = "refused"
	// FailDNS: the host name did not resolve.
	FailDNS FailureReason = "dns"
	// FailTLS: the TLS handshake failed (certificate, protocol).
	FailTLS FailureReason = "tls"
	// FailHandshake: the HTTP upgrade was refused (status other than 101) or
	// the Engine.IO OPEN packet was missing or invalid.
	FailHandshake FailureReason = "handshake"
	// FailConnectError: the server answered the namespace CONNECT with
	// CONNECT_ERROR; ConnectError.Message holds its message.
	FailConnectError FailureReason = "connect_error"
	// FailReset: the connection was reset or closed during the handshake.
	FailReset FailureReason = "reset"
	// FailProtocol: the server sent an invalid packet during the handshake.
	FailProtocol FailureReason = "protocol"
	// FailOther: anything else.
	FailOther FailureReason = "other"
)

// FailureReasons lists every FailureReason, for pre-initialised metrics.
var FailureReasons = [...]FailureReason{
	FailTimeout, FailRefused, FailDNS, FailTLS, FailHandshake,
	FailConnectError, FailReset, FailProtocol, FailOther,
}

// ConnectError is the error of a failed Dial.
type ConnectError struct {
	// Reason is the bounded classification.
	Reason FailureReason
	// Message is the server's CONNECT_ERROR message, or an HTTP status line;
	// empty otherwise. It comes from the network: never use it as a label.
	Message string
	// Data is the `data` field of the server's CONNECT_ERROR, as compact
	// JSON bounded to a few hundred bytes, or "[REDACTED]" when it names a
	// key that looks like a secret (see RedactConnectErrorData); empty
	// otherwise. Like Message it comes from the network: never a label.
	Data string
	// Err is the underlying error, if any.
	Err error
}

func (e *ConnectError) Error() string {
	s := "connect failed: " + string(e.Reason)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Data != "" {
		s += " (data " + e.Data + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ConnectError) Unwrap() error { return e.Err }

// RedactConnectErrorData returns data (a CONNECT_ERROR's `data`, JSON) to
// show beside the message, or "[REDACTED]" when any string in it (object key
// or value) names something secret-like (token, secret, password, auth, key,
// cookie...): servers often echo the rejected credentials there. It errs on
// the side of hiding.
func RedactConnectErrorData(data string) string {
	secretWords := [...]string{"token", "secret", "password", "passwd", "auth", "key", "cookie", "session", "credential"}
	dec := json.NewDecoder(strings.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return data
		}
		k, ok := tok.(string)
		if !ok {
			continue
		}
		lk := strings.ToLower(k)
		for _, w := range secretWords {
			if strings.Contains(lk, w) {
				return "[REDACTED]"
			}
		}
	}
}

// DefaultMaxFrameBytes is the frame limit used when Target.MaxFrameBytes is 0.
const DefaultMaxFrameBytes = 1 << 20

// DefaultConnectTimeout bounds a Dial when the caller's ctx has no deadline.
const DefaultConnectTimeout = 10 * time.Second
