package zishang

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/generic-corp/soak-exporter/internal/demo"
	"github.com/generic-corp/soak-exporter/internal/probe"
	sio "github.com/zishang520/socket.io/servers/socket/v3"
	"go.uber.org/zap/zaptest"
)

// startDemo runs the built-in demo target and returns its URL.
func startDemo(t *testing.T) *url.URL {
	t.Helper()
	s := demo.New(zaptest.NewLogger(t), demo.Options{})
	if err := s.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatalf("demo listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo Run: %v", err)
		}
	})
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// customServer is a zishang520 Go server with test namespaces:
//
//	/             "echo" acks its args; "kick" disconnects the namespace;
//	              "hs" acks the handshake's auth, query q and header X-Test;
//	              "push" makes the server emit "news" with the given args,
//	              then "news-ack" asking the client for an ack
//	/reject       middleware error without data ("data": null on the wire)
//	/reject-data  middleware error with data
//	/auth         accepts only auth {"token":"s3cret"}
//
// Server-side disconnect reasons of "/" sockets go to reasons.
type customServer struct {
	url     *url.URL
	reasons chan string
	cert    *x509.Certificate
}

func startCustom(t *testing.T) *customServer {
	t.Helper()
	return startCustomServer(t, false)
}

// startCustomTLS is startCustom over HTTPS; it also returns the server's
// certificate.
func startCustomTLS(t *testing.T) (*customServer, *x509.Certificate) {
	t.Helper()
	cs := startCustomServer(t, true)
	return cs, cs.cert
}

func startCustomServer(t *testing.T, useTLS bool) *customServer {
	t.Helper()
	cs := &customServer{reasons: make(chan string, 16)}
	opts := sio.DefaultServerOptions()
	opts.SetServeClient(false)
	io := sio.NewServer(nil, opts)
	// The server's CONNECT race (see demo.HoldConnectAnswer) closed the
	// connection of a client that emits at once: without this, 6 of 300
	// runs of TestServerEvents under -race failed; with it, 0 of 700.
	io.Use(demo.HoldConnectAnswer)
	_ = io.On("connection", func(args ...any) {
		s := args[0].(*sio.Socket)
		defer demo.ReleaseConnectAnswer(s)
		_ = s.On("echo", func(args ...any) {
			if ack, ok := args[len(args)-1].(sio.Ack); ok {
				ack(args[:len(args)-1], nil)
			}
		})
		// Disconnect(true) would close the connection too, but v3.0.6 then
		// drops the queued DISCONNECT more often than not (measured: 6 of
		// 10), so the client can only see a transport close.
		_ = s.On("kick", func(...any) { s.Disconnect(false) })
		_ = s.On("hs", func(args ...any) {
			hs := s.Handshake()
			ack := args[len(args)-1].(sio.Ack)
			ack([]any{hs.Auth, hs.Query.Query().Get("q"), hs.Headers.Header().Get("X-Test")}, nil)
		})
		_ = s.On("push", func(args ...any) {
			_ = s.Emit("news", args...)
			_ = s.Emit("news-ack", append([]any{1}, sio.Ack(func([]any, error) {}))...)
			_ = s.Emit("news", "after")
		})
		_ = s.On("disconnect", func(args ...any) {
			reason, _ := args[0].(string)
			select {
			case cs.reasons <- reason:
			default:
			}
		})
	})
	io.Of("/reject", nil).Use(func(_ *sio.Socket, next func(*sio.ExtendedError)) {
		next(sio.NewExtendedError("nope", nil))
	})
	io.Of("/reject-data", nil).Use(func(_ *sio.Socket, next func(*sio.ExtendedError)) {
		next(sio.NewExtendedError("denied", map[string]any{"code": 42}))
	})
	authNsp := io.Of("/auth", nil)
	authNsp.Use(func(s *sio.Socket, next func(*sio.ExtendedError)) {
		if tok, _ := s.Handshake().Auth["token"].(string); tok != "s3cret" {
			next(sio.NewExtendedError("bad token", nil))
			return
		}
		next(nil)
	})
	authNsp.Use(demo.HoldConnectAnswer)
	_ = authNsp.On("connection", func(args ...any) { demo.ReleaseConnectAnswer(args[0].(*sio.Socket)) })
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	hs := httptest.NewUnstartedServer(mux)
	if useTLS {
		hs.StartTLS()
		cs.cert = hs.Certificate()
	} else {
		hs.Start()
	}
	t.Cleanup(func() {
		io.Close(nil)
		hs.CloseClientConnections()
		hs.Close()
	})
	cs.url, _ = url.Parse(hs.URL)
	return cs
}

