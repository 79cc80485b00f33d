package e2e

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/generic-corp/soak-exporter/deploy/grafana"
	rules "github.com/generic-corp/soak-exporter/deploy/prometheus"
	"github.com/generic-corp/soak-exporter/internal/soaktest"
	"github.com/generic-corp/soak-exporter/internal/testfixture"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The test's timing. The shipped rules use for: 5-15 min and 5 min windows;
// the test loads a derived copy (rules.DeriveTestRules) with these instead.
const (
	scrapeInterval = time.Second
	evalInterval   = time.Second
	ruleFor        = 5 * time.Second  // every alert's for:, capped
	ruleWindow     = 20 * time.Second // every range selector, capped (20 scrapes)
	// rateInterval is what Grafana makes of $__rate_interval for a 1 s
	// scrape interval and a 2 s step: max(step + scrape, 4 * scrape).
	rateInterval = "4s"
	pollEvery    = 500 * time.Millisecond

	fireTimeout    = 90 * time.Second
	resolveTimeout = 90 * time.Second
)

// The agent's configuration: a modest pool against the fixture.
const (
	jobName    = "soak-exporter" // the shipped rules select job=~"soak-exporter.*"
	targetName = "fixture"
	eventName  = "echo"
	clients    = 20
	eventRate  = 50
	ackTimeout = 2 * time.Second
)

// The fan-out and server-push probes against the single fixture, so that
// their dashboard panels have data: the fixture relays `publish` to the
// other clients (SOAK_FANOUT_EVENT's default) and pushes {"seq","ts"} as
// pushEvent every pushInterval to its local clients; agent and fixture share
// the host's clock, so the push latency is observed.
const (
	fanoutRate   = 2
	pushEvent    = "tick"
	pushInterval = 200 * time.Millisecond
)

// probesEnv is the agent's fan-out and push configuration.
func probesEnv() []string {
	scenario, _ := filepath.Abs(filepath.Join("testdata", "echo.scenario.yaml"))
	return []string{
		"SOAK_SCENARIO_FILE=" + scenario,
		"SOAK_FANOUT_RATE=" + strconv.Itoa(fanoutRate),
		"SOAK_PUSH_EVENT=" + pushEvent,
		"SOAK_PUSH_CLOCK_SHARED=true",
	}
}

// Memory sampling and leak detection of the fixture, scaled down from hours
// to seconds: a 30 s window of 1 s buckets (the floor of each bucket is its
// minimum), a verdict every second, no start-up grace. The least growth
// that can be a leak stays at its default (21 MB across the window, so
// 0.7 MB/s here), far above the fixture's idle drift; the leak adds
// leakRate. memoryLimit makes soak_memory_limit_bytes and
// soak_leak_seconds_to_limit (dashboard panels, SoakMemoryLimitProjected)
// have data: 32 GiB is reached in about 2 h at leakRate (the alert fires
// below 4 h) and, measured, in 20 h or more at the fixture's idle drift.
const (
	memoryInterval = 250 * time.Millisecond
	leakWindow     = "30s" // SOAK_LEAK_WINDOWS, and so the window label
	leakBucket     = time.Second
	leakRate       = 4 << 20 // bytes per second retained by the fixture
	memoryLimit    = 32 << 30
)

// leakEnv is the agent's memory and leak configuration; every variable must
// be listed by `soak-exporter --help`.
func leakEnv(metricsURL string) []string {
	return []string{
		"SOAK_MEMORY_SCRAPE_URL=" + metricsURL,
		"SOAK_MEMORY_INTERVAL=" + memoryInterval.String(),
		"SOAK_MEMORY_LIMIT_BYTES=" + strconv.Itoa(memoryLimit),
		"SOAK_LEAK_WINDOWS=" + leakWindow,
		"SOAK_LEAK_BUCKET=" + leakBucket.String(),
		"SOAK_LEAK_EVALUATE_INTERVAL=1s",
		"SOAK_LEAK_GRACE=0s",
	}
}

// harness is the running stack.
type harness struct {
	start time.Time
	fx    *testfixture.Node
	agent *agent
	prom  promClient
	promP *process
	am    amClient
	amP   *process
	hook  *webhook
	help  string // the agent's --help text

	results []result
}

