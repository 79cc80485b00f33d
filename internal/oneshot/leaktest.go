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
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/leak/detect"
	"github.com/generic-corp/soak-exporter/internal/leak/stats"
	"github.com/generic-corp/soak-exporter/internal/logging"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/web"
)

// Old suite defaults of memory-leak-test.
const (
	leakDefaultDuration = 5 * time.Minute
	leakDefaultSampling = 5 * time.Second
	leakDefaultActivity = 10.0 // actions per minute per client
	// Automatic bucket width bounds (see Config.LeakBucket).
	autoBucketMin = 30 * time.Second
	autoBucketMax = 5 * time.Minute
	// connectWait bounds the wait for the clients before the first sample.
	connectWaitExtra = time.Second
)

// leakArgs are a leaktest's parsed arguments.
type leakArgs struct {
	url      string
	duration time.Duration
	sampling time.Duration
	activity float64
	cfg      Config
}

func leakFlags(c *Config) *flag.FlagSet {
	fs := newFlagSet("leaktest")
	fs.IntVar(&c.LeakClients, "clients", c.LeakClients, "`N` Socket.IO clients kept connected (SOAK_LEAKTEST_CLIENTS)")
	fs.Float64Var(&c.MaxLeakRate, "max-leak-rate", c.MaxLeakRate, "pass when the least-squares leak rate is below this many `MB/hour` (SOAK_LEAKTEST_MAX_LEAK_RATE)")
	fs.StringVar(&c.LeakKind, "kind", c.LeakKind, "memory series the criteria judge: `KIND` heap, rss or auto (SOAK_LEAKTEST_KIND)")
	fs.Var(&c.LeakBucket, "bucket", "bucket width of the robust detector, `DURATION`, 0 for automatic (SOAK_LEAKTEST_BUCKET)")
	reportFlags(fs, c)
	return fs
}

const leakUsage = `Usage: soak-exporter leaktest [flags] [server_url] [duration_minutes] [sampling_seconds] [activity_rate]

Keeps clients connected and active while it samples the target's memory,
then reports growth, the least-squares leak rate with R² (as the old suite)
and the robust detector's verdict. The same positional parameters as the
old memory-leak-test.ts:

  server_url        Socket.IO server URL (default: SOAK_TARGET_URL, else http://localhost:3000)
  duration_minutes  run length: minutes, or a Go duration such as 90s (default 5)
  sampling_seconds  memory sampling interval: seconds, or a Go duration (default 5)
  activity_rate     acked echo events per minute per client (default 10)

The target's memory comes from SOAK_MEMORY_SCRAPE_URL (a Prometheus
endpoint of the target), or SOAK_MEMORY_PID / SOAK_MEMORY_PROCESS_MATCH (a
process on this host). With none set, <server_url>/metrics is tried.

Flags (before or after the positionals):
`

const leakUsageFooter = `
The connection and the probe are configured as for the agent
(soak-exporter --help). SOAK_LISTEN_ADDRESS, if set, serves /metrics while
the run lasts.

Exit status: 0 every criterion met, 1 a criterion failed or the run was
interrupted, 2 bad usage, or the target or the memory source unreachable
at start, 3 cannot tell (the run was too short for a robust leak verdict).
`

func parseLeakArgs(args []string, spec *envSpec, usage io.Writer) (leakArgs, error) {
	la := leakArgs{
		duration: leakDefaultDuration, sampling: leakDefaultSampling, activity: leakDefaultActivity,
		cfg: spec.oneshot,
	}
	pos, err := parseCommandLine(leakFlags(&la.cfg), args, usage, leakUsage, leakUsageFooter,
		"server_url", "duration_minutes", "sampling_seconds", "activity_rate")
	if err != nil {
		return la, err
	}
	if len(pos) > 0 {
		la.url = pos[0]
	}
	if len(pos) > 1 {
		if la.duration, err = parseDuration(pos[1], time.Minute); err != nil {
			return la, usagef("duration_minutes: %v", err)
		}
	}
	if len(pos) > 2 {
		if la.sampling, err = parseDuration(pos[2], time.Second); err != nil {
			return la, usagef("sampling_seconds: %v", err)
		}
	}
	if len(pos) > 3 {
		if la.activity, err = parseRate("activity_rate", "actions per minute per client", pos[3]); err != nil {
			return la, err
		}
	}
	switch {
	case la.sampling <= 0:
		return la, usagef("sampling_seconds: must be > 0")
	case la.duration < 2*la.sampling:
		return la, usagef("duration_minutes: must cover at least two samples (%s with sampling every %s)", la.duration, la.sampling)
	}
	return la, nil
}

