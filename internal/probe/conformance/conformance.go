// Package conformance is the shared, table-driven conformance suite of the
// probe drivers: every probe.Driver must pass it against every Server.
//
// Run takes a driver and a Server (a factory of server instances with
// Capabilities); each case starts a fresh instance, so that a case that
// kicks, freezes or kills its server cannot disturb the next. Cases that need
// a capability the server lacks (fault injection on the in-process demo
// target, say) do not run on it, and Run logs which.
//
// Two servers come with the package: NodeServer, the real socket.io 4 fixture
// of test/fixture/node with every capability, and DemoServer, the agent's
// built-in Go target.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// Timeouts of the suite: generous, as they only bound a failing case.
const (
	dialTimeout = 10 * time.Second
	waitTimeout = 10 * time.Second
	// quiet is how long a case watches for something that must not happen
	// (a second OnClose, a handler call after a failed Dial).
	quiet = 200 * time.Millisecond
)

// Secrets used by the auth cases.
const (
	authToken  = "conformance-secret-token"
	wrongToken = "conformance-wrong-token"
)

// testCase is one conformance case.
type testCase struct {
	name string
	// needs names the capabilities the case needs; nil means none.
	needs []string
	// noServer: the case needs no server instance.
	noServer bool
	opts     ServerOptions
	run      func(t *testing.T, e *env)
}

// env is what a case works with.
type env struct {
	d          probe.Driver
	srv        Instance // nil for noServer cases
	caps       Capabilities
	transports []string // probe.Target.Transports of every dial
}

// capability reports whether caps has the named capability.
func capability(caps Capabilities, name string) bool {
	switch name {
	case "stats":
		return caps.Stats
	case "kick":
		return caps.Kick
	case "reject":
		return caps.Reject
	case "ack_delay":
		return caps.AckDelay
	case "auth":
		return caps.Auth
	case "ping":
		return caps.Ping
	case "heartbeat":
		return caps.Heartbeat
	case "freeze":
		return caps.Freeze
	case "kill":
		return caps.Kill
	case "namespace":
		return caps.Namespace != ""
	}
	panic("conformance: unknown capability " + name)
}

// Run runs every conformance case that srv can host against driver d, each
// as a subtest of t named after the case.
func Run(t *testing.T, d probe.Driver, srv Server) {
	RunTransports(t, d, srv, nil)
}

// RunTransports is Run with every dial's probe.Target.Transports set to
// transports (nil: the driver's default).
func RunTransports(t *testing.T, d probe.Driver, srv Server, transports []string) {
	caps := srv.Capabilities()
	for _, c := range cases() {
		var missing []string
		for _, need := range c.needs {
			if !capability(caps, need) {
				missing = append(missing, need)
			}
		}
		if len(missing) > 0 {
			t.Logf("case %s does not run on server %s: needs %s", c.name, srv.Name(), strings.Join(missing, ", "))
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			e := &env{d: d, caps: caps, transports: transports}
			if !c.noServer {
				e.srv = srv.Start(t, c.opts)
			}
			c.run(t, e)
		})
	}
}

// CaseNames lists the names of every case, in order.
func CaseNames() []string {
	var names []string
	for _, c := range cases() {
		names = append(names, c.name)
	}
	return names
}

func cases() []testCase {
	// The timeout is above the interval: the demo server's heartbeat needs it
	// (see package demo), and the Node server does not mind.
	shortPings := ServerOptions{PingInterval: 300 * time.Millisecond, PingTimeout: 500 * time.Millisecond}
	return []testCase{
		{name: "connect", run: caseConnect},
		{name: "echo_ack", run: caseEchoAck},
		{name: "concurrent_acks", run: caseConcurrentAcks},
		{name: "delayed_ack", needs: []string{"ack_delay"}, run: caseDelayedAck},
		{name: "custom_namespace", needs: []string{"namespace"}, run: caseCustomNamespace},
		{name: "server_kick", needs: []string{"kick"}, run: caseServerKick},
		{name: "client_close", run: caseClientClose},
		{name: "middleware_reject", needs: []string{"reject"}, run: caseMiddlewareReject},
		{name: "unknown_namespace", run: caseUnknownNamespace},
		{name: "auth_accepted", needs: []string{"auth"}, opts: ServerOptions{AuthToken: authToken}, run: caseAuthAccepted},
		{name: "auth_rejected", needs: []string{"auth"}, opts: ServerOptions{AuthToken: authToken}, run: caseAuthRejected},
		{name: "ping_keepalive", needs: []string{"ping", "heartbeat"}, opts: shortPings, run: casePingKeepalive},
		{name: "ping_timeout", needs: []string{"ping", "freeze"}, opts: shortPings, run: casePingTimeout},
		{name: "refused_port", noServer: true, run: caseRefusedPort},
		{name: "silent_server_dial_timeout", noServer: true, run: caseSilentServer},
		{name: "server_killed", needs: []string{"kill"}, run: caseServerKilled},
		{name: "publish_relay", run: casePublishRelay},
	}
}