// result is what one alert did in one phase, for the final summary.
type result struct {
	phase, alert  string
	fired         time.Duration // from the fault's injection to active in Alertmanager
	resolved      time.Duration // from the fault's removal to gone from Alertmanager
	resolvedEarly bool          // resolved while the fault was still on (transient alert)
}

// TestAlertsFireAndResolveEndToEnd is the end-to-end proof of the ops kit:
// each fault injected into the fixture makes its alert arrive at
// Alertmanager through the (shortened) shipped rules, clearing the fault
// resolves it, and every dashboard panel query returns data.
func TestAlertsFireAndResolveEndToEnd(t *testing.T) {
	soaktest.Integration(t, "node fixture", "prometheus", "alertmanager", "promtool")
	tl := requireTools(t)
	h := &harness{start: time.Now()}
	bin := buildAgent(t)
	h.help = agentHelp(t, bin)
	h.requireLeakConfig(t)
	t.Logf("e2e: agent built in %v", time.Since(h.start).Round(time.Millisecond))

	h.fx = testfixture.Start(t, testfixture.Options{PushEvent: pushEvent, PushInterval: pushInterval})
	h.hook = newWebhook()
	t.Cleanup(h.hook.srv.Close)
	c := newHTTPClient()
	h.startAlertmanager(t, tl, c)

	env := []string{
		"SOAK_TARGET_URL=" + h.fx.URL(),
		"SOAK_TARGET_NAME=" + targetName,
		"SOAK_CLIENTS=" + strconv.Itoa(clients),
		"SOAK_CONNECT_RATE=50",
		"SOAK_CONNECT_TIMEOUT=5s",
		// Short backoff: the pool refills within a second of the fixture
		// accepting connections again.
		"SOAK_BACKOFF_MIN=100ms",
		"SOAK_BACKOFF_MAX=1s",
		"SOAK_EVENT_NAME=" + eventName,
		"SOAK_EVENT_RATE=" + strconv.Itoa(eventRate),
		"SOAK_ACK_TIMEOUT=" + ackTimeout.String(),
	}
	env = append(env, probesEnv()...)
	h.agent = startAgent(t, bin, append(env, leakEnv(h.fx.MetricsURL())...))
	h.startPrometheus(t, tl, c)
	h.waitReady(t)

	h.runPhase(t, phase{
		name:   "high latency",
		inject: func() { h.fx.SetAckDelay(300 * time.Millisecond) },
		clear:  func() { h.fx.SetAckDelay(0) },
		fire: []expectAlert{
			{name: "SoakEventLatencyHigh", labels: map[string]string{"target": targetName, "event": eventName}},
		},
		// 300 ms is well below the ack timeout: nothing is lost.
		forbid: []string{"SoakEventLoss"},
		exprs: []string{
			"target_event:soak_event_latency_seconds:p95_rate5m",
			"rate(soak_event_latency_seconds_count[20s])",
		},
		value: "target_event:soak_event_latency_seconds:p95_rate5m",
	})
	h.runPhase(t, phase{
		name:   "ack loss",
		inject: func() { h.fx.DropEveryNth(10) },
		clear:  func() { h.fx.DropEveryNth(0) },
		fire: []expectAlert{
			{name: "SoakEventLoss", labels: map[string]string{"target": targetName, "event": eventName}},
		},
		// Dropped acks are lost, not late: the latency histogram only holds
		// acked events.
		forbid: []string{"SoakEventLatencyHigh"},
		exprs: []string{
			"target_event:soak_events_lost:ratio_rate5m",
			"soak_events_lost_total",
			"soak_events_sent_total",
		},
		value: "target_event:soak_events_lost:ratio_rate5m",
	})
	h.runPhase(t, phase{
		name: "rejected connections",
		inject: func() {
			h.fx.Reject("e2e: connections rejected")
			if n := h.fx.KickAll(); n == 0 {
				t.Fatalf("e2e: KickAll kicked no socket: the agent's pool was not connected")
			}
		},
		clear: func() { h.fx.Accept() },
		fire: []expectAlert{
			{name: "SoakConnectionSuccessRatioLow", labels: map[string]string{"target": targetName}},
			{name: "SoakPoolBelowDesired", labels: map[string]string{"target": targetName}},
			// The kick itself: the whole pool dropped by the server once
			// is abnormal churn for as long as it is in the rate window,
			// so this one resolves while the fault is still on.
			{name: "SoakDisconnectRateHigh", labels: map[string]string{"target": targetName}, transient: true},
		},
		exprs: []string{
			"target:soak_connect_success:ratio_rate5m",
			"target:soak_connect_attempts:rate5m",
			"soak_clients_desired - max_over_time(soak_clients_connected[20s])",
			"soak_clients_connected",
			"target:soak_disconnects_abnormal:rate5m * 60 / soak_clients_desired",
		},
		value: "target:soak_connect_success:ratio_rate5m",
	})
	h.runPhase(t, phase{
		name:   "memory leak",
		inject: func() { h.fx.Leak(leakRate) },
		clear:  func() { h.fx.StopLeak() },
		fire: []expectAlert{
			{name: "SoakMemoryLeakSuspected", labels: map[string]string{"source": "scrape", "kind": "heap", "window": leakWindow}},
			{name: "SoakMemoryLimitProjected", labels: map[string]string{"source": "scrape", "kind": "heap", "window": leakWindow}},
		},
		exprs: []string{
			"soak_memory_bytes",
			"soak_leak_suspected",
			`soak_leak_slope_bytes_per_second{estimator="theil_sen"}`,
			"soak_leak_trend_p_value",
			"soak_leak_window_samples",
			"soak_leak_seconds_to_limit",
		},
		value: `soak_leak_slope_bytes_per_second{estimator="theil_sen",kind="heap"}`,
		// The dashboard is checked while every leak gauge has figures (the
		// drop after StopLeak looks like a restart and clears the windows)
		// and after every other fault has left its traces.
		whileFiring: func() { h.checkPanels(t) },
	})

	// Every alert resolves, the companions of the last phase included.
	h.waitQuiet(t, "after the last phase", time.Second)
	h.summarize(t)
}

