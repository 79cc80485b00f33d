// Package demo is the built-in demo Socket.IO target that the agent probes
// when SOAK_TARGET_URL is empty. It runs the zishang520 Go Socket.IO server
// (github.com/zishang520/socket.io/servers/socket/v3) in-process.
//
// On the main namespace "/" it does exactly two things:
//   - it acks the event "echo" with the event's own arguments;
//   - it relays the event "publish" to every other connected client as
//     "publish" (for a fan-out probe), and acks it with no arguments when the
//     sender asked for an ack.
//
// Everything else is ignored.
//
// Import side effects, checked for v3.0.6: the server packages and their
// dependencies have init functions that only fill tables (transport
// registry, loggers reading $DEBUG, cpu feature detection); none installs a
// signal handler or starts a goroutine. TestMain checks the goroutine half
// of that claim. The signal handler and the network polling goroutine
// reported for this library live in the client engine package
// (clients/engine/v3), which this package does not import. The library's
// debug output needs both its log.DEBUG flag set in code and $DEBUG; this
// package sets neither.
//
// Defects of the server found here, v3.0.6:
//   - It queues the namespace CONNECT answer before it registers the socket
//     with its client; an event the client sends as soon as it reads the
//     answer can be decoded first, and the server closes the connection
//     ("invalid state"). Measured with a raw client emitting right after
//     CONNECT: 1 in 200 connections, 1 in 20 under -race. Worked around by
//     HoldConnectAnswer.
//   - It writes PING before it arms the pong timer, so a pong that arrives
//     in between leaves a stray timer that drops the client as "ping
//     timeout". Worked around by a ping timeout longer than the ping
//     interval (heartbeatMargin).
//   - Socket.Disconnect(true) queues DISCONNECT, then closes the transport,
//     which drops the queue: the client saw the DISCONNECT in 4 of 10 tries.
//     The demo never disconnects clients itself.
//   - Decoded packets go through a per-socket queue but the end of the
//     transport is handled at once: a client's DISCONNECT followed by its
//     close frame is reported as "transport close" (debug log only here).
package demo

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	sio "github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"go.uber.org/zap"
)

// DefaultPath is the Engine.IO request path used when Options.Path is empty.
const DefaultPath = "/socket.io/"

const (
	defaultPingInterval = 25 * time.Second
	// heartbeatMargin puts the default ping timeout this far above the
	// ping interval, which works around the server's heartbeat race
	// (servers/engine/v3 socket.go, v3.0.6): it writes PING before it arms
	// the pong timer, so a pong that arrives in between clears the old timer
	// and the new one would drop a healthy client as "ping timeout". With
	// the timeout longer than the interval, the next PING (one interval after
	// the pong) clears that stray timer before it fires. Measured with 50
	// clients for 60 s at a 500 ms interval: 9 clients dropped with a 300 ms
	// timeout, none with 800 ms.
	heartbeatMargin = 5 * time.Second
)

// Options configure the demo target. The zero value is usable.
type Options struct {
	// Path is the Engine.IO request path; empty means DefaultPath.
	Path string
	// PingInterval and PingTimeout are the Engine.IO heartbeat settings;
	// zero means 25 s and PingInterval + 5 s. Keep PingTimeout above
	// PingInterval: see heartbeatMargin.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// ShutdownTimeout bounds the graceful part of Run's shutdown; zero means
	// 5 s. Connections still open after it are closed forcibly.
	ShutdownTimeout time.Duration
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case o.Path != "" && !strings.HasPrefix(o.Path, "/"):
		return fmt.Errorf("demo path: must start with \"/\", got %q", o.Path)
	case o.PingInterval < 0:
		return fmt.Errorf("demo ping interval: must be >= 0, got %q", o.PingInterval)
	case o.PingTimeout < 0:
		return fmt.Errorf("demo ping timeout: must be >= 0, got %q", o.PingTimeout)
	case o.ShutdownTimeout < 0:
		return fmt.Errorf("demo shutdown timeout: must be >= 0, got %q", o.ShutdownTimeout)
	}
	return nil
}

