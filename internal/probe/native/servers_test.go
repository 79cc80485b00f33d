package native

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// startVariant starts test/fixture/node/variant.js (a real socket.io 4
// server) with the given settings.
func startVariant(t *testing.T, env ...string) *testfixture.Node {
	t.Helper()
	return testfixture.Start(t, testfixture.Options{Script: "variant.js", Env: env})
}

// TestRealServerFailuresExplainThemselves dials real socket.io 4 servers
// configured the way deployments differ from our fixture, and checks that
// each failure carries the server's reason and a hint.
func TestRealServerFailuresExplainThemselves(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		proxy      bool // through a proxy that drops the Upgrade headers
		wantReason probe.FailureReason
		want       []string // substrings of the Message
		wantData   string
		notInError string
		parser     string
	}{
		{name: "websocket disabled", env: []string{"TRANSPORTS=polling"}, wantReason: probe.FailHandshake,
			want: []string{"400", `"Transport unknown"`, "websocket transport disabled on the server"}},
		{name: "allowRequest rejects", env: []string{"REJECT_REASON=ip 10.1.2.3 is banned"}, wantReason: probe.FailHandshake,
			want: []string{"400", `"ip 10.1.2.3 is banned"`, "allowRequest"}},
		{name: "proxy drops Upgrade", proxy: true, wantReason: probe.FailHandshake,
			want: []string{"400", `"Bad request"`, "Upgrade/Connection headers"}},
		{name: "wrong path", env: []string{"IO_PATH=/elsewhere/"}, wantReason: probe.FailReset,
			want: []string{"SOAK_SOCKETIO_PATH"}},
		{name: "msgpack server, json client", env: []string{"PARSER=msgpack"}, wantReason: probe.FailReset,
			want: []string{"SOAK_PARSER", "socket.io-msgpack-parser"}},
		{name: "json server, msgpack client", parser: ParserMsgpack, wantReason: probe.FailReset,
			want: []string{"SOAK_PARSER"}},
		{name: "connect_error with data", env: []string{`CONNECT_ERROR_DATA={"retryAfter":30}`}, wantReason: probe.FailConnectError,
			want: []string{"rejected"}, wantData: `{"retryAfter":30}`},
		{name: "connect_error data with a secret", env: []string{`CONNECT_ERROR_DATA={"token":"hunter2-value"}`}, wantReason: probe.FailConnectError,
			want: []string{"rejected"}, wantData: "[REDACTED]", notInError: "hunter2-value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := startVariant(t, tc.env...)
			target := n.URL()
			if tc.proxy {
				target = upgradeDroppingProxy(t, n.URL())
			}
			_, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, target), Parser: tc.parser}, probe.Handlers{})
			ce := asConnectError(t, err)
			t.Logf("error: %v", err)
			if ce.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q (%v)", ce.Reason, tc.wantReason, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(ce.Message, w) {
					t.Errorf("message %q lacks %q", ce.Message, w)
				}
			}
			if ce.Data != tc.wantData {
				t.Errorf("data %q, want %q", ce.Data, tc.wantData)
			}
			if tc.notInError != "" && strings.Contains(err.Error(), tc.notInError) {
				t.Errorf("error %q shows %q", err, tc.notInError)
			}
			waitClientGoroutines(t, 0)
		})
	}
}

// upgradeDroppingProxy returns the URL of a reverse proxy to target that
// removes the Upgrade and Connection headers, as a misconfigured nginx does.
func upgradeDroppingProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Header.Del("Upgrade")
			r.Out.Header.Del("Connection")
		},
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRealServerPathWithoutSlash: SOAK_SOCKETIO_PATH=/ws reaches a server on
// /ws/, as socket.io-client does.
func TestRealServerPathWithoutSlash(t *testing.T) {
	n := startVariant(t, "IO_PATH=/ws/")
	acks := make(chan []json.RawMessage, 1)
	h := probe.Handlers{OnAck: func(_ uint64, args []json.RawMessage) { acks <- args }}
	conn, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, n.URL()), Path: "/ws"}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Emit(testCtx(t), "echo", 1, json.RawMessage(`"hi"`)); err != nil {
		t.Fatal(err)
	}
	select {
	case args := <-acks:
		if len(args) != 1 || string(args[0]) != `"hi"` {
			t.Errorf("ack %s", args)
		}
	case <-testCtx(t).Done():
		t.Fatal("no ack")
	}
	if err := conn.Close(testCtx(t)); err != nil {
		t.Error(err)
	}
	waitClientGoroutines(t, 0)
}

