package faults

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

// TestKilledTargetRestartedOnTheSamePort kills the fixture (no close
// handshake), lets the pool meet the closed port, restarts it on the same
// port and checks every step's reason.
func TestKilledTargetRestartedOnTheSamePort(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	const clients = 20
	node := testfixture.Start(t, testfixture.Options{})
	h := startPool(t, config(), target(t, node.URL(), 1<<20))
	soaktest.WaitWithin(t, "all connected", 10*time.Second, func() bool { return h.p.Connected() == clients })
	node.Kill()
	soaktest.WaitWithin(t, "all dropped", 10*time.Second, func() bool { return h.p.Connected() == 0 })
	disc := h.disconnects()
	if got := disc[string(probe.ReasonTransportClose)] + disc[string(probe.ReasonTransportError)]; got != clients {
		t.Errorf("transport_close + transport_error = %v, want %d (all: %v)", got, clients, disc)
	}
	onlyReasons(t, "disconnects after kill", disc, string(probe.ReasonTransportClose), string(probe.ReasonTransportError))
	soaktest.WaitWithin(t, "refused attempts", 10*time.Second, func() bool {
		return h.value("soak_connect_failures_total", "reason", string(probe.FailRefused)) >= clients
	})
	node.Restart()
	soaktest.WaitWithin(t, "all back", 20*time.Second, func() bool { return h.p.Connected() == clients })
	acked := h.value("soak_events_acked_total", "", "")
	soaktest.WaitWithin(t, "acks after restart", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= acked+100 })
	fails := h.failures()
	// While the new process starts, the port refuses; nothing else is expected.
	onlyReasons(t, "connect failures", fails, string(probe.FailRefused))
	if d := h.disconnects(); len(d) != len(disc) || d[string(probe.ReasonTransportClose)] != disc[string(probe.ReasonTransportClose)] {
		t.Errorf("disconnects after the restart %v, want still %v", d, disc)
	}
	sent, acked2, lost := h.accounted()
	t.Logf("kill: disconnects %v; connect failures %v; sent %v = acked %v + lost %v", disc, fails, sent, acked2, lost)
	h.stop()
	t.Logf("Run returned %v after cancel", h.stopTook)
}

// TestRefusedTarget dials a port nobody listens on.
func TestRefusedTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the port is now closed: connections are refused
	cfg := config()
	cfg.Clients = 5
	h := startPool(t, cfg, target(t, "http://"+addr, 1<<20))
	soaktest.WaitWithin(t, "refused attempts", 10*time.Second, func() bool {
		return h.value("soak_connect_failures_total", "reason", string(probe.FailRefused)) >= 20
	})
	onlyReasons(t, "connect failures", h.failures(), string(probe.FailRefused))
	if c := h.p.Connected(); c != 0 {
		t.Errorf("connected = %d", c)
	}
	if s := h.value("soak_events_sent_total", "", ""); s != 0 {
		t.Errorf("sent %v events with nothing connected", s)
	}
	h.stop()
	t.Logf("failures %v; Run returned %v after cancel", h.failures(), h.stopTook)
}

// holdServer accepts connections and holds them open without a byte.
type holdServer struct {
	ln   net.Listener
	mu   sync.Mutex
	held []net.Conn
	done chan struct{}
}

func newHoldServer(t *testing.T) *holdServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &holdServer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.held = append(s.held, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *holdServer) close() {
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.held {
		c.Close()
	}
	s.held = nil
}

// TestSilentTarget dials a server that accepts TCP and never answers: every
// attempt ends at the connect timeout, the dials in flight are bounded by the
// pool size, and cancel stops everything promptly.
func TestSilentTarget(t *testing.T) {
	const clients = 10
	srv := newHoldServer(t)
	cfg := config()
	cfg.Clients, cfg.ConnectTimeout = clients, 300*time.Millisecond
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	base := measure(t)
	h := startPool(t, cfg, target(t, "http://"+srv.ln.Addr().String(), 1<<20))
	peak := 0
	soaktest.WaitWithin(t, "timeouts", 10*time.Second, func() bool {
		peak = max(peak, runtime.NumGoroutine())
		return h.value("soak_connect_failures_total", "reason", string(probe.FailTimeout)) >= 4*clients
	})
	onlyReasons(t, "connect failures", h.failures(), string(probe.FailTimeout))
	// One dial per slot at most; a dial of the HTTP upgrade costs about
	// three goroutines, the pool a fixed dozen. A pile-up of hanging dials
	// (4 rounds of attempts here) exceeds 6 per slot.
	if extra := peak - base.goroutines; extra > 12+6*clients {
		t.Errorf("peak %d goroutines over the baseline with %d clients dialling a silent server", extra, clients)
	}
	h.stop()
	if h.stopTook > 3*time.Second {
		t.Errorf("Run took %v to return with dials hanging on a silent server", h.stopTook)
	}
	soaktest.WaitWithin(t, "goroutines back", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base.goroutines+2 })
	t.Logf("failures %v; peak %d goroutines over a baseline of %d; Run returned %v after cancel",
		h.failures(), peak-base.goroutines, base.goroutines, h.stopTook)
}