// Server is the demo target. Create it with New, give it a listener with
// Listen or SetListener, then call Run once.
type Server struct {
	log     *zap.Logger
	opts    Options
	io      *sio.Server
	handler http.Handler
	conns   *connTracker
	mu      sync.Mutex
	ln      net.Listener
	running bool
}

// New builds a demo target. It does not listen yet. Invalid options are
// replaced by their defaults; call Options.Validate first to reject them.
func New(log *zap.Logger, opts Options) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Path == "" || !strings.HasPrefix(opts.Path, "/") {
		opts.Path = DefaultPath
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	s := &Server{log: log.Named("demo"), opts: opts, conns: newConnTracker()}

	so := sio.DefaultServerOptions()
	so.SetPath(strings.TrimRight(opts.Path, "/"))
	so.SetServeClient(false)
	if opts.PingInterval <= 0 {
		opts.PingInterval = defaultPingInterval
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = opts.PingInterval + heartbeatMargin
	}
	so.SetPingInterval(opts.PingInterval)
	so.SetPingTimeout(opts.PingTimeout)
	// WebSocket only: the agent uses nothing else, and HoldConnectAnswer
	// relies on the WebSocket transport's flow control.
	so.SetTransports(types.NewSet(sio.WebSocket))
	s.io = sio.NewServer(nil, so)
	s.io.Use(HoldConnectAnswer)
	_ = s.io.On("connection", s.onConnection)

	mux := http.NewServeMux()
	mux.Handle(strings.TrimRight(opts.Path, "/")+"/", s.io.ServeHandler(nil))
	s.handler = mux
	return s
}

// Handler returns the HTTP handler that serves the Socket.IO endpoint, for
// mounting the demo target on another server. Run uses it too.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens a TCP listener on addr (for example "127.0.0.1:0") for Run.
func (s *Server) Listen(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("demo listen on %s: %w", addr, err)
	}
	if err := s.SetListener(ln); err != nil {
		_ = ln.Close()
		return err
	}
	return nil
}

// SetListener gives Run a listener; Run closes it.
func (s *Server) SetListener(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("demo: listener already set")
	}
	s.ln = ln
	return nil
}

// URL is the target's base URL, http://host:port, or "" before a listener
// is set.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Run serves until ctx ends, then closes every Socket.IO client, shuts the
// HTTP server down and waits until every connection it accepted (including
// hijacked WebSocket connections) is closed. It returns nil after a shutdown
// caused by ctx and the serve error otherwise. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	ln, running := s.ln, s.running
	s.running = true
	s.mu.Unlock()
	switch {
	case ln == nil:
		return errors.New("demo: Run without a listener (call Listen or SetListener)")
	case running:
		return errors.New("demo: Run called twice")
	}

	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          httpErrorLog(s.log),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.conns.wrap(ln)) }()
	s.log.Info("demo target listening", zap.String("url", "http://"+ln.Addr().String()), zap.String("path", s.opts.Path))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		errc = nil
	}

	// Close the Socket.IO clients first: their WebSocket connections are
	// hijacked, so http.Server.Shutdown neither waits for nor closes them.
	s.io.Close(nil)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if errc != nil {
		<-errc // http.ErrServerClosed
	}
	if !s.conns.wait(sctx) {
		n := s.conns.closeAll()
		s.log.Warn("demo target closed connections forcibly", zap.Int("connections", n))
		s.conns.wait(context.Background())
	}
	s.log.Info("demo target stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("demo serve: %w", serveErr)
	}
	return nil
}