// ---- helpers ---------------------------------------------------------------

func (e *env) target(t *testing.T, namespace string, auth json.RawMessage) *probe.Target {
	t.Helper()
	u := *e.srv.URL()
	return e.targetAt(&u, namespace, auth)
}

func (e *env) targetAt(u *url.URL, namespace string, auth json.RawMessage) *probe.Target {
	return &probe.Target{Name: "conformance", URL: u, Path: "/socket.io/", Namespace: namespace, Auth: auth, Transports: e.transports}
}

// dial connects and registers the connection's Close and the handler
// contract check with t.Cleanup.
func (e *env) dial(t *testing.T, tgt *probe.Target) (probe.Conn, *recorder) {
	t.Helper()
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	conn, err := e.d.Dial(ctx, tgt, rec.handlers())
	if err != nil {
		t.Fatalf("Dial(%s%s): %v", tgt.URL, tgt.Namespace, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		defer cancel()
		_ = conn.Close(ctx)
		rec.checkContract(t)
	})
	return conn, rec
}

// dialFail expects Dial to fail, and returns its *probe.ConnectError.
func (e *env) dialFail(t *testing.T, ctx context.Context, tgt *probe.Target) *probe.ConnectError {
	t.Helper()
	rec := newRecorder()
	conn, err := e.d.Dial(ctx, tgt, rec.handlers())
	if err == nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		defer cancel()
		_ = conn.Close(closeCtx)
		t.Fatalf("Dial(%s%s) succeeded, want an error", tgt.URL, tgt.Namespace)
	}
	var ce *probe.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("Dial error %v (%T) is not a *probe.ConnectError", err, err)
	}
	time.Sleep(quiet)
	if s := rec.summary(); rec.closeCount() > 0 || len(rec.eventsCopy()) > 0 {
		t.Errorf("handlers called for a failed Dial: %s", s)
	}
	return ce
}

func emit(t *testing.T, conn probe.Conn, event string, id int64, args ...json.RawMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := conn.Emit(ctx, event, id, args...); err != nil {
		t.Fatalf("Emit(%q, %d): %v", event, id, err)
	}
}

func raw(values ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(values))
	for i, v := range values {
		out[i] = json.RawMessage(v)
	}
	return out
}

// sameJSON reports whether a and b hold equal JSON values.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func sameArgs(got, want []json.RawMessage) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !sameJSON(got[i], want[i]) {
			return false
		}
	}
	return true
}

func argsText(args []json.RawMessage) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = string(a)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// echoRoundTrip emits echo with id and waits for exactly that ack.
func echoRoundTrip(t *testing.T, conn probe.Conn, rec *recorder, id uint64, args ...json.RawMessage) {
	t.Helper()
	emit(t, conn, "echo", int64(id), args...)
	rec.waitFor(t, waitTimeout, fmt.Sprintf("ack %d", id), func() bool { return len(rec.acks[id]) > 0 })
	acks := rec.ackCopy(id)
	if len(acks) != 1 {
		t.Fatalf("ack %d delivered %d times", id, len(acks))
	}
	if !sameArgs(acks[0], args) {
		t.Fatalf("ack %d args = %s, want %s", id, argsText(acks[0]), argsText(args))
	}
}

// expectClose waits for OnClose and checks its reason, then that no second
// OnClose follows.
func expectClose(t *testing.T, rec *recorder, want probe.DisconnectReason) {
	t.Helper()
	c := rec.waitClose(t, waitTimeout)
	if c.reason != want {
		t.Errorf("OnClose reason = %q (err %v), want %q", c.reason, c.err, want)
	}
	time.Sleep(quiet)
	if n := rec.closeCount(); n != 1 {
		t.Errorf("OnClose called %d times, want exactly once: %s", n, rec.summary())
	}
}

