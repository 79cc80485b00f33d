package native

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// readerGoroutines runs the package's tests on the goroutine-per-connection
// transport instead of the event loop; make test runs the package both ways.
var readerGoroutines = flag.Bool("native.reader-goroutines", false, "serve WebSockets with a reader goroutine each (Options.ReaderGoroutines)")

// newTestDriver is New with the transport the flags choose.
func newTestDriver(o Options) *Driver {
	o.ReaderGoroutines = o.ReaderGoroutines || *readerGoroutines
	return New(o)
}

func TestMain(m *testing.M) {
	if os.Getenv(helperServerEnv) == "1" {
		os.Exit(runHelperServer())
	}
	goleak.VerifyTestMain(m)
}

func TestName(t *testing.T) {
	if got := New(Options{}).Name(); got != "native" {
		t.Fatalf("Name() = %q", got)
	}
}

func TestDialEmitAckClose(t *testing.T) {
	tests := []struct {
		name   string
		nsp    string
		auth   json.RawMessage
		prefix string // namespace prefix on the wire
	}{
		{name: "main namespace", nsp: "/"},
		{name: "empty namespace means main", nsp: ""},
		{name: "custom namespace with auth", nsp: "/chat", auth: json.RawMessage(`{"token":"s3cret"}`), prefix: "/chat,"},
		{name: "namespace without slash", nsp: "chat", prefix: "/chat,"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			serverGot := make(chan []string, 1)
			serverEnd := make(chan error, 1)
			fs := newFakeServer(t, func(s *fakeSession) {
				q := s.req.URL.Query()
				if s.req.URL.Path != "/socket.io/" || q.Get("EIO") != "4" || q.Get("transport") != "websocket" || q.Get("extra") != "1" {
					t.Errorf("server: bad request URL %s", s.req.URL)
				}
				if got := s.req.Header.Get("X-Test"); got != "yes" {
					t.Errorf("server: X-Test header = %q", got)
				}
				if !s.open(25000, 20000) || !s.expect("40"+tc.prefix+string(tc.auth)) {
					return
				}
				// A ping during the handshake is answered.
				if !s.send("2") || !s.expect("3") || !s.send("40"+tc.prefix+`{"sid":"sock-sid"}`) {
					return
				}
				// Packets for other namespaces are ignored; events arrive.
				s.send(`42/other,["ignored"]`)
				s.send(`42` + tc.prefix + `["hello",1,{"x":[true,null]}]`)
				s.send(`42` + tc.prefix + `7["ask"]`)
				// The reply to "ask" and the client's emit, in either order.
				var two []string
				for range 2 {
					m, err := s.read()
					if err != nil {
						t.Errorf("server: %v", err)
						return
					}
					two = append(two, m)
				}
				slices.Sort(two)
				if want := []string{`42` + tc.prefix + `1["echo",{"a":1},"two"]`, `43` + tc.prefix + `7[]`}; !slices.Equal(two, want) {
					t.Errorf("server got %q, want %q", two, want)
					return
				}
				s.send(`43` + tc.prefix + `1[{"a":1},"two"]`)
				s.send(`42` + tc.prefix + `["noack"]`)
				msgs, err := s.readUntilError()
				serverGot <- msgs
				serverEnd <- err
			})
			target := fs.target()
			target.Namespace = tc.nsp
			target.Auth = tc.auth
			target.Query = url.Values{"extra": {"1"}, "EIO": {"3"}} // EIO is ours
			target.Header = http.Header{"X-Test": {"yes"}}
			rec := newRecorder()
			conn, err := newTestDriver(Options{}).Dial(testCtx(t), target, rec.handlers())
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if e := rec.waitEvent(t); e.name != "hello" || !slices.Equal(e.args, []string{`1`, `{"x":[true,null]}`}) {
				t.Errorf("event = %+v", e)
			}
			if e := rec.waitEvent(t); e.name != "ask" || len(e.args) != 0 {
				t.Errorf("event = %+v", e)
			}
			if err := conn.Emit(testCtx(t), "echo", 1, json.RawMessage(`{"a":1}`), json.RawMessage(`"two"`)); err != nil {
				t.Fatalf("Emit: %v", err)
			}
			if a := rec.waitAck(t); a.id != 1 || !slices.Equal(a.args, []string{`{"a":1}`, `"two"`}) {
				t.Errorf("ack = %+v", a)
			}
			if e := rec.waitEvent(t); e.name != "noack" {
				t.Errorf("event = %+v", e)
			}
			if err := conn.Close(testCtx(t)); err != nil {
				t.Errorf("Close: %v", err)
			}
			if c := rec.waitClose(t); c.reason != probe.ReasonClientClose || c.err != nil {
				t.Errorf("OnClose(%q, %v), want %q", c.reason, c.err, probe.ReasonClientClose)
			}
			// Defect 6 of the findings: DISCONNECT first, then a normal close.
			msgs, end := <-serverGot, <-serverEnd
			if want := []string{"41" + tc.prefix}; !slices.Equal(msgs, want) {
				t.Errorf("server got %q after the ack, want %q", msgs, want)
			}
			if websocket.CloseStatus(end) != websocket.StatusNormalClosure {
				t.Errorf("server read ended with %v, want a normal close frame", end)
			}
			if err := conn.Close(testCtx(t)); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := conn.Emit(testCtx(t), "echo", 2); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Emit after Close = %v, want net.ErrClosed", err)
			}
			if n := rec.closeCount(); n != 1 {
				t.Errorf("OnClose called %d times", n)
			}
			waitClientGoroutines(t, 0)
		})
	}
}