// startAlertmanager starts Alertmanager on a free 127.0.0.1 port, without
// clustering, routing everything to the test's webhook.
func (h *harness) startAlertmanager(t *testing.T, tl tools, c *http.Client) {
	t.Helper()
	dir := t.TempDir()
	storage := filepath.Join(dir, "data")
	if err := os.Mkdir(storage, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := renderTemplate(t, "alertmanager.yml.tmpl", dir, "alertmanager.yml", map[string]any{
		"WebhookURL": h.hook.srv.URL + "/alerts",
	})
	addr := freeAddress(t)
	h.amP = startProcess(t, "alertmanager", tl.alertmanager, []string{
		"--config.file=" + cfg,
		"--storage.path=" + storage,
		"--web.listen-address=" + addr,
		"--cluster.listen-address=", // no gossip, no clustering port
		"--log.level=info",
	}, nil, nil)
	h.am = amClient{base: "http://" + addr, c: c}
	waitHTTPOK(t, c, h.amP, h.am.base+"/-/ready", 30*time.Second)
}

// startPrometheus derives the short test copy of the shipped rules and
// starts Prometheus on a free 127.0.0.1 port, scraping the agent and
// sending to the Alertmanager.
func (h *harness) startPrometheus(t *testing.T, tl tools, c *http.Client) {
	t.Helper()
	dir := t.TempDir()
	derived, err := rules.DeriveTestRules(rules.ShippedRuleFile(), rules.TestOverrides{
		For: ruleFor, Window: ruleWindow, Interval: evalInterval,
	})
	if err != nil {
		t.Fatalf("e2e: derive the test rules: %v", err)
	}
	ruleFile := filepath.Join(dir, "soak-exporter.e2e.rules.yml")
	if err := os.WriteFile(ruleFile, derived, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tl.promtool, "check", "rules", ruleFile).CombinedOutput(); err != nil {
		t.Fatalf("e2e: promtool check rules on the derived copy: %v\n%s", err, out)
	}
	amAddr := strings.TrimPrefix(h.am.base, "http://")
	cfg := renderTemplate(t, "prometheus.yml.tmpl", dir, "prometheus.yml", map[string]any{
		"ScrapeInterval":      promDuration(scrapeInterval),
		"EvaluationInterval":  promDuration(evalInterval),
		"RuleFile":            ruleFile,
		"AlertmanagerAddress": amAddr,
		"JobName":             jobName,
		"AgentAddress":        h.agent.addr,
	})
	if out, err := exec.Command(tl.promtool, "check", "config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("e2e: promtool check config: %v\n%s", err, out)
	}
	storage := filepath.Join(dir, "data")
	addr := freeAddress(t)
	// Native histograms: NOT enabled. Prometheus 2.42 with
	// --enable-feature=native-histograms ingests only the native buckets of
	// a histogram that also has classic ones (scrape_classic_histograms
	// arrived in 2.45), so soak_*_bucket would be gone. The shipped p95
	// rules read the classic buckets first (exact at the 0.2 s and 0.5 s
	// thresholds) and fall back to the native histogram, but the dashboard's
	// latency heatmap reads only the classic buckets, and "every panel has
	// data" is part of this test. So classic buckets it is; the native
	// fallback branch is covered by promtool unit tests in deploy/prometheus.
	h.promP = startProcess(t, "prometheus", tl.prometheus, []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + storage,
		"--web.listen-address=" + addr,
		// Resend firing alerts every second (default 1m), so that an alert
		// arrives at once even if the first send raced the discovery.
		"--rules.alert.resend-delay=1s",
		"--log.level=info",
	}, nil, nil)
	h.prom = promClient{base: "http://" + addr, c: c}
	waitHTTPOK(t, c, h.promP, h.prom.base+"/-/ready", 60*time.Second)
}

