package conformance

import (
	"context"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/demo"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Capabilities say what a Server can do besides acking echo and relaying
// publish. A case that needs a capability the server lacks does not run on it.
type Capabilities struct {
	// Stats: Instance.Connected and Instance.ServerDisconnects work.
	Stats bool
	// Kick: Instance.Kick works.
	Kick bool
	// Reject: Instance.Reject and Instance.Accept work.
	Reject bool
	// AckDelay: Instance.SetAckDelay works.
	AckDelay bool
	// Auth: the server honours ServerOptions.AuthToken.
	Auth bool
	// Ping: the server honours ServerOptions.PingInterval and PingTimeout.
	Ping bool
	// Heartbeat: the server never drops a client that answers every ping in
	// time. The zishang520 Go server (v3.0.6) has it only with a ping
	// timeout longer than the ping interval: it sends PING before arming its
	// pong timer, so a pong that arrives in between leaves a stray timer
	// that fires ("ping timeout") although the client answered, unless the
	// next PING clears it first (servers/engine/v3 socket.go,
	// schedulePing/resetPingTimeout; see package demo).
	Heartbeat bool
	// Freeze: Instance.Freeze and Instance.Thaw work.
	Freeze bool
	// Kill: Instance.Kill works.
	Kill bool
	// Namespace is a namespace other than "/" that acks echo and accepts a
	// CONNECT whose auth has a token; empty if there is none.
	Namespace string
}

// ServerOptions configure one server instance.
type ServerOptions struct {
	// PingInterval and PingTimeout are the Engine.IO heartbeat settings;
	// zero keeps the server's defaults. Needs Capabilities.Ping.
	PingInterval, PingTimeout time.Duration
	// AuthToken, if set, makes the server reject a CONNECT whose auth.token
	// differs with the message "unauthorized". Needs Capabilities.Auth.
	AuthToken string
}

// Server starts instances of one kind of Socket.IO server.
type Server interface {
	// Name names the server in test names.
	Name() string
	// Capabilities tells which cases can run on it.
	Capabilities() Capabilities
	// Start starts a fresh instance that stops when t ends. It fails t if it
	// cannot.
	Start(t *testing.T, opts ServerOptions) Instance
}

// Instance is one running server. Methods beyond URL are only called when
// the Server's Capabilities allow them; they fail the test on error, so call
// them from the test's goroutine.
type Instance interface {
	// URL is the server's base URL.
	URL() *url.URL
	// Connected is the number of Socket.IO sockets connected now.
	Connected() int
	// ServerDisconnects counts the server's socket disconnects by the
	// server's reason ("client namespace disconnect", "transport close"...).
	ServerDisconnects() map[string]int64
	// Kick disconnects every client (DISCONNECT, then transport close) and
	// returns how many.
	Kick() int
	// Reject makes the server answer new CONNECTs with CONNECT_ERROR
	// {"message": message}; Accept undoes it.
	Reject(message string)
	Accept()
	// SetAckDelay delays every echo ack by d.
	SetAckDelay(d time.Duration)
	// Freeze stops the server process (SIGSTOP); Thaw continues it.
	Freeze()
	Thaw()
	// Kill kills the server process (SIGKILL).
	Kill()
}

// NodeServer is the Node socket.io 4 fixture of test/fixture/node (see
// package testfixture), with every capability.
func NodeServer() Server { return nodeServer{} }

type nodeServer struct{}

func (nodeServer) Name() string { return "node" }

func (nodeServer) Capabilities() Capabilities {
	return Capabilities{
		Stats: true, Kick: true, Reject: true, AckDelay: true, Auth: true,
		Ping: true, Heartbeat: true, Freeze: true, Kill: true, Namespace: testfixture.StrictNamespace,
	}
}

func (nodeServer) Start(t *testing.T, opts ServerOptions) Instance {
	t.Helper()
	n := testfixture.Start(t, testfixture.Options{
		PingInterval: opts.PingInterval,
		PingTimeout:  opts.PingTimeout,
		AuthToken:    opts.AuthToken,
	})
	u, err := url.Parse(n.URL())
	if err != nil {
		t.Fatalf("fixture URL: %v", err)
	}
	return &nodeInstance{n: n, u: u}
}

type nodeInstance struct {
	n *testfixture.Node
	u *url.URL
}

func (i *nodeInstance) URL() *url.URL                       { return i.u }
func (i *nodeInstance) Connected() int                      { return i.n.Stats().Connected }
func (i *nodeInstance) ServerDisconnects() map[string]int64 { return i.n.Stats().DisconnectReasons }
func (i *nodeInstance) Kick() int                           { return i.n.KickAll() }
func (i *nodeInstance) Reject(message string)               { i.n.Reject(message) }
func (i *nodeInstance) Accept()                             { i.n.Accept() }
func (i *nodeInstance) SetAckDelay(d time.Duration)         { i.n.SetAckDelay(d) }
func (i *nodeInstance) Freeze()                             { i.n.Signal(syscall.SIGSTOP) }
func (i *nodeInstance) Thaw()                               { i.n.Signal(syscall.SIGCONT) }
func (i *nodeInstance) Kill()                               { i.n.Kill() }

// DemoServer is the agent's built-in demo target (package demo), served
// in-process: it acks echo and relays publish, and honours the ping settings.
func DemoServer() Server { return demoServer{} }

type demoServer struct{}

func (demoServer) Name() string { return "demo" }

func (demoServer) Capabilities() Capabilities { return Capabilities{Ping: true, Heartbeat: true} }

func (demoServer) Start(t *testing.T, opts ServerOptions) Instance {
	t.Helper()
	s := demo.New(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), demo.Options{
		PingInterval:    opts.PingInterval,
		PingTimeout:     opts.PingTimeout,
		ShutdownTimeout: 2 * time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Listen(ctx, "127.0.0.1:0"); err != nil {
		cancel()
		t.Fatalf("demo: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("demo run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatalf("demo URL: %v", err)
	}
	return demoInstance{u: u}
}

type demoInstance struct{ u *url.URL }

func (i demoInstance) URL() *url.URL { return i.u }

// The demo target has none of the other capabilities; the suite never calls
// these.
func (demoInstance) Connected() int                      { panic("demo: no stats") }
func (demoInstance) ServerDisconnects() map[string]int64 { panic("demo: no stats") }
func (demoInstance) Kick() int                           { panic("demo: no kick") }
func (demoInstance) Reject(string)                       { panic("demo: no reject") }
func (demoInstance) Accept()                             { panic("demo: no reject") }
func (demoInstance) SetAckDelay(time.Duration)           { panic("demo: no ack delay") }
func (demoInstance) Freeze()                             { panic("demo: no freeze") }
func (demoInstance) Thaw()                               { panic("demo: no freeze") }
func (demoInstance) Kill()                               { panic("demo: no kill") }
