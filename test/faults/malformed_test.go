package faults

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

// eioServer is a fake Engine.IO/Socket.IO server: it runs the normal
// handshake (unless told not to), then hands the session to a script.
type eioServer struct {
	srv      *httptest.Server
	ctx      context.Context
	cancel   context.CancelFunc
	open     bool // send OPEN and answer CONNECT before the script
	script   func(s *eioSession)
	sessions atomic.Int64

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []*websocket.Conn
	once  sync.Once
}

type eioSession struct {
	ctx context.Context
	ws  *websocket.Conn
}

func newEIOServer(t *testing.T, open bool, script func(s *eioSession)) *eioServer {
	s := &eioServer{open: open, script: script}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.close)
	return s
}

func (s *eioServer) serve(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	s.mu.Lock()
	s.conns = append(s.conns, ws)
	s.mu.Unlock()
	s.sessions.Add(1)
	sess := &eioSession{ctx: s.ctx, ws: ws}
	if s.open {
		if !sess.send(`0{"sid":"fake","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`) {
			return
		}
		for { // the client's namespace CONNECT
			m, err := sess.read()
			if err != nil {
				return
			}
			if strings.HasPrefix(m, "40") {
				break
			}
		}
		if !sess.send(`40{"sid":"fake-socket"}`) {
			return
		}
	}
	s.script(sess)
}