func TestDialFailures(t *testing.T) {
	tests := []struct {
		name    string
		nsp     string
		script  func(s *fakeSession)
		reason  probe.FailureReason
		message string
	}{
		{
			name: "connect_error with data",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40") &&
					s.send(`44{"message":"not authorized","data":{"code":42}}`)
				_, _ = s.readUntilError()
			},
			reason: probe.FailConnectError, message: "not authorized",
		},
		{
			name: "connect_error without data",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40") && s.send(`44{"message":"Invalid token"}`)
				_, _ = s.readUntilError()
			},
			reason: probe.FailConnectError, message: "Invalid token",
		},
		{
			name: "connect_error for an unknown namespace",
			nsp:  "/nope",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40/nope,") &&
					s.send(`44/nope,{"message":"Invalid namespace"}`)
				_, _ = s.readUntilError()
			},
			reason: probe.FailConnectError, message: "Invalid namespace",
		},
		{
			name: "connect_error as a bare string",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40") && s.send(`44"Not authorized"`)
				_, _ = s.readUntilError()
			},
			reason: probe.FailConnectError, message: "Not authorized",
		},
		{
			name:   "invalid open packet",
			script: func(s *fakeSession) { s.send(`0{"sid":"x"}`); _, _ = s.readUntilError() },
			reason: probe.FailHandshake,
		},
		{
			name:   "ping instead of open",
			script: func(s *fakeSession) { s.send(`2`); _, _ = s.readUntilError() },
			reason: probe.FailHandshake,
		},
		{
			name:   "binary instead of open",
			script: func(s *fakeSession) { s.sendBinary([]byte{1}); _, _ = s.readUntilError() },
			reason: probe.FailHandshake,
		},
		{
			name: "websocket closed during the handshake",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40")
				_ = s.ws.Close(websocket.StatusGoingAway, "bye")
			},
			reason: probe.FailReset,
		},
		{
			name: "engine.io close during the handshake",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40") && s.send("1")
				_, _ = s.readUntilError()
			},
			reason: probe.FailReset,
		},
		{
			name: "invalid connect answer",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40") && s.send(`40[1]`)
				_, _ = s.readUntilError()
			},
			reason: probe.FailProtocol,
		},
		{
			name: "unknown packet during the handshake",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40") && s.send(`4x`)
				_, _ = s.readUntilError()
			},
			reason: probe.FailProtocol,
		},
		{
			name: "connect never answered",
			script: func(s *fakeSession) {
				_ = s.open(25000, 20000) && s.expect("40")
				_, _ = s.readUntilError()
			},
			reason: probe.FailTimeout,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeServer(t, tc.script)
			target := fs.target()
			target.Namespace = tc.nsp
			rec := newRecorder()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			conn, err := newTestDriver(Options{}).Dial(ctx, target, rec.handlers())
			if err == nil {
				conn.Close(testCtx(t))
				t.Fatal("Dial succeeded")
			}
			ce := asConnectError(t, err)
			if ce.Reason != tc.reason || ce.Message != tc.message {
				t.Errorf("ConnectError{%q, %q}, want {%q, %q} (%v)", ce.Reason, ce.Message, tc.reason, tc.message, err)
			}
			if probe.ClassifyDialError(err, nil) != tc.reason {
				t.Errorf("ClassifyDialError does not agree: %v", err)
			}
			waitClientGoroutines(t, 0)
			if n := rec.closeCount(); n != 0 {
				t.Errorf("OnClose called for a failed Dial")
			}
		})
	}
}