// fakeServer speaks just enough Engine.IO/Socket.IO over coder/websocket
// to script misbehaviour. The scenario runs after the OPEN packet.
type fakeServer struct {
	url *url.URL
}

type fakeScenario func(ctx context.Context, c *websocket.Conn)

const fakeOpen = `0{"sid":"fake","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}`

func startFake(t *testing.T, scenario fakeScenario) *fakeServer {
	t.Helper()
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer func() { _ = c.CloseNow() }()
		scenario(ctx, c)
	})
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		cancel()
		hs.CloseClientConnections()
		hs.Close()
		wg.Wait()
	})
	u, _ := url.Parse(hs.URL)
	return &fakeServer{url: u}
}

func writeText(ctx context.Context, c *websocket.Conn, msg string) bool {
	return c.Write(ctx, websocket.MessageText, []byte(msg)) == nil
}

// acceptNamespace sends OPEN and answers the first CONNECT with answer.
func acceptNamespace(ctx context.Context, c *websocket.Conn, answer string) bool {
	if !writeText(ctx, c, fakeOpen) {
		return false
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return false
		}
		if strings.HasPrefix(string(b), "40") {
			return writeText(ctx, c, answer)
		}
	}
}

// onTrigger accepts the namespace, waits for the client's first EVENT and
// then runs then: the library hands packets to a queue but handles the end
// of the transport at once, so a server that misbehaves right after its
// CONNECT answer can make Dial fail instead.
func onTrigger(then fakeScenario) fakeScenario {
	return func(ctx context.Context, c *websocket.Conn) {
		if !acceptNamespace(ctx, c, `40{"sid":"s"}`) {
			return
		}
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if strings.HasPrefix(string(b), "42") {
				then(ctx, c)
				return
			}
		}
	}
}

// drain reads (answering pings) until the connection or ctx ends.
func drain(ctx context.Context, c *websocket.Conn) {
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if string(b) == "2" {
			writeText(ctx, c, "3")
		}
	}
}

// hangingListener accepts TCP connections and never answers; it closes
// them at cleanup.
func hangingListener(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// refusedURL returns the URL of a port that nothing listens on.
func refusedURL(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return &url.URL{Scheme: "http", Host: addr}
}

func target(u *url.URL, nsp string) *probe.Target {
	return &probe.Target{Name: "test", URL: u, Path: "/socket.io/", Namespace: nsp}
}

// recorder collects what a connection's handlers see.
type recorder struct {
	mu     sync.Mutex
	acks   map[uint64][]json.RawMessage
	events []string
	closes []probe.DisconnectReason
	ackCh  chan uint64
	evCh   chan string
	closed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{
		acks:   map[uint64][]json.RawMessage{},
		ackCh:  make(chan uint64, 256),
		evCh:   make(chan string, 256),
		closed: make(chan struct{}),
	}
}

func (r *recorder) handlers() probe.Handlers {
	return probe.Handlers{
		OnAck: func(id uint64, args []json.RawMessage) {
			r.mu.Lock()
			r.acks[id] = args
			r.mu.Unlock()
			r.ackCh <- id
		},
		OnEvent: func(name string, args []json.RawMessage) {
			b, _ := json.Marshal(args)
			s := name + " " + string(b)
			r.mu.Lock()
			r.events = append(r.events, s)
			r.mu.Unlock()
			r.evCh <- s
		},
		OnClose: func(reason probe.DisconnectReason, _ error) {
			r.mu.Lock()
			r.closes = append(r.closes, reason)
			n := len(r.closes)
			r.mu.Unlock()
			if n == 1 {
				close(r.closed)
			}
		},
	}
}

func (r *recorder) closeReasons() []probe.DisconnectReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]probe.DisconnectReason(nil), r.closes...)
}

func (r *recorder) waitClosed(t *testing.T, d time.Duration) probe.DisconnectReason {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(d):
		t.Fatalf("OnClose not called within %v", d)
	}
	return r.closeReasons()[0]
}