func TestExplainStatus(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		body       string
		wantReason probe.FailureReason
		want       string
	}{
		{name: "unsupported protocol", code: 400, body: `{"code":5,"message":"Unsupported protocol version"}`, wantReason: probe.FailProtocol,
			want: `400 Bad Request: "Unsupported protocol version" (the server does not speak Engine.IO v4 (Socket.IO v3+))`},
		{name: "forbidden json", code: 403, body: `{"code":4,"message":"not on the list"}`, wantReason: probe.FailHandshake,
			want: `403 Forbidden: "not on the list" (refused by the server (allowRequest, CORS or an auth proxy))`},
		{name: "html error page dropped", code: 502, body: "<html><body>bad gateway</body></html>", wantReason: probe.FailHandshake,
			want: `502 Bad Gateway`},
		{name: "200 from a proxy", code: 200, body: "ok", wantReason: probe.FailHandshake,
			want: `200 OK: "ok" (upgrade refused: the server answered without switching protocols; is the proxy forwarding the Upgrade/Connection headers?)`},
		{name: "control characters", code: 400, body: "a\x1b[31mb\n", wantReason: probe.FailHandshake,
			want: `400 Bad Request: "a [31mb" (rejected by the server's allowRequest or a middleware)`},
		{name: "engine.io message over upgrade", code: 400, body: "Session ID unknown", wantReason: probe.FailHandshake,
			want: `400 Bad Request: "Session ID unknown"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status := http.StatusText(tc.code)
			r, msg := explainStatus(tc.code, strconv.Itoa(tc.code)+" "+status, []byte(tc.body))
			if r != tc.wantReason || msg != tc.want {
				t.Errorf("got %q %q, want %q %q", r, msg, tc.wantReason, tc.want)
			}
		})
	}
}

// TestRealSocketIOv2Refused: a socket.io 2 server (Engine.IO v3) answers the
// handshake, but the protocols differ (v3 clients ping, v4 servers do):
// the driver must refuse it as `protocol`, naming the version, instead of a
// connection that dies of ping timeouts.
func TestRealSocketIOv2Refused(t *testing.T) {
	n := testfixture.Start(t, testfixture.Options{Script: "variant-v2.js"})
	_, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, n.URL())}, probe.Handlers{})
	ce := asConnectError(t, err)
	t.Logf("error: %v", err)
	if ce.Reason != probe.FailProtocol || !strings.Contains(ce.Message, "Socket.IO v2") {
		t.Errorf("got %v, want a protocol failure naming Socket.IO v2", err)
	}
	waitClientGoroutines(t, 0)
}

// TestThroughNginx dials real socket.io 4 servers through nginx from Debian,
// with each transport setting.
func TestThroughNginx(t *testing.T) {
	ws, polling, upgrade := []string{"websocket"}, []string{"polling"}, []string{"polling", "websocket"}
	tests := []struct {
		name          string
		replicas      int
		upgrade       bool
		transports    []string
		want          string // substring of the failure message; empty: works
		wantTransport string // when it works
	}{
		{name: "forwarding Upgrade", replicas: 1, upgrade: true, transports: ws, wantTransport: "websocket"},
		{name: "dropping Upgrade", replicas: 1, transports: ws, want: "Upgrade/Connection headers"},
		{name: "forwarding Upgrade, upgrade", replicas: 1, upgrade: true, transports: upgrade, wantTransport: "websocket"},
		// As socket.io-client: the upgrade fails, the session stays on
		// long-polling and works.
		{name: "dropping Upgrade, upgrade", replicas: 1, transports: upgrade, wantTransport: "polling"},
		{name: "dropping Upgrade, polling", replicas: 1, transports: polling, wantTransport: "polling"},
		// WebSocket-only needs no sticky sessions: the whole session is one
		// TCP connection to one replica.
		{name: "two replicas without sticky sessions", replicas: 2, upgrade: true, transports: ws, wantTransport: "websocket"},
		// Long-polling does: the second request of the session reaches the
		// other replica, as it would for a browser.
		{name: "two replicas without sticky sessions, polling", replicas: 2, upgrade: true, transports: polling, want: "no sticky sessions?"},
		{name: "two replicas without sticky sessions, upgrade", replicas: 2, upgrade: true, transports: upgrade, want: "no sticky sessions?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ups []string
			for range tc.replicas {
				ups = append(ups, "127.0.0.1:"+strconv.Itoa(startVariant(t).Port()))
			}
			ngx := testfixture.StartNginx(t, testfixture.NginxOptions{Upstreams: ups, ForwardUpgrade: tc.upgrade})
			for i := range 2 * tc.replicas { // every replica gets a connection
				acks := make(chan []json.RawMessage, 1)
				h := probe.Handlers{OnAck: func(_ uint64, args []json.RawMessage) { acks <- args }}
				conn, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, ngx.URL()), Transports: tc.transports}, h)
				if tc.want != "" {
					ce := asConnectError(t, err)
					t.Logf("error: %v", err)
					if ce.Reason != probe.FailHandshake || !strings.Contains(ce.Message, tc.want) {
						t.Errorf("got %v (%q), want a handshake failure mentioning %q", err, ce.Message, tc.want)
					}
					waitClientGoroutines(t, 0)
					return
				}
				if err != nil {
					t.Fatalf("dial %d: %v", i, err)
				}
				if got := probe.TransportOf(conn); got != tc.wantTransport {
					t.Errorf("transport %q, want %q", got, tc.wantTransport)
				}
				if err := conn.Emit(testCtx(t), "echo", 1, json.RawMessage(`1`)); err != nil {
					t.Fatal(err)
				}
				select {
				case <-acks:
				case <-testCtx(t).Done():
					t.Fatal("no ack")
				}
				if err := conn.Close(testCtx(t)); err != nil {
					t.Error(err)
				}
			}
			waitClientGoroutines(t, 0)
		})
	}
}

// TestRealServerMessageOverFrameLimit: a message larger than the frame limit
// ends the connection with an error that names SOAK_MAX_FRAME_BYTES.
func TestRealServerMessageOverFrameLimit(t *testing.T) {
	for _, transports := range [][]string{{"websocket"}, {"polling"}} {
		t.Run(transports[0], func(t *testing.T) { testMessageOverFrameLimit(t, transports) })
	}
}

func testMessageOverFrameLimit(t *testing.T, transports []string) {
	n := startVariant(t, "BIG_ON_CONNECT=200000")
	closed := make(chan error, 1)
	h := probe.Handlers{OnClose: func(r probe.DisconnectReason, err error) {
		if r != probe.ReasonParseError {
			err = errors.Join(errors.New("reason "+string(r)), err)
		}
		closed <- err
	}}
	conn, err := newTestDriver(Options{}).Dial(testCtx(t), &probe.Target{URL: mustURL(t, n.URL()), MaxFrameBytes: 64 << 10, Transports: transports}, h)
	if err != nil {
		// The message may also arrive before the CONNECT answer.
		if !strings.Contains(err.Error(), "SOAK_MAX_FRAME_BYTES") {
			t.Fatalf("dial: %v", err)
		}
		return
	}
	select {
	case err := <-closed:
		t.Logf("closed: %v", err)
		if err == nil || !strings.Contains(err.Error(), "SOAK_MAX_FRAME_BYTES") || strings.HasPrefix(err.Error(), "reason ") {
			t.Errorf("OnClose error %v, want parse_error naming SOAK_MAX_FRAME_BYTES", err)
		}
	case <-testCtx(t).Done():
		t.Fatal("connection not ended")
	}
	_ = conn.Close(testCtx(t))
	waitClientGoroutines(t, 0)
}
