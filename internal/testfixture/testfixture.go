// Package testfixture starts and controls the Node Socket.IO 4 test target of
// test/fixture/node from Go tests.
//
// The fixture is a real socket.io 4.8 server (pinned in package-lock.json)
// with an HTTP control API to inject faults: delayed or dropped acks,
// rejected connections, kicks, event-loop stalls and memory leaks. Start runs
// one fixture process per call and stops it when the test ends. The fixture's
// dependencies must be installed first with
//
//	npm ci --prefix test/fixture/node
//
// (or `make test`); a missing node or node_modules fails the test, it is never
// skipped.
package testfixture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

// FixtureDir is the fixture's directory relative to the module root.
const FixtureDir = "test/fixture/node"

// Disconnect reasons as the Socket.IO server reports them in
// Stats.DisconnectReasons.
const (
	ServerReasonClientDisconnect = "client namespace disconnect"
	ServerReasonServerDisconnect = "server namespace disconnect"
	ServerReasonTransportClose   = "transport close"
	ServerReasonTransportError   = "transport error"
	ServerReasonPingTimeout      = "ping timeout"
	ServerReasonParseError       = "parse error"
	ServerReasonShuttingDown     = "server shutting down"
)

// Connect error messages the fixture sends.
const (
	// MessageUnauthorized answers a CONNECT whose auth.token is not AuthToken.
	MessageUnauthorized = "unauthorized"
	// MessageTokenRequired answers a CONNECT to /strict without auth.token.
	MessageTokenRequired = "token required"
	// MessageInvalidNamespace is Socket.IO's answer for an unknown namespace.
	MessageInvalidNamespace = "Invalid namespace"
)

// StrictNamespace is the fixture's second namespace, whose middleware also
// rejects a CONNECT without auth.token.
const StrictNamespace = "/strict"

// Options configure a fixture process. The zero value is a fixture on a free
// port with Socket.IO's default ping settings and no auth.
type Options struct {
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// PingInterval and PingTimeout are the Engine.IO ping settings; zero keeps
	// Socket.IO's defaults (25 s and 20 s). Millisecond resolution.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// AuthToken, if set, makes the server reject a CONNECT whose auth.token
	// differs, with MessageUnauthorized.
	AuthToken string
	// MaxHTTPBufferSize is Engine.IO's maxHttpBufferSize in bytes (the largest
	// message the server accepts); zero keeps the default (1 MB).
	MaxHTTPBufferSize int64
	// StartTimeout bounds the wait for the fixture's ready line; zero means 20 s.
	StartTimeout time.Duration
	// PushEvent is the server-push event's name; empty means "tick".
	PushEvent string
	// PushInterval runs the push ticker from the start; zero leaves it off
	// (PushEvery starts it later). Millisecond resolution.
	PushInterval time.Duration
	// RedisURL, if set (see Redis.URL), joins the fixture to the Socket.IO
	// Redis adapter: `publish` then reaches the clients of every fixture
	// sharing that Redis.
	RedisURL string
	// Script is the fixture file to run in test/fixture/node; empty means
	// "server.js". "variant.js" is a minimal socket.io 4 server configured by
	// Env (see its header) for tests of server options server.js does not use.
	Script string
	// Env holds extra NAME=value settings for the process.
	Env []string
}

func (o Options) env(port int) []string {
	ms := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return strconv.FormatInt(max(1, d.Milliseconds()), 10)
	}
	size := ""
	if o.MaxHTTPBufferSize > 0 {
		size = strconv.FormatInt(o.MaxHTTPBufferSize, 10)
	}
	// Every variable is set, empty meaning "default", so that nothing leaks in
	// from the test's own environment.
	return append(append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"PING_INTERVAL_MS="+ms(o.PingInterval),
		"PING_TIMEOUT_MS="+ms(o.PingTimeout),
		"AUTH_TOKEN="+o.AuthToken,
		"MAX_HTTP_BUFFER_SIZE="+size,
		"PUSH_EVENT="+o.PushEvent,
		"PUSH_INTERVAL_MS="+ms(o.PushInterval),
		"REDIS_URL="+o.RedisURL,
	), o.Env...)
}

// Node is one running fixture process. Its methods fail the test (t.Fatalf)
// on error, so call them from the test's goroutine; URL, Port, PID and
// MetricsURL may be called from any goroutine.
type Node struct {
	t      testing.TB
	opts   Options
	dir    string
	port   int
	client *http.Client

	mu   sync.Mutex
	proc *process // current process; nil before the first start
}

