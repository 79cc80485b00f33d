package oneshot

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/logging"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/web"
)

// Old suite defaults of websocket-load-test.
const (
	loadDefaultDuration = 30 * time.Second
	loadDefaultWarmup   = 5 * time.Second
	// rampShare is the share of the warmup within which the pool is meant
	// to have dialled every client.
	rampShare = 0.8
)

// loadArgs are a loadtest's parsed arguments.
type loadArgs struct {
	url      string
	clients  int
	rate     float64
	duration time.Duration
	warmup   time.Duration
	cfg      Config
	// scenario is the scenario file (--scenario, else SOAK_SCENARIO_FILE).
	scenario string
}

func loadFlags(c *Config, scenarioFile *string) *flag.FlagSet {
	fs := newFlagSet("loadtest")
	fs.StringVar(scenarioFile, "scenario", *scenarioFile, "also run the scenario in `FILE` (steps on connect, then flows at its rate; see docs/scenarios.md), with the latency and loss criteria applied to each step (SOAK_SCENARIO_FILE)")
	fs.Var(&c.MinSuccessRatio, "min-success-ratio", "pass when the connection success rate is above `RATIO` (0.995 or 99.5%; SOAK_LOADTEST_MIN_SUCCESS_RATIO)")
	fs.Var(&c.MaxConnectP95, "max-connect-p95", "pass when the connection time p95 is below `DURATION` (500ms or 0.5; SOAK_LOADTEST_MAX_CONNECT_P95)")
	fs.Var(&c.MaxLatencyP95, "max-latency-p95", "pass when the event latency p95 is below `DURATION` (200ms or 0.2; SOAK_LOADTEST_MAX_LATENCY_P95)")
	fs.Var(&c.MaxLossRatio, "max-loss-ratio", "pass when the event loss rate is at most `RATIO` (0 or 0.1%; SOAK_LOADTEST_MAX_LOSS_RATIO)")
	reportFlags(fs, c)
	return fs
}

const loadUsage = `Usage: soak-exporter loadtest [flags] [server_url] [connections] [event_rate] [duration] [warmup]

Connects the clients (ramping up during the warmup), sends acked echo events
open-loop for the duration after the warmup, and checks the pass criteria.
The same positional parameters as the old websocket-load-test.ts:

  server_url   Socket.IO server URL (default: SOAK_TARGET_URL, else http://localhost:3000)
  connections  concurrent connections (default: SOAK_CLIENTS, 50)
  event_rate   acked events per second over all connections (default: SOAK_EVENT_RATE, 100)
  duration     measured duration after the warmup: seconds, or a Go duration (default 30)
  warmup       warmup, excluded from the event statistics (default 5)

Flags (before or after the positionals):
`

const loadUsageFooter = `
The connection (SOAK_DRIVER, SOAK_AUTH_TOKEN, SOAK_TLS_CA_FILE, SOAK_HEADERS, ...)
and the probe (SOAK_EVENT_NAME, SOAK_ACK_TIMEOUT, SOAK_EVENT_PAYLOAD_BYTES,
SOAK_CONNECT_TIMEOUT, ...) are configured as for the agent (soak-exporter --help).
SOAK_LISTEN_ADDRESS, if set, serves /metrics while the run lasts.

Exit status: 0 every criterion met, 1 a criterion failed or the run was
interrupted, 2 bad usage or the target unreachable at start.
`

