package leak

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is advanced by the test only.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fakeTicker struct {
	c       chan time.Time
	stopped chan struct{}
}

func (f *fakeTicker) C() <-chan time.Time { return f.c }
func (f *fakeTicker) Stop()               { close(f.stopped) }

// scripted returns a value (or error) per call from a function of the
// clock.
type scripted struct {
	source string
	clock  *fakeClock
	f      func(t time.Time) (Sample, error)
}

func (s *scripted) Source() string { return s.source }
func (s *scripted) Sample(ctx context.Context) (Sample, error) {
	return s.f(s.clock.Now())
}

func newTestMonitor(t *testing.T, cfg Config, samplers ...Sampler) (*Monitor, *prometheus.Registry, *fakeClock, *observer.ObservedLogs) {
	t.Helper()
	return newTestMonitorOpts(t, cfg, nil, samplers...)
}

func newTestMonitorOpts(t *testing.T, cfg Config, opts []Option, samplers ...Sampler) (*Monitor, *prometheus.Registry, *fakeClock, *observer.ObservedLogs) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	for _, s := range samplers {
		s.(*scripted).clock = clock
	}
	core, logs := observer.New(zap.DebugLevel)
	reg := prometheus.NewPedanticRegistry()
	m, err := New(cfg, zap.New(core), reg, append([]Option{WithClock(clock.Now), WithSamplers(samplers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg, clock, logs
}

func leakCfg() Config {
	c := DefaultConfig()
	c.Windows = []time.Duration{time.Hour}
	c.Grace = 0
	c.EvaluateInterval = time.Minute
	return c
}

func TestMonitorDetectsLeakAndExports(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	target := &scripted{source: SourceScrape, f: func(now time.Time) (Sample, error) {
		s := now.Sub(start).Seconds()
		floor := 100e6 + 60e6*s/3600 // 60 MB/h
		heap := floor * (1 + 0.3*math.Mod(s, 60)/60)
		return Sample{Time: now, StartTime: 1_699_990_000, Readings: []Reading{
			{Kind: KindHeap, Bytes: heap}, {Kind: KindRSS, Bytes: 2 * floor, Limit: 4e9},
		}}, nil
	}}
	cfg := leakCfg()
	cfg.HeapLimitBytes = 1e9
	type change struct {
		source, kind string
		suspected    bool
		at           time.Time
	}
	var changes []change
	onChange := func(source, kind string, suspected bool, at time.Time) {
		changes = append(changes, change{source, kind, suspected, at})
	}
	m, reg, clock, logs := newTestMonitorOpts(t, cfg, []Option{WithOnChange(onChange)}, target)
	for range 2 * 720 { // two hours of 5 s samples
		m.Tick(context.Background())
		clock.Add(5 * time.Second)
	}
	// One call per series, at the evaluation that raised the held verdict,
	// never one per evaluation.
	if len(changes) != 2 || !changes[0].suspected || !changes[1].suspected {
		t.Fatalf("OnChange calls %+v, want one suspected=true per series", changes)
	}
	reps := m.Reports()
	if len(reps) != 2 || reps[0].Kind != KindHeap || reps[0].Report.Verdict.String() != "leak_suspected" {
		t.Fatalf("reports %+v", reps)
	}
	if reps[0].Limit != 1e9 || reps[1].Limit != 4e9 {
		t.Errorf("limits %v %v", reps[0].Limit, reps[1].Limit)
	}
	if n := logs.FilterMessage("memory leak suspected").Len(); n != 2 {
		t.Errorf("%d leak warnings, want 2 (heap and rss)", n)
	}
	if problems, err := testutil.CollectAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	if !reps[0].Report.Since.Equal(changes[0].at) {
		t.Errorf("Since %v, OnChange at %v", reps[0].Report.Since, changes[0].at)
	}
	want := fmt.Sprintf(`
# HELP soak_leak_suspected Held leak verdict: 1 on the window that raised it while a leak is suspected (held while the floor keeps rising, see docs/leak-detection.md), else 0.
# TYPE soak_leak_suspected gauge
soak_leak_suspected{kind="heap",source="scrape",window="1h"} 1
soak_leak_suspected{kind="rss",source="scrape",window="1h"} 1
# HELP soak_leak_suspected_since_timestamp_seconds Unix time when the held leak verdict became true; 0 while no leak is suspected.
# TYPE soak_leak_suspected_since_timestamp_seconds gauge
soak_leak_suspected_since_timestamp_seconds{kind="heap",source="scrape"} %[1]d
soak_leak_suspected_since_timestamp_seconds{kind="rss",source="scrape"} %[2]d
`, changes[0].at.Unix(), changes[1].at.Unix())
	want += `# HELP soak_memory_limit_bytes Memory limit used for projections: configured, or discovered (cgroup, GOMEMLIMIT), bytes.
# TYPE soak_memory_limit_bytes gauge
soak_memory_limit_bytes{kind="heap",source="scrape"} 1e+09
soak_memory_limit_bytes{kind="rss",source="scrape"} 4e+09
# HELP soak_memory_sample_errors_total Failed or partial memory samples, by source.
# TYPE soak_memory_sample_errors_total counter
soak_memory_sample_errors_total{source="scrape"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "soak_leak_suspected", "soak_leak_suspected_since_timestamp_seconds", "soak_memory_limit_bytes", "soak_memory_sample_errors_total"); err != nil {
		t.Error(err)
	}
	// Every contract family is exported with its labels.
	for name, n := range map[string]int{
		"soak_memory_bytes": 2, "soak_leak_slope_bytes_per_second": 4, "soak_leak_r_squared": 4, "soak_leak_trend_p_value": 2,
		"soak_leak_window_samples": 2, "soak_leak_baseline_bytes": 2, "soak_leak_window_suspected": 2, "soak_leak_seconds_to_limit": 2,
	} {
		if got := testutil.CollectAndCount(&collector{m: m}, name); got != n {
			t.Errorf("%s: %d series, want %d", name, got, n)
		}
	}
	slope := testutil.ToFloat64(onlyMetric(t, reg, "soak_leak_slope_bytes_per_second", map[string]string{"kind": "heap", "estimator": "theil_sen"}))
	if math.Abs(slope*3600/1e6-60) > 1 {
		t.Errorf("theil_sen slope %.2f MB/h, want 60", slope*3600/1e6)
	}
}

// onlyMetric returns a collector of the one gathered series of name whose
// labels include want.
func onlyMetric(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			g.Set(m.GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no %s %v", name, want)
	return nil
}

func TestMonitorFailingSourceIsCountedNotFatal(t *testing.T) {
	fail := true
	src := &scripted{source: SourceProcfs, f: func(now time.Time) (Sample, error) {
		if fail {
			return Sample{}, errors.New("procfs: pid 7: no such process")
		}
		return Sample{Time: now, Readings: []Reading{{Kind: KindRSS, Bytes: 1e8}}}, nil
	}}
	m, reg, clock, logs := newTestMonitor(t, leakCfg(), src)
	for range 3 {
		m.Tick(context.Background())
		clock.Add(5 * time.Second)
	}
	fail = false
	m.Tick(context.Background())
	if got := testutil.ToFloat64(m.errors.WithLabelValues(SourceProcfs)); got != 3 {
		t.Errorf("errors %v, want 3", got)
	}
	if w, d := logs.FilterMessage("memory sample failed; retrying every interval").Len(), logs.FilterMessage("memory sample failed").Len(); w != 1 || d != 2 {
		t.Errorf("warn %d debug %d, want one warning then debug", w, d)
	}
	if logs.FilterMessage("memory sampling recovered").Len() != 1 {
		t.Error("no recovery log")
	}
	if n := testutil.CollectAndCount(reg, "soak_memory_bytes"); n != 1 {
		t.Errorf("%d memory series", n)
	}
}

func TestMonitorEvaluatesOnSchedule(t *testing.T) {
	src := &scripted{source: SourceSelf, f: func(now time.Time) (Sample, error) {
		return Sample{Time: now, Readings: []Reading{{Kind: KindHeap, Bytes: 1e7}}}, nil
	}}
	cfg := leakCfg()
	cfg.EvaluateInterval = 30 * time.Second
	m, _, clock, _ := newTestMonitor(t, cfg, src)
	evals := 0
	var last time.Time
	for range 24 { // 2 minutes
		m.Tick(context.Background())
		if m.lastEval != last {
			evals++
			last = m.lastEval
		}
		clock.Add(5 * time.Second)
	}
	if evals != 4 {
		t.Errorf("%d evaluations in 2 minutes, want 4 (every 30 s)", evals)
	}
}

func TestMonitorRunStopsOnCancel(t *testing.T) {
	// The sampler keeps its own time: the test advances the clock while Run
	// may be sampling.
	n := 0
	src := &scripted{source: SourceSelf, f: func(time.Time) (Sample, error) {
		n++
		return Sample{Time: time.Unix(1_700_000_000+int64(5*n), 0), Readings: []Reading{{Kind: KindHeap, Bytes: 1e7}}}, nil
	}}
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	src.clock = clock
	tick := &fakeTicker{c: make(chan time.Time), stopped: make(chan struct{})}
	var gotInterval time.Duration
	m, err := New(leakCfg(), zap.NewNop(), prometheus.NewRegistry(), WithClock(clock.Now), WithSamplers(src),
		WithTicker(func(d time.Duration) Ticker { gotInterval = d; return tick }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	// Each send returns once Run is waiting again, so the previous tick's
	// sampling is done: after four sends at least four samples are in.
	for range 4 {
		clock.Add(5 * time.Second)
		tick.c <- clock.Now()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	<-tick.stopped
	if gotInterval != 5*time.Second {
		t.Errorf("ticker interval %v", gotInterval)
	}
	m.Evaluate(clock.Now())
	if r := m.Reports(); len(r) != 1 || r[0].Report.Points < 4 {
		t.Errorf("reports %+v", r)
	}
}

func TestNewRejectsInvalidConfigAndDuplicateRegistration(t *testing.T) {
	c := DefaultConfig()
	c.Interval = 0
	if _, err := New(c, zap.NewNop(), prometheus.NewRegistry()); err == nil || !strings.Contains(err.Error(), "SOAK_MEMORY_INTERVAL") {
		t.Errorf("err = %v", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := New(DefaultConfig(), zap.NewNop(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), zap.NewNop(), reg); err == nil {
		t.Error("second registration accepted")
	}
}

func TestBuildSamplers(t *testing.T) {
	c := DefaultConfig()
	c.ScrapeURL = "http://127.0.0.1:9/metrics"
	c.PID = 1
	ss, err := BuildSamplers(c, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range ss {
		names = append(names, s.Source())
	}
	if strings.Join(names, ",") != "self,scrape,procfs" {
		t.Errorf("sources %v", names)
	}
}

// TestVisibleFromFirstMinute: a dashboard sees the detector working from the
// first samples: state warming_up with its reason, and the window gauges,
// with the samples taken so far and their raw slope although no bucket of
// the window is complete yet (the evaluation at one minute, 13 samples
// rising 1 MB each).
func TestVisibleFromFirstMinute(t *testing.T) {
	var k float64
	target := &scripted{source: SourceScrape, f: func(now time.Time) (Sample, error) {
		k++
		return Sample{Time: now, Readings: []Reading{{Kind: KindHeap, Bytes: 100e6 + 1e6*k}}}, nil
	}}
	m, reg, clock, _ := newTestMonitor(t, leakCfg(), target)
	for range 13 { // one minute of 5 s samples, both ends included
		m.Tick(context.Background())
		clock.Add(5 * time.Second)
	}
	raw := `
# HELP soak_leak_slope_bytes_per_second Memory growth over the window: estimator=ols is least squares on raw samples (the old suite's figure), estimator=theil_sen the robust slope of the GC floor.
# TYPE soak_leak_slope_bytes_per_second gauge
soak_leak_slope_bytes_per_second{estimator="ols",kind="heap",source="scrape",window="1h"} 200000
# HELP soak_leak_window_samples Raw samples in the window's complete buckets, and in the bucket being filled while the process's segment (time since start or restart) is shorter than the window.
# TYPE soak_leak_window_samples gauge
soak_leak_window_samples{kind="heap",source="scrape",window="1h"} 13
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(raw), "soak_leak_slope_bytes_per_second", "soak_leak_window_samples"); err != nil {
		t.Error(err)
	}
	want := `
# HELP soak_leak_state 1 for the series' current detector state: state=warming_up (no verdict yet; reason no_samples, window_not_full, too_few_buckets, start_up_grace, gaps or no_floor), no_leak or leak_suspected (reason none).
# TYPE soak_leak_state gauge
soak_leak_state{kind="heap",reason="window_not_full",source="scrape",state="warming_up"} 1
# HELP soak_leak_suspected_since_timestamp_seconds Unix time when the held leak verdict became true; 0 while no leak is suspected.
# TYPE soak_leak_suspected_since_timestamp_seconds gauge
soak_leak_suspected_since_timestamp_seconds{kind="heap",source="scrape"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "soak_leak_state", "soak_leak_suspected_since_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"soak_leak_window_samples", "soak_leak_suspected", "soak_leak_window_suspected", "soak_leak_daily_cycle"} {
		if got := testutil.CollectAndCount(&collector{m: m}, name); got != 1 {
			t.Errorf("%s: %d series in the first minute, want 1", name, got)
		}
	}
	if problems, err := testutil.CollectAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