// process is one run of `node server.js`.
type process struct {
	cmd        *exec.Cmd
	pid        int
	stderr     *syncBuffer
	exited     chan struct{} // closed once Wait returned and stdout is drained
	waitErr    error         // valid after exited is closed
	readyLine  chan []byte   // the ready line, at most once
	readerDone chan struct{}
}

// ReadyLine is the line the fixture prints once it listens.
type ReadyLine struct {
	Port int `json:"port"`
	PID  int `json:"pid"`
}

// Start starts a fixture process and registers its stop with t.Cleanup. It
// fails the test if node or the fixture's node_modules are missing, or if the
// fixture does not become ready within opts.StartTimeout.
func Start(t testing.TB, opts Options) *Node {
	if testing.Short() {
		t.Skip("fast tier (-short): needs the Node fixture")
	}
	t.Helper()
	if opts.PingInterval < 0 || opts.PingTimeout < 0 || opts.MaxHTTPBufferSize < 0 || opts.Port < 0 || opts.PushInterval < 0 {
		t.Fatalf("testfixture: negative option in %+v", opts)
	}
	root, err := FindRepoRoot(".")
	if err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	dir, err := checkInstalled(root)
	if err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	n := &Node{
		t:    t,
		opts: opts,
		dir:  dir,
		port: opts.Port,
		client: &http.Client{
			// No idle connections: nothing outlives a control call (goleak),
			// and the fixture's shutdown does not wait for them.
			Transport: &http.Transport{DisableKeepAlives: true},
		},
	}
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			n.mu.Lock()
			p := n.proc
			n.mu.Unlock()
			if p != nil {
				t.Logf("testfixture: fixture stderr:\n%s", p.stderr.String())
			}
		}
	})
	if err := n.start(); err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	return n
}

// RepoRoot returns the module root (the directory holding go.mod) above the
// test's working directory, failing the test if there is none.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := FindRepoRoot(".")
	if err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	return root
}

// FindRepoRoot walks up from dir to the first directory holding go.mod.
func FindRepoRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for d := abs; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("find module root: no go.mod above %s", abs)
		}
		d = parent
	}
}

// checkInstalled returns the fixture directory under root, or an error saying
// how to install what is missing.
func checkInstalled(root string) (string, error) {
	const howTo = "run `npm ci --prefix " + FixtureDir + "` in the repository root (or `make test`)"
	dir := filepath.Join(root, filepath.FromSlash(FixtureDir))
	if _, err := os.Stat(filepath.Join(dir, "server.js")); err != nil {
		return "", fmt.Errorf("fixture not found: %w", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node is not on PATH (install Node.js >= 18, then %s): %w", howTo, err)
	}
	for _, pkg := range []string{"socket.io", "prom-client", "@socket.io/redis-adapter", "redis"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			return "", fmt.Errorf("fixture dependency %s is not installed: %s", pkg, howTo)
		}
	}
	return dir, nil
}

func (n *Node) start() error {
	timeout := n.opts.StartTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("stdout pipe: %w", err)
	}
	p := &process{
		stderr:     &syncBuffer{},
		exited:     make(chan struct{}),
		readyLine:  make(chan []byte, 1),
		readerDone: make(chan struct{}),
	}
	script := n.opts.Script
	if script == "" {
		script = "server.js"
	}
	cmd := exec.Command("node", script)
	cmd.Dir = n.dir
	cmd.Env = n.opts.env(n.port)
	cmd.Stdout = w
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start node: %w", err)
	}
	w.Close() // the child holds its own copy
	p.cmd = cmd
	p.pid = cmd.Process.Pid

	// The reader owns r: it passes the first line on, then drains stdout until
	// the process closes it.
	go func() {
		defer close(p.readerDone)
		defer r.Close()
		br := bufio.NewReader(r)
		line, err := br.ReadBytes('\n')
		if err == nil {
			p.readyLine <- line
		}
		_, _ = io.Copy(io.Discard, br)
	}()
	// The waiter owns cmd.Wait.
	go func() {
		err := cmd.Wait()
		<-p.readerDone
		p.waitErr = err
		close(p.exited)
	}()

	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line := <-p.readyLine:
		var ready ReadyLine
		if err := json.Unmarshal(line, &ready); err != nil || ready.Port == 0 {
			p.terminate(syscall.SIGKILL, 0)
			return fmt.Errorf("bad ready line %q: %v", line, err)
		}
		if n.port != 0 && ready.Port != n.port {
			p.terminate(syscall.SIGKILL, 0)
			return fmt.Errorf("fixture listens on port %d, want %d", ready.Port, n.port)
		}
		if n.port == 0 {
			n.port = ready.Port // first start only: Port is read concurrently later
		}
		return nil
	case <-p.exited:
		return fmt.Errorf("fixture exited before it was ready (%v); stderr:\n%s", p.waitErr, p.stderr.String())
	case <-timer.C:
		p.terminate(syscall.SIGKILL, 0)
		return fmt.Errorf("fixture not ready within %v; stderr:\n%s", timeout, p.stderr.String())
	}
}