func TestDialHTTPStatus(t *testing.T) {
	srv := newFakeServerHTTP(t, http.StatusForbidden)
	_, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, srv)}, probe.Handlers{})
	ce := asConnectError(t, err)
	if ce.Reason != probe.FailHandshake || !strings.Contains(ce.Message, "403") {
		t.Errorf("got %v, want handshake failure with status 403", err)
	}
	waitClientGoroutines(t, 0)
}

func TestDialBadUpgradeResponse(t *testing.T) {
	addr := rawHTTPServer(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n")
	_, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, "http://"+addr)}, probe.Handlers{})
	if ce := asConnectError(t, err); ce.Reason != probe.FailHandshake {
		t.Errorf("got %v, want handshake failure", err)
	}
	waitClientGoroutines(t, 0)
}

// newFakeServerHTTP returns the URL of a server that answers every request
// with status.
func newFakeServerHTTP(t testing.TB, status int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "go away", status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDialSilentServer(t *testing.T) {
	ln := newSilentListener(t)
	addr := ln.ln.Addr().String()
	tests := []struct {
		name    string
		url     string
		timeout time.Duration // of ctx; 0: none, the driver's ConnectTimeout applies
	}{
		{name: "websocket", url: "http://" + addr, timeout: 300 * time.Millisecond},
		{name: "tls handshake", url: "https://" + addr, timeout: 300 * time.Millisecond},
		{name: "no deadline on ctx", url: "http://" + addr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			d := newTestDriver(Options{ConnectTimeout: 300 * time.Millisecond})
			start := time.Now()
			_, err := d.Dial(ctx, &probe.Target{URL: mustURL(t, tc.url)}, probe.Handlers{})
			elapsed := time.Since(start)
			if ce := asConnectError(t, err); ce.Reason != probe.FailTimeout {
				t.Errorf("got %v, want timeout", err)
			}
			// Bounded by the deadline, not by some internal timeout (the
			// WebSocket library's are 5 s and more).
			if elapsed > 4*time.Second {
				t.Errorf("Dial took %v with a 300ms deadline", elapsed)
			}
			waitClientGoroutines(t, 0)
		})
	}
}

func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	target := &probe.Target{URL: mustURL(t, "ws://"+addr), Query: url.Values{"token": {"s3cret"}}}
	_, err = newTestDriver(Options{}).Dial(testCtx(t), target, probe.Handlers{})
	if ce := asConnectError(t, err); ce.Reason != probe.FailRefused {
		t.Errorf("got %v, want refused", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the query: %v", err)
	}
	waitClientGoroutines(t, 0)
}

func TestDialTLS(t *testing.T) {
	fs := newFakeTLSServer(t, func(s *fakeSession) {
		if s.accept("/", 25000, 20000) {
			s.echo()
		}
	})
	d := newTestDriver(Options{})

	t.Run("trusted", func(t *testing.T) {
		target := fs.target()
		rec := newRecorder()
		conn, err := d.Dial(testCtx(t), target, rec.handlers())
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		if err := conn.Emit(testCtx(t), "echo", 5, json.RawMessage(`"x"`)); err != nil {
			t.Fatal(err)
		}
		if a := rec.waitAck(t); a.id != 5 {
			t.Errorf("ack %+v", a)
		}
		if err := conn.Close(testCtx(t)); err != nil {
			t.Error(err)
		}
	})
	t.Run("unknown authority", func(t *testing.T) {
		target := fs.target()
		target.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
		_, err := d.Dial(testCtx(t), target, probe.Handlers{})
		if ce := asConnectError(t, err); ce.Reason != probe.FailTLS {
			t.Errorf("got %v, want tls", err)
		}
	})
	waitClientGoroutines(t, 0)
}

func TestSharedHTTPClients(t *testing.T) {
	d := newTestDriver(Options{})
	a, b := &tls.Config{}, &tls.Config{}
	n1, n2 := d.client(nil), d.client(nil)
	a1, a2, b1 := d.client(a), d.client(a), d.client(b)
	if n1 != n2 || a1 != a2 || a1 == b1 || n1 == a1 {
		t.Error("want one client per distinct *tls.Config")
	}
}