// parseLoadArgs reads the loadtest's flags and positionals over the
// environment's values.
func parseLoadArgs(args []string, spec *envSpec, usage io.Writer) (loadArgs, error) {
	la := loadArgs{
		clients: spec.agent.Clients, rate: spec.agent.EventRate,
		duration: loadDefaultDuration, warmup: loadDefaultWarmup,
		cfg: spec.oneshot, scenario: spec.agent.ScenarioConfig.File,
	}
	pos, err := parseCommandLine(loadFlags(&la.cfg, &la.scenario), args, usage, loadUsage, loadUsageFooter,
		"server_url", "connections", "event_rate", "duration", "warmup")
	if err != nil {
		return la, err
	}
	if len(pos) > 0 {
		la.url = pos[0]
	}
	if len(pos) > 1 {
		n, err := strconv.Atoi(pos[1])
		if err != nil || n < 1 {
			return la, usagef("connections: want a whole number >= 1, got %q", pos[1])
		}
		la.clients = n
	}
	if len(pos) > 2 {
		if la.rate, err = parseRate("event_rate", "events per second", pos[2]); err != nil {
			return la, err
		}
	}
	if len(pos) > 3 {
		if la.duration, err = parseDuration(pos[3], time.Second); err != nil {
			return la, usagef("duration: %v", err)
		}
	}
	if len(pos) > 4 {
		if la.warmup, err = parseDuration(pos[4], time.Second); err != nil {
			return la, usagef("warmup: %v", err)
		}
	}
	if la.duration <= 0 {
		return la, usagef("duration: must be > 0")
	}
	if la.clients < 1 {
		return la, usagef("connections: must be >= 1 (SOAK_CLIENTS is %d)", la.clients)
	}
	return la, nil
}

// connectRateFor is the connect rate that dials every client within
// rampShare of the warmup (within a second when there is no warmup), never
// lower than the configured one.
func connectRateFor(configured float64, clients int, warmup time.Duration) float64 {
	ramp := rampShare * warmup.Seconds()
	if ramp < 1 {
		ramp = 1
	}
	return max(configured, float64(clients)/ramp)
}

// phase of a run, for the progress line.
type phase struct {
	name  string
	start time.Time
	total time.Duration
}