// waitServerReason polls the server's disconnect counts until reason has
// been seen want times.
func (e *env) waitServerReason(t *testing.T, reason string, want int64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := e.srv.ServerDisconnects()
		if got[reason] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server disconnect reasons = %v, want %q x%d", got, reason, want)
		}
		time.Sleep(20 * time.Millisecond) // polling a real server's counters: it sends no event when they change
	}
}

// ---- cases -----------------------------------------------------------------

// connect: Dial returns once the namespace CONNECT is answered.
func caseConnect(t *testing.T, e *env) {
	_, rec := e.dial(t, e.target(t, "/", nil))
	if e.caps.Stats {
		if n := e.srv.Connected(); n != 1 {
			t.Errorf("server counts %d connected sockets after Dial, want 1", n)
		}
	}
	if n := rec.closeCount(); n != 0 {
		t.Errorf("OnClose called on a fresh connection: %s", rec.summary())
	}
}

// echo_ack: the ack's args equal the event's args; an event without ack id
// gets no ack.
func caseEchoAck(t *testing.T, e *env) {
	conn, rec := e.dial(t, e.target(t, "/", nil))
	echoRoundTrip(t, conn, rec, 1, raw(
		`{"seq":1,"text":"h\u00e9llo \u2713 \"quoted\"","nested":{"a":[1,2.5,null,true]}}`,
		`"two"`, `3`, `[]`)...)
	emit(t, conn, "echo", probe.NoAck, raw(`"no ack wanted"`)...)
	echoRoundTrip(t, conn, rec, 2, raw(`{"seq":2}`)...)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.acks) != 2 {
		t.Errorf("acks for %d ids, want 2 (ids 1 and 2): %v", len(rec.acks), rec.acks)
	}
}

// concurrent_acks: 100 concurrent emits with distinct ack ids, each acked
// exactly once with its own args.
func caseConcurrentAcks(t *testing.T, e *env) {
	conn, rec := e.dial(t, e.target(t, "/", nil))
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := conn.Emit(ctx, "echo", int64(i), json.RawMessage(fmt.Sprintf(`{"seq":%d}`, i))); err != nil {
				errs <- fmt.Errorf("emit %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	rec.waitFor(t, waitTimeout, "100 acks", func() bool {
		for i := range uint64(n) {
			if len(rec.acks[i]) == 0 {
				return false
			}
		}
		return true
	})
	// A later ack on the same connection: duplicates would have come first.
	echoRoundTrip(t, conn, rec, 1000, raw(`"barrier"`)...)
	for i := range uint64(n) {
		acks := rec.ackCopy(i)
		if len(acks) != 1 {
			t.Errorf("ack %d delivered %d times", i, len(acks))
			continue
		}
		if want := raw(fmt.Sprintf(`{"seq":%d}`, i)); !sameArgs(acks[0], want) {
			t.Errorf("ack %d args = %s, want %s", i, argsText(acks[0]), argsText(want))
		}
	}
}

// delayed_ack: the driver keeps no ack timer; a late ack is delivered.
func caseDelayedAck(t *testing.T, e *env) {
	conn, rec := e.dial(t, e.target(t, "/", nil))
	e.srv.SetAckDelay(700 * time.Millisecond)
	start := time.Now()
	echoRoundTrip(t, conn, rec, 7, raw(`{"late":true}`)...)
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Errorf("delayed ack arrived after %v, before the server's delay", took)
	}
}

