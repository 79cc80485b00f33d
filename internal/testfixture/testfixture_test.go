package testfixture

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFindRepoRoot(t *testing.T) {
	root, err := FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("root %s has no go.mod: %v", root, err)
	}
	if _, err := FindRepoRoot(t.TempDir()); err == nil {
		t.Fatal("FindRepoRoot of a temp dir: want error")
	}
}

func TestCheckInstalledSaysHowToInstall(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, filepath.FromSlash(FixtureDir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := checkInstalled(root)
	if err == nil || !strings.Contains(err.Error(), "npm ci --prefix test/fixture/node") {
		t.Fatalf("checkInstalled without node_modules = %v, want an error naming npm ci", err)
	}
	if _, err := checkInstalled(RepoRoot(t)); err != nil {
		t.Fatalf("checkInstalled of the repository: %v", err)
	}
}

func TestStartReadyAndStop(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	if n.Port() == 0 || n.PID() == 0 {
		t.Fatalf("port %d pid %d", n.Port(), n.PID())
	}
	if want := "http://127.0.0.1:" + strconv.Itoa(n.Port()); n.URL() != want {
		t.Fatalf("URL() = %q, want %q", n.URL(), want)
	}
	s := n.Stats()
	if s.Connected != 0 || s.ConnectionsTotal != 0 || s.Auth.Required {
		t.Fatalf("fresh stats = %+v", s)
	}
	c := dialRaw(t, n)
	c.connect()
	n.Stop()
	if !n.Exited() {
		t.Fatal("fixture still runs after Stop")
	}
	c.expectEnd()
	if _, err := tryDialRaw(n.URL()); err == nil {
		t.Fatal("dial after Stop succeeded")
	}
	n.Stop() // idempotent
}

func TestEchoAckAndStats(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	c := dialRaw(t, n)
	c.connect()
	c.send(`421["echo",{"seq":1},"two",3]`)
	c.expect(`431[{"seq":1},"two",3]`)
	c.send(`42["echo",{"noack":true}]`) // counted, never acked
	c.send(`422["echo"]`)
	c.expect(`432[]`)
	s := n.WaitStats(rawTimeout, func(s Stats) bool { return s.EchoesReceived == 3 })
	if s.AcksSent != 2 || s.AcksDropped != 0 || s.Connected != 1 || s.ConnectionsTotal != 1 {
		t.Fatalf("stats = %+v", s)
	}
	if s.EchoProcessing.Samples != 2 || s.EchoProcessing.P50() <= 0 || s.EchoProcessing.P99() < s.EchoProcessing.P50() {
		t.Fatalf("echo processing = %+v", s.EchoProcessing)
	}
	n.Reset()
	s = n.Stats()
	if s.EchoesReceived != 0 || s.AcksSent != 0 || s.EchoProcessing.Samples != 0 || s.ConnectionsTotal != 0 {
		t.Fatalf("stats after Reset = %+v", s)
	}
	if s.Connected != 1 {
		t.Fatalf("Reset dropped the connection: %+v", s)
	}
}

func TestAckDelay(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	c := dialRaw(t, n)
	c.connect()
	const delay = 300 * time.Millisecond
	n.SetAckDelay(delay)
	if got := n.Stats().Faults.AckDelayMS; got != delay.Milliseconds() {
		t.Fatalf("ack delay in force = %d ms", got)
	}
	start := time.Now()
	c.send(`421["echo",1]`)
	c.expect(`431[1]`)
	// Node timers may fire up to a millisecond early against Go's clock.
	if took := time.Since(start); took < delay-5*time.Millisecond {
		t.Fatalf("delayed ack came after %v, want >= %v", took, delay)
	}
	if p50 := n.Stats().EchoProcessing.P50(); p50 < delay-5*time.Millisecond {
		t.Fatalf("server processing p50 %v does not include the delay %v", p50, delay)
	}
	n.SetAckDelay(0)
	c.send(`422["echo",2]`)
	c.expect(`432[2]`)
}

func TestDropNextAcks(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	c := dialRaw(t, n)
	c.connect()
	n.DropNextAcks(2)
	for i := 1; i <= 5; i++ {
		c.send(fmt.Sprintf(`42%d["echo",%d]`, i, i))
	}
	// Acks go out in order, so acks 1 and 2 would precede ack 3.
	for i := 3; i <= 5; i++ {
		c.expect(fmt.Sprintf(`43%d[%d]`, i, i))
	}
	s := n.Stats()
	if s.AcksDropped != 2 || s.AcksSent != 3 || s.Faults.DropNext != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestDropEveryNth(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	c := dialRaw(t, n)
	c.connect()
	n.DropEveryNth(3)
	for i := 1; i <= 10; i++ {
		c.send(fmt.Sprintf(`42%d["echo",%d]`, i, i))
	}
	for _, i := range []int{1, 2, 4, 5, 7, 8, 10} {
		c.expect(fmt.Sprintf(`43%d[%d]`, i, i))
	}
	if s := n.Stats(); s.AcksDropped != 3 || s.AcksSent != 7 {
		t.Fatalf("stats = %+v", s)
	}
	n.DropEveryNth(0)
	c.send(`4211["echo",11]`)
	c.send(`4212["echo",12]`)
	c.send(`4213["echo",13]`)
	c.expect(`4311[11]`)
	c.expect(`4312[12]`)
	c.expect(`4313[13]`)
}

func TestRejectAndAccept(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	n.Reject("maintenance window")
	if !n.Stats().Faults.Rejecting {
		t.Fatal("stats do not show the reject fault")
	}
	for _, tc := range []struct{ connect, want string }{
		{"40", `44{"message":"maintenance window"}`},
		{`40/strict,{"token":"t"}`, `44/strict,{"message":"maintenance window"}`},
	} {
		c := dialRaw(t, n)
		c.send(tc.connect)
		c.expect(tc.want)
	}
	n.Accept()
	c := dialRaw(t, n)
	c.connect()
	if s := n.Stats(); s.ConnectRejected != 2 || s.ConnectionsTotal != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestNamespaces(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	for _, tc := range []struct{ name, connect, want string }{
		{"strict without token", "40/strict,", `44/strict,{"message":"` + MessageTokenRequired + `"}`},
		{"strict with token", `40/strict,{"token":"any"}`, `40/strict,{"sid":`},
		{"unknown namespace", "40/nope,", `44/nope,{"message":"` + MessageInvalidNamespace + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, n)
			c.send(tc.connect)
			c.expectPrefix(tc.want)
		})
	}
	c := dialRaw(t, n)
	c.send(`40/strict,{"token":"any"}`)
	c.expectPrefix(`40/strict,{"sid":`)
	c.send(`42/strict,7["echo","x"]`)
	c.expect(`43/strict,7["x"]`)
}

func TestAuthToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	n := Start(t, Options{AuthToken: token})
	for _, tc := range []struct{ name, connect, want string }{
		{"no auth", "40", `44{"message":"` + MessageUnauthorized + `"}`},
		{"wrong token", `40{"token":"wrong"}`, `44{"message":"` + MessageUnauthorized + `"}`},
		{"right token", `40{"token":"` + token + `"}`, `40{"sid":`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, n)
			c.send(tc.connect)
			c.expectPrefix(tc.want)
		})
	}
	s := n.Stats()
	if !s.Auth.Required || s.Auth.Accepted != 1 || s.Auth.Rejected != 2 ||
		s.Auth.LastMatched == nil || !*s.Auth.LastMatched {
		t.Fatalf("auth stats = %+v", s.Auth)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if body := n.Metrics() + string(raw); strings.Contains(body, token) || strings.Contains(body, "wrong") {
		t.Fatal("stats or metrics expose the auth payload")
	}
}