func runLoadtest(ctx context.Context, args []string, spec *envSpec, deps Deps, stdout, stderr io.Writer) int {
	la, err := parseLoadArgs(args, spec, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return ExitPass
	}
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter loadtest: %v\nRun 'soak-exporter loadtest --help' for usage.\n", err)
		return ExitUsage
	}
	ac := spec.agent
	ac.Clients = la.clients
	ac.EventRate = la.rate
	ac.ScenarioConfig.File = la.scenario
	ac.ConnectRate = connectRateFor(ac.ConnectRate, la.clients, la.warmup)
	for _, v := range []interface{ Validate() error }{spec.logging, spec.probe, ac, la.cfg} {
		if err := v.Validate(); err != nil {
			fmt.Fprintf(stderr, "soak-exporter loadtest: %v\n", err)
			return ExitUsage
		}
	}
	targets, err := resolveTargets(spec.probe, la.url)
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter loadtest: %v\n", err)
		return ExitUsage
	}
	outs, err := openOutputs(la.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter loadtest: %v\n", err)
		return ExitUsage
	}
	defer outs.close()
	log, err := logging.New(spec.logging, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter loadtest: %v\n", err)
		return ExitUsage
	}
	defer func() { _ = log.Sync() }()
	log = log.Named("loadtest")
	driver := deps.NewDriver(spec.probe, log)
	if err := preflight(ctx, driver, targets); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "soak-exporter loadtest: interrupted before the run started")
			return ExitFail
		}
		fmt.Fprintf(stderr, "soak-exporter loadtest: %v\n", err)
		return ExitUsage
	}

	now := deps.Now
	connRec := newRecorder(defaultReservoir, uint64(now().UnixNano()))
	latRec := newRecorder(defaultReservoir, uint64(now().UnixNano())+1)
	series := newTimeSeries(now)
	eng, err := newEngine(ac, driver, targets, log, connRec, latRec, series)
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter loadtest: %v\n", err)
		return ExitUsage
	}
	addr, stopWeb, err := serveMetrics(ctx, spec.serve, eng.reg, log,
		web.Page{Version: deps.Version, Mode: "one-shot loadtest", Driver: driver.Name()}, eng.running)
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter loadtest: %v\n", err)
		return ExitUsage
	}
	defer stopWeb()
	if addr != "" {
		log.Info("serving metrics during the run", zap.String("address", addr))
	}

	// The agent's own memory, every second, for the whole run.
	mem := newSelfMemory(now)
	memCtx, memStop := context.WithCancel(context.WithoutCancel(ctx))
	memDone := make(chan struct{})
	memTick := time.NewTicker(time.Second)
	go func() { defer close(memDone); mem.Run(memCtx, memTick.C) }()
	stopMem := func() { memTick.Stop(); memStop(); <-memDone }
	defer stopMem()

	var ph atomic.Pointer[phase]
	setPhase := func(name string, total time.Duration) { ph.Store(&phase{name: name, start: now(), total: total}) }
	stopProgress := progress(stderr, deps.IsTerminal(stderr), func() string {
		p := ph.Load()
		c := eng.counts()
		return fmt.Sprintf("loadtest %s %s/%s | connected %d/%d | sent %d acked %d lost %d | avg latency %s",
			p.name, fmtDuration(now().Sub(p.start).Round(time.Second)), fmtDuration(p.total),
			eng.connected(), eng.desired(), c.sent, c.acked, c.lost, fmtSeconds(latRec.mean()))
	})
	defer stopProgress()

	started := now()
	series.begin(started)
	connRec.enabled.Store(true) // connections: the whole run
	if la.warmup <= 0 {
		latRec.enabled.Store(true)
	}
	setPhase("warmup", la.warmup)
	stopPools := eng.start(ctx)
	defer stopPools()

	interrupted := !sleep(ctx, la.warmup)
	var base counts
	var baseSteps map[string]stepTally
	if la.warmup > 0 && !interrupted {
		// Resolve the warmup's events before counting, so that every event
		// counted belongs to the measured phase.
		eng.drain(ctx)
		base = eng.counts()
		baseSteps = eng.tally.stepCounts()
		latRec.enabled.Store(true)
		eng.tally.stepsOn.Store(true)
		eng.pause(false)
	}
	measureStart := now()
	setPhase("measuring", la.duration)
	if !interrupted {
		interrupted = !sleep(ctx, la.duration)
	}
	measured := now().Sub(measureStart)
	setPhase("draining", ac.AckTimeout)
	inFlight := eng.drain(ctx)
	final := eng.counts()
	stopPools()
	finished := now()
	stopProgress()
	stopMem()

	rep := buildLoadReport(loadInputs{
		args: la, agent: ac, targets: targets, driver: driver.Name(), version: deps.Version,
		started: started, finished: finished, measured: measured, interrupted: interrupted,
		whole: final, events: final.subEvents(base), inFlight: inFlight,
		steps: stepReports(eng.tally.stepCounts(), baseSteps), scenario: la.scenario != "",
		connect: connRec.summary(), latency: latRec.summary(), memory: mem.Points(),
		connectHist: connRec.histogram(), intervals: series.intervals(measureStart),
	})
	textOut := stdout
	if la.cfg.ReportJSON == "-" {
		textOut = stderr
	}
	var text bytes.Buffer
	renderLoad(&text, rep)
	_, _ = textOut.Write(text.Bytes())
	err = outs.write(stdout, rep,
		func() ([]byte, error) { return loadHTML(rep) },
		func() ([]byte, error) { return marshalJUnit(junitOfLoad(rep, hostname(), text.String())) })
	if err != nil {
		fmt.Fprintf(stderr, "soak-exporter loadtest: %v\n", err)
		return ExitFail
	}
	return rep.ExitCode
}

// mean is the running average of the recorded values, NaN when empty.
func (r *recorder) mean() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return math.NaN()
	}
	return r.sum / float64(r.n)
}

// LoadReport is the machine-readable report of a loadtest run. Durations
// are in seconds, ratios in [0, 1], memory in bytes.
type LoadReport struct {
	Command     string       `json:"command"`
	Version     string       `json:"version"`
	StartedAt   time.Time    `json:"started_at"`
	FinishedAt  time.Time    `json:"finished_at"`
	Interrupted bool         `json:"interrupted"`
	Settings    LoadSettings `json:"settings"`
	Connections ConnStats    `json:"connections"`
	Events      EventStats   `json:"events"`
	// Steps are the scenario's steps (with --scenario), measured phase only.
	Steps       []StepReport `json:"steps,omitempty"`
	Disconnects DisconnStats `json:"disconnections"`
	AgentMemory AgentMemory  `json:"agent_memory"`
	// Intervals is the timeline of the events (warmup included).
	Intervals Intervals   `json:"intervals"`
	Criteria  []Criterion `json:"criteria"`
	Passed    bool        `json:"passed"`
	ExitCode  int         `json:"exit_code"`
	// ActionItems say what to look at for each failed criterion.
	ActionItems []ActionItem `json:"action_items"`
	Notes       []string     `json:"notes"`
}