// proxy forwards TCP connections to a backend and can cut every live one,
// gracefully (FIN) or with a reset (RST).
type proxy struct {
	t       *testing.T
	ln      net.Listener
	backend string
	wg      sync.WaitGroup
	mu      sync.Mutex
	pairs   map[*pair]struct{}
	accepts atomic.Int64
}

type pair struct {
	client, server *net.TCPConn
	frozen         atomic.Bool   // the client->server direction is no longer read
	thaw           chan struct{} // closed when the pair is dropped
}

func newProxy(t *testing.T, backend string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, backend: backend, pairs: map[*pair]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepts.Add(1)
		s, err := net.DialTimeout("tcp", p.backend, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		pr := &pair{client: c.(*net.TCPConn), server: s.(*net.TCPConn), thaw: make(chan struct{})}
		// A small receive buffer toward the agent, so that a frozen
		// direction fills the window quickly.
		_ = pr.client.SetReadBuffer(16 << 10)
		p.mu.Lock()
		p.pairs[pr] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipeFreezable(pr)
		go p.pipe(pr, pr.client, pr.server)
	}
}

// pipe copies src to dst; when either side fails, both are closed.
func (p *proxy) pipe(pr *pair, dst, src *net.TCPConn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	p.drop(pr, false)
}

// pipeFreezable copies client to server until the pair is dropped; once
// frozen, it stops reading the client, as a server that stops reading a
// connection does, and the client's writes then block on a full window.
func (p *proxy) pipeFreezable(pr *pair) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if pr.frozen.Load() {
			<-pr.thaw
			return
		}
		n, err := pr.client.Read(buf)
		if n > 0 {
			if _, werr := pr.server.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.drop(pr, false)
}

// freeze stops reading the client side of n live connections and returns
// how many it froze.
func (p *proxy) freeze(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := 0
	for pr := range p.pairs {
		if done == n {
			break
		}
		if pr.frozen.CompareAndSwap(false, true) {
			done++
		}
	}
	return done
}

// drop closes a pair; with reset, the client side is closed with an RST.
func (p *proxy) drop(pr *pair, reset bool) {
	p.mu.Lock()
	_, ok := p.pairs[pr]
	delete(p.pairs, pr)
	p.mu.Unlock()
	if !ok {
		return
	}
	close(pr.thaw)
	if reset {
		_ = pr.client.SetLinger(0)
	}
	pr.client.Close()
	pr.server.Close()
}

// cut closes every live connection and returns how many.
func (p *proxy) cut(reset bool) int {
	p.mu.Lock()
	var all []*pair
	for pr := range p.pairs {
		all = append(all, pr)
	}
	p.mu.Unlock()
	for _, pr := range all {
		p.drop(pr, reset)
	}
	return len(all)
}

func (p *proxy) close() {
	p.ln.Close()
	p.cut(false)
	p.wg.Wait()
}

