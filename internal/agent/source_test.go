package agent_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/demo"
	"github.com/generic-corp/soak-exporter/internal/probe/native"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/target"
)

// peerListener records the remote address of every accepted connection.
type peerListener struct {
	net.Listener
	mu    sync.Mutex
	peers map[netip.Addr]int
}

func (l *peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		l.mu.Lock()
		if perr == nil {
			l.peers[ap.Addr()]++
		}
		l.mu.Unlock()
	}
	return c, err
}

func (l *peerListener) count() map[netip.Addr]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[netip.Addr]int, len(l.peers))
	for k, v := range l.peers {
		out[k] = v
	}
	return out
}

// TestSourceAddressesSpreadClients soaks the embedded demo server with the
// native driver from three loopback source addresses: the server sees the
// clients evenly from each.
func TestSourceAddressesSpreadClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := &peerListener{Listener: ln, peers: map[netip.Addr]int{}}
	srv := demo.New(nil, demo.Options{})
	if err := srv.SetListener(pl); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-srvDone })

	tc := target.Config{Driver: "native", TargetURL: srv.URL(), SocketIOPath: "/socket.io/", MaxFrameBytes: 1 << 20, SourceAddrs: "127.0.0.2-127.0.0.4", Transports: "websocket"} // the demo server speaks WebSocket only
	if err := tc.Validate(); err != nil {
		t.Fatal(err)
	}
	ts, err := tc.Targets()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Clients = 9
	reg := prometheus.NewRegistry()
	a, err := agent.New(cfg, agent.Options{Driver: native.New(native.Options{}), Targets: ts, Registerer: reg, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, a)
	soaktest.WaitFor(t, "9 clients connected", func() bool { return soaktest.Sum(t, reg, "soak_clients_connected") == 9 })
	stop()
	got := pl.count()
	for _, s := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		// Each client dialled once, so each address carried exactly three.
		if n := got[netip.MustParseAddr(s)]; n != 3 {
			t.Errorf("server saw %d connections from %s, want 3 (all: %v)", n, s, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("server saw connections from %v, want only the three source addresses", got)
	}
}

func TestAgentRefusesMoreClientsThanPorts(t *testing.T) {
	cfg := testConfig()
	cfg.Clients = 25
	ts := targets("api")
	ts[0].SourceAddrs = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	_, err := agent.New(cfg, agent.Options{Driver: soaktest.NewMemDriver(), Targets: ts, Registerer: prometheus.NewRegistry(), EphemeralPorts: 10})
	want := "SOAK_CLIENTS: 25 clients to target api need more than the 10 ephemeral ports of 2 source address(es)"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want prefix %q", err, want)
	}
	ts[0].SourceAddrs = append(ts[0].SourceAddrs, netip.MustParseAddr("127.0.0.4"))
	if _, err := agent.New(cfg, agent.Options{Driver: soaktest.NewMemDriver(), Targets: ts, Registerer: prometheus.NewRegistry(), EphemeralPorts: 10}); err != nil {
		t.Fatalf("30 ports for 25 clients: %v", err)
	}
}

func TestRecoveryProbeNeedsARecoveringDriver(t *testing.T) {
	cfg := testConfig()
	cfg.RecoveryConfig.BreakRate = 1
	_, err := agent.New(cfg, agent.Options{Driver: soaktest.NewMemDriver(), Targets: targets("api"), Registerer: prometheus.NewRegistry()})
	want := "SOAK_RECOVERY_BREAK_RATE: the mem driver does not support connection-state recovery: use SOAK_DRIVER=native"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if _, err := agent.New(cfg, agent.Options{Driver: native.New(native.Options{}), Targets: targets("api"), Registerer: prometheus.NewRegistry()}); err != nil {
		t.Fatalf("native driver: %v", err)
	}
}