// HoldConnectAnswer works around a race of the zishang520 server v3.0.6
// (client.go doConnect, namespace.go _doConnect): it queues the namespace
// CONNECT answer for writing before it registers the socket with its
// client, so an event that the client sends as soon as it reads the answer
// can be decoded first; the server then closes the connection ("invalid
// state"). This middleware, the last step before the connection is made,
// marks the WebSocket transport not writable, so the answer waits in the
// engine's buffer; onConnection, which runs after the registration,
// releases it. A write still in flight (the OPEN packet, which the client
// may have read before the server's writer finished) would mark the
// transport writable again when it completes, so the hold is taken once
// the transport is idle; it waits at most holdWait, on the connection's
// reader goroutine, and gives up after that. Any zishang520 server of this
// project uses it, as the last middleware of each namespace that accepts
// connections, with ReleaseConnectAnswer first in its connection handler.
func HoldConnectAnswer(s *sio.Socket, next func(*sio.ExtendedError)) {
	if tr := s.Conn().Transport(); tr != nil && tr.Name() == "websocket" {
		deadline := time.Now().Add(holdWait)
		for !tr.Writable() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		if tr.Writable() {
			tr.SetWritable(false)
		}
	}
	next(nil)
}

// holdWait bounds HoldConnectAnswer's wait for an idle transport.
const holdWait = 250 * time.Millisecond

// ReleaseConnectAnswer undoes HoldConnectAnswer: "ready" is the event the
// transport emits after a write, on which the engine flushes its buffer.
// It is safe to call when HoldConnectAnswer gave up.
func ReleaseConnectAnswer(s *sio.Socket) {
	if tr := s.Conn().Transport(); tr != nil && tr.Name() == "websocket" {
		tr.SetWritable(true)
		tr.Emit("ready")
	}
}

// httpErrorLog sends net/http's per-request errors to Debug.
func httpErrorLog(log *zap.Logger) *stdlog.Logger {
	l, err := zap.NewStdLogAt(log.Named("http"), zap.DebugLevel)
	if err != nil {
		return zap.NewStdLog(zap.NewNop())
	}
	return l
}

func (s *Server) onConnection(args ...any) {
	client, ok := firstSocket(args)
	if !ok {
		return
	}
	defer ReleaseConnectAnswer(client)
	log := s.log.With(zap.String("sid", string(client.Id())))
	log.Debug("client connected")
	_ = client.On("echo", func(args ...any) {
		if ack, rest, ok := splitAck(args); ok {
			ack(rest, nil)
		}
	})
	_ = client.On("publish", func(args ...any) {
		ack, rest, withAck := splitAck(args)
		if err := client.Broadcast().Emit("publish", rest...); err != nil {
			log.Debug("publish relay failed", zap.Error(err))
		}
		if withAck {
			ack(nil, nil)
		}
	})
	_ = client.On("disconnect", func(args ...any) {
		reason, _ := firstString(args)
		log.Debug("client disconnected", zap.String("reason", reason))
	})
}

func firstSocket(args []any) (*sio.Socket, bool) {
	if len(args) == 0 {
		return nil, false
	}
	s, ok := args[0].(*sio.Socket)
	return s, ok && s != nil
}

func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}

// splitAck separates the ack callback the library appends to an event's
// arguments when the client asked for an ack.
func splitAck(args []any) (sio.Ack, []any, bool) {
	if n := len(args); n > 0 {
		if ack, ok := args[n-1].(sio.Ack); ok && ack != nil {
			return ack, args[:n-1], true
		}
	}
	return nil, args, false
}

// connTracker remembers every connection a listener accepted until it is
// closed, so that shutdown can wait for hijacked connections too.
type connTracker struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	wg    sync.WaitGroup
}

func newConnTracker() *connTracker {
	return &connTracker{conns: make(map[*trackedConn]struct{})}
}

func (t *connTracker) wrap(ln net.Listener) net.Listener { return &trackedListener{Listener: ln, t: t} }

// wait blocks until every tracked connection is closed or ctx ends; it
// reports whether they all closed.
func (t *connTracker) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		// The waiter goroutine ends once closeAll (which the caller runs
		// next) has closed every connection.
		return false
	}
}

func (t *connTracker) closeAll() int {
	t.mu.Lock()
	conns := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

type trackedListener struct {
	net.Listener
	t *connTracker
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: l.t}
	l.t.mu.Lock()
	l.t.conns[tc] = struct{}{}
	l.t.wg.Add(1)
	l.t.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	t    *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
		c.t.wg.Done()
	})
	return err
}