// LoadSettings are the parameters of a loadtest run.
type LoadSettings struct {
	Targets        []TargetInfo `json:"targets"`
	Driver         string       `json:"driver"`
	Connections    int          `json:"connections"`
	EventRate      float64      `json:"event_rate_per_second"`
	Duration       float64      `json:"duration_seconds"`
	Warmup         float64      `json:"warmup_seconds"`
	ConnectRate    float64      `json:"connect_rate_per_second"`
	ConnectTimeout float64      `json:"connect_timeout_seconds"`
	AckTimeout     float64      `json:"ack_timeout_seconds"`
	EventName      string       `json:"event_name"`
	PayloadBytes   int          `json:"payload_bytes"`
}

// ConnStats are the connection figures of the whole run (connections are
// made during the warmup).
type ConnStats struct {
	Attempts         uint64            `json:"attempts"`
	Established      uint64            `json:"established"`
	Failed           uint64            `json:"failed"`
	FailuresByReason map[string]uint64 `json:"failures_by_reason"`
	// SuccessRatio is Established / (Established + Failed).
	SuccessRatio Float `json:"success_ratio"`
	// Establishment is the time from dial start to the namespace CONNECT
	// answer of the successful attempts.
	Establishment Dist `json:"establishment_seconds"`
	// Histogram is the distribution of the establishment times.
	Histogram []HistBin `json:"establishment_histogram"`
}

// EventStats are the acked-echo figures of the measured phase (after the
// warmup).
type EventStats struct {
	Event    string  `json:"event"`
	Measured float64 `json:"measured_seconds"`
	Sent     uint64  `json:"sent"`
	Acked    uint64  `json:"acked"`
	// Lost events got no ack within the ack timeout; Late is how many of
	// them were acked afterwards.
	Lost uint64 `json:"lost"`
	Late uint64 `json:"late"`
	// Skipped events were due on a client that was not connected; Dropped
	// ones were not sent because the agent itself fell behind. Neither
	// counts as sent.
	Skipped        uint64 `json:"skipped"`
	Dropped        uint64 `json:"dropped"`
	UnexpectedAcks uint64 `json:"unexpected_acks"`
	// InFlight is how many were still unresolved when the run stopped (0
	// unless it was interrupted).
	InFlight  uint64 `json:"in_flight_at_end"`
	LossRatio Float  `json:"loss_ratio"`
	// Throughput is acked events per second of the measured phase.
	Throughput Float `json:"acked_per_second"`
	// Latency is from the scheduled send time to the ack (open loop).
	Latency Dist `json:"latency_seconds"`
}

// DisconnStats are the ends of established connections over the whole run.
type DisconnStats struct {
	// Unexpected counts every reason but io_client_disconnect (the agent's
	// own closes); Ratio is Unexpected per connection established.
	Unexpected uint64            `json:"unexpected"`
	ByReason   map[string]uint64 `json:"by_reason"`
	Ratio      Float             `json:"ratio"`
}

// AgentMemory is this process's own memory during the run.
type AgentMemory struct {
	Interval float64         `json:"interval_seconds"`
	Heap     SeriesReport    `json:"heap"`
	RSS      SeriesReport    `json:"rss"`
	Timeline []TimelinePoint `json:"timeline"`
}

type loadInputs struct {
	args              loadArgs
	agent             agent.Config
	targets           []*probe.Target
	driver, version   string
	started, finished time.Time
	measured          time.Duration
	interrupted       bool
	whole, events     counts
	inFlight          int
	connect, latency  Summary
	connectHist       []HistBin
	steps             []StepReport
	scenario          bool
	memory            []memPoint
	intervals         Intervals
}

func targetInfos(ts []*probe.Target) []TargetInfo {
	out := make([]TargetInfo, 0, len(ts))
	for _, t := range ts {
		u := *t.URL
		u.Path = t.Namespace
		if u.Path == "/" {
			u.Path = ""
		}
		out = append(out, TargetInfo{Name: t.Name, URL: u.String()})
	}
	return out
}