func TestServerEndsConnection(t *testing.T) {
	placeholder := `{"_placeholder":true,"num":0}`
	tests := []struct {
		name         string
		maxFrame     int64
		pingInterval int
		pingTimeout  int
		script       func(s *fakeSession) // runs after the handshake
		want         probe.DisconnectReason
	}{
		{name: "disconnect", script: func(s *fakeSession) { s.send("41") }, want: probe.ReasonServerDisconnect},
		{name: "connect_error after connect", script: func(s *fakeSession) { s.send(`44{"message":"kicked"}`) }, want: probe.ReasonServerDisconnect},
		{name: "disconnect of another namespace is ignored", script: func(s *fakeSession) {
			s.send("41/other,")
			s.send("1")
		}, want: probe.ReasonTransportClose},
		{name: "engine.io close", script: func(s *fakeSession) { s.send("1") }, want: probe.ReasonTransportClose},
		{name: "websocket close frame", script: func(s *fakeSession) { s.ws.Close(websocket.StatusGoingAway, "") }, want: probe.ReasonTransportClose},
		{name: "tcp close", script: func(s *fakeSession) { s.ws.CloseNow() }, want: probe.ReasonTransportClose},
		{name: "no ping", pingInterval: 50, pingTimeout: 50, script: func(s *fakeSession) {}, want: probe.ReasonPingTimeout},
		{name: "unknown engine.io type", script: func(s *fakeSession) { s.send("9") }, want: probe.ReasonParseError},
		{name: "open after connect", script: func(s *fakeSession) { s.send(`0{"sid":"x","pingInterval":1,"pingTimeout":1}`) }, want: probe.ReasonParseError},
		{name: "empty message", script: func(s *fakeSession) { s.send("") }, want: probe.ReasonParseError},
		{name: "empty socket.io packet", script: func(s *fakeSession) { s.send("4") }, want: probe.ReasonParseError},
		{name: "unknown socket.io type", script: func(s *fakeSession) { s.send("49[]") }, want: probe.ReasonParseError},
		{name: "event without payload", script: func(s *fakeSession) { s.send("42") }, want: probe.ReasonParseError},
		{name: "truncated event", script: func(s *fakeSession) { s.send(`42["ev",{"a":`) }, want: probe.ReasonParseError},
		{name: "event not an array", script: func(s *fakeSession) { s.send(`42{"a":1}`) }, want: probe.ReasonParseError},
		{name: "event without name", script: func(s *fakeSession) { s.send(`42[]`) }, want: probe.ReasonParseError},
		{name: "event name not a string", script: func(s *fakeSession) { s.send(`42[{}]`) }, want: probe.ReasonParseError},
		{name: "ack without id", script: func(s *fakeSession) { s.send(`43["x"]`) }, want: probe.ReasonParseError},
		{name: "ack with garbage", script: func(s *fakeSession) { s.send(`43abc`) }, want: probe.ReasonParseError},
		{name: "ack id overflow", script: func(s *fakeSession) { s.send(`4399999999999999999999[]`) }, want: probe.ReasonParseError},
		{name: "unexpected binary", script: func(s *fakeSession) { s.sendBinary([]byte{1, 2}) }, want: probe.ReasonParseError},
		{name: "frame over the limit", maxFrame: 1024, script: func(s *fakeSession) {
			s.send(`42["big","` + strings.Repeat("x", 2000) + `"]`)
		}, want: probe.ReasonParseError},
		{name: "attachments never arrive", script: func(s *fakeSession) {
			s.send(`451-["bin",` + placeholder + `]`)
			s.send("2")
		}, want: probe.ReasonParseError},
		{name: "too many attachments", script: func(s *fakeSession) { s.send(`4517-["bin"]`) }, want: probe.ReasonParseError},
		{name: "bad attachment count", script: func(s *fakeSession) { s.send(`45x-["bin"]`) }, want: probe.ReasonParseError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			serverEnd := make(chan error, 1)
			fs := newFakeServer(t, func(s *fakeSession) {
				interval, timeout := tc.pingInterval, tc.pingTimeout
				if interval == 0 {
					interval, timeout = 25000, 20000
				}
				if !s.accept("/", interval, timeout) {
					return
				}
				tc.script(s)
				_, err := s.readUntilError()
				serverEnd <- err
			})
			target := fs.target()
			target.MaxFrameBytes = tc.maxFrame
			rec := newRecorder()
			if _, err := newTestDriver(Options{}).Dial(testCtx(t), target, rec.handlers()); err != nil {
				t.Fatalf("Dial: %v", err)
			}
			c := rec.waitClose(t)
			if c.reason != tc.want {
				t.Errorf("OnClose(%q, %v), want %q", c.reason, c.err, tc.want)
			}
			if c.err == nil {
				t.Error("OnClose without error detail")
			}
			select { // the client closed the connection
			case <-serverEnd:
			case <-time.After(waitLimit):
				t.Error("the server's connection stayed open")
			}
			waitClientGoroutines(t, 0)
			if n := rec.closeCount(); n != 1 {
				t.Errorf("OnClose called %d times", n)
			}
		})
	}
}

