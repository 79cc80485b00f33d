package oneshot

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/leak"
	"github.com/generic-corp/soak-exporter/internal/leak/detect"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probes/echo"
	"go.uber.org/zap"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func fixedTargets() []*probe.Target {
	u, _ := url.Parse("http://localhost:3000")
	return []*probe.Target{{Name: "localhost:3000", URL: u, Path: "/socket.io/", Namespace: "/"}}
}

func fixedMemory(n int, heap0, heapStep, rss0, rssStep float64) []memPoint {
	pts := make([]memPoint, n)
	for i := range pts {
		wobble := float64(i%3) * 1e5
		pts[i] = memPoint{T: t0.Add(time.Duration(i) * time.Second), Heap: heap0 + heapStep*float64(i) + wobble, RSS: rss0 + rssStep*float64(i)}
	}
	return pts
}

func fixedLoadInputs(cfg Config) loadInputs {
	var ac agent.Config
	ac.PoolConfig = pool.Config{ConnectRate: 50, ConnectTimeout: 10 * time.Second}
	ac.EchoConfig = echo.Config{AckTimeout: 5 * time.Second, EventName: "echo", PayloadBytes: 64}
	return loadInputs{
		args:    loadArgs{url: "http://localhost:3000", clients: 50, rate: 100, duration: 30 * time.Second, warmup: 5 * time.Second, cfg: cfg},
		agent:   ac,
		targets: fixedTargets(), driver: "native", version: "1.2.3",
		started: t0, finished: t0.Add(36 * time.Second), measured: 30 * time.Second,
		whole: counts{
			attempts:    50,
			failures:    map[probe.FailureReason]uint64{probe.FailTimeout: 0},
			disconnects: map[probe.DisconnectReason]uint64{probe.ReasonClientClose: 50},
		},
		events:  counts{sent: 3000, acked: 3000},
		connect: Summary{Count: 50, Sum: 0.75, Avg: 0.015, P50: 0.012, P95: 0.0381, P99: 0.0452, Min: 0.004, Max: 0.0452},
		latency: Summary{Count: 3000, Sum: 9, Avg: 0.003, P50: 0.0024, P95: 0.0071, P99: 0.0123, Min: 0.0009, Max: 0.0417},
		memory:  fixedMemory(36, 3e6, 2e4, 40e6, 1e5),
		connectHist: histogramOf([]float64{
			0.004, 0.006, 0.008, 0.009, 0.011, 0.012, 0.012, 0.013, 0.015, 0.018, 0.021, 0.025, 0.031, 0.038, 0.045,
		}),
		intervals: fixedIntervals(36, 5, func(sec, i int) (time.Duration, bool) {
			return time.Duration(1000+(i*37)%2500) * time.Microsecond, false
		}),
	}
}

// fixedIntervals plays a run of secs seconds, measured after warmup
// seconds, at 100 events a second through a timeSeries; lat gives the
// latency of event i of second sec, or that it is lost.
func fixedIntervals(secs, warmup int, lat func(sec, i int) (time.Duration, bool)) Intervals {
	var now time.Time
	ts := newTimeSeries(func() time.Time { return now })
	ts.begin(t0)
	for sec := range secs {
		for i := range 100 {
			now = t0.Add(time.Duration(sec)*time.Second + time.Duration(i)*10*time.Millisecond)
			ts.event(pool.OutcomeSent, 1, 0)
			if d, lost := lat(sec, i); lost {
				ts.event(pool.OutcomeLost, 1, 0)
			} else {
				ts.event(pool.OutcomeAnswered, 1, d)
			}
		}
	}
	return ts.intervals(t0.Add(time.Duration(warmup) * time.Second))
}