func TestKickAll(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	clients := make([]*rawClient, 3)
	for i := range clients {
		clients[i] = dialRaw(t, n)
		clients[i].connect()
	}
	if got := n.KickAll(); got != 3 {
		t.Fatalf("KickAll() = %d, want 3", got)
	}
	for _, c := range clients {
		c.expect("41")
		c.expectEnd()
	}
	s := n.WaitStats(rawTimeout, func(s Stats) bool { return s.Connected == 0 })
	if got := s.DisconnectReasons[ServerReasonServerDisconnect]; got != 3 {
		t.Fatalf("disconnect reasons = %v", s.DisconnectReasons)
	}
	if got := n.KickAll(); got != 0 {
		t.Fatalf("second KickAll() = %d, want 0", got)
	}
}

func TestClientDisconnectReason(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	c := dialRaw(t, n)
	c.connect()
	c.send("41")
	s := n.WaitStats(rawTimeout, func(s Stats) bool { return s.Connected == 0 })
	if s.DisconnectReasons[ServerReasonClientDisconnect] != 1 {
		t.Fatalf("disconnect reasons = %v", s.DisconnectReasons)
	}
}

func TestPublishRelayedToOthers(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	a, b := dialRaw(t, n), dialRaw(t, n)
	a.connect()
	b.connect()
	a.send(`42["publish",{"from":"a"}]`)
	b.expect(`42["publish",{"from":"a"}]`)
	// a gets its own echo ack but not its publish.
	a.send(`421["echo","after"]`)
	a.expect(`431["after"]`)
	if s := n.Stats(); s.PublishesRelayed != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestPingsKeepAliveAndPingTimeout(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	alive := dialRaw(t, n)
	if !strings.Contains(alive.open, `"pingInterval":100`) || !strings.Contains(alive.open, `"pingTimeout":100`) {
		t.Fatalf("OPEN packet %s lacks the ping settings", alive.open)
	}
	alive.connect()
	silent := dialRaw(t, n)
	silent.connect()
	silent.answerPings.Store(false)
	silent.expect("2")
	// The silent client is closed for ping timeout; the other one answers
	// pings through many intervals and stays.
	silent.expectEnd()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if pkt, err := alive.next(50 * time.Millisecond); err == nil {
			t.Fatalf("unexpected packet %q", pkt)
		}
	}
	alive.send(`421["echo","still"]`)
	alive.expect(`431["still"]`)
	s := n.Stats()
	if s.Connected != 1 || s.DisconnectReasons[ServerReasonPingTimeout] != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestBlockFor(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	c := dialRaw(t, n)
	c.connect()
	const block = 300 * time.Millisecond
	start := time.Now()
	n.BlockFor(block)
	if took := time.Since(start); took < block {
		t.Fatalf("BlockFor returned after %v, want >= %v", took, block)
	}
	c.send(`421["echo",1]`)
	c.expect(`431[1]`)
}

func TestSignalStopAndContinue(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	n.Signal(syscall.SIGSTOP)
	if _, err := n.get(300*time.Millisecond, n.URL()+"/stats"); err == nil {
		n.Signal(syscall.SIGCONT)
		t.Fatal("stopped fixture answered /stats")
	}
	n.Signal(syscall.SIGCONT)
	n.Stats()
	// Stop works on a stopped process too (it is continued first).
	n.Signal(syscall.SIGSTOP)
	n.Stop()
	if !n.Exited() {
		t.Fatal("fixture still runs")
	}
}

func TestKillAndRestart(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{PingInterval: 200 * time.Millisecond})
	port, pid := n.Port(), n.PID()
	c := dialRaw(t, n)
	c.connect()
	n.Kill()
	if !n.Exited() {
		t.Fatal("fixture still runs after Kill")
	}
	c.expectEnd()
	n.Restart()
	if n.Port() != port || n.PID() == pid {
		t.Fatalf("after Restart port %d pid %d, before port %d pid %d", n.Port(), n.PID(), port, pid)
	}
	c = dialRaw(t, n)
	if !strings.Contains(c.open, `"pingInterval":200`) {
		t.Fatalf("restart lost the options: OPEN %s", c.open)
	}
	c.connect()
	// Restart of a running fixture stops it with SIGTERM first.
	pid = n.PID()
	n.Restart()
	c.expectEnd()
	if n.PID() == pid {
		t.Fatal("Restart kept the old process")
	}
	if s := n.Stats(); s.ConnectionsTotal != 0 {
		t.Fatalf("stats after restart = %+v", s)
	}
}