func ratio(num, den uint64) Float {
	if den == 0 {
		return Float(math.NaN())
	}
	return Float(float64(num) / float64(den))
}

func buildLoadReport(in loadInputs) LoadReport {
	la := in.args
	rep := LoadReport{
		Command: "loadtest", Version: in.version,
		StartedAt: in.started.UTC(), FinishedAt: in.finished.UTC(), Interrupted: in.interrupted,
		Settings: LoadSettings{
			Targets: targetInfos(in.targets), Driver: in.driver,
			Connections: la.clients, EventRate: la.rate,
			Duration: la.duration.Seconds(), Warmup: la.warmup.Seconds(),
			ConnectRate: in.agent.ConnectRate, ConnectTimeout: in.agent.ConnectTimeout.Seconds(),
			AckTimeout: in.agent.AckTimeout.Seconds(), EventName: in.agent.EventName, PayloadBytes: in.agent.PayloadBytes,
		},
		Notes: []string{},
	}
	w := in.whole
	failed := w.totalFailures()
	rep.Connections = ConnStats{
		Attempts: w.attempts, Established: in.connect.Count, Failed: failed,
		FailuresByReason: map[string]uint64{},
		SuccessRatio:     ratio(in.connect.Count, in.connect.Count+failed),
		Establishment:    distOf(in.connect),
		Histogram:        append([]HistBin{}, in.connectHist...),
	}
	for r, n := range w.failures {
		if n > 0 {
			rep.Connections.FailuresByReason[string(r)] = n
		}
	}
	rep.Disconnects = DisconnStats{Unexpected: w.unexpectedDisconnects(), ByReason: map[string]uint64{}}
	for r, n := range w.disconnects {
		if n > 0 {
			rep.Disconnects.ByReason[string(r)] = n
		}
	}
	rep.Disconnects.Ratio = ratio(rep.Disconnects.Unexpected, in.connect.Count)
	e := in.events
	rep.Events = EventStats{
		Event: in.agent.EventName, Measured: roundTo(in.measured.Seconds(), 3),
		Sent: e.sent, Acked: e.acked, Lost: e.lost, Late: e.late, Skipped: e.skipped, Dropped: e.dropped,
		UnexpectedAcks: e.unexpectedAcks, InFlight: uint64(max(in.inFlight, 0)),
		LossRatio: ratio(e.lost, e.sent), Throughput: Float(math.NaN()), Latency: distOf(in.latency),
	}
	if in.measured > 0 {
		rep.Events.Throughput = Float(roundTo(float64(e.acked)/in.measured.Seconds(), 3))
	}
	rep.AgentMemory = AgentMemory{
		Interval: 1,
		Heap:     seriesReport(statsOf(in.memory, heapOf)),
		RSS:      seriesReport(statsOf(in.memory, rssOf)),
		Timeline: timelineOf(in.memory),
	}
	rep.Intervals = in.intervals
	if rep.Intervals.Points == nil {
		rep.Intervals.Points = []IntervalPoint{}
	}
	rep.Steps = in.steps
	rep.Criteria = loadCriteria(la.cfg, rep)
	if in.scenario {
		if rep.Events.Sent == 0 {
			// No echo events (event_rate 0, as for an application without
			// an echo handler): the steps' criteria stand for them.
			rep.Criteria = rep.Criteria[:2]
		}
		rep.Criteria = append(rep.Criteria, stepCriteria(la.cfg, rep.Steps)...)
	}
	rep.ActionItems = loadActions(rep)
	rep.Passed = !in.interrupted
	for _, c := range rep.Criteria {
		rep.Passed = rep.Passed && c.Passed
	}
	rep.ExitCode = ExitPass
	if !rep.Passed {
		rep.ExitCode = ExitFail
	}
	rep.Notes = loadNotes(rep, in)
	return rep
}