// bucketFor is the robust detector's bucket width: the configured one, or
// min(5m, max(30s, 2 x sampling, duration/minBuckets)), so that a run long
// enough for minBuckets buckets can get a verdict while every bucket keeps
// at least two samples and, on long runs, the detector's tuned width.
func bucketFor(configured, duration, sampling time.Duration, minBuckets int) time.Duration {
	if configured > 0 {
		return configured
	}
	return min(autoBucketMax, max(autoBucketMin, 2*sampling, duration/time.Duration(max(minBuckets, 1))))
}

// detectorConfig is the detector's configuration (its SOAK_LEAK_*
// thresholds) with one window, the whole run, and no start-up grace (a
// one-shot run cannot wait for hours; the persistence guard still rejects
// warm-up curves that flatten).
func detectorConfig(c detect.Config, duration, bucket time.Duration) detect.Config {
	c.Windows = []time.Duration{duration}
	c.Bucket = bucket
	c.Grace = 0
	return c
}

func runLeaktest(ctx context.Context, args []string, spec *envSpec, deps Deps, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "soak-exporter leaktest: "+format+"\n", a...)
		return code
	}
	la, err := parseLeakArgs(args, spec, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return ExitPass
	}
	if err != nil {
		return fail(ExitUsage, "%v\nRun 'soak-exporter leaktest --help' for usage.", err)
	}
	ac := spec.agent
	ac.Clients = la.cfg.LeakClients
	ac.EventRate = float64(ac.Clients) * la.activity / 60
	for _, v := range []interface{ Validate() error }{spec.logging, spec.probe, ac, la.cfg} {
		if err := v.Validate(); err != nil {
			return fail(ExitUsage, "%v", err)
		}
	}
	bucket := bucketFor(time.Duration(la.cfg.LeakBucket), la.duration, la.sampling, spec.memory.MinBuckets)
	if err := spec.memory.Validate(); err != nil {
		return fail(ExitUsage, "%v", err)
	}
	dcfg := detectorConfig(spec.memory.Detect(), la.duration, bucket)
	if err := dcfg.Validate(); err != nil {
		return fail(ExitUsage, "robust detector (SOAK_LEAKTEST_BUCKET, SOAK_LEAK_*): %v", err)
	}
	targets, err := resolveTargets(spec.probe, la.url)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	outs, err := openOutputs(la.cfg)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	defer outs.close()
	log, err := logging.New(spec.logging, stderr)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	defer func() { _ = log.Sync() }()
	log = log.Named("leaktest")
	driver := deps.NewDriver(spec.probe, log)
	if err := preflight(ctx, driver, targets); err != nil {
		if ctx.Err() != nil {
			return fail(ExitFail, "interrupted before the run started")
		}
		return fail(ExitUsage, "%v", err)
	}

	src, err := openMemorySource(spec.memory, targets[0], la.sampling, deps.Now)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	defer src.Close()
	first, err := src.Read(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fail(ExitFail, "interrupted before the run started")
		}
		return fail(ExitUsage, "%s", memorySourceHelp(src, err))
	}
	kind := la.cfg.LeakKind
	switch {
	case kind == kindAuto && !math.IsNaN(first.Heap):
		kind = kindHeap
	case kind == kindAuto:
		kind = kindRSS
	case kind == kindHeap && math.IsNaN(first.Heap):
		return fail(ExitUsage, "SOAK_LEAKTEST_KIND: the memory source (%s) reports no heap; use --kind rss or a source that does (SOAK_MEMORY_SCRAPE_URL)", src.Describe())
	case kind == kindRSS && math.IsNaN(first.RSS):
		return fail(ExitUsage, "SOAK_LEAKTEST_KIND: the memory source (%s) reports no RSS; use --kind heap", src.Describe())
	}

	now := deps.Now
	connRec := newRecorder(defaultReservoir, uint64(now().UnixNano()))
	latRec := newRecorder(defaultReservoir, uint64(now().UnixNano())+1)
	connRec.enabled.Store(true)
	latRec.enabled.Store(true)
	eng, err := newEngine(ac, driver, targets, log, connRec, latRec, nil)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	addr, stopWeb, err := serveMetrics(ctx, spec.serve, eng.reg, log,
		web.Page{Version: deps.Version, Mode: "one-shot leaktest", Driver: driver.Name()}, eng.running)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	defer stopWeb()
	if addr != "" {
		log.Info("serving metrics during the run", zap.String("address", addr))
	}

	samp := newLeakSampler(src, dcfg, now, log)
	var elapsed atomic.Int64
	stopProgress := progress(stderr, deps.IsTerminal(stderr), func() string {
		c := eng.counts()
		return fmt.Sprintf("leaktest %s/%s | connected %d/%d | samples %d | %s %s | sent %d lost %d",
			fmtDuration(time.Duration(elapsed.Load()).Round(time.Second)), fmtDuration(la.duration),
			eng.connected(), eng.desired(), samp.count(), kind, fmtMB(samp.last(kind)), c.sent, c.lost)
	})
	defer stopProgress()

	started := now()
	stopPools := eng.start(ctx)
	defer stopPools()
	waitConnected(ctx, eng, ac.ConnectTimeout+connectWaitExtra)

	// Sample at the start and every interval until the run has lasted its
	// duration: the last sample is at least duration after the first.
	tick := time.NewTicker(la.sampling)
	samp.sample(ctx)
	t0 := now()
	interrupted := false
	for now().Sub(t0) < la.duration {
		select {
		case <-ctx.Done():
			interrupted = true
		case <-tick.C:
			samp.sample(ctx)
			elapsed.Store(int64(now().Sub(t0)))
		}
		if interrupted {
			break
		}
	}
	tick.Stop()
	inFlight := eng.drain(ctx)
	final := eng.counts()
	stopPools()
	finished := now()
	stopProgress()

	rep := buildLeakReport(leakInputs{
		args: la, agentCfg: ac, targets: targets, driver: driver.Name(), version: deps.Version,
		started: started, finished: finished, interrupted: interrupted,
		source: src.Describe(), guessed: src.Guessed(), kind: kind, bucket: bucket,
		points: samp.points(), errors: samp.errorCount(), lastErr: samp.lastError(), warnings: samp.warningList(),
		heap: samp.report(kindHeap), rss: samp.report(kindRSS),
		counts: final, inFlight: inFlight, connect: connRec.summary(), latency: latRec.summary(),
	})
	textOut := stdout
	if la.cfg.ReportJSON == "-" {
		textOut = stderr
	}
	var text bytes.Buffer
	renderLeak(&text, rep)
	_, _ = textOut.Write(text.Bytes())
	err = outs.write(stdout, rep,
		func() ([]byte, error) { return leakHTML(rep) },
		func() ([]byte, error) { return marshalJUnit(junitOfLeak(rep, hostname(), text.String())) })
	if err != nil {
		return fail(ExitFail, "%v", err)
	}
	return rep.ExitCode
}