func TestServerPingsKeepConnectionAlive(t *testing.T) {
	// The watchdog is 600ms; the server pings every 100ms for 1.5s. Without
	// the reset on each PING the connection would end with ping_timeout.
	pongs := make(chan int, 1)
	fs := newFakeServer(t, func(s *fakeSession) {
		if !s.accept("/", 300, 300) {
			return
		}
		n := 0
		for range 15 {
			time.Sleep(100 * time.Millisecond) // a real server's ping pacing, on the wire: the client's watchdog runs on wall time
			if !s.send("2probe") || !s.expect("3probe") {
				break
			}
			n++
		}
		pongs <- n
		s.send("41")
		_, _ = s.readUntilError()
	})
	rec := newRecorder()
	if _, err := newTestDriver(Options{}).Dial(testCtx(t), fs.target(), rec.handlers()); err != nil {
		t.Fatal(err)
	}
	if n := <-pongs; n != 15 {
		t.Errorf("got %d pongs, want 15", n)
	}
	if c := rec.waitClose(t); c.reason != probe.ReasonServerDisconnect {
		t.Errorf("OnClose(%q, %v)", c.reason, c.err)
	}
}

func TestBinaryPackets(t *testing.T) {
	ph := func(n int) string { return fmt.Sprintf(`{"_placeholder":true,"num":%d}`, n) }
	done := make(chan struct{})
	fs := newFakeServer(t, func(s *fakeSession) {
		if !s.accept("/", 25000, 20000) {
			return
		}
		_ = s.send(`451-["bin",`+ph(0)+`]`) && s.sendBinary([]byte{1, 2, 3}) &&
			s.send(`461-3[`+ph(0)+`]`) && s.sendBinary([]byte{4}) &&
			s.send(`451-/other,["skipped",`+ph(0)+`]`) && s.sendBinary([]byte{5}) &&
			s.send(`452-9["acked",`+ph(0)+`,`+ph(1)+`]`) && s.sendBinary([]byte{6}) && s.sendBinary([]byte{7}) &&
			s.expect(`439[]`) &&
			s.send(`450-["none"]`) &&
			s.send(`43999["never sent"]`)
		<-done
	})
	rec := newRecorder()
	conn, err := newTestDriver(Options{}).Dial(testCtx(t), fs.target(), rec.handlers())
	if err != nil {
		t.Fatal(err)
	}
	if e := rec.waitEvent(t); e.name != "bin" || !slices.Equal(e.args, []string{ph(0)}) {
		t.Errorf("event %+v", e)
	}
	if a := rec.waitAck(t); a.id != 3 || !slices.Equal(a.args, []string{ph(0)}) {
		t.Errorf("ack %+v", a)
	}
	if e := rec.waitEvent(t); e.name != "acked" || len(e.args) != 2 {
		t.Errorf("event %+v", e)
	}
	if e := rec.waitEvent(t); e.name != "none" {
		t.Errorf("event %+v", e)
	}
	// An ack for an id never sent is delivered: the caller decides.
	if a := rec.waitAck(t); a.id != 999 || !slices.Equal(a.args, []string{`"never sent"`}) {
		t.Errorf("ack %+v", a)
	}
	close(done)
	conn.Close(testCtx(t))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != 3 || len(rec.acks) != 2 {
		t.Errorf("events %+v acks %+v", rec.events, rec.acks)
	}
}