func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	metricLine := regexp.MustCompile(`(?m)^(\w+) ([0-9.e+-]+)$`)
	for _, m := range metricLine.FindAllStringSubmatch(text, -1) {
		if m[1] == name {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metric %s value %q: %v", name, m[2], err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	c := dialRaw(t, n)
	c.connect()
	c.send(`421["echo",1]`)
	c.expect(`431[1]`)
	text := n.Metrics()
	for _, name := range []string{
		"nodejs_heap_size_used_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
		"fixture_connected_sockets", "fixture_connections_total",
	} {
		if metricValue(t, text, name) <= 0 {
			t.Errorf("%s <= 0", name)
		}
	}
	if got := metricValue(t, text, "fixture_acks_sent_total"); got != 1 {
		t.Errorf("fixture_acks_sent_total = %v, want 1", got)
	}
}

func TestLeak(t *testing.T) {
	t.Parallel()
	const rate = 20 << 20 // bytes per second
	for _, tc := range []struct {
		kind   string
		leak   func(n *Node, rate int64)
		metric string // grows by about the retained bytes
	}{
		{"heap", (*Node).Leak, "nodejs_heap_size_used_bytes"},
		{"buffer", (*Node).LeakBuffers, "process_resident_memory_bytes"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			n := Start(t, Options{})
			before := metricValue(t, n.Metrics(), tc.metric)
			tc.leak(n, rate)
			s := n.WaitStats(rawTimeout, func(s Stats) bool { return s.Leak.RetainedBytes >= 10<<20 })
			if s.Leak.BytesPerSec != rate || s.Leak.Kind != tc.kind {
				t.Fatalf("leak stats = %+v", s.Leak)
			}
			tc.leak(n, 0) // stop growing, keep
			held := n.Stats().Leak.RetainedBytes
			text := n.Metrics()
			if grown := metricValue(t, text, tc.metric) - before; grown < float64(held)/2 {
				t.Fatalf("%s grew by %.0f bytes while the fixture retains %d", tc.metric, grown, held)
			}
			if got := metricValue(t, text, "fixture_leak_retained_bytes"); got != float64(held) {
				t.Fatalf("fixture_leak_retained_bytes = %v, want %d", got, held)
			}
			// Wall time is the point: that nothing grows after the rate is
			// set to 0 is seen only by letting several of the real server's
			// 100 ms leak ticks pass; there is no event to wait on.
			time.Sleep(300 * time.Millisecond)
			if got := n.Stats().Leak.RetainedBytes; got != held {
				t.Fatalf("retained %d after stopping the growth, want %d", got, held)
			}
			n.StopLeak()
			if s := n.Stats().Leak; s.RetainedBytes != 0 || s.BytesPerSec != 0 {
				t.Fatalf("leak after StopLeak = %+v", s)
			}
		})
	}
}

func TestClearFaults(t *testing.T) {
	t.Parallel()
	n := Start(t, Options{})
	n.SetAckDelay(time.Second)
	n.DropEveryNth(2)
	n.DropNextAcks(5)
	n.Reject("no")
	n.Leak(1 << 20)
	n.ClearFaults()
	s := n.Stats()
	if s.Faults != (FaultStats{}) || s.Leak.BytesPerSec != 0 || s.Leak.RetainedBytes != 0 {
		t.Fatalf("faults after ClearFaults = %+v %+v", s.Faults, s.Leak)
	}
	c := dialRaw(t, n)
	c.connect()
	c.send(`421["echo",1]`)
	c.expect(`431[1]`)
}
