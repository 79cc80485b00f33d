package zishang

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probe/zishang/zishangtest"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, zishangtest.GoleakIgnores()...)
}

func newDriver(t *testing.T) *Driver {
	return New(Options{Log: zaptest.NewLogger(t), CloseTimeout: 2 * time.Second})
}

func dialOK(t *testing.T, d *Driver, tg *probe.Target, h probe.Handlers) probe.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, tg, h)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func closeWithin(t *testing.T, c probe.Conn, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestDriverName(t *testing.T) {
	if got := New(Options{}).Name(); got != "zishang520" {
		t.Fatalf("Name() = %q", got)
	}
}

func TestEchoAckRoundTrip(t *testing.T) {
	u := startDemo(t)
	d := newDriver(t)
	tests := []struct {
		name  string
		ackID int64
		args  []json.RawMessage
		want  string
	}{
		{"object", 0, []json.RawMessage{json.RawMessage(`{"seq":1}`)}, `[{"seq":1}]`},
		{"several", 41, []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`"a"`), json.RawMessage(`[true,null]`)}, `[1,"a",[true,null]]`},
		{"none", 7, nil, `[]`},
		{"string", 8, []json.RawMessage{json.RawMessage(`"x"`)}, `["x"]`},
		{"large id", 1 << 40, []json.RawMessage{json.RawMessage(`"x"`)}, `["x"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			c := dialOK(t, d, target(u, "/"), rec.handlers())
			if err := c.Emit(context.Background(), "echo", tt.ackID, tt.args...); err != nil {
				t.Fatalf("Emit: %v", err)
			}
			select {
			case id := <-rec.ackCh:
				if id != uint64(tt.ackID) {
					t.Fatalf("ack id %d, want %d", id, tt.ackID)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no ack within 10s")
			}
			rec.mu.Lock()
			got, _ := json.Marshal(rec.acks[uint64(tt.ackID)])
			rec.mu.Unlock()
			if string(got) != tt.want {
				t.Fatalf("ack args %s, want %s", got, tt.want)
			}
			closeWithin(t, c, 5*time.Second)
			if r := rec.closeReasons(); len(r) != 1 || r[0] != probe.ReasonClientClose {
				t.Fatalf("OnClose reasons %v, want [io_client_disconnect]", r)
			}
		})
	}
}

// Many acks in flight at once, from several goroutines: each answer must
// reach the id it was sent with.
func TestConcurrentAcksMapToTheirIDs(t *testing.T) {
	u := startDemo(t)
	d := newDriver(t)
	rec := newRecorder()
	c := dialOK(t, d, target(u, "/"), rec.handlers())
	const n = 200
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				arg := json.RawMessage(fmt.Sprintf(`{"seq":%d}`, 1000+i))
				if err := c.Emit(context.Background(), "echo", int64(1000+i), arg); err != nil {
					t.Errorf("Emit %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.After(20 * time.Second)
	for range n {
		select {
		case <-rec.ackCh:
		case <-deadline:
			t.Fatalf("only some acks arrived")
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, args := range rec.acks {
		var v struct{ Seq uint64 }
		if len(args) != 1 || json.Unmarshal(args[0], &v) != nil || v.Seq != id {
			t.Errorf("ack %d carried %s", id, args)
		}
	}
}

func TestEmitErrors(t *testing.T) {
	u := startDemo(t)
	d := newDriver(t)
	rec := newRecorder()
	c := dialOK(t, d, target(u, "/"), rec.handlers())
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		event string
		args  []json.RawMessage
	}{
		{"invalid json", context.Background(), "echo", []json.RawMessage{json.RawMessage(`{`)}},
		{"empty name", context.Background(), "", nil},
		{"reserved name", context.Background(), "connect", nil},
		{"done ctx", cancelled, "echo", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.Emit(tt.ctx, tt.event, 1, tt.args...); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	closeWithin(t, c, 5*time.Second)
	if err := c.Emit(context.Background(), "echo", probe.NoAck); err == nil {
		t.Fatal("Emit after Close: want an error")
	}
	// Close is idempotent and OnClose ran once.
	closeWithin(t, c, time.Second)
	if r := rec.closeReasons(); len(r) != 1 {
		t.Fatalf("OnClose called %d times", len(r))
	}
}

func TestServerEvents(t *testing.T) {
	cs := startCustom(t)
	d := newDriver(t)
	rec := newRecorder()
	c := dialOK(t, d, target(cs.url, "/"), rec.handlers())
	if err := c.Emit(context.Background(), "push", probe.NoAck, json.RawMessage(`{"n":1}`), json.RawMessage(`"two"`)); err != nil {
		t.Fatal(err)
	}
	// "news-ack" asks for an ack: it is not delivered.
	want := []string{`news [{"n":1},"two"]`, `news ["after"]`}
	for i, w := range want {
		select {
		case got := <-rec.evCh:
			if got != w {
				t.Fatalf("event %d = %s, want %s", i, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d missing", i)
		}
	}
}

func TestPublishFanOutThroughDemo(t *testing.T) {
	u := startDemo(t)
	d := newDriver(t)
	recA, recB := newRecorder(), newRecorder()
	a := dialOK(t, d, target(u, "/"), recA.handlers())
	dialOK(t, d, target(u, "/"), recB.handlers())
	if err := a.Emit(context.Background(), "publish", 3, json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-recB.evCh:
		if got != `publish [{"n":1}]` {
			t.Fatalf("B got %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B got no publish")
	}
	select {
	case id := <-recA.ackCh:
		if id != 3 {
			t.Fatalf("A ack id %d", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("A got no publish ack")
	}
}

func TestHandshakeCarriesAuthQueryHeaders(t *testing.T) {
	cs := startCustom(t)
	d := newDriver(t)
	rec := newRecorder()
	tg := target(cs.url, "/")
	tg.Auth = json.RawMessage(`{"token":"abc","n":42}`)
	tg.Query = url.Values{"q": {"qv"}}
	tg.Header = http.Header{"X-Test": {"hv"}}
	c := dialOK(t, d, tg, rec.handlers())
	if err := c.Emit(context.Background(), "hs", 5); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.ackCh:
	case <-time.After(10 * time.Second):
		t.Fatal("no ack")
	}
	rec.mu.Lock()
	got, _ := json.Marshal(rec.acks[5])
	rec.mu.Unlock()
	if want := `[{"n":42,"token":"abc"},"qv","hv"]`; string(got) != want {
		t.Fatalf("handshake seen by server %s, want %s", got, want)
	}
}

func TestTLS(t *testing.T) {
	cs, cert := startCustomTLS(t)
	trusted := x509.NewCertPool()
	trusted.AddCert(cert)
	d := newDriver(t)
	tests := []struct {
		name string
		tls  *tls.Config
		want probe.FailureReason // "" = connects
	}{
		{"trusted CA", &tls.Config{RootCAs: trusted}, ""},
		{"unknown CA", &tls.Config{RootCAs: x509.NewCertPool()}, probe.FailTLS},
		{"system roots", nil, probe.FailTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := target(cs.url, "/")
			tg.TLS = tt.tls
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rec := newRecorder()
			c, err := d.Dial(ctx, tg, rec.handlers())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				if err := c.Emit(ctx, "echo", 9, json.RawMessage(`"tls"`)); err != nil {
					t.Fatal(err)
				}
				select {
				case <-rec.ackCh:
				case <-ctx.Done():
					t.Fatal("no ack over TLS")
				}
				closeWithin(t, c, 5*time.Second)
				return
			}
			var ce *probe.ConnectError
			if !errors.As(err, &ce) || ce.Reason != tt.want {
				t.Fatalf("Dial error %v, want %s", err, tt.want)
			}
		})
	}
}

func TestAuthNamespace(t *testing.T) {
	cs := startCustom(t)
	d := newDriver(t)
	tests := []struct {
		name    string
		auth    string
		wantErr string
	}{
		{"good token", `{"token":"s3cret"}`, ""},
		{"bad token", `{"token":"nope"}`, "bad token"},
		{"no auth", ``, "bad token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := target(cs.url, "/auth")
			tg.Auth = json.RawMessage(tt.auth)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := d.Dial(ctx, tg, probe.Handlers{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				closeWithin(t, c, 5*time.Second)
				return
			}
			var ce *probe.ConnectError
			if !errors.As(err, &ce) || ce.Reason != probe.FailConnectError || ce.Message != tt.wantErr {
				t.Fatalf("Dial error %v, want connect_error %q", err, tt.wantErr)
			}
		})
	}
}

// The server's CONNECT_ERROR message comes through whether or not the packet
// has a usable "data" field (defect 7).
func TestConnectErrorMessage(t *testing.T) {
	cs := startCustom(t)
	plain := startFake(t, func(ctx context.Context, c *websocket.Conn) {
		if acceptNamespace(ctx, c, `44{"message":"plain no data"}`) {
			drain(ctx, c)
		}
	})
	d := newDriver(t)
	tests := []struct {
		name string
		url  *url.URL
		nsp  string
		want string
	}{
		{"middleware error, data null", cs.url, "/reject", "nope"},
		{"middleware error with data", cs.url, "/reject-data", "denied"},
		{"invalid namespace (no data field)", cs.url, "/nope", "Invalid namespace"},
		{"node style, no data field", plain.url, "/", "plain no data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			called := false
			h := probe.Handlers{OnClose: func(probe.DisconnectReason, error) { called = true }}
			c, err := d.Dial(ctx, target(tt.url, tt.nsp), h)
			if c != nil {
				t.Fatal("Dial returned a connection")
			}
			var ce *probe.ConnectError
			if !errors.As(err, &ce) || ce.Reason != probe.FailConnectError || ce.Message != tt.want {
				t.Fatalf("Dial error %v, want connect_error %q", err, tt.want)
			}
			if called {
				t.Fatal("OnClose called for a failed Dial")
			}
		})
	}
}

func TestDialFailures(t *testing.T) {
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "go away", http.StatusForbidden)
	}))
	t.Cleanup(forbidden.Close)
	forbiddenURL, _ := url.Parse(forbidden.URL)

	tests := []struct {
		name     string
		url      *url.URL
		nsp      string
		timeout  time.Duration
		scenario fakeScenario
		want     probe.FailureReason
		wantMsg  string
	}{
		{name: "accepts TCP, never answers", url: hangingListener(t), timeout: 300 * time.Millisecond, want: probe.FailTimeout},
		{name: "refused", url: refusedURL(t), timeout: 5 * time.Second, want: probe.FailRefused},
		{name: "http 403", url: forbiddenURL, timeout: 5 * time.Second, want: probe.FailHandshake, wantMsg: "403 Forbidden"},
		{name: "namespace never answered", timeout: 300 * time.Millisecond, want: probe.FailTimeout,
			scenario: func(ctx context.Context, c *websocket.Conn) {
				if writeText(ctx, c, fakeOpen) {
					drain(ctx, c)
				}
			}},
		{name: "no OPEN packet", timeout: 300 * time.Millisecond, want: probe.FailTimeout,
			scenario: func(ctx context.Context, c *websocket.Conn) { drain(ctx, c) }},
		{name: "closed during handshake", timeout: 5 * time.Second, want: probe.FailReset,
			scenario: func(ctx context.Context, c *websocket.Conn) {
				writeText(ctx, c, fakeOpen)
				_, _, _ = c.Read(ctx)
				_ = c.Close(websocket.StatusGoingAway, "bye")
			}},
		{name: "CONNECT answer without sid", timeout: 5 * time.Second, want: probe.FailProtocol,
			scenario: func(ctx context.Context, c *websocket.Conn) {
				if acceptNamespace(ctx, c, `40{}`) {
					drain(ctx, c)
				}
			}},
		{name: "garbage instead of OPEN", timeout: 5 * time.Second, want: probe.FailProtocol,
			scenario: func(ctx context.Context, c *websocket.Conn) {
				if writeText(ctx, c, `x`) {
					drain(ctx, c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			if tt.scenario != nil {
				u = startFake(t, tt.scenario).url
			}
			before := goleak.IgnoreCurrent()
			d := newDriver(t)
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			start := time.Now()
			c, err := d.Dial(ctx, target(u, "/"), probe.Handlers{})
			took := time.Since(start)
			if c != nil {
				t.Fatal("Dial returned a connection")
			}
			var ce *probe.ConnectError
			if !errors.As(err, &ce) || ce.Reason != tt.want || (tt.wantMsg != "" && ce.Message != tt.wantMsg) {
				t.Fatalf("Dial error %v, want reason %s message %q", err, tt.want, tt.wantMsg)
			}
			// Dial never outlives its ctx (plus the time to stop what it
			// started, which does not wait on the network).
			if limit := tt.timeout + 2*time.Second; took > limit {
				t.Fatalf("Dial took %v, want <= %v", took, limit)
			}
			// Nothing of the attempt is left running.
			goleak.VerifyNone(t, append(zishangtest.GoleakIgnores(), before)...)
		})
	}
}

func TestDisconnectReasons(t *testing.T) {
	cs := startCustom(t)
	tests := []struct {
		name     string
		max      int64
		scenario fakeScenario // run on "go" after the namespace CONNECT
		trigger  string       // event emitted to the custom server instead
		want     probe.DisconnectReason
	}{
		{name: "server disconnect (zishang server)", trigger: "kick", want: probe.ReasonServerDisconnect},
		{name: "server DISCONNECT then close frame", want: probe.ReasonServerDisconnect,
			scenario: func(ctx context.Context, c *websocket.Conn) {
				if writeText(ctx, c, "41") {
					_ = c.Close(websocket.StatusNormalClosure, "")
				}
			}},
		{name: "websocket close frame", want: probe.ReasonTransportClose,
			scenario: func(_ context.Context, c *websocket.Conn) { _ = c.Close(websocket.StatusGoingAway, "bye") }},
		{name: "tcp closed without close frame", want: probe.ReasonTransportClose,
			scenario: func(_ context.Context, c *websocket.Conn) { _ = c.CloseNow() }},
		{name: "no ping", want: probe.ReasonPingTimeout,
			scenario: func(ctx context.Context, c *websocket.Conn) { <-ctx.Done() }},
		{name: "invalid socket.io packet", want: probe.ReasonParseError,
			scenario: func(ctx context.Context, c *websocket.Conn) {
				if writeText(ctx, c, `4x`) {
					drain(ctx, c)
				}
			}},
		{name: "frame over the limit", max: 128, want: probe.ReasonParseError,
			scenario: func(ctx context.Context, c *websocket.Conn) {
				if writeText(ctx, c, `42["big","`+strings.Repeat("x", 200)+`"]`) {
					drain(ctx, c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, trigger := cs.url, tt.trigger
			if tt.scenario != nil {
				u, trigger = startFake(t, onTrigger(tt.scenario)).url, "go"
			}
			d := newDriver(t)
			rec := newRecorder()
			tg := target(u, "/")
			tg.MaxFrameBytes = tt.max
			c := dialOK(t, d, tg, rec.handlers())
			if err := c.Emit(context.Background(), trigger, probe.NoAck); err != nil {
				t.Fatal(err)
			}
			if got := rec.waitClosed(t, 10*time.Second); got != tt.want {
				t.Fatalf("OnClose reason %s, want %s", got, tt.want)
			}
			closeWithin(t, c, 5*time.Second)
			if r := rec.closeReasons(); len(r) != 1 {
				t.Fatalf("OnClose reasons %v, want exactly one", r)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if rec.events != nil {
				t.Fatalf("unexpected events %v", rec.events)
			}
		})
	}
}

// Close writes DISCONNECT before it closes the WebSocket (defect 6), then
// performs the close handshake. The zishang Go server cannot show this: it
// queues decoded packets but handles the close at once, so it reports
// "transport close" either way; a scripted server records the wire.
func TestCloseIsClean(t *testing.T) {
	seen := make(chan []string, 8)
	srv := startFake(t, func(ctx context.Context, c *websocket.Conn) {
		if !acceptNamespace(ctx, c, `40{"sid":"s"}`) {
			return
		}
		var got []string
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				got = append(got, fmt.Sprintf("close %d", websocket.CloseStatus(err)))
				break
			}
			got = append(got, string(b))
		}
		seen <- got
	})
	d := newDriver(t)
	for i := range 5 {
		rec := newRecorder()
		c := dialOK(t, d, target(srv.url, "/"), rec.handlers())
		if err := c.Emit(context.Background(), "last", probe.NoAck, json.RawMessage(`1`)); err != nil {
			t.Fatal(err)
		}
		closeWithin(t, c, 5*time.Second)
		select {
		case got := <-seen:
			if want := []string{`42["last",1]`, "41", "close 1000"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d: server read %q, want %q", i, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: server saw no close", i)
		}
		if r := rec.closeReasons(); len(r) != 1 || r[0] != probe.ReasonClientClose {
			t.Fatalf("round %d: OnClose %v", i, r)
		}
	}
}

// Against the zishang Go server too, Close returns promptly and the server
// sees the socket go.
func TestCloseAgainstGoServer(t *testing.T) {
	cs := startCustom(t)
	d := newDriver(t)
	rec := newRecorder()
	c := dialOK(t, d, target(cs.url, "/"), rec.handlers())
	closeWithin(t, c, 5*time.Second)
	select {
	case r := <-cs.reasons:
		t.Logf("server-side reason: %q", r)
	case <-time.After(10 * time.Second):
		t.Fatal("server saw no disconnect")
	}
}

// Close with a server that never answers the close handshake returns when
// its ctx ends.
func TestCloseBoundedByCtx(t *testing.T) {
	srv := startFake(t, func(ctx context.Context, c *websocket.Conn) {
		if acceptNamespace(ctx, c, `40{"sid":"s"}`) {
			<-ctx.Done() // stop reading: the close frame is never answered
		}
	})
	d := New(Options{Log: zaptest.NewLogger(t), CloseTimeout: time.Minute})
	rec := newRecorder()
	c := dialOK(t, d, target(srv.url, "/"), rec.handlers())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Close(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %v with a 300ms ctx", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close error %v, want deadline exceeded", err)
	}
	if r := rec.closeReasons(); len(r) != 1 || r[0] != probe.ReasonClientClose {
		t.Fatalf("OnClose %v", r)
	}
}

// The library's connect timer, armed for the ctx deadline here, must be
// cleared once connected (defect 3): the connection outlives the deadline.
func TestConnectTimerDoesNotKillHealthyConnection(t *testing.T) {
	u := startDemo(t)
	d := newDriver(t)
	d.timerSlack = 0
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, target(u, "/"), rec.handlers())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer closeWithin(t, c, 5*time.Second)
	<-ctx.Done()
	time.Sleep(500 * time.Millisecond) // past the timer (2 s + slack 0)
	if r := rec.closeReasons(); len(r) != 0 {
		t.Fatalf("connection ended after the connect deadline: %v", r)
	}
	if err := c.Emit(context.Background(), "echo", 1, json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.ackCh:
	case <-time.After(10 * time.Second):
		t.Fatal("no ack after the connect deadline")
	}
}

func TestManyClientsInParallel(t *testing.T) {
	u := startDemo(t)
	d := newDriver(t)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := newRecorder()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := d.Dial(ctx, target(u, "/"), rec.handlers())
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			if err := c.Emit(ctx, "echo", int64(i), json.RawMessage(`1`)); err != nil {
				t.Errorf("client %d emit: %v", i, err)
			}
			select {
			case <-rec.ackCh:
			case <-ctx.Done():
				t.Errorf("client %d: no ack", i)
			}
			if err := c.Close(ctx); err != nil {
				t.Errorf("client %d close: %v", i, err)
			}
		}()
	}
	wg.Wait()
}

func TestBadTargets(t *testing.T) {
	d := New(Options{})
	tests := []struct {
		name string
		t    *probe.Target
	}{
		{"nil", nil},
		{"no url", &probe.Target{}},
		{"bad scheme", &probe.Target{URL: &url.URL{Scheme: "ftp", Host: "x"}}},
		{"no host", &probe.Target{URL: &url.URL{Scheme: "http"}}},
		{"auth not an object", &probe.Target{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Auth: json.RawMessage(`[1]`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Dial(context.Background(), tt.t, probe.Handlers{})
			var ce *probe.ConnectError
			if !errors.As(err, &ce) || ce.Reason != probe.FailOther {
				t.Fatalf("error %v, want FailOther", err)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"zero", Options{}, ""},
		{"negative retention", Options{AckRetention: -1}, "zishang ack retention"},
		{"negative write", Options{WriteTimeout: -1}, "zishang write timeout"},
		{"negative close", Options{CloseTimeout: -1}, "zishang close timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRefusesOtherTransports: the driver speaks websocket only and says so
// instead of dialing a WebSocket when asked for long-polling.
func TestRefusesOtherTransports(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	for _, tr := range [][]string{{"polling"}, {"polling", "websocket"}} {
		t.Run(strings.Join(tr, ","), func(t *testing.T) {
			_, err := New(Options{}).Dial(context.Background(), &probe.Target{URL: u, Transports: tr}, probe.Handlers{})
			var ce *probe.ConnectError
			if !errors.As(err, &ce) || ce.Reason != probe.FailOther || !strings.Contains(err.Error(), "SOAK_TRANSPORTS=websocket") {
				t.Fatalf("Dial = %v, want a FailOther naming SOAK_TRANSPORTS=websocket", err)
			}
		})
	}
}
