package agent_test

import (
	"context"
	"encoding/json"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig() agent.Config {
	var c agent.Config
	c.PoolConfig = pool.Config{
		Clients: 20, ConnectRate: 1000, ConnectTimeout: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	}
	c.EventName, c.EventRate, c.PayloadBytes, c.AckTimeout = "echo", 400, 100, 200*time.Millisecond
	c.FanoutConfig.Event, c.FanoutConfig.Timeout, c.FanoutConfig.IDField = "publish", time.Second, "id"
	c.PushConfig.SeqField = "seq"
	return c
}

func targets(names ...string) []*probe.Target {
	u, _ := url.Parse("http://127.0.0.1:1")
	var out []*probe.Target
	for _, n := range names {
		out = append(out, &probe.Target{Name: n, URL: u, Path: "/socket.io/", Namespace: "/"})
	}
	return out
}

func newTestAgent(t *testing.T, cfg agent.Config, d probe.Driver, obs pool.Observer, names ...string) (*agent.Agent, *prometheus.Registry) {
	t.Helper()
	if len(names) == 0 {
		names = []string{"t1"}
	}
	reg := prometheus.NewRegistry()
	a, err := agent.New(cfg, agent.Options{Driver: d, Targets: targets(names...), Registerer: reg, Seed: 1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return a, reg
}

func start(t *testing.T, a *agent.Agent) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestAgentConnectsProbesAndShutsDownCleanly(t *testing.T) {
	d := soaktest.NewMemDriver()
	a, reg := newTestAgent(t, testConfig(), d, nil)
	stop := start(t, a)
	soaktest.WaitFor(t, "all connected", func() bool { return a.Connected() == 20 })
	soaktest.WaitFor(t, "acks", func() bool { return soaktest.Sum(t, reg, "soak_events_acked_total") >= 100 })
	stop()
	if n := d.Open(); n != 0 {
		t.Fatalf("%d connections left open after Run returned", n)
	}
	if a.Connected() != 0 {
		t.Fatalf("connected = %d after shutdown", a.Connected())
	}
	sent := soaktest.Sum(t, reg, "soak_events_sent_total")
	acked := soaktest.Sum(t, reg, "soak_events_acked_total")
	lost := soaktest.Sum(t, reg, "soak_events_lost_total")
	if sent != acked+lost+float64(a.InFlight()) {
		t.Fatalf("sent %v != acked %v + lost %v + in flight %d", sent, acked, lost, a.InFlight())
	}
	if got := soaktest.Sum(t, reg, "soak_disconnects_total", "reason", "io_client_disconnect"); got != 20 {
		t.Fatalf("client disconnects = %v, want 20", got)
	}
	if got := soaktest.Sum(t, reg, "soak_connect_attempts_total"); got != 20 {
		t.Fatalf("attempts = %v, want 20", got)
	}
}

func TestAgentReconnectsAfterKick(t *testing.T) {
	d := soaktest.NewMemDriver()
	a, reg := newTestAgent(t, testConfig(), d, nil)
	start(t, a)
	soaktest.WaitFor(t, "all connected", func() bool { return a.Connected() == 20 })
	for i := 1; i <= 3; i++ {
		if n := d.Kick(); n != 20 {
			t.Fatalf("kicked %d, want 20", n)
		}
		soaktest.WaitFor(t, "refill", func() bool { return a.Connected() == 20 })
		if got := soaktest.Sum(t, reg, "soak_disconnects_total", "reason", "io_server_disconnect"); got != float64(20*i) {
			t.Fatalf("server disconnects = %v, want %d", got, 20*i)
		}
	}
}

func TestAgentSkipsWhileRefusedThenRecovers(t *testing.T) {
	d := soaktest.NewMemDriver()
	d.Set(func(c *soaktest.MemControl) { c.Refuse = true })
	cfg := testConfig()
	cfg.Clients = 2
	a, reg := newTestAgent(t, cfg, d, nil)
	start(t, a)
	soaktest.WaitFor(t, "refusals", func() bool {
		return soaktest.Sum(t, reg, "soak_connect_failures_total", "reason", "refused") >= 4
	})
	soaktest.WaitFor(t, "skipped events", func() bool { return soaktest.Sum(t, reg, "soak_events_skipped_total") > 0 })
	if got := soaktest.Sum(t, reg, "soak_events_sent_total"); got != 0 {
		t.Errorf("sent = %v with no connection", got)
	}
	d.Set(func(c *soaktest.MemControl) { c.Refuse = false })
	soaktest.WaitFor(t, "recovery", func() bool { return a.Connected() == 2 })
}

func TestAgentCountsLostAcks(t *testing.T) {
	d := soaktest.NewMemDriver()
	d.Set(func(c *soaktest.MemControl) { c.DropAcks = true })
	a, reg := newTestAgent(t, testConfig(), d, nil)
	stop := start(t, a)
	soaktest.WaitFor(t, "lost events", func() bool { return soaktest.Sum(t, reg, "soak_events_lost_total") >= 50 })
	stop()
	if got := soaktest.Sum(t, reg, "soak_events_acked_total"); got != 0 {
		t.Fatalf("acked = %v with every ack dropped", got)
	}
}

func TestAgentMetricsLint(t *testing.T) {
	cfg := testConfig()
	cfg.PushConfig.Event = "tick"
	cfg.FanoutConfig.Rate = 1
	_, reg := newTestAgent(t, cfg, soaktest.NewMemDriver(), nil, "a", "b")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestAgentSplitsClientsAndRates(t *testing.T) {
	cfg := testConfig()
	cfg.Clients, cfg.EventRate = 5, 100
	a, _ := newTestAgent(t, cfg, soaktest.NewMemDriver(), nil, "a", "b")
	pools := a.Pools()
	if pools[0].Desired() != 3 || pools[1].Desired() != 2 {
		t.Fatalf("clients split %d/%d, want 3/2", pools[0].Desired(), pools[1].Desired())
	}
	if pools[0].Share() != 0.6 || pools[1].Share() != 0.4 {
		t.Fatalf("rate shares %v/%v, want 0.6/0.4", pools[0].Share(), pools[1].Share())
	}
}

// recorder is a pool.Observer counting what it is told.
type recorder struct {
	mu       sync.Mutex
	conn     map[pool.ConnEvent]int
	outcomes map[pool.Outcome]int
}

func (r *recorder) Connection(_ string, e pool.ConnEvent, _ string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conn[e]++
}

func (r *recorder) Event(_, probeName, step string, o pool.Outcome, n int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if probeName == "echo" && step == "echo" {
		r.outcomes[o] += n
	}
}

func (r *recorder) get(o pool.Outcome) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outcomes[o]
}

func TestAgentPauseAndObserver(t *testing.T) {
	d := soaktest.NewMemDriver()
	rec := &recorder{conn: map[pool.ConnEvent]int{}, outcomes: map[pool.Outcome]int{}}
	a, reg := newTestAgent(t, testConfig(), d, rec)
	stop := start(t, a)
	soaktest.WaitFor(t, "acks", func() bool { return soaktest.Sum(t, reg, "soak_events_acked_total") >= 20 })
	a.Pause(true)
	soaktest.WaitFor(t, "drained", func() bool { return a.InFlight() == 0 })
	stop()
	// The observer saw what the metrics counted, exactly.
	for name, o := range map[string]pool.Outcome{
		"soak_events_sent_total": pool.OutcomeSent, "soak_events_acked_total": pool.OutcomeAnswered,
		"soak_events_lost_total": pool.OutcomeLost,
	} {
		if got, want := float64(rec.get(o)), soaktest.Sum(t, reg, name); got != want {
			t.Errorf("observer saw %v for %s, metric says %v", got, name, want)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.conn[pool.ConnAttempt] != 20 || rec.conn[pool.ConnEstablished] != 20 || rec.conn[pool.ConnClosed] != 20 {
		t.Errorf("connection events %v, want 20 attempts, established and closed", rec.conn)
	}
}

// The echo probe with an application payload answered by a reply event
// matched on a field: exact loss when the server drops replies, and the
// template rendered as configured.
func TestEchoReplyEventAndPayloadTemplate(t *testing.T) {
	d := soaktest.NewMemDriver()
	var mu sync.Mutex
	seen, dropped := 0, 0
	var bad []string
	d.Set(func(c *soaktest.MemControl) {
		c.Reply = func(event string, args []json.RawMessage) (string, []json.RawMessage, bool) {
			var m struct {
				RoomID      string `json:"roomId"`
				Text        string `json:"text"`
				ClientMsgID string `json:"clientMsgId"`
			}
			mu.Lock()
			defer mu.Unlock()
			if event != "message:send" || len(args) != 1 || json.Unmarshal(args[0], &m) != nil ||
				m.RoomID != "soak" || m.Text != "hi xxxx" || len(m.ClientMsgID) != 36 {
				bad = append(bad, string(args[0]))
				return "", nil, false
			}
			seen++
			if seen%5 == 0 { // the server drops every fifth message
				dropped++
				return "", nil, false
			}
			out, _ := json.Marshal(map[string]string{"clientMsgId": m.ClientMsgID, "text": m.Text})
			return "message:new", []json.RawMessage{out}, true
		}
	})
	cfg := testConfig()
	cfg.Clients, cfg.EventRate = 4, 200
	cfg.EventName = "message:send"
	cfg.EchoConfig.Payload = `{"roomId":"soak","text":"hi {{pad 4}}","clientMsgId":{{uuid}}}`
	cfg.ReplyEvent, cfg.ReplyMatch = "message:new", "clientMsgId"
	a, reg := newTestAgent(t, cfg, d, nil)
	stop := start(t, a)
	soaktest.WaitFor(t, "replies", func() bool { return soaktest.Sum(t, reg, "soak_events_acked_total") >= 100 })
	a.Pause(true)
	soaktest.WaitFor(t, "drained", func() bool { return a.InFlight() == 0 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("payloads not as configured: %q", bad[:min(3, len(bad))])
	}
	sent := soaktest.Sum(t, reg, "soak_events_sent_total")
	acked := soaktest.Sum(t, reg, "soak_events_acked_total")
	lost := soaktest.Sum(t, reg, "soak_events_lost_total")
	if int(sent) != seen || int(lost) != dropped || int(acked) != seen-dropped {
		t.Fatalf("sent %v acked %v lost %v; the server saw %d and dropped %d", sent, acked, lost, seen, dropped)
	}
	if got := soaktest.Sum(t, reg, "soak_acks_unexpected_total"); got != 0 {
		t.Fatalf("unexpected = %v: replies for other clients must be ignored", got)
	}
}

func TestEchoConfigRefusesUnmatchableReplies(t *testing.T) {
	for _, tc := range []struct {
		payload, match, want string
	}{
		{`{"roomId":"soak"}`, "roomId", `SOAK_EVENT_REPLY_MATCH: the value of "roomId" in SOAK_EVENT_PAYLOAD must hold {{seq}} or {{uuid}}, so that each reply answers one event`},
		{`{"a":{{seq}}}`, "b", `SOAK_EVENT_REPLY_MATCH: not in SOAK_EVENT_PAYLOAD: path "b": no field "b"`},
		{``, "id", `SOAK_EVENT_REPLY_MATCH: the default payload can only be matched on seq; set SOAK_EVENT_PAYLOAD to match on "id"`},
		{`{"a":{{sek}}}`, "", `SOAK_EVENT_PAYLOAD: unknown placeholder {{sek}} at offset 5 (known: seq, ts, client, uuid, pad N, var NAME)`},
	} {
		cfg := testConfig()
		cfg.EchoConfig.Payload, cfg.ReplyMatch = tc.payload, tc.match
		if tc.match != "" {
			cfg.ReplyEvent = "reply"
		}
		if err := cfg.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("payload %q match %q: err = %v\nwant %s", tc.payload, tc.match, err, tc.want)
		}
	}
}

func TestReleasePagesWaitsAndStopsWithRun(t *testing.T) {
	// The release comes a minute after the start at the soonest (its timing
	// is tested in internal/selfmem on a fake clock); a Run stopped before
	// then returns without it, and its goroutine is gone (goleak in TestMain).
	var calls atomic.Int32
	reg := prometheus.NewRegistry()
	a, err := agent.New(testConfig(), agent.Options{Driver: soaktest.NewMemDriver(), Targets: targets("t1"), Registerer: reg, Seed: 1,
		ReleasePages: func() (int64, error) { calls.Add(1); return 0, nil }})
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, a)
	soaktest.WaitFor(t, "all connected", func() bool { return a.Connected() == 20 })
	stop()
	if n := calls.Load(); n != 0 {
		t.Fatalf("released %d times within seconds of the start, want none", n)
	}
}