// terminate sends sig to the process group and waits for the exit; after
// grace (if > 0) it sends SIGKILL. A stopped process is continued first so
// that it can handle SIGTERM.
func (p *process) terminate(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.pid, syscall.SIGCONT)
	_ = syscall.Kill(-p.pid, sig)
	if grace > 0 {
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-p.exited:
			return
		case <-timer.C:
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		}
	}
	<-p.exited
}

func (n *Node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

func (n *Node) stop() {
	if p := n.current(); p != nil {
		p.terminate(syscall.SIGTERM, 5*time.Second)
	}
}

// URL is the fixture's base URL, "http://127.0.0.1:PORT".
func (n *Node) URL() string { return "http://127.0.0.1:" + strconv.Itoa(n.port) }

// Port is the fixture's TCP port; it stays the same across Restart.
func (n *Node) Port() int { return n.port }

// PID is the process id of the current fixture process.
func (n *Node) PID() int { return n.current().pid }

// MetricsURL is the URL of the fixture's Prometheus endpoint.
func (n *Node) MetricsURL() string { return n.URL() + "/metrics" }

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 5 s).
// It is idempotent; the test's cleanup calls it too.
func (n *Node) Stop() {
	n.t.Helper()
	n.stop()
}

// Kill sends SIGKILL to the fixture and waits for it to exit: its
// connections end without a close handshake.
func (n *Node) Kill() {
	n.t.Helper()
	if p := n.current(); p != nil {
		p.terminate(syscall.SIGKILL, 0)
	}
}

// Restart stops the fixture if it still runs (SIGTERM) and starts a new
// process on the same port with the same options. Counters and faults start
// afresh.
func (n *Node) Restart() {
	n.t.Helper()
	n.stop()
	if err := n.start(); err != nil {
		n.t.Fatalf("testfixture: restart: %v", err)
	}
}

// Signal sends sig to the fixture's process group, e.g. SIGSTOP to freeze it
// (no pings, no answers) and SIGCONT to let it go on.
func (n *Node) Signal(sig syscall.Signal) {
	n.t.Helper()
	p := n.current()
	select {
	case <-p.exited:
		n.t.Fatalf("testfixture: signal %v: fixture has exited", sig)
	default:
	}
	if err := syscall.Kill(-p.pid, sig); err != nil {
		n.t.Fatalf("testfixture: signal %v: %v", sig, err)
	}
}

// Exited reports whether the current fixture process has exited.
func (n *Node) Exited() bool {
	select {
	case <-n.current().exited:
		return true
	default:
		return false
	}
}

// control calls /control/<name> with the query params and decodes the answer
// into out (if not nil).
func (n *Node) control(timeout time.Duration, name string, params url.Values, out any) {
	n.t.Helper()
	u := n.URL() + "/control/" + name
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	body, err := n.get(timeout, u)
	if err != nil {
		n.t.Fatalf("testfixture: control %s: %v", name, err)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			n.t.Fatalf("testfixture: control %s: decode %q: %v", name, body, err)
		}
	}
}