// loadCriteria evaluates the pass criteria. A criterion without data (no
// connection, no event acked) fails and says why.
func loadCriteria(c Config, rep LoadReport) []Criterion {
	succ := float64(rep.Connections.SuccessRatio)
	cp95 := float64(rep.Connections.Establishment.P95)
	lp95 := float64(rep.Events.Latency.P95)
	loss := float64(rep.Events.LossRatio)
	out := []Criterion{
		{
			Name: "connection_success_ratio", Title: "Connection success rate", Op: ">", Unit: "ratio",
			Value: Float(succ), Threshold: Float(c.MinSuccessRatio),
			Observed: fmtPct(succ), Limit: "> " + fmtPct(float64(c.MinSuccessRatio)),
			Passed: succ > float64(c.MinSuccessRatio),
		},
		{
			Name: "connection_time_p95", Title: "Connection time p95", Op: "<", Unit: "seconds",
			Value: Float(cp95), Threshold: Float(time.Duration(c.MaxConnectP95).Seconds()),
			Observed: fmtSeconds(cp95), Limit: "< " + fmtSeconds(time.Duration(c.MaxConnectP95).Seconds()),
			Passed: cp95 < time.Duration(c.MaxConnectP95).Seconds(),
		},
		{
			Name: "event_latency_p95", Title: "Event latency p95", Op: "<", Unit: "seconds",
			Value: Float(lp95), Threshold: Float(time.Duration(c.MaxLatencyP95).Seconds()),
			Observed: fmtSeconds(lp95), Limit: "< " + fmtSeconds(time.Duration(c.MaxLatencyP95).Seconds()),
			Passed: lp95 < time.Duration(c.MaxLatencyP95).Seconds(),
		},
		{
			Name: "event_loss_ratio", Title: "Event loss rate", Op: "<=", Unit: "ratio",
			Value: Float(loss), Threshold: Float(c.MaxLossRatio),
			Observed: fmtPct(loss), Limit: "≤ " + fmtPct(float64(c.MaxLossRatio)),
			Passed: loss <= float64(c.MaxLossRatio),
		},
	}
	if math.IsNaN(succ) {
		out[0].Detail = "no connection attempt completed"
	}
	if math.IsNaN(cp95) {
		out[1].Detail = "no connection was established"
	}
	if math.IsNaN(lp95) {
		out[2].Detail = "no event was acked in the measured phase"
	}
	if math.IsNaN(loss) {
		out[3].Detail = "no event was sent in the measured phase"
	}
	return out
}

func loadNotes(rep LoadReport, in loadInputs) []string {
	var notes []string
	e := rep.Events
	if in.interrupted {
		notes = append(notes, fmt.Sprintf("The run was interrupted after %s of measurement: the figures cover a partial run and the result is a failure.", fmtSeconds(e.Measured)))
	}
	if e.InFlight > 0 {
		notes = append(notes, fmt.Sprintf("%d events were still awaiting their ack when the run stopped; they are counted neither acked nor lost.", e.InFlight))
	}
	if e.Skipped > 0 {
		notes = append(notes, fmt.Sprintf("%d events were due on clients that were not connected at the time; they were not sent and are not in the loss rate.", e.Skipped))
	}
	if e.Dropped > 0 {
		notes = append(notes, fmt.Sprintf("The agent itself fell behind: %d events were not sent (its own backlog was full or it was starved of CPU). The load was lower than asked; give it more CPU or lower the event rate.", e.Dropped))
	}
	if e.Late > 0 {
		notes = append(notes, fmt.Sprintf("%d of the lost events were acked after the ack timeout (%s).", e.Late, fmtSeconds(rep.Settings.AckTimeout)))
	}
	if e.UnexpectedAcks > 0 {
		notes = append(notes, fmt.Sprintf("The server sent %d acks for ids never sent or already resolved.", e.UnexpectedAcks))
	}
	if rep.Connections.Establishment.Sampled || e.Latency.Sampled {
		notes = append(notes, fmt.Sprintf("More than %d values were observed: percentiles come from a uniform sample of them (average, minimum and maximum are exact).", defaultReservoir))
	}
	if notes == nil {
		notes = []string{}
	}
	return notes
}