// custom_namespace: CONNECT, events and acks on a namespace other than "/".
func caseCustomNamespace(t *testing.T, e *env) {
	conn, rec := e.dial(t, e.target(t, e.caps.Namespace, json.RawMessage(`{"token":"any"}`)))
	echoRoundTrip(t, conn, rec, 1, raw(`{"nsp":true}`)...)
	if e.caps.Stats {
		if n := e.srv.Connected(); n != 1 {
			t.Errorf("server counts %d connected sockets, want 1", n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := conn.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	expectClose(t, rec, probe.ReasonClientClose)
	if e.caps.Stats {
		e.waitServerReason(t, "client namespace disconnect", 1)
	}
}

// server_kick: socket.disconnect(true) reads as io_server_disconnect, once;
// an Emit afterwards fails instead of blocking.
func caseServerKick(t *testing.T, e *env) {
	conn, rec := e.dial(t, e.target(t, "/", nil))
	if n := e.srv.Kick(); n != 1 {
		t.Fatalf("server kicked %d sockets, want 1", n)
	}
	expectClose(t, rec, probe.ReasonServerDisconnect)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := conn.Emit(ctx, "echo", 1, json.RawMessage(`1`)); err == nil {
		t.Errorf("Emit on a kicked connection succeeded")
	} else if ctx.Err() != nil {
		t.Errorf("Emit on a kicked connection blocked until its ctx ended: %v", err)
	}
}

// client_close: Close sends DISCONNECT (the server sees a client namespace
// disconnect), OnClose(io_client_disconnect) once, Close idempotent.
func caseClientClose(t *testing.T, e *env) {
	conn, rec := e.dial(t, e.target(t, "/", nil))
	echoRoundTrip(t, conn, rec, 1, raw(`1`)...)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := conn.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	expectClose(t, rec, probe.ReasonClientClose)
	if err := conn.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := rec.closeCount(); n != 1 {
		t.Errorf("OnClose called %d times after a second Close, want 1", n)
	}
	if e.caps.Stats {
		e.waitServerReason(t, "client namespace disconnect", 1)
	}
}

// middleware_reject: next(new Error(msg)) in the namespace middleware reads
// as FailConnectError carrying the server's message.
func caseMiddlewareReject(t *testing.T, e *env) {
	const msg = "maintenance: back at 10:00"
	e.srv.Reject(msg)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	ce := e.dialFail(t, ctx, e.target(t, "/", nil))
	if ce.Reason != probe.FailConnectError || ce.Message != msg {
		t.Errorf("ConnectError{Reason:%q, Message:%q} (%v), want {%q, %q}", ce.Reason, ce.Message, ce, probe.FailConnectError, msg)
	}
	e.srv.Accept()
	conn, rec := e.dial(t, e.target(t, "/", nil))
	echoRoundTrip(t, conn, rec, 1, raw(`"after reject"`)...)
}

// unknown_namespace: Socket.IO's own "Invalid namespace" CONNECT_ERROR.
func caseUnknownNamespace(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	ce := e.dialFail(t, ctx, e.target(t, "/no-such-namespace", nil))
	if ce.Reason != probe.FailConnectError || ce.Message != "Invalid namespace" {
		t.Errorf("ConnectError{Reason:%q, Message:%q} (%v), want {%q, %q}", ce.Reason, ce.Message, ce, probe.FailConnectError, "Invalid namespace")
	}
}

// auth_accepted: the CONNECT carries Target.Auth.
func caseAuthAccepted(t *testing.T, e *env) {
	conn, rec := e.dial(t, e.target(t, "/", json.RawMessage(`{"token":"`+authToken+`"}`)))
	echoRoundTrip(t, conn, rec, 1, raw(`"authorized"`)...)
}

// auth_rejected: a wrong or missing token is refused with the server's
// message, and the error does not carry the secret.
func caseAuthRejected(t *testing.T, e *env) {
	for _, tc := range []struct {
		name string
		auth json.RawMessage
	}{
		{"wrong_token", json.RawMessage(`{"token":"` + wrongToken + `"}`)},
		{"no_auth", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			defer cancel()
			ce := e.dialFail(t, ctx, e.target(t, "/", tc.auth))
			if ce.Reason != probe.FailConnectError || ce.Message != "unauthorized" {
				t.Errorf("ConnectError{Reason:%q, Message:%q} (%v), want {%q, %q}", ce.Reason, ce.Message, ce, probe.FailConnectError, "unauthorized")
			}
			if strings.Contains(ce.Error(), wrongToken) {
				t.Errorf("connect error exposes the auth payload: %v", ce)
			}
		})
	}
}

// ping_keepalive: the driver answers pings, so the connection outlives many
// short ping intervals.
func casePingKeepalive(t *testing.T, e *env) {
	conn, rec := e.dial(t, e.target(t, "/", nil))
	time.Sleep(2 * time.Second) // about 6 ping intervals of 300 ms
	if n := rec.closeCount(); n != 0 {
		t.Fatalf("connection ended during pings: %s", rec.summary())
	}
	echoRoundTrip(t, conn, rec, 1, raw(`"still here"`)...)
	if e.caps.Stats {
		if got := e.srv.ServerDisconnects(); len(got) != 0 {
			t.Errorf("server saw disconnects %v", got)
		}
	}
}

// ping_timeout: a server that stops pinging (SIGSTOP) is detected after
// pingInterval+pingTimeout: OnClose(ping_timeout).
func casePingTimeout(t *testing.T, e *env) {
	_, rec := e.dial(t, e.target(t, "/", nil))
	e.srv.Freeze()
	c := rec.waitClose(t, waitTimeout)
	e.srv.Thaw()
	if c.reason != probe.ReasonPingTimeout {
		t.Errorf("OnClose reason = %q (err %v), want %q", c.reason, c.err, probe.ReasonPingTimeout)
	}
}

// refused_port: nothing listens: FailRefused.
func caseRefusedPort(t *testing.T, e *env) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	ce := e.dialFail(t, ctx, e.targetAt(&url.URL{Scheme: "http", Host: addr}, "/", nil))
	if ce.Reason != probe.FailRefused {
		t.Errorf("ConnectError reason %q (%v), want %q", ce.Reason, ce, probe.FailRefused)
	}
}

// silent_server_dial_timeout: a server that accepts TCP and never answers
// the upgrade: Dial ends with FailTimeout when its ctx does.
func caseSilentServer(t *testing.T, e *env) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		accepted []net.Conn
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() { // holds every connection open, silent
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	closeAll := func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range accepted {
			_ = c.Close()
		}
		mu.Unlock()
	}
	defer closeAll()

	const budget = time.Second
	type result struct {
		ce   *probe.ConnectError
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		rec := newRecorder()
		start := time.Now()
		conn, err := e.d.Dial(ctx, e.targetAt(&url.URL{Scheme: "http", Host: ln.Addr().String()}, "/", nil), rec.handlers())
		if conn != nil {
			_ = conn.Close(context.Background())
		}
		var ce *probe.ConnectError
		errors.As(err, &ce)
		done <- result{ce: ce, err: err, took: time.Since(start)}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(budget + 4*time.Second):
		closeAll() // unblocks a driver stuck reading the silent connection
		t.Errorf("Dial with a %v ctx has not returned after %v", budget, budget+4*time.Second)
		select {
		case r = <-done:
			t.Logf("Dial returned once the server closed the connection, after %v: %v", r.took, r.err)
		case <-time.After(waitTimeout):
			t.Fatalf("Dial still blocked after the silent server closed its connections")
		}
		return
	}
	switch {
	case r.err == nil:
		t.Errorf("Dial to a silent server succeeded")
	case r.ce == nil:
		t.Errorf("Dial error %v (%T) is not a *probe.ConnectError", r.err, r.err)
	case r.ce.Reason != probe.FailTimeout:
		t.Errorf("ConnectError reason %q (%v), want %q", r.ce.Reason, r.ce, probe.FailTimeout)
	}
	if r.took > budget+2*time.Second {
		t.Errorf("Dial returned %v after its ctx ended", r.took-budget)
	}
}