func TestEmitEscapesEventName(t *testing.T) {
	name := "a\"b\\c\nd\x01é\u2028"
	got := make(chan string, 1)
	fs := newFakeServer(t, func(s *fakeSession) {
		if !s.accept("/", 25000, 20000) {
			return
		}
		m, err := s.read()
		if err != nil {
			return
		}
		got <- m
		_, _ = s.readUntilError()
	})
	conn, err := newTestDriver(Options{}).Dial(testCtx(t), fs.target(), probe.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(testCtx(t))
	if err := conn.Emit(testCtx(t), name, probe.NoAck, json.RawMessage(`[1]`)); err != nil {
		t.Fatal(err)
	}
	m := <-got
	var arr []any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(m, "42")), &arr); err != nil {
		t.Fatalf("server got %q: %v", m, err)
	}
	if len(arr) != 2 || arr[0] != name {
		t.Errorf("server decoded %q", arr)
	}
	if err := conn.Emit(testCtx(t), "x", 1, json.RawMessage{}); err == nil {
		t.Error("Emit with an empty argument succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := conn.Emit(ctx, "x", 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Emit with a canceled ctx = %v", err)
	}
}

func TestConcurrentEmit(t *testing.T) {
	fs := newFakeServer(t, func(s *fakeSession) {
		if s.accept("/", 25000, 20000) {
			s.echo()
		}
	})
	rec := newRecorder()
	conn, err := newTestDriver(Options{}).Dial(testCtx(t), fs.target(), rec.handlers())
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := int64(w*each + i)
				if err := conn.Emit(testCtx(t), "echo", id, json.RawMessage(fmt.Sprint(id))); err != nil {
					t.Errorf("Emit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	seen := make(map[uint64]bool)
	for range workers * each {
		a := rec.waitAck(t)
		if seen[a.id] || len(a.args) != 1 || a.args[0] != fmt.Sprint(a.id) {
			t.Fatalf("bad or duplicate ack %+v", a)
		}
		seen[a.id] = true
	}
	if err := conn.Close(testCtx(t)); err != nil {
		t.Error(err)
	}
}

func TestCloseBoundedByContext(t *testing.T) {
	// The server stops reading after the handshake: it never answers the
	// close frame, and the WebSocket library alone would wait 5 s for it.
	release := make(chan struct{})
	fs := newFakeServer(t, func(s *fakeSession) {
		if s.accept("/", 25000, 20000) {
			<-release
		}
	})
	defer close(release)
	rec := newRecorder()
	conn, err := newTestDriver(Options{}).Dial(testCtx(t), fs.target(), rec.handlers())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = conn.Close(ctx)
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Errorf("Close took %v with a 200ms ctx", elapsed)
	}
	if c := rec.waitClose(t); c.reason != probe.ReasonClientClose {
		t.Errorf("OnClose(%q, %v)", c.reason, c.err)
	}
	waitClientGoroutines(t, 0)
}

func TestConcurrentCloseAndServerClose(t *testing.T) {
	for i := range 30 {
		release := make(chan struct{})
		fs := newFakeServer(t, func(s *fakeSession) {
			if !s.accept("/", 25000, 20000) {
				return
			}
			<-release
			if i%2 == 0 {
				s.send("41")
			}
			s.ws.Close(websocket.StatusNormalClosure, "")
		})
		rec := newRecorder()
		conn, err := newTestDriver(Options{}).Dial(testCtx(t), fs.target(), rec.handlers())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { _ = conn.Close(testCtx(t)) })
		}
		close(release)
		wg.Wait()
		c := rec.waitClose(t)
		switch c.reason {
		case probe.ReasonClientClose, probe.ReasonServerDisconnect, probe.ReasonTransportClose:
		default:
			t.Errorf("iteration %d: OnClose(%q, %v)", i, c.reason, c.err)
		}
		fs.close()
		if n := rec.closeCount(); n != 1 {
			t.Fatalf("iteration %d: OnClose called %d times", i, n)
		}
	}
	waitClientGoroutines(t, 0)
}