// TestProxyCutsConnectionsMidStream runs the pool through a TCP proxy that
// cuts every connection while events flow, first with FIN, then with RST.
func TestProxyCutsConnectionsMidStream(t *testing.T) {
	soaktest.Integration(t, "node fixture")
	const clients = 20
	node := testfixture.Start(t, testfixture.Options{})
	px := newProxy(t, node.URL()[len("http://"):])
	h := startPool(t, config(), target(t, px.url(), 1<<20))
	for i, tc := range []struct {
		name  string
		reset bool
		want  probe.DisconnectReason
	}{
		{"fin", false, probe.ReasonTransportClose},
		{"rst", true, probe.ReasonTransportError},
	} {
		soaktest.WaitWithin(t, "all connected", 20*time.Second, func() bool { return h.p.Connected() == clients })
		acked := h.value("soak_events_acked_total", "", "")
		soaktest.WaitWithin(t, "acks flowing", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= acked+100 })
		before := h.disconnects()
		if n := px.cut(tc.reset); n != clients {
			t.Fatalf("%s: cut %d connections, want %d", tc.name, n, clients)
		}
		soaktest.WaitWithin(t, tc.name+" disconnects counted", 10*time.Second, func() bool {
			return h.value("soak_disconnects_total", "", "") == float64(clients*(i+1))
		})
		after := h.disconnects()
		got := after[string(tc.want)] - before[string(tc.want)]
		t.Logf("%s cut of %d connections: disconnects now %v", tc.name, clients, after)
		// A client that writes between the FIN and its read of the EOF gets
		// a reset instead: allow a few of the other transport reason.
		if got < clients/2 {
			t.Errorf("%s: %v of %d disconnects counted as %s (all: %v)", tc.name, got, clients, tc.want, after)
		}
	}
	onlyReasons(t, "disconnects", h.disconnects(), string(probe.ReasonTransportClose), string(probe.ReasonTransportError))
	soaktest.WaitWithin(t, "all reconnected through the proxy", 20*time.Second, func() bool { return h.p.Connected() == clients })
	acked := h.value("soak_events_acked_total", "", "")
	soaktest.WaitWithin(t, "acks after the cuts", 10*time.Second, func() bool { return h.value("soak_events_acked_total", "", "") >= acked+100 })
	onlyReasons(t, "connect failures", h.failures())
	sent, acked2, lost := h.accounted()
	t.Logf("proxy accepted %d connections; sent %v = acked %v + lost %v", px.accepts.Load(), sent, acked2, lost)
	h.stop()
}

// fakeDNS answers every query on a loopback UDP socket with NXDOMAIN.
type fakeDNS struct {
	conn    net.PacketConn
	queries atomic.Int64
	done    chan struct{}
}

func newFakeDNS(t *testing.T) *fakeDNS {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: pc, done: make(chan struct{})}
	go d.serve()
	t.Cleanup(func() { pc.Close(); <-d.done })
	return d
}

func (d *fakeDNS) serve() {
	defer close(d.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 12 {
			continue
		}
		d.queries.Add(1)
		// The answer is the query (header and question, plus any EDNS OPT
		// record) with QR=1, the query's RD, RA=1 and RCODE=3 (NXDOMAIN).
		resp := append([]byte(nil), buf[:n]...)
		flags := binary.BigEndian.Uint16(resp[2:4])
		binary.BigEndian.PutUint16(resp[2:4], 0x8000|flags&0x0100|0x0080|3)
		_, _ = d.conn.WriteTo(resp, from)
	}
}

// TestUnresolvableName dials a .invalid name (RFC 6761: never resolves).
// So that the lookup never leaves loopback, the process's default resolver
// is pointed at a local fake DNS server that answers NXDOMAIN for the
// duration of the test (the driver's dialer uses net.DefaultResolver).
func TestUnresolvableName(t *testing.T) {
	dns := newFakeDNS(t)
	savedGo, savedDial := net.DefaultResolver.PreferGo, net.DefaultResolver.Dial
	net.DefaultResolver.PreferGo = true
	net.DefaultResolver.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns.conn.LocalAddr().String())
	}
	t.Cleanup(func() { net.DefaultResolver.PreferGo, net.DefaultResolver.Dial = savedGo, savedDial })

	if _, err := net.DefaultResolver.LookupHost(context.Background(), "nonexistent.invalid"); err == nil {
		t.Fatal("nonexistent.invalid resolved")
	} else if de := new(net.DNSError); !errors.As(err, &de) || !de.IsNotFound {
		t.Fatalf("lookup error %v, want a not-found *net.DNSError", err)
	}
	cfg := config()
	cfg.Clients = 5
	h := startPool(t, cfg, target(t, "http://nonexistent.invalid:3000", 1<<20))
	soaktest.WaitWithin(t, "dns failures", 10*time.Second, func() bool {
		return h.value("soak_connect_failures_total", "reason", string(probe.FailDNS)) >= 20
	})
	onlyReasons(t, "connect failures", h.failures(), string(probe.FailDNS))
	h.stop()
	// A lookup is detached from its dial's context and may outlive it: wait
	// until the resolver has been quiet for a while before restoring it.
	for last := int64(-1); last != dns.queries.Load(); {
		last = dns.queries.Load()
		time.Sleep(200 * time.Millisecond) // polling the real resolver's goroutines until they are quiet
	}
	if q := dns.queries.Load(); q < 20 {
		t.Errorf("the local resolver saw %d queries for 20 failed attempts: lookups went elsewhere", q)
	}
	t.Logf("failures %v; %d queries answered by the loopback resolver; Run returned %v after cancel",
		h.failures(), dns.queries.Load(), h.stopTook)
}
