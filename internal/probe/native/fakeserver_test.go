package native

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// waitLimit bounds every wait in the tests. It is generous: reaching it is a
// failure, not a measurement.
const waitLimit = 10 * time.Second

// fakeServer is an Engine.IO/Socket.IO server that speaks the raw protocol
// through a script, so that it can misbehave at will.
type fakeServer struct {
	t      testing.TB
	srv    *httptest.Server
	ctx    context.Context
	cancel context.CancelFunc
	script func(s *fakeSession)

	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     []*websocket.Conn
	closeOnce sync.Once
}

// fakeSession is one server-side WebSocket connection.
type fakeSession struct {
	t   testing.TB
	ctx context.Context
	ws  *websocket.Conn
	req *http.Request
}

func newFakeServer(t testing.TB, script func(s *fakeSession)) *fakeServer {
	return startFakeServer(t, false, script)
}

func newFakeTLSServer(t testing.TB, script func(s *fakeSession)) *fakeServer {
	return startFakeServer(t, true, script)
}

func startFakeServer(t testing.TB, useTLS bool, script func(s *fakeSession)) *fakeServer {
	t.Helper()
	fs := &fakeServer{t: t, script: script}
	fs.ctx, fs.cancel = context.WithCancel(context.Background())
	fs.srv = httptest.NewUnstartedServer(http.HandlerFunc(fs.serve))
	fs.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	if useTLS {
		fs.srv.StartTLS()
	} else {
		fs.srv.Start()
	}
	t.Cleanup(fs.close)
	return fs
}

func (fs *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.wg.Add(1)
	defer fs.wg.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ws.SetReadLimit(4 << 20)
	fs.mu.Lock()
	fs.conns = append(fs.conns, ws)
	fs.mu.Unlock()
	defer ws.CloseNow()
	fs.script(&fakeSession{t: fs.t, ctx: fs.ctx, ws: ws, req: r})
}

func (fs *fakeServer) close() { fs.closeOnce.Do(fs.shutdown) }

// shutdown stops the server. srv.Close waits for every request that has not
// been upgraded, so every handler has registered itself in wg by then.
func (fs *fakeServer) shutdown() {
	fs.cancel()
	fs.srv.Close()
	fs.mu.Lock()
	for _, ws := range fs.conns {
		_ = ws.CloseNow()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

// target returns a target for the server.
func (fs *fakeServer) target() *probe.Target {
	u, err := url.Parse(fs.srv.URL)
	if err != nil {
		fs.t.Fatal(err)
	}
	t := &probe.Target{Name: "fake", URL: u, Namespace: "/"}
	if fs.srv.TLS != nil {
		t.TLS = fs.srv.Client().Transport.(*http.Transport).TLSClientConfig
	}
	return t
}

func (s *fakeSession) send(msg string) bool {
	if err := s.ws.Write(s.ctx, websocket.MessageText, []byte(msg)); err != nil {
		s.t.Errorf("server: send %q: %v", msg, err)
		return false
	}
	return true
}

func (s *fakeSession) sendBinary(b []byte) bool {
	if err := s.ws.Write(s.ctx, websocket.MessageBinary, b); err != nil {
		s.t.Errorf("server: send binary: %v", err)
		return false
	}
	return true
}

// open sends the Engine.IO OPEN packet with the given intervals in ms.
func (s *fakeSession) open(pingInterval, pingTimeout int) bool {
	return s.send(fmt.Sprintf(`0{"sid":"srv-sid","upgrades":[],"pingInterval":%d,"pingTimeout":%d,"maxPayload":1000000}`,
		pingInterval, pingTimeout))
}

// read returns the next text message; binary messages are reported as
// "<binary N>".
func (s *fakeSession) read() (string, error) {
	typ, b, err := s.ws.Read(s.ctx)
	if err != nil {
		return "", err
	}
	if typ == websocket.MessageBinary {
		return fmt.Sprintf("<binary %d>", len(b)), nil
	}
	return string(b), nil
}

// expect reads the next message and checks it.
func (s *fakeSession) expect(want string) bool {
	got, err := s.read()
	if err != nil {
		s.t.Errorf("server: waiting for %q: %v", want, err)
		return false
	}
	if got != want {
		s.t.Errorf("server: got %q, want %q", got, want)
		return false
	}
	return true
}

// accept runs the normal handshake for namespace nsp ("/" or "/name").
func (s *fakeSession) accept(nsp string, pingInterval, pingTimeout int) bool {
	prefix := ""
	if nsp != "/" {
		prefix = nsp + ","
	}
	return s.open(pingInterval, pingTimeout) &&
		s.expect("40"+prefix) &&
		s.send("40"+prefix+`{"sid":"sock-sid"}`)
}

// readUntilError reads until the connection fails and returns what it read
// and the final error.
func (s *fakeSession) readUntilError() ([]string, error) {
	var msgs []string
	for {
		m, err := s.read()
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

// echo answers every `42[nsp,]<id>["event",args...]` with `43[nsp,]<id>[args...]`
// until the connection ends.
func (s *fakeSession) echo() {
	for {
		m, err := s.read()
		if err != nil {
			return
		}
		if reply, ok := echoReply(m); ok {
			if err := s.ws.Write(s.ctx, websocket.MessageText, []byte(reply)); err != nil {
				return
			}
		}
	}
}

// echoReply builds the ACK for an acked EVENT, with an independent parser.
func echoReply(m string) (string, bool) {
	rest, ok := strings.CutPrefix(m, "42")
	if !ok {
		return "", false
	}
	nsp := ""
	if strings.HasPrefix(rest, "/") {
		i := strings.IndexByte(rest, ',')
		if i < 0 {
			return "", false
		}
		nsp, rest = rest[:i+1], rest[i+1:]
	}
	i := strings.IndexByte(rest, '[')
	if i <= 0 {
		return "", false
	}
	id := rest[:i]
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(rest[i:]), &arr); err != nil || len(arr) == 0 {
		return "", false
	}
	parts := make([]string, 0, len(arr)-1)
	for _, a := range arr[1:] {
		parts = append(parts, string(a))
	}
	return "43" + nsp + id + "[" + strings.Join(parts, ",") + "]", true
}

// recorder collects what the handlers receive.
type recorder struct {
	mu     sync.Mutex
	acks   []ackRec
	events []eventRec
	closes []closeRec
	ackCh  chan ackRec
	evCh   chan eventRec
	closed chan struct{}
}

type ackRec struct {
	id   uint64
	args []string
}

type eventRec struct {
	name string
	args []string
}

type closeRec struct {
	reason probe.DisconnectReason
	err    error
}

func newRecorder() *recorder {
	return &recorder{ackCh: make(chan ackRec, 1024), evCh: make(chan eventRec, 1024), closed: make(chan struct{})}
}

func rawStrings(args []json.RawMessage) []string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = string(a)
	}
	return s
}

func (r *recorder) handlers() probe.Handlers {
	return probe.Handlers{
		OnAck: func(id uint64, args []json.RawMessage) {
			a := ackRec{id, rawStrings(args)}
			r.mu.Lock()
			r.acks = append(r.acks, a)
			r.mu.Unlock()
			r.ackCh <- a
		},
		OnEvent: func(name string, args []json.RawMessage) {
			e := eventRec{name, rawStrings(args)}
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
			r.evCh <- e
		},
		OnClose: func(reason probe.DisconnectReason, err error) {
			r.mu.Lock()
			r.closes = append(r.closes, closeRec{reason, err})
			first := len(r.closes) == 1
			r.mu.Unlock()
			if first {
				close(r.closed)
			}
		},
	}
}

// waitClose waits for OnClose and returns its arguments.
func (r *recorder) waitClose(t testing.TB) closeRec {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(waitLimit):
		t.Fatal("OnClose not called")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closes[0]
}

func (r *recorder) closeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.closes)
}