// TestGoroutinesPerConnection: the event loop serves any number of idle
// connections from its few loop goroutines; the goroutine transport has
// exactly one (the reader) per connection. The HTTP transport's goroutines
// are gone once the upgrade is done.
func TestGoroutinesPerConnection(t *testing.T) {
	fs := newFakeServer(t, func(s *fakeSession) {
		if s.accept("/", 25000, 20000) {
			s.echo()
		}
	})
	d := newTestDriver(Options{})
	const n = 5
	var conns []probe.Conn
	for range n {
		c, err := d.Dial(testCtx(t), fs.target(), probe.Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	want := n
	if d.EventLoop() {
		want = min(n, len(d.loops))
	}
	waitClientGoroutines(t, want)
	for _, c := range conns {
		if err := c.Close(testCtx(t)); err != nil {
			t.Error(err)
		}
	}
	waitClientGoroutines(t, 0)
}

func TestHandshakeURL(t *testing.T) {
	tests := []struct {
		name, url, path, nsp string
		query                url.Values
		wantURL, wantNsp     string
		wantErr              bool
	}{
		{name: "http", url: "http://h:1/ignored", wantURL: "ws://h:1/socket.io/?EIO=4&transport=websocket", wantNsp: "/"},
		{name: "https", url: "https://h", path: "/x/", nsp: "/a", wantURL: "wss://h/x/?EIO=4&transport=websocket", wantNsp: "/a"},
		{name: "ws", url: "ws://h", nsp: "a", wantURL: "ws://h/socket.io/?EIO=4&transport=websocket", wantNsp: "/a"},
		{name: "wss upper case", url: "WSS://h", wantURL: "wss://h/socket.io/?EIO=4&transport=websocket", wantNsp: "/"},
		{name: "query", url: "http://h", query: url.Values{"k": {"v w"}, "transport": {"polling"}},
			wantURL: "ws://h/socket.io/?EIO=4&k=v+w&transport=websocket", wantNsp: "/"},
		{name: "path without trailing slash", url: "http://h", path: "/ws", wantURL: "ws://h/ws/?EIO=4&transport=websocket", wantNsp: "/"},
		{name: "bad scheme", url: "ftp://h", wantErr: true},
		{name: "no host", url: "http:///x", wantErr: true},
		{name: "comma in namespace", url: "http://h", nsp: "/a,b", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := &probe.Target{URL: mustURL(t, tc.url), Path: tc.path, Namespace: tc.nsp, Query: tc.query}
			u, nsp, err := handshakeURL(target)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if u != tc.wantURL || nsp != tc.wantNsp {
				t.Errorf("got %q %q, want %q %q", u, nsp, tc.wantURL, tc.wantNsp)
			}
		})
	}
	if _, _, err := handshakeURL(&probe.Target{}); err == nil {
		t.Error("no URL accepted")
	}
	if _, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, "ftp://h")}, probe.Handlers{}); asConnectError(t, err).Reason != probe.FailOther {
		t.Errorf("got %v", err)
	}
}

func TestConnectionOutlivesDialContext(t *testing.T) {
	fs := newFakeServer(t, func(s *fakeSession) {
		if s.accept("/", 25000, 20000) {
			s.echo()
		}
	})
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	conn, err := newTestDriver(Options{}).Dial(ctx, fs.target(), rec.handlers())
	cancel() // as the agent does right after Dial
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // wall time for a wrongly tied connection to end with the cancelled Dial ctx: there is no event to wait on when it does not
	if err := conn.Emit(testCtx(t), "echo", 1, json.RawMessage(`1`)); err != nil {
		t.Fatalf("Emit after the Dial ctx ended: %v", err)
	}
	if a := rec.waitAck(t); a.id != 1 {
		t.Errorf("ack %+v", a)
	}
	if n := rec.closeCount(); n != 0 {
		t.Errorf("connection ended with the Dial ctx: %+v", rec.closes)
	}
	if err := conn.Close(testCtx(t)); err != nil {
		t.Error(err)
	}
}