// close stops the server and waits for every session's handler.
func (s *eioServer) close() {
	s.once.Do(func() {
		s.cancel()
		s.srv.Close()
		s.mu.Lock()
		for _, ws := range s.conns {
			_ = ws.CloseNow()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

func (s *eioSession) send(m string) bool {
	return s.ws.Write(s.ctx, websocket.MessageText, []byte(m)) == nil
}

func (s *eioSession) read() (string, error) {
	_, b, err := s.ws.Read(s.ctx)
	return string(b), err
}

// echo acks every acked EVENT `42<id>["name",args...]` with `43<id>[args...]`
// until the connection ends.
func (s *eioSession) echo() {
	for {
		m, err := s.read()
		if err != nil {
			return
		}
		rest, ok := strings.CutPrefix(m, "42")
		if !ok {
			continue
		}
		i := strings.IndexByte(rest, '[')
		j := strings.IndexByte(rest, ',')
		if i <= 0 || j < i || !strings.HasSuffix(rest, "]") {
			continue
		}
		if !s.send("43" + rest[:i] + "[" + rest[j+1:]) {
			return
		}
	}
}

// TestMalformedInputThroughThePool runs the pool against a fake server that
// sends one kind of malformed input right after the namespace CONNECT: each
// ends the connection as parse_error, the pool reconnects and keeps running.
// An ack for an id never sent is counted as unexpected and ends nothing; a
// server that upgrades and then never sends OPEN is a connect timeout.
func TestMalformedInputThroughThePool(t *testing.T) {
	const (
		clients  = 3
		rounds   = 3
		maxFrame = 4096
		// midStream is how long the server echoes before the bad input.
		midStream = 100 * time.Millisecond
	)
	tests := []struct {
		name string
		open bool
		// msgs are sent midStream after the handshake; the server echoes
		// all along.
		msgs           []string
		echo           bool // the first message only, then echo
		wantDisconnect probe.DisconnectReason
		wantFailure    probe.FailureReason
		wantUnexpected bool
	}{
		{name: "truncated packet", open: true, msgs: []string{`42["news",{"seq":1,"t":`}, wantDisconnect: probe.ReasonParseError},
		{name: "invalid json", open: true, msgs: []string{`42["news",{"a":nul}]`}, wantDisconnect: probe.ReasonParseError},
		{name: "invalid ack json", open: true, msgs: []string{`430[}`}, wantDisconnect: probe.ReasonParseError},
		{name: "empty message", open: true, msgs: []string{``}, wantDisconnect: probe.ReasonParseError},
		{name: "unknown engine.io type", open: true, msgs: []string{`9hello`}, wantDisconnect: probe.ReasonParseError},
		{name: "unknown socket.io type", open: true, msgs: []string{`49["x"]`}, wantDisconnect: probe.ReasonParseError},
		{name: "frame beyond the limit", open: true, msgs: []string{`42["big","` + strings.Repeat("x", 2*maxFrame) + `"]`}, wantDisconnect: probe.ReasonParseError},
		{name: "attachments never arrive", open: true, msgs: []string{`451-["file",{"_placeholder":true,"num":0}]`, `2`}, wantDisconnect: probe.ReasonParseError},
		{name: "ack for an id never sent", open: true, msgs: []string{`43999999["x"]`}, echo: true, wantUnexpected: true},
		{name: "no open packet", open: false, wantFailure: probe.FailTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newEIOServer(t, tc.open, func(s *eioSession) {
				// Echo from the start, so that the bad input arrives mid-stream
				// with events in flight.
				echoed := make(chan struct{})
				go func() { defer close(echoed); s.echo() }()
				defer func() { <-echoed }()
				if tc.echo {
					_ = s.send(tc.msgs[0])
					return
				}
				if len(tc.msgs) == 0 {
					return
				}
				select {
				case <-time.After(midStream):
				case <-echoed:
					return
				}
				for _, m := range tc.msgs {
					if !s.send(m) {
						return
					}
				}
			})
			cfg := config()
			cfg.Clients, cfg.EventRate, cfg.AckTimeout = clients, 50, 300*time.Millisecond
			cfg.ConnectTimeout = 300 * time.Millisecond
			cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 100*time.Millisecond
			tg := target(t, srv.srv.URL, maxFrame)
			tg.Transports = []string{"websocket"} // the scripted server speaks WebSocket only
			h := startPool(t, cfg, tg)
			switch {
			case tc.wantDisconnect != "":
				soaktest.WaitWithin(t, "repeated "+string(tc.wantDisconnect), 15*time.Second, func() bool {
					return h.value("soak_disconnects_total", "reason", string(tc.wantDisconnect)) >= clients*rounds
				})
				onlyReasons(t, "disconnects", h.disconnects(), string(tc.wantDisconnect))
				onlyReasons(t, "connect failures", h.failures())
				if a := h.value("soak_connect_attempts_total", "", ""); a < clients*rounds {
					t.Errorf("%v connect attempts, want >= %d (reconnects)", a, clients*rounds)
				}
			case tc.wantFailure != "":
				soaktest.WaitWithin(t, "repeated "+string(tc.wantFailure), 15*time.Second, func() bool {
					return h.value("soak_connect_failures_total", "reason", string(tc.wantFailure)) >= clients*rounds
				})
				onlyReasons(t, "connect failures", h.failures(), string(tc.wantFailure))
				onlyReasons(t, "disconnects", h.disconnects())
			case tc.wantUnexpected:
				soaktest.WaitWithin(t, "all connected", 10*time.Second, func() bool { return h.p.Connected() == clients })
				soaktest.WaitWithin(t, "unexpected acks", 10*time.Second, func() bool {
					return h.value("soak_acks_unexpected_total", "", "") == clients
				})
				acked := h.value("soak_events_acked_total", "", "")
				soaktest.WaitWithin(t, "acks flowing", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= acked+25 })
				onlyReasons(t, "disconnects", h.disconnects())
				onlyReasons(t, "connect failures", h.failures())
				if c := h.p.Connected(); c != clients {
					t.Errorf("connected = %d after an unexpected ack, want %d", c, clients)
				}
			}
			if !h.p.Running() {
				t.Fatal("the pool stopped running")
			}
			sent, acked, lost := h.accounted()
			h.stop()
			t.Logf("sessions %d; disconnects %v; failures %v; unexpected acks %v; sent %v = acked %v + lost %v; Run returned %v after cancel",
				srv.sessions.Load(), h.disconnects(), h.failures(), h.value("soak_acks_unexpected_total", "", ""), sent, acked, lost, h.stopTook)
		})
	}
}