func (r *recorder) waitAck(t testing.TB) ackRec {
	t.Helper()
	select {
	case a := <-r.ackCh:
		return a
	case <-time.After(waitLimit):
		t.Fatal("no ack")
	}
	return ackRec{}
}

func (r *recorder) waitEvent(t testing.TB) eventRec {
	t.Helper()
	select {
	case e := <-r.evCh:
		return e
	case <-time.After(waitLimit):
		t.Fatal("no event")
	}
	return eventRec{}
}

// testCtx returns a context bounded by waitLimit.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// clientGoroutines counts goroutines that belong to the client side: started
// by this package's non-test code, or by net/http's transport.
func clientGoroutines() (n int, stacks string) {
	buf := make([]byte, 1<<20)
	for {
		m := runtime.Stack(buf, true)
		if m < len(buf) {
			buf = buf[:m]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		i := strings.Index(g, "\ncreated by ")
		if i < 0 {
			continue
		}
		created := g[i+1:]
		line, file, _ := strings.Cut(created, "\n")
		ours := strings.Contains(line, "/internal/probe/native.") && !strings.Contains(file, "_test.go")
		transport := strings.Contains(line, "net/http.(*Transport)") || strings.Contains(line, "net/http.(*persistConn)")
		if ours || transport {
			n++
			out = append(out, g)
		}
	}
	return n, strings.Join(out, "\n\n")
}

// waitClientGoroutines waits until the client side has want goroutines.
func waitClientGoroutines(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		n, stacks := clientGoroutines()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client goroutines: got %d, want %d:\n%s", n, want, stacks)
		}
		time.Sleep(10 * time.Millisecond) // polling the runtime's goroutine count: it has no event to wait on
	}
}

// silentListener accepts TCP connections and never answers.
type silentListener struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newSilentListener(t testing.TB) *silentListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentListener{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-s.done
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

// rawHTTPServer answers every request on a raw listener with a fixed
// response, so that tests can send what net/http would not.
func rawHTTPServer(t testing.TB, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(waitLimit))
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = c.Write([]byte(response))
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func asConnectError(t testing.TB, err error) *probe.ConnectError {
	t.Helper()
	var ce *probe.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *probe.ConnectError", err, err)
	}
	return ce
}