func TestLoadReportGolden(t *testing.T) {
	cfg := defaultSpec(t).oneshot
	tests := []struct {
		name   string
		mutate func(in *loadInputs)
	}{
		{name: "loadtest_pass", mutate: func(*loadInputs) {}},
		{name: "loadtest_fail", mutate: func(in *loadInputs) {
			in.whole.attempts = 60
			in.whole.failures = map[probe.FailureReason]uint64{probe.FailTimeout: 7, probe.FailRefused: 3}
			in.whole.disconnects = map[probe.DisconnectReason]uint64{probe.ReasonClientClose: 48, probe.ReasonPingTimeout: 2}
			in.connect.P95, in.connect.P99, in.connect.Max = 0.8123, 1.3, 1.3
			in.events = counts{sent: 2990, acked: 2930, lost: 60, late: 12, skipped: 10}
			in.latency.P95, in.latency.P99, in.latency.Max = 0.3504, 0.8, 4.2
			in.connectHist = histogramOf([]float64{0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.6, 0.7, 0.81, 1.3})
			// Latency climbs from second 20 (a backlog), and events are lost.
			in.intervals = fixedIntervals(36, 5, func(sec, i int) (time.Duration, bool) {
				if sec >= 20 && i%50 == 0 {
					return 0, true
				}
				d := time.Duration(2000+(i*37)%3000) * time.Microsecond
				if sec >= 20 {
					d += time.Duration(sec-19) * 25 * time.Millisecond
				}
				return d, false
			})
		}},
		{name: "loadtest_interrupted", mutate: func(in *loadInputs) {
			in.interrupted = true
			in.measured = 12500 * time.Millisecond
			in.events = counts{sent: 1250, acked: 1250}
			in.latency.Count = 1250
			in.memory = nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := fixedLoadInputs(cfg)
			tc.mutate(&in)
			rep := buildLoadReport(in)
			var buf bytes.Buffer
			renderLoad(&buf, rep)
			golden(t, tc.name+".golden", buf.Bytes())
			b, err := marshalReport(rep)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json.golden", b)
			h, err := loadHTML(rep)
			if err != nil {
				t.Fatal(err)
			}
			checkSelfContained(t, h)
			golden(t, tc.name+".html.golden", h)
			j, err := marshalJUnit(junitOfLoad(rep, "runner", buf.String()))
			if err != nil {
				t.Fatal(err)
			}
			checkJUnit(t, j, rep.Criteria, rep.Interrupted)
			golden(t, tc.name+".junit.golden", j)
			wantCode := map[string]int{"loadtest_pass": ExitPass, "loadtest_fail": ExitFail, "loadtest_interrupted": ExitFail}[tc.name]
			if rep.ExitCode != wantCode {
				t.Errorf("exit code %d, want %d", rep.ExitCode, wantCode)
			}
		})
	}
}

// fakeSource is a memSource that plays a function of the sample index.
type fakeSource struct {
	i     int
	value func(i int) memReading
}

func (f *fakeSource) Read(ctx context.Context) (memReading, error) {
	r := f.value(f.i)
	f.i++
	if math.IsInf(r.Heap, -1) {
		return memReading{}, errors.New("scrape http://127.0.0.1:9/metrics: connection refused")
	}
	return r, nil
}
func (f *fakeSource) Describe() string { return "scrape http://localhost:3000/metrics" }
func (f *fakeSource) Guessed() bool    { return true }
func (f *fakeSource) Close()           {}

// fakeClock advances by step on every call.
func fakeClock(step time.Duration) func() time.Time {
	t := t0.Add(-step)
	return func() time.Time { t = t.Add(step); return t }
}

func fixedLeakInputs(t *testing.T, cfg Config, duration, sampling time.Duration, value func(i int) memReading) leakInputs {
	t.Helper()
	bucket := bucketFor(time.Duration(cfg.LeakBucket), duration, sampling, 10)
	samp := newLeakSampler(&fakeSource{value: value}, detectorConfig(leak.DefaultConfig().Detect(), duration, bucket), fakeClock(sampling), zapNop())
	for range int(duration/sampling) + 1 {
		samp.sample(context.Background())
	}
	kind := kindHeap
	return leakInputs{
		args:     leakArgs{url: "http://localhost:3000", duration: duration, sampling: sampling, activity: 10, cfg: cfg},
		agentCfg: agent.Config{PoolConfig: pool.Config{Clients: cfg.LeakClients}, EchoConfig: echo.Config{EventRate: float64(cfg.LeakClients) * 10 / 60}},
		targets:  fixedTargets(), driver: "native", version: "1.2.3",
		started: t0, finished: t0.Add(duration + 2*time.Second),
		source: "scrape http://localhost:3000/metrics", guessed: true, kind: kind, bucket: bucket,
		points: samp.points(), errors: samp.errorCount(), lastErr: samp.lastError(), warnings: samp.warningList(),
		heap: samp.report(kindHeap), rss: samp.report(kindRSS),
		counts:  counts{sent: 500, acked: 500, disconnects: map[probe.DisconnectReason]uint64{probe.ReasonClientClose: 10}, failures: map[probe.FailureReason]uint64{}},
		connect: Summary{Count: 10},
		latency: Summary{Count: 500, Avg: 0.002, P50: 0.002, P95: 0.004, P99: 0.006, Max: 0.01},
	}
}