// renderLoad writes the text report.
func renderLoad(w io.Writer, r LoadReport) {
	s := r.Settings
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("soak-exporter loadtest (version %s)\n", r.Version)
	for _, t := range s.Targets {
		p("  Target:        %s (%s)\n", t.URL, t.Name)
	}
	p("  Driver:        %s\n", s.Driver)
	p("  Connections:   %d    Event rate: %s/s    Duration: %s    Warmup: %s\n",
		s.Connections, strconv.FormatFloat(s.EventRate, 'f', -1, 64),
		fmtDuration(time.Duration(s.Duration*float64(time.Second))), fmtDuration(time.Duration(s.Warmup*float64(time.Second))))
	p("  Ack timeout:   %s    Connect rate: %s/s\n", fmtSeconds(s.AckTimeout), strconv.FormatFloat(roundTo(s.ConnectRate, 2), 'f', -1, 64))
	p("\n")

	c := r.Connections
	p("Connections (whole run: connections are made during the warmup)\n")
	p("  Attempts:              %d\n", c.Attempts)
	p("  Established:           %d\n", c.Established)
	p("  Failed:                %d%s\n", c.Failed, reasons(c.FailuresByReason))
	p("  Success rate:          %s\n", fmtPct(float64(c.SuccessRatio)))
	d := c.Establishment
	p("  Establishment time:    avg %s  p50 %s  p95 %s  p99 %s\n",
		fmtSeconds(float64(d.Avg)), fmtSeconds(float64(d.P50)), fmtSeconds(float64(d.P95)), fmtSeconds(float64(d.P99)))
	dc := r.Disconnects
	p("  Unexpected disconnects: %d (%s of connections established)%s\n", dc.Unexpected, fmtPct(float64(dc.Ratio)), reasons(unexpectedOnly(dc.ByReason)))
	p("\n")

	e := r.Events
	p("Events %q (measured phase: %s after the warmup)\n", e.Event, fmtSeconds(e.Measured))
	p("  Sent:                  %d\n", e.Sent)
	p("  Acked:                 %d (%s/s)\n", e.Acked, strconv.FormatFloat(roundTo(float64(e.Throughput), 1), 'f', -1, 64))
	p("  Lost:                  %d (loss rate %s)\n", e.Lost, fmtPct(float64(e.LossRatio)))
	if e.Skipped > 0 || e.Dropped > 0 {
		p("  Not sent:              %d skipped (client not connected), %d dropped (agent behind)\n", e.Skipped, e.Dropped)
	}
	l := e.Latency
	p("  Latency:               avg %s  p50 %s  p95 %s  p99 %s  max %s\n",
		fmtSeconds(float64(l.Avg)), fmtSeconds(float64(l.P50)), fmtSeconds(float64(l.P95)), fmtSeconds(float64(l.P99)), fmtSeconds(float64(l.Max)))
	p("\n")

	m := r.AgentMemory
	p("Agent memory (this process, every %ss)\n", strconv.FormatFloat(m.Interval, 'f', -1, 64))
	if len(m.Timeline) == 0 {
		p("  no samples\n")
	} else {
		memLine(w, "Heap", m.Heap)
		memLine(w, "RSS", m.RSS)
	}
	p("\n")

	renderCriteria(w, r.Criteria)
	renderActions(w, r.ActionItems)
	for _, n := range r.Notes {
		p("Note: %s\n", n)
	}
	renderResult(w, r.Criteria, r.Interrupted)
}

func memLine(w io.Writer, name string, s SeriesReport) {
	if !s.Available {
		fmt.Fprintf(w, "  %-5s  not available on this system\n", name+":")
		return
	}
	fmt.Fprintf(w, "  %-5s  min %s  avg %s  max %s  %s\n", name+":",
		fmtMB(float64(s.Min)), fmtMB(float64(s.Avg)), fmtMB(float64(s.Max)), s.Sparkline)
}