func TestNilHandlers(t *testing.T) {
	serverEnd := make(chan error, 1)
	fs := newFakeServer(t, func(s *fakeSession) {
		if !s.accept("/", 25000, 20000) {
			return
		}
		_ = s.send(`42["ev",1]`) && s.send(`425["asks"]`) && s.expect(`435[]`) &&
			s.send(`431[2]`) && s.send(`451-["bin",{"_placeholder":true,"num":0}]`) && s.sendBinary([]byte{1}) &&
			s.send(`461-2[{"_placeholder":true,"num":0}]`) && s.sendBinary([]byte{1}) &&
			s.send("41")
		_, err := s.readUntilError()
		serverEnd <- err
	})
	if _, err := newTestDriver(Options{}).Dial(testCtx(t), fs.target(), probe.Handlers{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-serverEnd:
	case <-time.After(waitLimit):
		t.Fatal("connection not closed after DISCONNECT")
	}
	waitClientGoroutines(t, 0)
}

func TestCloseFromHandler(t *testing.T) {
	fs := newFakeServer(t, func(s *fakeSession) {
		if s.accept("/", 25000, 20000) {
			s.echo()
		}
	})
	rec := newRecorder()
	var conn probe.Conn
	ready := make(chan struct{})
	closed := make(chan error, 1)
	h := rec.handlers()
	onClose := h.OnClose
	h.OnAck = func(uint64, []json.RawMessage) {
		<-ready
		closed <- conn.Close(context.Background()) // must not wait for the reader: we are the reader
	}
	h.OnClose = onClose
	var err error
	conn, err = newTestDriver(Options{}).Dial(testCtx(t), fs.target(), h)
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	if err := conn.Emit(testCtx(t), "echo", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close from OnAck blocked")
	}
	if c := rec.waitClose(t); c.reason != probe.ReasonClientClose {
		t.Errorf("OnClose(%q, %v)", c.reason, c.err)
	}
	waitClientGoroutines(t, 0)
}

// TestCloseWaitsForReaderInHandler closes a connection from another
// goroutine while the reader is inside OnAck: Close must wait for OnClose,
// so with the handler held it can only end by its context.
func TestCloseWaitsForReaderInHandler(t *testing.T) {
	fs := newFakeServer(t, func(s *fakeSession) {
		if s.accept("/", 25000, 20000) {
			s.echo()
		}
	})
	rec := newRecorder()
	h := rec.handlers()
	inAck := make(chan struct{})
	release := make(chan struct{})
	var closeRan atomic.Bool
	onClose := h.OnClose
	h.OnClose = func(r probe.DisconnectReason, err error) {
		closeRan.Store(true)
		onClose(r, err)
	}
	h.OnAck = func(uint64, []json.RawMessage) {
		close(inAck)
		<-release
	}
	conn, err := newTestDriver(Options{}).Dial(testCtx(t), fs.target(), h)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Emit(testCtx(t), "echo", 1); err != nil {
		t.Fatal(err)
	}
	<-inAck
	// The bound is Close's own: the handler is held until Close returns.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = conn.Close(ctx)
	cancel()
	ran := closeRan.Load()
	close(release)
	if err == nil || ran {
		t.Errorf("Close returned %v with OnClose run=%v while the reader was in OnAck; want a context error before OnClose", err, ran)
	}
	if c := rec.waitClose(t); c.reason != probe.ReasonClientClose {
		t.Errorf("OnClose(%q, %v)", c.reason, c.err)
	}
	// Once the reader is out, Close returns at once.
	if err := conn.Close(testCtx(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitClientGoroutines(t, 0)
}

// Under probe.WithoutWaiting, an Emit on the event loop never waits for a
// server that stopped reading: what the socket does not take is queued and
// Backlog says so; an ordinary Emit after that waits, bounded by its ctx,
// and fails the connection when ctx ends, so the stall still shows. On the
// goroutine transport Backlog reports that writes cannot queue.
func TestEmitWithoutWaiting(t *testing.T) {
	stop := make(chan struct{})
	fs := newFakeServer(t, func(s *fakeSession) {
		if s.accept("/", 25000, 20000) {
			<-stop // reads nothing more
		}
	})
	defer close(stop)
	d := newTestDriver(Options{})
	rec := newRecorder()
	c, err := d.Dial(testCtx(t), fs.target(), rec.handlers())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = c.Close(ctx) // the server answers no close frame
	}()
	q, ok := c.(probe.Queuer)
	if !ok {
		t.Fatal("the native conn is not a probe.Queuer")
	}
	if n, queues := q.Backlog(); n != 0 || queues != d.EventLoop() {
		t.Fatalf("Backlog() = %d, %v; want 0, %v", n, queues, d.EventLoop())
	}
	if !d.EventLoop() {
		return
	}
	arg := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
	ctx := probe.WithoutWaiting(context.Background()) // no deadline: a wait would hang the test
	queued := 0
	for i := 0; i < 1000 && queued == 0; i++ {
		if err := c.Emit(ctx, "big", probe.NoAck, arg); err != nil {
			t.Fatalf("emit %d without waiting: %v", i, err)
		}
		queued, _ = q.Backlog()
	}
	if queued == 0 {
		t.Fatal("64 MB written to a server that reads nothing and nothing queued")
	}
	// The kernel's buffers grow for a while (autotuning), so the ordinary
	// writes that follow may drain the queue before one of them waits.
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ {
		wctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		werr = c.Emit(wctx, "big", probe.NoAck, arg)
		cancel()
	}
	if !errors.Is(werr, context.DeadlineExceeded) {
		t.Fatalf("ordinary emits to a server that reads nothing: %v, want the deadline", werr)
	}
	if cl := rec.waitClose(t); cl.reason != probe.ReasonTransportError {
		t.Fatalf("closed with %q, want %q", cl.reason, probe.ReasonTransportError)
	}
}
