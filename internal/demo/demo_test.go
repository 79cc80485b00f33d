package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) {
	// Importing the zishang520 server must not start goroutines: this runs
	// before any test, so anything found here was started by an init().
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goroutines running before any test (started by an init of an imported package): %v\n", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

// startDemo runs a demo server on 127.0.0.1:0 and returns it with a stop
// function that cancels Run and returns its error.
func startDemo(t *testing.T, opts Options) (*Server, func() error) {
	t.Helper()
	s, _, stop := startDemoObserved(t, opts)
	return s, stop
}

// startDemoObserved is startDemo that also returns the server's log
// entries of level Warn and above.
func startDemoObserved(t *testing.T, opts Options) (*Server, *observer.ObservedLogs, func() error) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	log := zaptest.NewLogger(t, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, core)
	})))
	s := New(log, opts)
	if err := s.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once bool
	var runErr error
	stop := func() error {
		if !once {
			once = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = errors.New("Run did not return within 20s of cancel")
			}
		}
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s, logs, stop
}

// rawClient is a minimal Engine.IO v4 / Socket.IO v5 client over
// github.com/coder/websocket, independent of the library under test.
type rawClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialRaw(ctx context.Context, t *testing.T, base, path string) *rawClient {
	t.Helper()
	u := strings.Replace(base, "http://", "ws://", 1) + path + "?EIO=4&transport=websocket"
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c := &rawClient{t: t, conn: conn}
	t.Cleanup(func() { _ = conn.CloseNow() })
	open := c.read(ctx)
	var hs struct {
		Sid          string `json:"sid"`
		PingInterval int    `json:"pingInterval"`
	}
	if !strings.HasPrefix(open, "0{") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.Sid == "" || hs.PingInterval <= 0 {
		t.Fatalf("first message = %q, want Engine.IO OPEN 0{...} with sid and pingInterval", open)
	}
	c.send(ctx, "40")
	if got := c.read(ctx); !strings.HasPrefix(got, `40{"sid":`) {
		t.Fatalf("CONNECT answer = %q, want 40{\"sid\":...}", got)
	}
	return c
}

func (c *rawClient) send(ctx context.Context, msg string) {
	c.t.Helper()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatalf("write %q: %v", msg, err)
	}
}

// read returns the next message that is not an Engine.IO PING (it answers
// those).
func (c *rawClient) read(ctx context.Context) string {
	c.t.Helper()
	for {
		msg, err := c.readErr(ctx)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if msg == "2" {
			c.send(ctx, "3")
			continue
		}
		return msg
	}
}