// server_killed: the server process dies: OnClose(transport_close).
func caseServerKilled(t *testing.T, e *env) {
	_, rec := e.dial(t, e.target(t, "/", nil))
	e.srv.Kill()
	expectClose(t, rec, probe.ReasonTransportClose)
}

// publish_relay: one connection's publish reaches another through OnEvent,
// and not the sender.
func casePublishRelay(t *testing.T, e *env) {
	a, recA := e.dial(t, e.target(t, "/", nil))
	_, recB := e.dial(t, e.target(t, "/", nil))
	args := raw(`{"from":"a","n":1}`, `"second"`)
	emit(t, a, "publish", probe.NoAck, args...)
	recB.waitFor(t, waitTimeout, "publish on the other connection", func() bool { return len(recB.events) > 0 })
	events := recB.eventsCopy()
	if len(events) != 1 || events[0].name != "publish" || !sameArgs(events[0].args, args) {
		t.Errorf("other connection got events %+v, want one publish %s", events, argsText(args))
	}
	// The sender's later ack shows that its own publish was not sent back.
	echoRoundTrip(t, a, recA, 1, raw(`"barrier"`)...)
	if ev := recA.eventsCopy(); len(ev) != 0 {
		t.Errorf("sender got its own publish back: %+v", ev)
	}
}