// waitReady waits until Prometheus has discovered the Alertmanager, scrapes
// the agent, whose pool is full and acks flow, and nothing fires on the
// healthy target (pending included) for a while.
func (h *harness) waitReady(t *testing.T) {
	t.Helper()
	began := time.Now()
	h.eventually(t, 60*time.Second, "Prometheus discovers the Alertmanager", func() (bool, string) {
		ams, err := h.prom.alertmanagers()
		if err != nil {
			return false, err.Error()
		}
		for _, u := range ams {
			if strings.HasPrefix(u, h.am.base+"/") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("active Alertmanagers: %v, want %s", ams, h.am.base)
	})
	up := fmt.Sprintf(`up{job=%q}`, jobName)
	p95 := fmt.Sprintf(`target_event:soak_event_latency_seconds:p95_rate5m{target=%q,event=%q}`, targetName, eventName)
	h.eventually(t, 60*time.Second, "Prometheus scrapes the agent and records the event latency p95", func() (bool, string) {
		ok := h.value(up) == 1 && !math.IsNaN(h.value(p95))
		return ok, h.prom.describe(up, p95, "soak_clients_connected")
	})
	t.Logf("e2e: stack ready after %v (Prometheus discovered the Alertmanager, agent scraped)", time.Since(began).Round(time.Millisecond))
	// The healthy case: no alert at all, not even pending (a rule is
	// pending from the first evaluation its condition holds), for longer
	// than every for: of the derived rules. Transients while the pool and
	// the windows fill are waited out, and logged.
	h.waitQuiet(t, "healthy start", ruleFor+2*time.Second)
	h.hook.mu.Lock()
	startup := slices.Clone(h.hook.notes)
	h.hook.mu.Unlock()
	for _, n := range startup {
		t.Logf("e2e: notified while the stack started: %s (resolved=%v)", n.alert, n.resolved)
	}
}

// value returns the only value of an instant query, NaN when the result is
// empty, an error or more than one series.
func (h *harness) value(expr string) float64 {
	res, err := h.prom.query(expr)
	if err != nil || len(res) != 1 {
		return math.NaN()
	}
	return res[0].Values[0]
}

// eventually polls check until it returns true, and fails the test after
// timeout with check's last explanation.
func (h *harness) eventually(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	// Prometheus rule evaluations and alert states are only seen by asking.
	if !soaktest.Poll(timeout, pollEvery, func() bool {
		h.promP.checkRunning(t)
		h.amP.checkRunning(t)
		h.agent.checkRunning(t)
		var ok bool
		ok, why = check()
		return ok
	}) {
		t.Fatalf("e2e: %s: not within %v\n%s", what, timeout, why)
	}
	return time.Since(start)
}

// activeAlerts returns Alertmanager's active alerts.
func (h *harness) activeAlerts() ([]amAlert, error) {
	all, err := h.am.alerts()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []amAlert
	for _, a := range all {
		if a.active(now) {
			out = append(out, a)
		}
	}
	return out, nil
}

// state describes the alerts in Alertmanager and Prometheus, and exprs.
func (h *harness) state(exprs ...string) string {
	var b strings.Builder
	all, err := h.am.alerts()
	b.WriteString("  Alertmanager /api/v2/alerts:\n")
	if err != nil {
		fmt.Fprintf(&b, "    error: %v\n", err)
	} else if len(all) == 0 {
		b.WriteString("    (none)\n")
	}
	for _, a := range all {
		fmt.Fprintf(&b, "    %s\n", a)
	}
	b.WriteString(h.prom.describe(append([]string{"ALERTS"}, exprs...)...))
	return b.String()
}

// waitQuiet waits until no alert is active in Alertmanager, none is pending
// or firing in Prometheus and the pool is full, continuously for hold.
func (h *harness) waitQuiet(t *testing.T, what string, hold time.Duration) {
	t.Helper()
	connected := fmt.Sprintf(`soak_clients_connected{job=%q,target=%q}`, jobName, targetName)
	var since time.Time
	h.eventually(t, resolveTimeout, what+": no alert and a full pool", func() (bool, string) {
		active, err := h.activeAlerts()
		pending, perr := h.prom.query("ALERTS")
		quiet := err == nil && perr == nil && len(active) == 0 && len(pending) == 0 && h.value(connected) == clients
		if !quiet {
			since = time.Time{}
			return false, h.state(connected)
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= hold, ""
	})
}

// expectAlert is an alert a phase must raise.
type expectAlert struct {
	name string
	// labels the alert must carry (besides alertname); job and severity
	// are always checked.
	labels map[string]string
	// transient alerts may resolve before the fault is cleared.
	transient bool
}

// phase is one fault: injected, its alerts awaited, cleared, their
// resolution awaited.
type phase struct {
	name          string
	inject, clear func()
	fire          []expectAlert
	forbid        []string // alerts that must not fire during the phase
	exprs         []string // PromQL shown when the phase fails
	value         string   // PromQL whose value is logged when the alerts fired
	whileFiring   func()   // runs once every alert of fire has been seen
}

// matches reports whether a is the expected alert.
func (e expectAlert) matches(a amAlert) bool {
	if a.Labels["alertname"] != e.name {
		return false
	}
	for k, v := range e.labels {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

func (h *harness) runPhase(t *testing.T, ph phase) {
	t.Helper()
	h.waitQuiet(t, "before "+ph.name, time.Second)
	dropped := fmt.Sprintf(`sum(soak_events_dropped_total{job=%q})`, jobName)
	droppedBefore := h.value(dropped)
	t.Logf("e2e: phase %q: injecting the fault", ph.name)
	injected := time.Now()
	ph.inject()

	fired := map[string]time.Duration{}
	gone := map[string]time.Duration{} // transient alerts that resolved before the clear
	seenOther := map[string]bool{}
	// noteOther records an alert that no expectAlert of the phase matches,
	// and logs it the first time with the agent's event figures.
	noteOther := func(a amAlert) {
		key := a.Labels["alertname"]
		companion := slices.Contains(names(ph.fire), key)
		if companion {
			key = sample{Metric: a.Labels}.String() // same alert, other series (e.g. kind="rss")
		}
		if seenOther[key] {
			return
		}
		seenOther[key] = true
		if companion {
			t.Logf("e2e: phase %q: also active, %v after the injection: %s", ph.name, time.Since(injected).Round(100*time.Millisecond), a)
			return
		}
		t.Logf("e2e: phase %q: unexpected alert, %v after the injection: %s\n%s", ph.name, time.Since(injected).Round(100*time.Millisecond), a,
			h.prom.describe("soak_clients_connected", "increase(soak_events_lost_total[20s])", "increase(soak_events_dropped_total[20s])",
				"increase(soak_events_skipped_total[20s])", "target_event:soak_event_latency_seconds:p95_rate5m"))
	}
	matched := func(a amAlert) (expectAlert, bool) {
		for _, e := range ph.fire {
			if e.matches(a) {
				return e, true
			}
		}
		return expectAlert{}, false
	}

	last := map[string]amAlert{}
	h.eventually(t, fireTimeout, fmt.Sprintf("phase %q: alerts %v arrive at Alertmanager", ph.name, names(ph.fire)), func() (bool, string) {
		active, err := h.activeAlerts()
		if err != nil {
			return false, err.Error()
		}
		now := time.Since(injected)
		present := map[string]bool{}
		for _, a := range active {
			e, ok := matched(a)
			if !ok {
				noteOther(a)
				continue
			}
			present[e.name] = true
			last[e.name] = a
			if _, ok := fired[e.name]; !ok {
				fired[e.name] = now
				t.Logf("e2e: phase %q: %s active in Alertmanager %v after the injection", ph.name, e.name, now.Round(100*time.Millisecond))
			}
		}
		for name := range fired {
			if _, ok := gone[name]; !ok && !present[name] {
				gone[name] = now
			}
		}
		return len(fired) == len(ph.fire), fmt.Sprintf("seen so far: %v\n%s", fired, h.state(ph.exprs...))
	})
	for _, e := range ph.fire {
		if _, ok := gone[e.name]; ok && !e.transient {
			t.Errorf("e2e: phase %q: %s resolved while the fault was still on (%v after the injection)", ph.name, e.name, gone[e.name])
		}
		h.checkAnnotations(t, last[e.name])
	}
	val := h.prom.describe(ph.value)
	t.Logf("e2e: phase %q: every alert arrived; value now:\n%s", ph.name, val)
	// Keep the fault on until Alertmanager has notified the webhook: an
	// alert that resolves within group_wait is never notified at all.
	h.waitNotified(t, ph, injected, false)
	if ph.whileFiring != nil {
		ph.whileFiring()
	}

	t.Logf("e2e: phase %q: clearing the fault", ph.name)
	cleared := time.Now()
	ph.clear()
	resolved := map[string]time.Duration{}
	h.eventually(t, resolveTimeout, fmt.Sprintf("phase %q: alerts %v resolve", ph.name, names(ph.fire)), func() (bool, string) {
		active, err := h.activeAlerts()
		if err != nil {
			return false, err.Error()
		}
		now := time.Since(cleared)
		still := map[string]bool{}
		for _, a := range active {
			if e, ok := matched(a); ok {
				still[e.name] = true
			} else {
				noteOther(a)
			}
		}
		for _, e := range ph.fire {
			if _, ok := resolved[e.name]; !ok && !still[e.name] {
				resolved[e.name] = now
				if _, early := gone[e.name]; !early {
					t.Logf("e2e: phase %q: %s gone from Alertmanager %v after the clear", ph.name, e.name, now.Round(100*time.Millisecond))
				}
			}
		}
		return len(resolved) == len(ph.fire), h.state(ph.exprs...)
	})
	// Alertmanager routed the resolution to the webhook too.
	h.waitNotified(t, ph, injected, true)

	// An agent starved of CPU (a busy CI machine) falls behind its own
	// schedule, drops events and sees everything late: then a forbidden
	// alert says nothing about the fault.
	overloaded := h.value(dropped) > droppedBefore
	for _, name := range ph.forbid {
		switch {
		case seenOther[name] && overloaded:
			t.Logf("e2e: phase %q: %s fired, but the agent dropped events of its own (overloaded machine): not counted", ph.name, name)
		case seenOther[name]:
			t.Errorf("e2e: phase %q: %s fired, but this fault must not raise it", ph.name, name)
		}
	}
	for _, e := range ph.fire {
		r := result{phase: ph.name, alert: e.name, fired: fired[e.name]}
		if g, ok := gone[e.name]; ok {
			r.resolvedEarly, r.resolved = true, g
		} else {
			r.resolved = resolved[e.name]
		}
		h.results = append(h.results, r)
	}
}

// waitNotified waits until the webhook got a firing (or resolved)
// notification for every alert of the phase.
func (h *harness) waitNotified(t *testing.T, ph phase, since time.Time, resolved bool) {
	t.Helper()
	kind := "firing"
	if resolved {
		kind = "resolved"
	}
	h.eventually(t, 30*time.Second, fmt.Sprintf("phase %q: webhook notified of %v %s", ph.name, names(ph.fire), kind), func() (bool, string) {
		var missing []string
		for _, e := range ph.fire {
			if !h.hook.notified(e.name, resolved, since) {
				missing = append(missing, e.name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("no %s notification yet for %v\n%s", kind, missing, h.state(ph.exprs...))
	})
}

func names(es []expectAlert) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.name)
	}
	return out
}

// checkAnnotations checks an alert as delivered: shipped severity,
// job label, runbook URL, and annotations that expanded without error.
func (h *harness) checkAnnotations(t *testing.T, a amAlert) {
	t.Helper()
	name := a.Labels["alertname"]
	if a.Labels["job"] != jobName && name != "SoakAgentAbsent" {
		t.Errorf("e2e: %s: job label %q, want %q", name, a.Labels["job"], jobName)
	}
	switch a.Labels["severity"] {
	case "critical", "warning", "info":
	default:
		t.Errorf("e2e: %s: severity %q", name, a.Labels["severity"])
	}
	if got, want := a.Annotations["runbook_url"], rules.RunbookURL(name); got != want {
		t.Errorf("e2e: %s: runbook_url %q, want %q", name, got, want)
	}
	for _, k := range []string{"summary", "description"} {
		v := a.Annotations[k]
		if strings.TrimSpace(v) == "" || strings.Contains(v, "<no value>") || strings.Contains(v, "error expanding") ||
			strings.Contains(v, "error executing") || strings.Contains(v, "NaN") {
			t.Errorf("e2e: %s: annotation %s did not expand cleanly: %q", name, k, v)
		}
	}
	t.Logf("e2e: %s description: %s", name, a.Annotations["description"])
}

// requireLeakConfig fails the test when the agent binary does not know the
// memory, leak, fan-out and push variables the test sets (it would ignore
// them, and the leak phase and the memory, fan-out and push panels would
// fail late and obscurely).
func (h *harness) requireLeakConfig(t *testing.T) {
	t.Helper()
	var missing []string
	for _, kv := range append(leakEnv(""), probesEnv()...) {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.Contains(h.help, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("e2e: `soak-exporter --help` does not list %v: the agent binary does not sample the target's memory, "+
			"run leak detection or the fan-out and push probes (cmd/soak-exporter must wire them)", missing)
	}
}

// panelsWithoutData lists dashboard queries (panel id/refId) that cannot
// have data in this setup, with the panel's title and the reason. A listed
// query that has data, or whose id now names another panel or none, fails
// the test, so the list cannot go stale.
var panelsWithoutData = map[string]struct{ panel, reason string }{
	"21/A": {"Cross-replica fan-out p95 vs 500 ms", "one target only, so every fan-out pair has sender_target == target " +
		"(cross-replica pairs need several targets, e.g. two fixtures sharing Redis)"},
	"48/A": {"Heap captures", "SOAK_HEAP_SNAPSHOT is off in this test (a capture pauses the target)"},
}

// checkPanels runs every query of every dashboard panel, with the
// dashboard's variables set to this stack's job, agent, target and leak
// window, as an instant query (it must return series) and as a range query
// over the whole run (at least one value that is not NaN: a dashboard
// shows a range, and ratios are NaN while nothing happens).
func (h *harness) checkPanels(t *testing.T) {
	t.Helper()
	qs, err := grafana.PanelQueries()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	if len(qs) == 0 {
		t.Fatal("e2e: the dashboard has no panel queries")
	}
	vars := grafana.DefaultVars(rateInterval)
	vars["job"] = jobName
	vars["instance"] = h.agent.addr
	vars["target"] = targetName
	vars["window"] = leakWindow
	windows := h.prom.describe(`count by (window) (soak_leak_suspected)`)
	if !strings.Contains(windows, fmt.Sprintf("window=%q", leakWindow)) {
		t.Errorf("e2e: the window label of the leak gauges is not %q (SOAK_LEAK_WINDOWS=%s):\n%s", leakWindow, leakWindow, windows)
	}
	listed := map[string]bool{}
	for _, q := range qs {
		key := fmt.Sprintf("%d/%s", q.PanelID, q.RefID)
		if ex, ok := panelsWithoutData[key]; ok {
			listed[key] = true
			if ex.panel != q.Panel {
				t.Errorf("e2e: panelsWithoutData[%s] is for panel %q, but %s is now %q: update the list", key, ex.panel, key, q.Panel)
			}
		}
		expr, err := grafana.Expand(q.Expr, vars)
		if err != nil {
			t.Errorf("e2e: panel %s %q: %v", key, q.Panel, err)
			continue
		}
		instant, err := h.prom.query(expr)
		if err != nil {
			t.Errorf("e2e: panel %s %q (%s row): query fails: %v\n  %s", key, q.Panel, q.Row, err, expr)
			continue
		}
		series, err := h.prom.queryRange(expr, h.start, 2*time.Second)
		if err != nil {
			t.Errorf("e2e: panel %s %q (%s row): range query fails: %v\n  %s", key, q.Panel, q.Row, err, expr)
			continue
		}
		hasNumber := slices.ContainsFunc(series, sample.hasNumber)
		ex, excused := panelsWithoutData[key]
		reason := ex.reason
		switch {
		case excused && (len(instant) > 0 || hasNumber):
			t.Errorf("e2e: panel %s %q is listed without data (%s) but has data now: remove it from panelsWithoutData", key, q.Panel, reason)
		case excused:
			t.Logf("e2e: panel %s %q: no data, as listed: %s", key, q.Panel, reason)
		case len(instant) == 0:
			t.Errorf("e2e: panel %s %q (%s row): the instant query returns no series\n  %s\n%s", key, q.Panel, q.Row, expr,
				h.prom.describe(metricNames(expr)...))
		case !hasNumber:
			t.Errorf("e2e: panel %s %q (%s row): every value over the run is NaN\n  %s\n  now: %v", key, q.Panel, q.Row, expr, instant)
		default:
			t.Logf("e2e: panel %s %q: %d series now, e.g. %s", key, q.Panel, len(instant), instant[0])
		}
	}
	for key, ex := range panelsWithoutData {
		if !listed[key] {
			t.Errorf("e2e: panelsWithoutData lists %s (%q), which the dashboard does not have: update the list", key, ex.panel)
		}
	}
}

// metricNames returns the metric and recording rule names used in expr, for
// diagnostics.
func metricNames(expr string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(expr, func(r rune) bool {
		return !(r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		if (strings.HasPrefix(f, "soak_") || strings.Contains(f, ":soak_") || strings.HasPrefix(f, "go_") ||
			strings.HasPrefix(f, "process_")) && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// summarize logs what fired and resolved, and when.
func (h *harness) summarize(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "e2e summary (total %v, for: %v, windows %v, scrape/eval %v/%v):\n",
		time.Since(h.start).Round(time.Second), ruleFor, ruleWindow, scrapeInterval, evalInterval)
	for _, r := range h.results {
		res := fmt.Sprintf("resolved %5.1fs after clear", r.resolved.Seconds())
		if r.resolvedEarly {
			res = fmt.Sprintf("resolved %5.1fs after inject (transient)", r.resolved.Seconds())
		}
		fmt.Fprintf(&b, "  %-22s %-30s fired %5.1fs after inject, %s\n", r.phase, r.alert, r.fired.Seconds(), res)
	}
	t.Log(b.String())
	if bad := h.hook.badRequests(); len(bad) > 0 {
		t.Errorf("e2e: the webhook got requests that are not Alertmanager notifications: %v", bad)
	}
}