func (c *rawClient) readErr(ctx context.Context) (string, error) {
	_, b, err := c.conn.Read(ctx)
	return string(b), err
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEcho(t *testing.T) {
	s, _ := startDemo(t, Options{})
	tests := []struct {
		name  string
		send  []string
		wantA string // first non-ping message received afterwards
	}{
		{"object", []string{`421["echo",{"seq":1}]`}, `431[{"seq":1}]`},
		{"several args", []string{`427["echo",1,"a",[true,null]]`}, `437[1,"a",[true,null]]`},
		{"no args", []string{`428["echo"]`}, `438[]`},
		// An echo without an ack request gets no answer, and neither does
		// an unknown event: the next message is the ack of the last echo.
		{"no ack requested", []string{`42["echo",{"seq":2}]`, `423["echo",3]`}, `433[3]`},
		{"unknown event", []string{`424["other",1]`, `425["echo",5]`}, `435[5]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			c := dialRaw(ctx, t, s.URL(), DefaultPath)
			for _, m := range tt.send {
				c.send(ctx, m)
			}
			if got := c.read(ctx); got != tt.wantA {
				t.Fatalf("got %q, want %q", got, tt.wantA)
			}
		})
	}
}

func TestPublishFanOut(t *testing.T) {
	s, _ := startDemo(t, Options{})
	ctx := testCtx(t)
	a := dialRaw(ctx, t, s.URL(), DefaultPath)
	b := dialRaw(ctx, t, s.URL(), DefaultPath)
	c := dialRaw(ctx, t, s.URL(), DefaultPath)

	a.send(ctx, `42["publish",{"n":1}]`)
	for name, rc := range map[string]*rawClient{"b": b, "c": c} {
		if got, want := rc.read(ctx), `42["publish",{"n":1}]`; got != want {
			t.Errorf("client %s got %q, want %q", name, got, want)
		}
	}
	// The sender gets no copy: its next message is the ack of its publish.
	a.send(ctx, `429["publish",{"n":2}]`)
	if got, want := a.read(ctx), `439[]`; got != want {
		t.Errorf("sender got %q, want the publish ack %q", got, want)
	}
	if got, want := b.read(ctx), `42["publish",{"n":2}]`; got != want {
		t.Errorf("b got %q, want %q", got, want)
	}
}

func TestCustomPathAndHeartbeat(t *testing.T) {
	s, _ := startDemo(t, Options{Path: "/custom/", PingInterval: 200 * time.Millisecond, PingTimeout: 5 * time.Second})
	ctx := testCtx(t)
	c := dialRaw(ctx, t, s.URL(), "/custom/")
	// A ping must come within a few intervals; answering it keeps the
	// session alive for the echo that follows.
	msg, err := c.readErr(ctx)
	if err != nil || msg != "2" {
		t.Fatalf("got %q, %v; want an Engine.IO PING", msg, err)
	}
	c.send(ctx, "3")
	c.send(ctx, `421["echo","x"]`)
	if got := c.read(ctx); got != `431["x"]` {
		t.Fatalf("got %q", got)
	}
}

func TestRunShutdownClosesClientsAndGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s, logs, stop := startDemoObserved(t, Options{})
	ctx := testCtx(t)
	clients := []*rawClient{
		dialRaw(ctx, t, s.URL(), DefaultPath),
		dialRaw(ctx, t, s.URL(), DefaultPath),
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, c := range clients {
		// The server closes the Socket.IO session: the client sees an
		// Engine.IO message or two, then the end of the connection.
		var err error
		for range 5 {
			var msg string
			if msg, err = c.readErr(ctx); err != nil {
				break
			}
			t.Logf("client %d got %q while closing", i, msg)
		}
		if err == nil {
			t.Errorf("client %d: connection still open after Run returned", i)
		}
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL(), "http://"), time.Second); err == nil {
		t.Errorf("listener still accepts after Run returned")
	}
	for _, c := range clients {
		_ = c.conn.CloseNow()
	}
	// The library closed every WebSocket itself: the forced close, which
	// only runs after ShutdownTimeout, was not needed.
	if n := logs.Len(); n != 0 {
		t.Errorf("shutdown logged %d warnings, first %q", n, logs.All()[0].Message)
	}
	goleak.VerifyNone(t, before)
}

func TestRunErrors(t *testing.T) {
	t.Run("no listener", func(t *testing.T) {
		s := New(zap.NewNop(), Options{})
		if err := s.Run(context.Background()); err == nil {
			t.Fatal("Run without listener: want error")
		}
		if s.URL() != "" {
			t.Fatalf("URL without listener = %q, want empty", s.URL())
		}
	})
	t.Run("twice", func(t *testing.T) {
		s, _ := startDemo(t, Options{})
		// Once a client got through, Run is serving; a second call must
		// fail at once.
		dialRaw(testCtx(t), t, s.URL(), DefaultPath)
		if err := s.Run(context.Background()); err == nil {
			t.Fatal("second Run: want error")
		}
	})
	t.Run("listener set twice", func(t *testing.T) {
		s := New(nil, Options{})
		if err := s.Listen(context.Background(), "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if err := s.Listen(context.Background(), "127.0.0.1:0"); err == nil {
			t.Fatal("second Listen: want error")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Run(ctx); err != nil {
			t.Fatalf("Run with a done ctx: %v", err)
		}
	})
	t.Run("bad address", func(t *testing.T) {
		s := New(nil, Options{})
		if err := s.Listen(context.Background(), "127.0.0.1:-1"); err == nil {
			t.Fatal("Listen on a bad address: want error")
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"zero", Options{}, ""},
		{"full", Options{Path: "/x/", PingInterval: time.Second, PingTimeout: time.Second, ShutdownTimeout: time.Second}, ""},
		{"relative path", Options{Path: "socket.io"}, "demo path"},
		{"negative ping", Options{PingInterval: -1}, "demo ping interval"},
		{"negative ping timeout", Options{PingTimeout: -1}, "demo ping timeout"},
		{"negative shutdown", Options{ShutdownTimeout: -1}, "demo shutdown timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// A client that emits right after the CONNECT answer must be served: the
// zishang520 server v3.0.6 writes that answer before it registers the
// socket with its client, and closes the connection ("invalid state") when
// the event wins the race. Run sequentially many times to catch it.
func TestEmitRightAfterConnect(t *testing.T) {
	s, _ := startDemo(t, Options{})
	ctx := testCtx(t)
	const rounds = 200
	var lost []string
	for i := range rounds {
		c := dialRaw(ctx, t, s.URL(), DefaultPath)
		c.send(ctx, fmt.Sprintf(`42%d["echo",%d]`, i, i))
		msg, err := c.readErr(ctx)
		if err != nil || msg != fmt.Sprintf(`43%d[%d]`, i, i) {
			lost = append(lost, fmt.Sprintf("round %d: %q, %v", i, msg, err))
		}
		_ = c.conn.CloseNow()
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d clients lost their first event: %v", len(lost), rounds, lost)
	}
}

// The default ping timeout is longer than the ping interval, which keeps the
// server's heartbeat race (see heartbeatMargin) from dropping clients; an
// explicit setting is honoured as it is.
func TestHeartbeatDefaults(t *testing.T) {
	tests := []struct {
		name                   string
		opts                   Options
		wantInterval, wantWait int
	}{
		{"defaults", Options{}, 25000, 30000},
		{"interval only", Options{PingInterval: time.Second}, 1000, 6000},
		{"both set", Options{PingInterval: time.Second, PingTimeout: 500 * time.Millisecond}, 1000, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := startDemo(t, tc.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			u := strings.Replace(s.URL(), "http://", "ws://", 1) + DefaultPath + "?EIO=4&transport=websocket"
			conn, _, err := websocket.Dial(ctx, u, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer conn.CloseNow()
			_, open, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("read OPEN: %v", err)
			}
			var hs struct {
				PingInterval int `json:"pingInterval"`
				PingTimeout  int `json:"pingTimeout"`
			}
			if len(open) < 2 || open[0] != '0' || json.Unmarshal(open[1:], &hs) != nil {
				t.Fatalf("OPEN = %q", open)
			}
			if hs.PingInterval != tc.wantInterval || hs.PingTimeout != tc.wantWait {
				t.Fatalf("pingInterval %d pingTimeout %d, want %d and %d", hs.PingInterval, hs.PingTimeout, tc.wantInterval, tc.wantWait)
			}
		})
	}
}