func (n *Node) get(timeout time.Duration, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

const controlTimeout = 10 * time.Second

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// SetAckDelay delays every echo ack by d (0 turns the delay off).
func (n *Node) SetAckDelay(d time.Duration) {
	n.t.Helper()
	n.control(controlTimeout, "ack-delay", url.Values{"ms": {itoa(d.Milliseconds())}}, nil)
}

// DropNextAcks makes the server drop exactly the next k echo acks.
func (n *Node) DropNextAcks(k int) {
	n.t.Helper()
	n.control(controlTimeout, "drop-acks", url.Values{"next": {strconv.Itoa(k)}}, nil)
}

// DropEveryNth makes the server drop every nth echo ack, counting from this
// call (0 turns it off).
func (n *Node) DropEveryNth(nth int) {
	n.t.Helper()
	n.control(controlTimeout, "drop-acks", url.Values{"every": {strconv.Itoa(nth)}}, nil)
}

// Reject makes both namespaces' middleware reject new connections with
// next(new Error(msg)): clients get CONNECT_ERROR {"message": msg}.
func (n *Node) Reject(msg string) {
	n.t.Helper()
	n.control(controlTimeout, "reject", url.Values{"message": {msg}}, nil)
}

// Accept undoes Reject.
func (n *Node) Accept() {
	n.t.Helper()
	n.control(controlTimeout, "accept", nil, nil)
}

// KickAll disconnects every connected socket with socket.disconnect(true)
// (DISCONNECT packet, then the transport is closed) and returns how many.
func (n *Node) KickAll() int {
	n.t.Helper()
	var out struct {
		Kicked int `json:"kicked"`
	}
	n.control(controlTimeout, "kick", nil, &out)
	return out.Kicked
}

// BlockFor busy-loops the fixture's event loop for d and returns once it is
// free again.
func (n *Node) BlockFor(d time.Duration) {
	n.t.Helper()
	n.control(controlTimeout+d, "block", url.Values{"ms": {itoa(d.Milliseconds())}}, nil)
}

// Leak makes the fixture retain bytesPerSec more bytes of V8 heap every
// second, so that nodejs_heap_size_used_bytes and the RSS grow (0 stops the
// growth and keeps what is retained).
func (n *Node) Leak(bytesPerSec int64) {
	n.t.Helper()
	n.control(controlTimeout, "leak", url.Values{"bytes_per_sec": {itoa(bytesPerSec)}, "kind": {"heap"}}, nil)
}

// LeakBuffers is Leak with Buffers outside the V8 heap: the RSS and
// nodejs_external_memory_bytes grow, the heap does not.
func (n *Node) LeakBuffers(bytesPerSec int64) {
	n.t.Helper()
	n.control(controlTimeout, "leak", url.Values{"bytes_per_sec": {itoa(bytesPerSec)}, "kind": {"buffer"}}, nil)
}

// StopLeak stops the leak and drops everything retained.
func (n *Node) StopLeak() {
	n.t.Helper()
	n.control(controlTimeout, "free", nil, nil)
}

// ClearFaults turns every fault off: ack delay, drops, reject and leak.
func (n *Node) ClearFaults() {
	n.t.Helper()
	n.control(controlTimeout, "clear", nil, nil)
}

// Reset zeroes the counters, the disconnect reasons and the processing-time
// reservoir; faults stay as they are.
func (n *Node) Reset() {
	n.t.Helper()
	n.control(controlTimeout, "reset", nil, nil)
}

// Stats is the fixture's /stats answer.
type Stats struct {
	// Connected is the number of Socket.IO sockets connected now (all
	// namespaces); EngineClients the number of Engine.IO sessions.
	Connected     int `json:"connected"`
	EngineClients int `json:"engine_clients"`
	// ConnectionsTotal counts accepted namespace connections.
	ConnectionsTotal int64 `json:"connections_total"`
	// ConnectRejected counts CONNECTs rejected by middleware.
	ConnectRejected  int64     `json:"connect_rejected"`
	EchoesReceived   int64     `json:"echoes_received"`
	AcksSent         int64     `json:"acks_sent"`
	AcksDropped      int64     `json:"acks_dropped"`
	PublishesRelayed int64     `json:"publishes_relayed"`
	Push             PushStats `json:"push"`
	// DisconnectReasons counts server-side socket disconnects by the server's
	// reason (the ServerReason* constants).
	DisconnectReasons map[string]int64 `json:"disconnect_reasons"`
	Auth              AuthStats        `json:"auth"`
	EchoProcessing    ProcessingStats  `json:"echo_processing"`
	Faults            FaultStats       `json:"faults"`
	Leak              LeakStats        `json:"leak"`
}

// AuthStats tells whether CONNECT auth matched AuthToken; the payload itself
// is never exposed.
type AuthStats struct {
	Required bool  `json:"required"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	// LastMatched is nil before the first checked CONNECT.
	LastMatched *bool `json:"last_matched"`
}

// ProcessingStats are percentiles of the server's echo handling time (from
// the event's arrival to the ack's write, ack delay included) over the most
// recent acks.
type ProcessingStats struct {
	Samples   int     `json:"samples"`
	P50Micros float64 `json:"p50_micros"`
	P99Micros float64 `json:"p99_micros"`
}

// P50 is the median processing time.
func (p ProcessingStats) P50() time.Duration { return micros(p.P50Micros) }

// P99 is the 99th percentile of the processing time.
func (p ProcessingStats) P99() time.Duration { return micros(p.P99Micros) }

func micros(us float64) time.Duration { return time.Duration(us * float64(time.Microsecond)) }

// FaultStats is the fault configuration in force.
type FaultStats struct {
	AckDelayMS int64 `json:"ack_delay_ms"`
	DropNext   int64 `json:"drop_next"`
	DropEvery  int64 `json:"drop_every"`
	Rejecting  bool  `json:"rejecting"`
}

// LeakStats is the state of the leak fault.
type LeakStats struct {
	BytesPerSec int64 `json:"bytes_per_sec"`
	// Kind is "heap" (Leak) or "buffer" (LeakBuffers).
	Kind          string `json:"kind"`
	RetainedBytes int64  `json:"retained_bytes"`
}

// PushStats is the state of the server-push ticker.
type PushStats struct {
	// Seq is the sequence number of the latest push (0 before the first).
	Seq int64 `json:"seq"`
	// Sent counts push emits (a duplicated push counts twice).
	Sent       int64 `json:"sent"`
	IntervalMS int64 `json:"interval_ms"`
	// Redis tells whether the fixture uses the Redis adapter.
	Redis bool `json:"redis"`
}

// PushEvery runs the push ticker every d (0 stops it).
func (n *Node) PushEvery(d time.Duration) {
	n.t.Helper()
	n.control(controlTimeout, "push", url.Values{"interval_ms": {itoa(d.Milliseconds())}}, nil)
}

// PushNow pushes count times now, each with the next sequence number, and
// returns the latest sequence number.
func (n *Node) PushNow(count int) int64 {
	n.t.Helper()
	var out struct {
		Seq int64 `json:"seq"`
	}
	n.control(controlTimeout, "push-now", url.Values{"count": {strconv.Itoa(count)}}, &out)
	return out.Seq
}

// PushSeq pushes the given sequence number count times without moving the
// sequence (an old number makes out-of-order events).
func (n *Node) PushSeq(count int, seq int64) {
	n.t.Helper()
	n.control(controlTimeout, "push-now", url.Values{"count": {strconv.Itoa(count)}, "seq": {itoa(seq)}}, nil)
}

// PushSkip makes the next push skip k sequence numbers: every client
// connected then sees a gap of exactly k.
func (n *Node) PushSkip(k int) {
	n.t.Helper()
	n.control(controlTimeout, "push-skip", url.Values{"n": {strconv.Itoa(k)}}, nil)
}

// PushDup makes each of the next k pushes go out twice.
func (n *Node) PushDup(k int) {
	n.t.Helper()
	n.control(controlTimeout, "push-dup", url.Values{"n": {strconv.Itoa(k)}}, nil)
}

// Stats fetches the fixture's counters.
func (n *Node) Stats() Stats {
	n.t.Helper()
	s, err := n.stats()
	if err != nil {
		n.t.Fatalf("testfixture: stats: %v", err)
	}
	return s
}

func (n *Node) stats() (Stats, error) {
	body, err := n.get(controlTimeout, n.URL()+"/stats")
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	if err := json.Unmarshal(body, &s); err != nil {
		return Stats{}, fmt.Errorf("decode %q: %w", body, err)
	}
	return s, nil
}

// WaitStats polls Stats until cond holds and returns the Stats that satisfied
// it; it fails the test with the last Stats if cond does not hold within
// timeout.
func (n *Node) WaitStats(timeout time.Duration, cond func(Stats) bool) Stats {
	n.t.Helper()
	var (
		s   Stats
		err error
	)
	if !soaktest.Poll(timeout, 20*time.Millisecond, func() bool {
		s, err = n.stats()
		return err == nil && cond(s)
	}) {
		n.t.Fatalf("testfixture: stats condition not met within %v; last stats %+v (err %v)", timeout, s, err)
	}
	return s
}

// Metrics fetches the fixture's /metrics text.
func (n *Node) Metrics() string {
	n.t.Helper()
	body, err := n.get(controlTimeout, n.MetricsURL())
	if err != nil {
		n.t.Fatalf("testfixture: metrics: %v", err)
	}
	return string(body)
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers,
// bounded to its last 64 KiB.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const stderrKeep = 64 << 10

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - stderrKeep; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