// sawtooth is a GC-like heap: it climbs by step per sample and falls back
// every period samples, around base, plus growth per sample.
func sawtooth(base, step float64, period int, growth float64) func(i int) memReading {
	return func(i int) memReading {
		return memReading{
			Heap: base + step*float64(i%period) + growth*float64(i),
			RSS:  3*base + growth*float64(i) + float64(i%2)*1e5,
		}
	}
}

func TestLeakReportGolden(t *testing.T) {
	cfg := defaultSpec(t).oneshot
	tests := []struct {
		name        string
		duration    time.Duration
		sampling    time.Duration
		bucket      time.Duration
		value       func(i int) memReading
		wantVerdict detect.Verdict
		wantCode    int
	}{
		{
			// The old quick check: 5 minutes every 5 s, a steady sawtooth.
			name: "leaktest_pass", duration: 5 * time.Minute, sampling: 5 * time.Second,
			value: sawtooth(30e6, 1e6, 6, 0), wantVerdict: detect.NoLeak, wantCode: ExitPass,
		},
		{
			// Too short for the robust detector (2 buckets of 30 s): the
			// criteria pass, but "cannot tell" is never a pass.
			name: "leaktest_too_short", duration: time.Minute, sampling: 5 * time.Second,
			value: sawtooth(30e6, 2e5, 2, 0), wantVerdict: detect.InsufficientData, wantCode: ExitCannotTell,
		},
		{
			// 1 MB a sample every 5 s: 720 MB/hour, and a gap.
			name: "leaktest_leak", duration: 5 * time.Minute, sampling: 5 * time.Second,
			value: func(i int) memReading {
				if i == 7 {
					return memReading{Heap: math.Inf(-1)}
				}
				return sawtooth(30e6, 1e5, 4, 1e6)(i)
			},
			wantVerdict: detect.LeakSuspected, wantCode: ExitFail,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.LeakBucket = Duration(tc.bucket)
			rep := buildLeakReport(fixedLeakInputs(t, c, tc.duration, tc.sampling, tc.value))
			if got := rep.Heap.Robust.Verdict; got != tc.wantVerdict.String() {
				t.Errorf("robust verdict %s (%s), want %s", got, rep.Heap.Robust.Reason, tc.wantVerdict)
			}
			if rep.ExitCode != tc.wantCode {
				t.Errorf("exit code %d, want %d", rep.ExitCode, tc.wantCode)
			}
			var buf bytes.Buffer
			renderLeak(&buf, rep)
			golden(t, tc.name+".golden", buf.Bytes())
			b, err := marshalReport(rep)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json.golden", b)
			h, err := leakHTML(rep)
			if err != nil {
				t.Fatal(err)
			}
			checkSelfContained(t, h)
			golden(t, tc.name+".html.golden", h)
			j, err := marshalJUnit(junitOfLeak(rep, "runner", buf.String()))
			if err != nil {
				t.Fatal(err)
			}
			checkJUnit(t, j, rep.Criteria, rep.Interrupted)
			golden(t, tc.name+".junit.golden", j)
		})
	}
}

func TestLeastSquaresMatchesTheOldSuite(t *testing.T) {
	// A straight line of 2 MB per minute: 120 MB/hour, R² 1.
	samp := newLeakSampler(&fakeSource{value: func(i int) memReading {
		return memReading{Heap: 50e6 + 2e6*float64(i), RSS: math.NaN()}
	}}, detectorConfig(leak.DefaultConfig().Detect(), 10*time.Minute, time.Minute), fakeClock(time.Minute), zapNop())
	for range 11 {
		samp.sample(context.Background())
	}
	s := samp.report(kindHeap)
	if math.Abs(float64(s.LeakRate)-120) > 1e-9 || math.Abs(float64(s.RSquared)-1) > 1e-12 {
		t.Errorf("leak rate %v MB/h R² %v, want 120 and 1", s.LeakRate, s.RSquared)
	}
	if s.Growth != 20e6 || math.Abs(float64(s.GrowthRatio)-0.4) > 1e-12 {
		t.Errorf("growth %v (%v), want 20 MB (40%%)", s.Growth, s.GrowthRatio)
	}
	if r := samp.report(kindRSS); r.Available || !math.IsNaN(float64(r.LeakRate)) {
		t.Errorf("RSS not reported by the source, yet %+v", r)
	}
}

func zapNop() *zap.Logger { return zap.NewNop() }