// waitConnected waits until every client is connected, at most bound.
func waitConnected(ctx context.Context, e *engine, bound time.Duration) {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for e.connected() < e.desired() {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// leakSampler reads the memory source and feeds one detector per series.
type leakSampler struct {
	src  memSource
	now  func() time.Time
	log  *zap.Logger
	dets map[string]*detect.Detector

	pts      []memPoint
	n        atomic.Int64
	lastV    [2]atomic.Uint64 // heap, rss as float64 bits
	errs     int
	errMsg   string
	warnings []string // distinct partial-read problems, in order
}

func newLeakSampler(src memSource, cfg detect.Config, now func() time.Time, log *zap.Logger) *leakSampler {
	s := &leakSampler{src: src, now: now, log: log, dets: map[string]*detect.Detector{}}
	for _, k := range []string{kindHeap, kindRSS} {
		d, err := detect.New(cfg)
		if err != nil { // validated by the caller
			panic(err)
		}
		s.dets[k] = d
	}
	s.lastV[0].Store(math.Float64bits(math.NaN()))
	s.lastV[1].Store(math.Float64bits(math.NaN()))
	return s
}

// sample reads one point. A failed read is counted and leaves a gap.
func (s *leakSampler) sample(ctx context.Context) {
	r, err := s.src.Read(ctx)
	t := s.now()
	if err != nil {
		if ctx.Err() == nil {
			s.errs++
			s.errMsg = err.Error()
			s.log.Warn("memory sample failed", zap.Error(err))
		}
		return
	}
	if r.Warning != "" && !slices.Contains(s.warnings, r.Warning) && len(s.warnings) < 5 {
		s.warnings = append(s.warnings, r.Warning)
	}
	s.pts = append(s.pts, memPoint{T: t, Heap: r.Heap, RSS: r.RSS})
	s.n.Add(1)
	for i, v := range []float64{r.Heap, r.RSS} {
		s.lastV[i].Store(math.Float64bits(v))
		if math.IsNaN(v) {
			continue
		}
		k := []string{kindHeap, kindRSS}[i]
		if err := s.dets[k].Add(detect.Point{Time: t, Bytes: v, Start: r.Start}); err != nil {
			s.log.Debug("sample rejected by the detector", zap.String("kind", k), zap.Error(err))
		}
	}
}

func (s *leakSampler) count() int64 { return s.n.Load() }

func (s *leakSampler) last(kind string) float64 {
	if kind == kindHeap {
		return math.Float64frombits(s.lastV[0].Load())
	}
	return math.Float64frombits(s.lastV[1].Load())
}

func (s *leakSampler) points() []memPoint    { return s.pts }
func (s *leakSampler) errorCount() int       { return s.errs }
func (s *leakSampler) lastError() string     { return s.errMsg }
func (s *leakSampler) warningList() []string { return s.warnings }

// report computes one series' figures: the old suite's least squares over
// every sample, and the robust detector's evaluation at the last sample.
func (s *leakSampler) report(kind string) LeakSeries {
	pick := heapOf
	if kind == kindRSS {
		pick = rssOf
	}
	st := statsOf(s.pts, pick)
	ls := LeakSeries{SeriesReport: seriesReport(st), LeakRate: Float(math.NaN()), RSquared: Float(math.NaN())}
	if st.N >= 2 {
		xs := make([]float64, 0, st.N)
		ys := make([]float64, 0, st.N)
		for _, p := range s.pts {
			if v := pick(p); !math.IsNaN(v) {
				xs = append(xs, p.T.Sub(st.InitialT).Seconds())
				ys = append(ys, v)
			}
		}
		if slope, _, r2, ok := stats.OLS(xs, ys); ok {
			ls.LeakRate = Float(slope * 3600 / detect.MB)
			ls.RSquared = Float(r2)
		}
	}
	var at time.Time
	if st.Available {
		at = st.FinalT
	}
	ls.Robust = robustReport(s.dets[kind], at)
	return ls
}

// LeakReport is the machine-readable report of a leaktest run. Memory is
// in bytes, leak rates in MB/hour (1 MB = 10^6 bytes), durations in
// seconds.
type LeakReport struct {
	Command     string          `json:"command"`
	Version     string          `json:"version"`
	StartedAt   time.Time       `json:"started_at"`
	FinishedAt  time.Time       `json:"finished_at"`
	Interrupted bool            `json:"interrupted"`
	Settings    LeakSettings    `json:"settings"`
	Source      SourceInfo      `json:"memory_source"`
	Heap        LeakSeries      `json:"heap"`
	RSS         LeakSeries      `json:"rss"`
	Timeline    []TimelinePoint `json:"timeline"`
	Activity    Activity        `json:"activity"`
	Criteria    []Criterion     `json:"criteria"`
	Passed      bool            `json:"passed"`
	ExitCode    int             `json:"exit_code"`
	// ActionItems say what to look at for each failed criterion.
	ActionItems []ActionItem `json:"action_items"`
	Notes       []string     `json:"notes"`
}

// LeakSettings are the parameters of a leaktest run.
type LeakSettings struct {
	Targets  []TargetInfo `json:"targets"`
	Driver   string       `json:"driver"`
	Duration float64      `json:"duration_seconds"`
	Sampling float64      `json:"sampling_seconds"`
	// Activity is acked echo events per minute per client.
	Activity  float64 `json:"activity_rate_per_minute"`
	Clients   int     `json:"clients"`
	EventRate float64 `json:"event_rate_per_second"`
	// Kind is the series the criteria judge (heap or rss).
	Kind        string  `json:"kind"`
	MaxLeakRate float64 `json:"max_leak_rate_mb_per_hour"`
	Bucket      float64 `json:"bucket_seconds"`
}

// SourceInfo says where the target's memory came from.
type SourceInfo struct {
	Description string `json:"description"`
	// Guessed is true when no SOAK_MEMORY_* variable named a source and
	// <server_url>/metrics was used.
	Guessed bool `json:"guessed"`
	// Errors counts failed reads (gaps in the timeline).
	Errors    int    `json:"errors"`
	LastError string `json:"last_error,omitempty"`
	// Warnings are problems of reads that still gave a value (a series
	// missing from the source).
	Warnings []string `json:"warnings"`
}

// LeakSeries is one memory series of a leaktest.
type LeakSeries struct {
	SeriesReport
	// LeakRate is the least-squares slope over every sample, in MB/hour,
	// and RSquared its coefficient of determination (the old suite's
	// "confidence").
	LeakRate Float        `json:"leak_rate_mb_per_hour"`
	RSquared Float        `json:"r_squared"`
	Robust   RobustReport `json:"robust"`
}

// RobustReport is the robust detector's evaluation of one series.
type RobustReport struct {
	// Verdict is no_leak, leak_suspected or insufficient_data.
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	// TooShort is true when the run was too short (too few buckets) for a
	// verdict.
	TooShort      bool    `json:"too_short"`
	Window        float64 `json:"window_seconds"`
	Bucket        float64 `json:"bucket_seconds"`
	Buckets       int     `json:"buckets"`
	FilledBuckets int     `json:"filled_buckets"`
	MinBuckets    int     `json:"min_buckets"`
	// FloorSlope is the Theil-Sen slope of the bucket minima (MB/hour);
	// MinSlope the practical threshold; P the Mann-Kendall p-value.
	FloorSlope Float `json:"floor_slope_mb_per_hour"`
	MinSlope   Float `json:"min_slope_mb_per_hour"`
	P          Float `json:"p_value"`
	Restarts   int   `json:"restarts"`
}

func robustReport(d *detect.Detector, at time.Time) RobustReport {
	cfg := d.Config()
	rep := d.Evaluate(at, 0)
	r := rep.Deciding()
	out := RobustReport{
		Verdict: rep.Verdict.String(), Reason: rep.Reason,
		Window: r.Window.Seconds(), Bucket: r.BucketWidth.Seconds(), Buckets: r.Buckets,
		FilledBuckets: r.FilledBuckets, MinBuckets: cfg.MinBuckets,
		FloorSlope: Float(r.FloorSlope * 3600 / detect.MB), MinSlope: Float(r.MinSlope * 3600 / detect.MB),
		P: Float(r.P), Restarts: rep.Restarts,
	}
	if rep.Verdict == detect.InsufficientData && (r.Buckets < cfg.MinBuckets || r.Covered < r.Window) {
		out.TooShort = true
	}
	return out
}

// Activity is what the clients did during a leaktest.
type Activity struct {
	Established uint64 `json:"connections_established"`
	Failed      uint64 `json:"connections_failed"`
	Unexpected  uint64 `json:"unexpected_disconnects"`
	Sent        uint64 `json:"events_sent"`
	Acked       uint64 `json:"events_acked"`
	Lost        uint64 `json:"events_lost"`
	InFlight    uint64 `json:"events_in_flight_at_end"`
	LossRatio   Float  `json:"loss_ratio"`
	Latency     Dist   `json:"latency_seconds"`
}

type leakInputs struct {
	args              leakArgs
	agentCfg          agent.Config
	targets           []*probe.Target
	driver, version   string
	started, finished time.Time
	interrupted       bool
	source            string
	guessed           bool
	kind              string
	bucket            time.Duration
	points            []memPoint
	errors            int
	lastErr           string
	warnings          []string
	heap, rss         LeakSeries
	counts            counts
	inFlight          int
	connect, latency  Summary
}

func buildLeakReport(in leakInputs) LeakReport {
	la := in.args
	rep := LeakReport{
		Command: "leaktest", Version: in.version,
		StartedAt: in.started.UTC(), FinishedAt: in.finished.UTC(), Interrupted: in.interrupted,
		Settings: LeakSettings{
			Targets: targetInfos(in.targets), Driver: in.driver,
			Duration: la.duration.Seconds(), Sampling: la.sampling.Seconds(), Activity: la.activity,
			Clients: in.agentCfg.Clients, EventRate: roundTo(in.agentCfg.EventRate, 6),
			Kind: in.kind, MaxLeakRate: la.cfg.MaxLeakRate, Bucket: in.bucket.Seconds(),
		},
		Source: SourceInfo{
			Description: in.source, Guessed: in.guessed, Errors: in.errors, LastError: in.lastErr,
			Warnings: append([]string{}, in.warnings...),
		},
		Heap:     in.heap,
		RSS:      in.rss,
		Timeline: timelineOf(in.points),
	}
	c := in.counts
	rep.Activity = Activity{
		Established: in.connect.Count, Failed: c.totalFailures(), Unexpected: c.unexpectedDisconnects(),
		Sent: c.sent, Acked: c.acked, Lost: c.lost, InFlight: uint64(max(in.inFlight, 0)),
		LossRatio: ratio(c.lost, c.sent), Latency: distOf(in.latency),
	}
	rep.Criteria = leakCriteria(la.cfg, in.kind, rep.series(in.kind))
	rep.ActionItems = leakActions(rep)
	rep.Passed = !in.interrupted
	for _, cr := range rep.Criteria {
		rep.Passed = rep.Passed && cr.Passed
	}
	switch {
	case !rep.Passed:
		rep.ExitCode = ExitFail
	case rep.series(in.kind).Robust.Verdict == detect.InsufficientData.String():
		// Cannot tell (as leak analyze): never a pass.
		rep.ExitCode = ExitCannotTell
		rep.Passed = false
	default:
		rep.ExitCode = ExitPass
	}
	rep.Notes = leakNotes(rep)
	return rep
}

func (r LeakReport) series(kind string) LeakSeries {
	if kind == kindRSS {
		return r.RSS
	}
	return r.Heap
}

func kindTitle(kind string) string {
	if kind == kindRSS {
		return "RSS"
	}
	return "Heap"
}

func leakCriteria(c Config, kind string, s LeakSeries) []Criterion {
	rate := float64(s.LeakRate)
	title := kindTitle(kind)
	out := []Criterion{
		{
			Name: "leak_rate", Title: title + " leak rate", Op: "<", Unit: "mb_per_hour",
			Value: Float(rate), Threshold: Float(c.MaxLeakRate),
			Observed: fmtRate(rate), Limit: "< " + fmtRate(c.MaxLeakRate),
			Passed: rate < c.MaxLeakRate,
		},
		{
			Name: "robust_verdict", Title: title + " robust verdict", Op: "!=", Unit: "verdict",
			Value: Float(math.NaN()), Threshold: Float(math.NaN()),
			Observed: s.Robust.Verdict, Limit: "not " + detect.LeakSuspected.String(),
			Passed: s.Robust.Verdict != detect.LeakSuspected.String(),
		},
	}
	if math.IsNaN(rate) {
		out[0].Detail = "fewer than two memory samples"
	}
	if s.Robust.TooShort {
		out[1].Detail = "run too short for a verdict (does not fail the run)"
	}
	return out
}

func leakNotes(r LeakReport) []string {
	notes := []string{}
	if r.Interrupted {
		notes = append(notes, "The run was interrupted: the figures cover a partial run and the result is a failure.")
	}
	if r.Source.Guessed {
		notes = append(notes, fmt.Sprintf("No SOAK_MEMORY_SCRAPE_URL, SOAK_MEMORY_PID or SOAK_MEMORY_PROCESS_MATCH was set: the target's memory was read from %s.", r.Source.Description))
	}
	for _, w := range r.Source.Warnings {
		notes = append(notes, "The memory source answered only in part: "+w+".")
	}
	if r.Source.Errors > 0 {
		notes = append(notes, fmt.Sprintf("%d memory samples failed and left gaps (last error: %s).", r.Source.Errors, r.Source.LastError))
	}
	s := r.series(r.Settings.Kind)
	if s.Robust.TooShort && !r.Interrupted {
		notes = append(notes, fmt.Sprintf("The robust detector needs at least %d buckets of %s (each must span a full GC cycle of the target): a run of at least %s, or a smaller --bucket. Until then only the least-squares rate, which short runs and GC sawtooth mislead, decides.",
			s.Robust.MinBuckets, fmtDuration(time.Duration(s.Robust.Bucket*float64(time.Second))),
			fmtDuration(time.Duration(float64(s.Robust.MinBuckets)*s.Robust.Bucket*float64(time.Second)))))
	}
	if s.Robust.Restarts > 0 {
		notes = append(notes, fmt.Sprintf("The target restarted %d times during the run (its memory fell by more than half or its start time changed); the robust detector only judged the last segment.", s.Robust.Restarts))
	}
	if r.Activity.InFlight > 0 {
		notes = append(notes, fmt.Sprintf("%d events were still awaiting their ack when the run stopped.", r.Activity.InFlight))
	}
	return notes
}

// renderLeak writes the text report.
func renderLeak(w io.Writer, r LeakReport) {
	s := r.Settings
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("soak-exporter leaktest (version %s)\n", r.Version)
	for _, t := range s.Targets {
		p("  Target:        %s (%s)\n", t.URL, t.Name)
	}
	p("  Memory source: %s\n", r.Source.Description)
	p("  Duration: %s    Sampling: every %s    Activity: %s actions/min x %d clients (%s events/s)\n",
		fmtDuration(secondsDuration(s.Duration)), fmtDuration(secondsDuration(s.Sampling)),
		strconv.FormatFloat(s.Activity, 'f', -1, 64), s.Clients, strconv.FormatFloat(roundTo(s.EventRate, 2), 'f', -1, 64))
	p("\n")
	for _, k := range []string{kindHeap, kindRSS} {
		renderLeakSeries(w, k, r.series(k), k == s.Kind, r.Interrupted)
	}
	a := r.Activity
	p("Activity\n")
	p("  Connections:   %d established, %d failed, %d unexpected disconnects\n", a.Established, a.Failed, a.Unexpected)
	p("  Events:        %d sent, %d acked, %d lost (loss rate %s), latency p95 %s\n",
		a.Sent, a.Acked, a.Lost, fmtPct(float64(a.LossRatio)), fmtSeconds(float64(a.Latency.P95)))
	p("\n")
	renderCriteria(w, r.Criteria)
	renderActions(w, r.ActionItems)
	for _, n := range r.Notes {
		p("Note: %s\n", n)
	}
	if r.ExitCode == ExitCannotTell {
		fmt.Fprintf(w, "Result: CANNOT TELL ❔ (every criterion met, but the run was too short for a robust leak verdict: run longer; exit 3)\n")
	} else {
		renderResult(w, r.Criteria, r.Interrupted)
	}
}

func renderLeakSeries(w io.Writer, kind string, s LeakSeries, judged, interrupted bool) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	title := kindTitle(kind)
	if judged {
		title += " (judged by the criteria)"
	}
	p("%s\n", title)
	if !s.Available {
		p("  not reported by this memory source\n\n")
		return
	}
	growthPct := "n/a"
	if g := float64(s.GrowthRatio); !math.IsNaN(g) {
		growthPct = fmt.Sprintf("%+.1f%%", g*100)
	}
	p("  Initial %s   Final %s   Growth %s (%s)\n", fmtMB(float64(s.Initial)), fmtMB(float64(s.Final)), fmtSignedMB(float64(s.Growth)), growthPct)
	p("  Min %s   Avg %s   Max %s   (%d samples)\n", fmtMB(float64(s.Min)), fmtMB(float64(s.Avg)), fmtMB(float64(s.Max)), s.Samples)
	r2 := "n/a"
	if v := float64(s.RSquared); !math.IsNaN(v) {
		r2 = fmt.Sprintf("%.2f", v)
	}
	p("  Leak rate (least squares, as the old suite): %s, R² %s\n", fmtRate(float64(s.LeakRate)), r2)
	rb := s.Robust
	verdict := rb.Verdict
	switch {
	case rb.TooShort && interrupted:
		verdict = "no verdict (run interrupted)"
	case rb.TooShort:
		verdict = "run too short for a verdict"
	}
	p("  Robust detector: %s (%s)\n", verdict, rb.Reason)
	if !math.IsNaN(float64(rb.FloorSlope)) {
		pv := "n/a"
		if v := float64(rb.P); !math.IsNaN(v) {
			pv = fmt.Sprintf("%.3g", v)
		}
		p("    floor slope %s (practical minimum %s), trend p-value %s, %d of %d buckets of %s\n",
			fmtRate(float64(rb.FloorSlope)), fmtRate(float64(rb.MinSlope)), pv, rb.FilledBuckets, rb.Buckets,
			fmtDuration(secondsDuration(rb.Bucket)))
	}
	p("  Timeline: %s\n\n", s.Sparkline)
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