func renderCriteria(w io.Writer, cs []Criterion) {
	fmt.Fprintln(w, "Pass criteria")
	width, vwidth := 0, 0
	for _, c := range cs {
		width = max(width, utf8.RuneCountInString(c.Title))
		vwidth = max(vwidth, utf8.RuneCountInString(c.Observed))
	}
	for _, c := range cs {
		fmt.Fprintf(w, "  %s %s  %s   (threshold %s)", mark(c.Passed), padRight(c.Title, width), padLeft(c.Observed, vwidth), c.Limit)
		if c.Detail != "" {
			fmt.Fprintf(w, ": %s", c.Detail)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func renderResult(w io.Writer, cs []Criterion, interrupted bool) {
	var failed []string
	for _, c := range cs {
		if !c.Passed {
			failed = append(failed, c.Title)
		}
	}
	switch {
	case interrupted:
		fmt.Fprintf(w, "Result: INTERRUPTED ❌ (the run did not complete)\n")
	case len(failed) == 0:
		fmt.Fprintf(w, "Result: PASSED ✅ (%d of %d criteria met)\n", len(cs), len(cs))
	default:
		fmt.Fprintf(w, "Result: FAILED ❌ (%d of %d criteria failed: %s)\n", len(failed), len(cs), strings.Join(failed, ", "))
	}
}

func padRight(s string, n int) string {
	return s + strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s)))
}

func padLeft(s string, n int) string {
	return strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s))) + s
}

// reasons prints a count map as " (a: 1, b: 2)", sorted by name.
func reasons(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func unexpectedOnly(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if k != string(probe.ReasonClientClose) {
			out[k] = v
		}
	}
	return out
}

// StepReport is one scenario step's figures in the measured phase.
type StepReport struct {
	Name      string `json:"name"`
	Sent      uint64 `json:"sent"`
	Answered  uint64 `json:"answered"`
	Rejected  uint64 `json:"rejected"`
	Lost      uint64 `json:"lost"`
	Late      uint64 `json:"late"`
	LossRatio Float  `json:"loss_ratio"`
	Latency   Dist   `json:"latency"`
	// WarmupOnly: the step ran before the measured phase only (an
	// on_connect step of clients that connected in the warmup); it has no
	// criteria.
	WarmupOnly bool `json:"warmup_only,omitempty"`
}

// stepReports turns the steps' tallies, less a base taken at the start of
// the measured phase, into reports sorted by name.
func stepReports(now, base map[string]stepTally) []StepReport {
	out := make([]StepReport, 0, len(now))
	for name, st := range now {
		b := base[name]
		r := StepReport{
			Name: name, Sent: st.sent - b.sent, Answered: st.answered - b.answered,
			Rejected: st.rejected - b.rejected, Lost: st.lost - b.lost, Late: st.late - b.late,
			Latency: distOf(st.latency.summary()),
		}
		// A rejected answer is not a good one: it counts against the loss
		// criterion as the echo probe's lost events do.
		r.LossRatio = ratio(r.Lost+r.Rejected, r.Sent)
		r.WarmupOnly = r.Sent == 0 && st.sent > 0
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b StepReport) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// stepCriteria applies the latency and loss criteria to each step.
func stepCriteria(c Config, steps []StepReport) []Criterion {
	maxLat := time.Duration(c.MaxLatencyP95).Seconds()
	var out []Criterion
	for _, st := range steps {
		if st.WarmupOnly {
			continue
		}
		p95, loss := float64(st.Latency.P95), float64(st.LossRatio)
		lat := Criterion{
			Name: "step_" + st.Name + "_latency_p95", Title: "Step " + st.Name + " latency p95", Op: "<", Unit: "seconds",
			Value: Float(p95), Threshold: Float(maxLat),
			Observed: fmtSeconds(p95), Limit: "< " + fmtSeconds(maxLat), Passed: p95 < maxLat,
		}
		if math.IsNaN(p95) {
			lat.Detail = "no answer in the measured phase"
		}
		ls := Criterion{
			Name: "step_" + st.Name + "_loss_ratio", Title: "Step " + st.Name + " loss rate", Op: "<=", Unit: "ratio",
			Value: Float(loss), Threshold: Float(c.MaxLossRatio),
			Observed: fmtPct(loss), Limit: "≤ " + fmtPct(float64(c.MaxLossRatio)), Passed: loss <= float64(c.MaxLossRatio),
		}
		if math.IsNaN(loss) {
			ls.Detail = "not sent in the measured phase"
		}
		out = append(out, lat, ls)
	}
	return out
}
