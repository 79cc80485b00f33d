package detect

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/stats"
)

var t0 = time.Unix(1_700_000_000, 0)

// feed adds points every step for length, with value f(seconds since t0).
func feed(t *testing.T, d *Detector, from, length, step time.Duration, f func(s float64) float64, start float64) {
	t.Helper()
	for at := from; at < from+length; at += step {
		if err := d.Add(Point{Time: t0.Add(at), Bytes: f(at.Seconds()), Start: start}); err != nil {
			t.Fatal(err)
		}
	}
}

// sawtooth is a GC-like series: floor base+rate*s, rising 40% over each
// 60 s cycle, with a deterministic wobble.
func sawtooth(base, rate float64) func(float64) float64 {
	return func(s float64) float64 {
		floor := base + rate*s
		phase := math.Mod(s, 60) / 60
		return floor*(1+0.4*phase) + 1e5*math.Sin(s/7)
	}
}

// testConfig is the default configuration with windows 1h and 6h set
// explicitly (not the default windows): the tests below place rises and
// steps in the thirds of a 6h window judged at 7 h, so they keep their
// meaning whatever the default windows are.
func testConfig() Config {
	c := DefaultConfig()
	c.Windows = []time.Duration{time.Hour, 6 * time.Hour}
	c.Grace = time.Hour
	return c
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name    string
		length  time.Duration
		f       func(float64) float64
		want    Verdict
		win     time.Duration // deciding window
		reason  string
		windows []Verdict
	}{
		{"flat", 8 * time.Hour, sawtooth(200*MB, 0), NoLeak, 6 * time.Hour, "below the practical minimum",
			[]Verdict{NoLeak, NoLeak}},
		// 30 MB/h: both windows see it.
		{"leak", 8 * time.Hour, sawtooth(200*MB, 30*MB/3600), LeakSuspected, time.Hour, "persistent",
			[]Verdict{LeakSuspected, LeakSuspected}},
		// Too short for the 6h window plus grace, long enough for 1h.
		{"short", 3 * time.Hour, sawtooth(200*MB, 0), NoLeak, time.Hour, "below",
			[]Verdict{NoLeak, InsufficientData}},
		{"in grace", 90 * time.Minute, sawtooth(200*MB, 30*MB/3600), InsufficientData, time.Hour, "start-up grace",
			[]Verdict{InsufficientData, InsufficientData}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(testConfig())
			if err != nil {
				t.Fatal(err)
			}
			feed(t, d, 0, tc.length, 5*time.Second, tc.f, 0)
			rep := d.Evaluate(t0.Add(tc.length), 0)
			if rep.Verdict != tc.want || rep.Window != tc.win || !strings.Contains(rep.Reason, tc.reason) {
				t.Fatalf("verdict %v window %v reason %q; want %v %v containing %q", rep.Verdict, rep.Window, rep.Reason, tc.want, tc.win, tc.reason)
			}
			for i, w := range rep.Windows {
				if w.Verdict != tc.windows[i] {
					t.Errorf("window %v: %v (%s), want %v", w.Window, w.Verdict, w.Reason, tc.windows[i])
				}
			}
		})
	}
}

func TestFiguresOfLinearFloor(t *testing.T) {
	d, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	rate := 10 * MB / 3600 // bytes per second
	feed(t, d, 0, 7*time.Hour, 5*time.Second, sawtooth(100*MB, rate), 0)
	rep := d.Evaluate(t0.Add(7*time.Hour), 2000*MB)
	w := rep.Windows[1] // 6h
	if w.Window != 6*time.Hour || w.Buckets != 72 || w.BucketWidth != 5*time.Minute {
		t.Fatalf("window %v buckets %d width %v", w.Window, w.Buckets, w.BucketWidth)
	}
	if w.Samples != 6*720 {
		t.Errorf("samples %d, want %d", w.Samples, 6*720)
	}
	// The floor (bucket minima, right after each "GC") rises at exactly the
	// rate, up to the sine wobble.
	if math.Abs(w.FloorSlope-rate)/rate > 0.01 {
		t.Errorf("floor slope %.2f MB/h, want 10", w.FloorSlope*3600/MB)
	}
	if w.FloorR2 < 0.99 {
		t.Errorf("floor R² %v", w.FloorR2)
	}
	// Raw least squares sees the same trend under the sawtooth.
	if math.Abs(w.OLSSlope-1.2*rate)/rate > 0.05 { // mean of the sawtooth is 1.2 x floor
		t.Errorf("OLS slope %.2f MB/h, want 12", w.OLSSlope*3600/MB)
	}
	if w.P > 1e-10 || !w.Persistent() {
		t.Errorf("p %v persistent %v", w.P, w.Persistent())
	}
	// Floor at the end of the window: 100 MB + 10 MB/h * 7 h.
	if math.Abs(w.Baseline-170*MB) > 0.5*MB {
		t.Errorf("baseline %.2f MB, want 170", w.Baseline/MB)
	}
	// Projection: (limit - (floor + amplitude)) / slope, amplitude ~ 0.4 x floor.
	want := (2000*MB - (w.Baseline + w.Amplitude)) / w.FloorSlope
	if !w.HasLimit || math.Abs(w.SecondsToLimit-want) > 1 || w.Amplitude < 45*MB || w.Amplitude > 65*MB {
		t.Errorf("seconds to limit %v (amplitude %.1f MB), want %v", w.SecondsToLimit, w.Amplitude/MB, want)
	}
}

func TestProjectionNotGrowing(t *testing.T) {
	d, _ := New(testConfig())
	feed(t, d, 0, 2*time.Hour, 5*time.Second, sawtooth(300*MB, -1*MB/3600), 0)
	w := d.Evaluate(t0.Add(2*time.Hour), 1000*MB).Windows[0]
	if !math.IsInf(w.SecondsToLimit, 1) {
		t.Errorf("seconds to limit %v, want +Inf", w.SecondsToLimit)
	}
	w = d.Evaluate(t0.Add(2*time.Hour), 0).Windows[0]
	if w.HasLimit || !math.IsNaN(w.SecondsToLimit) {
		t.Errorf("without a limit: HasLimit %v, %v", w.HasLimit, w.SecondsToLimit)
	}
}

func TestRestartSegmentation(t *testing.T) {
	tests := []struct {
		name  string
		f     func(float64) float64
		start func(float64) float64
	}{
		// Memory drops from ~300 MB to 100 MB at 3 h: more than half.
		{"drop", func(s float64) float64 {
			if s >= 3*3600 {
				return sawtooth(100*MB, 0)(s)
			}
			return sawtooth(300*MB, 0)(s)
		}, func(float64) float64 { return 0 }},
		// Same memory, but the process start time changes at 3 h.
		{"start time", sawtooth(300*MB, 0), func(s float64) float64 {
			if s >= 3*3600 {
				return 1_700_010_800
			}
			return 1_699_999_000
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := New(testConfig())
			for at := time.Duration(0); at < 4*time.Hour; at += 5 * time.Second {
				if err := d.Add(Point{Time: t0.Add(at), Bytes: tc.f(at.Seconds()), Start: tc.start(at.Seconds())}); err != nil {
					t.Fatal(err)
				}
			}
			rep := d.Evaluate(t0.Add(4*time.Hour), 0)
			if rep.Restarts != 1 || !rep.SegmentStart.Equal(t0.Add(3*time.Hour)) {
				t.Fatalf("restarts %d segment start %v", rep.Restarts, rep.SegmentStart.Sub(t0))
			}
			if rep.SegmentPoints != 720 || rep.Points != 4*720 {
				t.Errorf("points %d segment %d", rep.Points, rep.SegmentPoints)
			}
			// One hour into the new segment: the 1h window is full but
			// within the grace again.
			if w := rep.Windows[0]; w.Verdict != InsufficientData || !strings.Contains(w.Reason, "grace") {
				t.Errorf("1h: %v %q", w.Verdict, w.Reason)
			}
		})
	}
	// A sawtooth that halves at every GC is not a restart: the reference
	// is the floor.
	d, _ := New(testConfig())
	feed(t, d, 0, 3*time.Hour, 5*time.Second, func(s float64) float64 {
		return 100 * MB * (1 + math.Mod(s, 60)/60)
	}, 0)
	if r := d.Evaluate(t0.Add(3*time.Hour), 0); r.Restarts != 0 {
		t.Errorf("sawtooth counted %d restarts", r.Restarts)
	}
}

func TestLevelStepIsNotALeak(t *testing.T) {
	stepped := func(s float64) float64 {
		v := sawtooth(200*MB, 0)(s)
		if s >= 5*3600 {
			v += 80 * MB
		}
		return v
	}
	d, _ := New(testConfig())
	// +80 MB at 5 h, judged at 7 h: the 6h window holds the step in its
	// last third.
	feed(t, d, 0, 7*time.Hour, 5*time.Second, stepped, 0)
	w := d.Evaluate(t0.Add(7*time.Hour), 0).Windows[1]
	if w.Verdict != NoLeak {
		t.Fatalf("6h: %v (%s)", w.Verdict, w.Reason)
	}
	// The step is taken out of the floor as a level shift (so it cannot
	// veto a trend that the rest of the floor shows); without that, the
	// step test finds it.
	if w.Shifts != 1 || math.Abs(w.ShiftTotal-80*MB) > 5*MB {
		t.Errorf("shifts %d total %.1f MB, want one of 80 MB", w.Shifts, w.ShiftTotal/MB)
	}
	c := testConfig()
	c.StepSigma = 0
	d, _ = New(c)
	feed(t, d, 0, 7*time.Hour, 5*time.Second, stepped, 0)
	w = d.Evaluate(t0.Add(7*time.Hour), 0).Windows[1]
	if w.Verdict != NoLeak || w.StepFit > 0.1 || math.Abs(w.StepSize-80*MB) > 5*MB {
		t.Errorf("without shift removal: %v (%s), step fit %v size %.1f MB", w.Verdict, w.Reason, w.StepFit, w.StepSize/MB)
	}
}

func TestWarmUpIsNotALeak(t *testing.T) {
	// A cache filling as 200 MB (1 - exp(-t/1h)): judged on [1h, 7h] the
	// first third rises far faster than the last. The persistence guard
	// alone (no level-shift removal, which takes out part of the steep
	// start) must reject it, and so must the defaults.
	for _, sigma := range []float64{0, testConfig().StepSigma} {
		c := testConfig()
		c.Grace, c.StepSigma = 0, sigma
		d, _ := New(c)
		feed(t, d, 0, 7*time.Hour, 5*time.Second, func(s float64) float64 {
			return sawtooth(100*MB, 0)(s) + 200*MB*(1-math.Exp(-s/3600))
		}, 0)
		w := d.Evaluate(t0.Add(7*time.Hour), 0).Windows[1]
		if w.Verdict != NoLeak || sigma == 0 && !strings.Contains(w.Reason, "flattening") && !strings.Contains(w.Reason, "persistent") {
			t.Fatalf("step sigma %g, 6h: %v (%s)", sigma, w.Verdict, w.Reason)
		}
	}
}

func TestTooShortForAVerdict(t *testing.T) {
	// A one-shot run of 5 minutes with the default 5m bucket: one bucket.
	c := DefaultConfig()
	c.Windows, c.Grace = []time.Duration{5 * time.Minute}, 0
	c.MinGrowth = 1 * MB // 12 MB/h over 5 minutes
	d, _ := New(c)
	feed(t, d, 0, 5*time.Minute, 5*time.Second, sawtooth(100*MB, 100*MB/3600), 0)
	rep := d.Evaluate(t0.Add(5*time.Minute), 0)
	if rep.Verdict != InsufficientData || !strings.Contains(rep.Reason, "too short") {
		t.Fatalf("%v %q", rep.Verdict, rep.Reason)
	}
	// With 10 s buckets the same run has 30 buckets and a verdict.
	c.Bucket = 10 * time.Second
	d, _ = New(c)
	feed(t, d, 0, 5*time.Minute, time.Second, func(s float64) float64 { return 100*MB + 100*MB/3600*s + 2e5*math.Sin(s) }, 0)
	if rep = d.Evaluate(t0.Add(5*time.Minute), 0); rep.Verdict != LeakSuspected {
		t.Fatalf("%v %q", rep.Verdict, rep.Reason)
	}
}

func TestGapsAreInsufficient(t *testing.T) {
	d, _ := New(testConfig())
	feed(t, d, 0, 30*time.Minute, 5*time.Second, sawtooth(100*MB, 0), 0)
	feed(t, d, 150*time.Minute, 30*time.Minute, 5*time.Second, sawtooth(100*MB, 0), 0)
	w := d.Evaluate(t0.Add(3*time.Hour), 0).Windows[0]
	if w.Verdict != InsufficientData || !strings.Contains(w.Reason, "gaps") {
		t.Fatalf("%v %q", w.Verdict, w.Reason)
	}
}

func TestAddRejects(t *testing.T) {
	d, _ := New(testConfig())
	if err := d.Add(Point{Time: t0, Bytes: 1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Point{{Time: t0, Bytes: 1}, {Time: t0.Add(-time.Second), Bytes: 1}} {
		if err := d.Add(p); !errors.Is(err, ErrNotAfter) {
			t.Errorf("%v: %v", p.Time.Sub(t0), err)
		}
	}
	for _, v := range []float64{-1, math.NaN(), math.Inf(1)} {
		if err := d.Add(Point{Time: t0.Add(time.Second), Bytes: v}); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%v: %v", v, err)
		}
	}
	if r := d.Evaluate(t0, 0); r.Points != 1 {
		t.Errorf("points %d", r.Points)
	}
}

func TestEvaluateBeforeSamples(t *testing.T) {
	d, _ := New(testConfig())
	rep := d.Evaluate(t0, 0)
	if rep.Verdict != InsufficientData || len(rep.Windows) != 2 || rep.Reason != "no samples yet" {
		t.Fatalf("%+v", rep)
	}
}

func TestEvaluateCachesFigures(t *testing.T) {
	d, _ := New(testConfig())
	feed(t, d, 0, 7*time.Hour, 5*time.Second, sawtooth(100*MB, 5*MB/3600), 0)
	now := t0.Add(7 * time.Hour)
	d.Evaluate(now, 0)
	n := d.computes
	// Same complete buckets: the O(B²) figures are not recomputed.
	d.Evaluate(now.Add(time.Second), 0)
	d.Evaluate(now.Add(time.Minute), 1e9)
	if d.computes != n {
		t.Errorf("figures recomputed %d times", d.computes-n)
	}
	// A new complete bucket in the 1h and 6h windows (5 minute buckets).
	feed(t, d, 7*time.Hour, 5*time.Minute, 5*time.Second, sawtooth(100*MB, 5*MB/3600), 0)
	d.Evaluate(now.Add(5*time.Minute), 0)
	if d.computes != n+2 {
		t.Errorf("figures recomputed %d times, want 2", d.computes-n)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"no windows", func(c *Config) { c.Windows = nil }, "Windows:"},
		{"dup window", func(c *Config) { c.Windows = []time.Duration{time.Hour, time.Hour} }, "listed twice"},
		{"bucket", func(c *Config) { c.Bucket = 0 }, "Bucket:"},
		{"alpha", func(c *Config) { c.Alpha = 1 }, "Alpha:"},
		{"min buckets", func(c *Config) { c.MinBuckets = 100 }, "MinBuckets:"},
		{"growth for", func(c *Config) { c.MinGrowthFor = map[time.Duration]float64{time.Hour: -1} }, "MinGrowthFor:"},
		{"step", func(c *Config) { c.StepRatio = 1 }, "StepRatio:"},
		{"drop", func(c *Config) { c.RestartDrop = math.NaN() }, "RestartDrop:"},
		{"step sigma", func(c *Config) { c.StepSigma = math.Inf(1) }, "StepSigma:"},
		{"fast share", func(c *Config) { c.FastShare = 0.8 }, "FastShare:"},
		{"fast share off", func(c *Config) { c.FastShare = 0 }, ""},
		{"fast keep", func(c *Config) { c.FastKeepShare = 1.5 }, "FastKeepShare:"},
		{"guard mid", func(c *Config) { c.GuardMidShare = math.NaN() }, "GuardMidShare:"},
		{"guard mid off", func(c *Config) { c.GuardMidShare = 0 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBucketWidthAndMinSlope(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		w     time.Duration
		width time.Duration
		n     int
		minMB float64 // MB/h
	}{
		{time.Hour, 5 * time.Minute, 12, 18},
		// The default middle window: 21 MB over 5 h.
		{5 * time.Hour, 5 * time.Minute, 60, 4.2},
		{6 * time.Hour, 5 * time.Minute, 72, 3.5},
		{24 * time.Hour, 20 * time.Minute, 72, 0.6},
		// The default 2h window has its own growth, 32 MB (24 h: 14.4 MB).
		{2 * time.Hour, 5 * time.Minute, 24, 16},
		{3 * time.Hour, 5 * time.Minute, 36, 7},
	} {
		width, n := c.BucketWidth(tc.w)
		if width != tc.width || n != tc.n {
			t.Errorf("%v: width %v n %d", tc.w, width, n)
		}
		if got := c.MinSlope(tc.w) * 3600 / MB; math.Abs(got-tc.minMB) > 1e-9 {
			t.Errorf("%v: min slope %v MB/h, want %v", tc.w, got, tc.minMB)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 6 * time.Hour: "6h", 24 * time.Hour: "24h", 90 * time.Minute: "1h30m",
		5 * time.Minute: "5m", 150 * time.Second: "2m30s", time.Hour + 30*time.Second: "1h0m30s", 500 * time.Millisecond: "500ms",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestVerdictText(t *testing.T) {
	for v, want := range map[Verdict]string{InsufficientData: "insufficient_data", NoLeak: "no_leak", LeakSuspected: "leak_suspected"} {
		b, _ := v.MarshalText()
		if v.String() != want || string(b) != want {
			t.Errorf("%d: %q", v, v.String())
		}
	}
}

// BenchmarkAdd measures the per-sample cost with the default windows.
func BenchmarkAdd(b *testing.B) {
	d, _ := New(DefaultConfig())
	f := sawtooth(200*MB, 1*MB/3600)
	pts := make([]Point, 1<<16)
	for i := range pts {
		pts[i] = Point{Time: t0.Add(time.Duration(i) * 5 * time.Second), Bytes: f(float64(i) * 5)}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(pts) { // start a new detector rather than go back in time
			d, _ = New(DefaultConfig())
			i = 0
		}
		_ = d.Add(pts[i])
		i++
	}
}

// BenchmarkEvaluate measures one evaluation that recomputes every window
// (each gained a bucket), with the default windows full.
func BenchmarkEvaluate(b *testing.B) { benchEvaluate(b, 33*time.Hour) }

// BenchmarkEvaluateFirstDay is BenchmarkEvaluate at 20 h, within the
// segment's first cycle: no window has a floor one cycle earlier yet, and
// each compares its last third with the highest floor before it instead.
func BenchmarkEvaluateFirstDay(b *testing.B) { benchEvaluate(b, 20*time.Hour) }

// benchEvaluate times a full evaluation (every window recomputed) of a
// detector fed age of 5 s samples.
func benchEvaluate(b *testing.B, age time.Duration) {
	d, _ := New(DefaultConfig())
	f := sawtooth(200*MB, 1*MB/3600)
	n := int(age / (5 * time.Second))
	for i := range n {
		_ = d.Add(Point{Time: t0.Add(time.Duration(i) * 5 * time.Second), Bytes: f(float64(i) * 5)})
	}
	now := t0.Add(age)
	b.ReportAllocs()
	for b.Loop() {
		for _, w := range d.wins {
			w.dirty = true
		}
		d.Evaluate(now, 4e9)
	}
}

// BenchmarkMemory24h reports the heap held by one detector with the default
// windows after 24 h of 5 s samples (17280 points), evaluated.
func BenchmarkMemory24h(b *testing.B) {
	f := sawtooth(200*MB, 1*MB/3600)
	var held float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d, _ := New(DefaultConfig())
		for i := range 17280 {
			_ = d.Add(Point{Time: t0.Add(time.Duration(i) * 5 * time.Second), Bytes: f(float64(i) * 5)})
		}
		rep := d.Evaluate(t0.Add(24*time.Hour), 4e9)
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		runtime.KeepAlive(d)
		runtime.KeepAlive(rep)
	}
	b.ReportMetric(held, "heap-bytes/detector")
}

// TestLevelShiftsAreTakenOut checks the step-robust floor (Config.StepSigma):
// sudden rises of the floor are level shifts, taken out before the trend is
// judged, while the growth between them is kept.
func TestLevelShiftsAreTakenOut(t *testing.T) {
	staircase := func(rate float64, steps map[float64]float64) func(float64) float64 {
		return func(s float64) float64 {
			v := sawtooth(200*MB, rate)(s)
			for at, h := range steps {
				if s >= at*3600 {
					v += h
				}
			}
			return v
		}
	}
	tests := []struct {
		name       string
		f          func(float64) float64
		sigma      float64
		want       Verdict
		slope      float64 // MB/h, ±10% (±0.5 MB/h around 0)
		shiftTotal float64 // MB, ±2
	}{
		// Three rises of 30 MB, one in each third of the 6h window [1h,
		// 7h]: a staircase passes every trend test and the guard, and no
		// single step explains it, so without the shift removal it is a
		// leak (the median pairwise slope is about 15 MB/h).
		{"staircase, plain", staircase(0, map[float64]float64{2: 30 * MB, 4: 30 * MB, 6: 30 * MB}), 0, LeakSuspected, 15, 0},
		{"staircase", staircase(0, map[float64]float64{2: 30 * MB, 4: 30 * MB, 6: 30 * MB}), 4, NoLeak, 0, 90},
		// A 20 MB/h leak with a 60 MB rise at 4h: still a leak, at its own
		// rate, the rise counted less one bucket's growth (20/12 MB).
		{"leak and step", staircase(20*MB/3600, map[float64]float64{4: 60 * MB}), 4, LeakSuspected, 20, 60 - 20.0/12},
		// A fall is not taken out (it can only hide growth): here the single
		// level step explains the floor better than the trend.
		{"fall", staircase(20*MB/3600, map[float64]float64{4: -60 * MB}), 4, NoLeak, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			c.StepSigma = tc.sigma
			d, _ := New(c)
			feed(t, d, 0, 7*time.Hour, 5*time.Second, tc.f, 0)
			w := d.Evaluate(t0.Add(7*time.Hour), 0).Windows[1]
			if w.Verdict != tc.want {
				t.Fatalf("6h: %v (%s), want %v", w.Verdict, w.Reason, tc.want)
			}
			if tc.slope != 0 || tc.shiftTotal != 0 {
				if got := w.FloorSlope * 3600 / MB; math.Abs(got-tc.slope) > max(0.1*tc.slope, 0.5) {
					t.Errorf("floor slope %.2f MB/h, want %.0f", got, tc.slope)
				}
			}
			if got := w.ShiftTotal / MB; math.Abs(got-tc.shiftTotal) > 2 {
				t.Errorf("shifts %d totalling %.1f MB, want %.1f MB", w.Shifts, got, tc.shiftTotal)
			}
		})
	}
}

// TestGuard checks the persistence guard on hand-computed thirds (units are
// arbitrary: the guard compares slopes only).
func TestGuard(t *testing.T) {
	se := [3]float64{0.5, 0.5, 0.5}
	tests := []struct {
		name    string
		s       float64
		thirds  [3]float64
		minLast float64
		mid     float64
		ok      bool
		reason  string
	}{
		{"steady", 10, [3]float64{10, 10, 10}, 0, 0, true, ""},
		// Middle third 2 + 0.5 < 0.3 x 10.
		{"not persistent", 10, [3]float64{10, 2, 10}, 0, 0, false, "not persistent"},
		// 4 - 0.5 x 10 + hypot(0.5, 0.25) = -0.44 < 0.
		{"flattening", 8, [3]float64{10, 6, 4}, 0, 0, false, "flattening"},
		// A slow warm-up tail: 2.8 - 0.5 x 6 + 0.559 = 0.36 >= 0 passes the
		// ratio tests ...
		{"warm-up tail, ratios only", 4, [3]float64{6, 3.5, 2.8}, 0, 0, true, ""},
		// ... but its last third, 2.8 + 0.5 = 3.3, is below the practical
		// minimum 3.5.
		{"warm-up tail", 4, [3]float64{6, 3.5, 2.8}, 3.5, 0, false, "fading"},
		// 3 + 0.5 = 3.5 reaches it exactly.
		{"at the minimum", 3.5, [3]float64{3, 3.5, 3}, 3.5, 0, true, ""},
		{"third missing", 10, [3]float64{10, math.NaN(), 10}, 0, 0, false, "too few buckets"},
		// Flat, a ramp, flat again (a level shift that ramped over the
		// middle of the window): 4 - 0.5 x 25 + hypot(0.5, 0.25) = -7.9 < 0
		// (the middle third rises faster than 20, the call's midFrom).
		{"ramp over the middle", 10, [3]float64{0, 25, 4}, 0, 0.5, false, "in the middle one"},
		// A middle third slower than midFrom is not compared: 4 - 0.5 x 12
		// + 0.559 < 0 would fail, but a slow leak's thirds scatter so.
		{"slow middle third", 6, [3]float64{5, 12, 4}, 0, 0.5, true, ""},
		// The shortest window does not compare with the middle third.
		{"ramp over the middle, shortest window", 10, [3]float64{0, 25, 4}, 0, 0, true, ""},
		// A leak that started in the middle third rises faster in the last.
		{"leak from the middle", 6, [3]float64{0, 8, 10}, 0, 0.5, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := guard(tc.s, tc.thirds, se, 1, tc.minLast, tc.mid, 20)
			if ok != tc.ok || !strings.Contains(why, tc.reason) {
				t.Errorf("guard = %v %q, want %v %q", ok, why, tc.ok, tc.reason)
			}
		})
	}
}

func TestRampedStepIsNotALeak(t *testing.T) {
	// A cache filling 80 MB over 20 minutes (a configuration change), then
	// flat: taken out as one level shift like an instant one.
	d, _ := New(testConfig())
	feed(t, d, 0, 7*time.Hour, 5*time.Second, func(s float64) float64 {
		v := sawtooth(200*MB, 0)(s)
		if r := (s - 5*3600) / 1200; r > 0 {
			v += 80 * MB * min(r, 1)
		}
		return v
	}, 0)
	w := d.Evaluate(t0.Add(7*time.Hour), 0).Windows[1]
	if w.Verdict != NoLeak || w.Shifts != 1 || math.Abs(w.ShiftTotal-80*MB) > 8*MB {
		t.Errorf("6h: %v (%s), shifts %d total %.1f MB, want no_leak and one shift of 80 MB", w.Verdict, w.Reason, w.Shifts, w.ShiftTotal/MB)
	}
}

func TestStepDoesNotVetoATrend(t *testing.T) {
	// A 100 MB up-step in the middle of a 1 MB/h leak: the floor without
	// the step still rises, so the step test must not call it a level step
	// (on the floor with the step, a step fits far better than a line).
	c := DefaultConfig()
	c.Windows, c.Grace = []time.Duration{24 * time.Hour}, 0
	d, _ := New(c)
	feed(t, d, 0, 25*time.Hour, 5*time.Second, func(s float64) float64 {
		v := sawtooth(200*MB, 1*MB/3600)(s)
		if s >= 12*3600 {
			v += 100 * MB
		}
		return v
	}, 0)
	rep := d.Evaluate(t0.Add(25*time.Hour), 0)
	w := rep.Windows[len(rep.Windows)-1]
	if w.Verdict != LeakSuspected || w.Shifts != 1 {
		t.Errorf("%s: %v (%s), shifts %d, want leak_suspected with the step taken out", FormatDuration(w.Window), w.Verdict, w.Reason, w.Shifts)
	}
}

func TestRampInAShortWindowIsNotALeak(t *testing.T) {
	// The bucket floors (MB) of a benchmark series (ramped steps, seed
	// 1050092) around a cache that filled 82 MB over 18 minutes, after
	// four hours at the first level: the floor wanders up 9 MB in the 25
	// minutes before the ramp, then the ramp is 4 of the 1h window's 11
	// bucket-to-bucket rises. Their median is then partly the ramp's:
	// taken out against it, part of the ramp stayed in the window as a
	// rise of 25 MB/h (p = 0.00014), which raised an alert. Taken out
	// against the median of the rises outside it, no trend is left.
	floors := []float64{322.0, 326.3, 326.4, 327.9, 331.1, 342.9, 367.6, 397.6, 407.4, 408.3, 408.5, 410.9, 408.2, 407.0, 406.7, 406.6}
	const lead = 4 * time.Hour
	bucket := 5 * time.Minute
	level := func(at time.Duration) float64 {
		if at < lead {
			return floors[0] * MB
		}
		return floors[min(int((at-lead)/bucket), len(floors)-1)] * MB
	}
	d, _ := New(DefaultConfig())
	end := lead + time.Duration(len(floors))*bucket
	for at := time.Duration(0); at <= end; at += 5 * time.Second {
		if at >= lead+12*bucket && at%bucket == 0 {
			if w := d.Evaluate(t0.Add(at), 0).Windows[0]; w.Verdict != NoLeak {
				t.Errorf("%s: 1h window %v (%s), shifts %d, want no_leak", FormatDuration(at), w.Verdict, w.Reason, w.Shifts)
			}
		}
		if err := d.Add(Point{Time: t0.Add(at), Bytes: level(at)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCeiling(t *testing.T) {
	for _, tc := range []struct {
		name    string
		windows []time.Duration
		share   float64
		w       time.Duration
		want    float64 // MB/h; +Inf: none
	}{
		{"default 1h: 2.5 x 18 MB/h", nil, 2.5, time.Hour, 45},
		{"default 2h: twice the shortest, 2.5 x 16 MB/h", nil, 2.5, 2 * time.Hour, 40},
		{"default 5h: more than twice the shortest", nil, 2.5, 5 * time.Hour, math.Inf(1)},
		{"off", nil, 0, time.Hour, math.Inf(1)},
		{"alone", []time.Duration{time.Hour}, 2.5, time.Hour, math.Inf(1)},
		{"next window more than twice as long", []time.Duration{5 * time.Hour, time.Hour}, 2.5, time.Hour, math.Inf(1)},
		{"unsorted", []time.Duration{2 * time.Hour, time.Hour}, 2, time.Hour, 36},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			if tc.windows != nil {
				c.Windows = tc.windows
			}
			c.FastShare = tc.share
			got := c.Ceiling(tc.w) * 3600 / MB
			if math.IsInf(tc.want, 1) != math.IsInf(got, 1) || !math.IsInf(got, 1) && math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Ceiling(%s) = %g MB/h, want %g", tc.w, got, tc.want)
			}
		})
	}
}

// ceilingConfig is the default configuration without the start-up grace
// and the daily cycle, so a rise after a few hours is judged on its own.
func ceilingConfig(share float64) Config {
	c := DefaultConfig()
	c.Grace, c.Cycle, c.FastShare = 0, 0, share
	return c
}

// rampAt3h is a steady GC-like series whose floor ramps up by size bytes
// over seconds from hour 3 on (a cache filling), then stays.
func rampAt3h(size, seconds float64) func(float64) float64 {
	return func(s float64) float64 {
		v := sawtooth(200*MB, 0)(s)
		if r := (s - 3*3600) / seconds; r > 0 {
			v += size * min(r, 1)
		}
		return v
	}
}

// evalEvery5m adds f's points every 5 seconds until to and, from from on,
// evaluates d every 5 minutes before adding that instant's point.
func evalEvery5m(t *testing.T, d *Detector, from, to time.Duration, f func(float64) float64, eval func(at time.Duration, rep Report)) {
	t.Helper()
	for at := time.Duration(0); at < to; at += 5 * time.Second {
		if at >= from && at%(5*time.Minute) == 0 {
			eval(at, d.Evaluate(t0.Add(at), 0))
		}
		if err := d.Add(Point{Time: t0.Add(at), Bytes: f(at.Seconds())}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFastRampIsNotALeakOfTheShortestWindow(t *testing.T) {
	// A cache filling 60 MB over 35 minutes (103 MB/h) after three steady
	// hours. Until it ends it is the same data as a leak of its rate.
	// Without the ceiling the series' raw verdict says leak for 15 minutes
	// (three evaluations 5 minutes apart: an alert with the shipped for:);
	// with it the 1h window waits for the rise to have lasted 40 minutes,
	// and the verdict holds for less than that. On this noiseless floor
	// the level-shift removal already hides the rise for its first half
	// hour, so the p-value threshold is raised to let the difference show
	// (as in TestFastLeakIsFoundWithinTheHour); on the benchmark's noisy
	// ramped steps the ceiling cuts alerts by a fifth to a third
	// (TestRampedStepAlarmsFallWithTheCeiling in internal/leak/quality).
	ramp := rampAt3h(60*MB, 2100)
	for _, tc := range []struct {
		share float64
		alert bool // the raw verdict says leak at three evaluations in a row
	}{{2.5, false}, {0, true}} {
		t.Run(fmt.Sprintf("share %g", tc.share), func(t *testing.T) {
			c := ceilingConfig(tc.share)
			c.Alpha = 0.01
			d, _ := New(c)
			run, longest := 0, 0
			evalEvery5m(t, d, 3*time.Hour, 5*time.Hour, ramp, func(_ time.Duration, rep Report) {
				run++
				if rep.Verdict != LeakSuspected {
					run = 0
				}
				longest = max(longest, run)
			})
			if alert := longest >= 3; alert != tc.alert {
				t.Errorf("leak verdict at %d evaluations in a row at most; alert %v, want %v", longest, alert, tc.alert)
			}
		})
	}
}

func TestFastRampThatStoppedIsNotALeak(t *testing.T) {
	// A cache filling 70 MB over 45 minutes (93 MB/h) after three steady
	// hours: it lasts longer than the 40 minutes the ceiling waits for, so
	// the wait alone lets the 1h window say leak as the ramp ends, and the
	// held verdict (Report.Suspected) stays up for the 15 minutes that arm
	// an alert. With Config.FastKeepShare the rise must also still be under
	// way over the window's last third, and within 10 minutes of the
	// ramp's end it no longer is. (On this noiseless floor ramps of up to
	// 42 minutes raise no alert either way, and ramps of 48 minutes and more
	// raise one either way: they are still under way when it arms.) The
	// middle-third guard of the longer windows is off on both sides, and
	// the p-value threshold raised as in
	// TestFastRampIsNotALeakOfTheShortestWindow.
	ramp := rampAt3h(70*MB, 2700)
	for _, tc := range []struct {
		keep  float64
		alert bool // the held verdict stays up for HoldAfter
	}{{0.7, false}, {0, true}} {
		t.Run(fmt.Sprintf("keep %g", tc.keep), func(t *testing.T) {
			c := ceilingConfig(2.5)
			c.Alpha, c.FastKeepShare, c.GuardMidShare = 0.01, tc.keep, 0
			d, _ := New(c)
			alert, stopped := false, false
			evalEvery5m(t, d, 3*time.Hour, 5*time.Hour, ramp, func(at time.Duration, rep Report) {
				stopped = stopped || strings.Contains(rep.Windows[0].Reason, "must still be under way")
				alert = alert || rep.Suspected && t0.Add(at).Sub(rep.Since) >= c.HoldAfter
			})
			if alert != tc.alert {
				t.Errorf("held verdict up for %s: %v, want %v", FormatDuration(c.HoldAfter), alert, tc.alert)
			}
			if stopped != (tc.keep > 0) {
				t.Errorf("1h window said the rise had stopped: %v, want %v", stopped, tc.keep > 0)
			}
		})
	}
}

func TestFastLeakIsFoundWithinTheHour(t *testing.T) {
	// A leak of 100 MB/h from hour 3 on: faster than the 1h window's
	// ceiling, so that window waits until the rise has lasted 40 minutes,
	// and the raw verdict must then come at once (an alert with the
	// shipped 15 minutes' for: within the hour, like a 25 MB/h leak). With
	// the ceiling off it comes sooner; with the rise-age condition dropped
	// (a plain ceiling) it came only from the 2h window, 70 minutes in. The
	// p-value threshold is raised so that on this noiseless floor
	// significance does not decide the time (at 0.002 it comes at 45
	// minutes either way).
	leak := func(s float64) float64 { return sawtooth(200*MB, 0)(s) + 100*MB/3600*max(s-3*3600, 0) }
	for _, tc := range []struct {
		share         float64
		from, to      time.Duration
		waitedForRise bool
	}{{2.5, 40 * time.Minute, 40 * time.Minute, true}, {0, 30 * time.Minute, 35 * time.Minute, false}} {
		t.Run(fmt.Sprintf("share %g", tc.share), func(t *testing.T) {
			c := ceilingConfig(tc.share)
			c.Alpha = 0.01
			d, _ := New(c)
			var first time.Duration
			waited := false
			for at := time.Duration(0); at < 4*time.Hour+time.Second && first == 0; at += 5 * time.Second {
				if at > 3*time.Hour && at%(5*time.Minute) == 0 {
					rep := d.Evaluate(t0.Add(at), 0)
					waited = waited || strings.Contains(rep.Windows[0].Reason, "is judged once it has lasted 40m")
					if rep.Verdict == LeakSuspected {
						first = at - 3*time.Hour
					}
				}
				if err := d.Add(Point{Time: t0.Add(at), Bytes: leak(at.Seconds())}); err != nil {
					t.Fatal(err)
				}
			}
			if first < tc.from || first > tc.to {
				t.Errorf("first leak verdict %s after the leak started, want %s-%s", FormatDuration(first), FormatDuration(tc.from), FormatDuration(tc.to))
			}
			if waited != tc.waitedForRise {
				t.Errorf("1h window waited for the rise to last: %v, want %v", waited, tc.waitedForRise)
			}
		})
	}
}

func TestHingeOnset(t *testing.T) {
	xs := make([]float64, 12)
	for i := range xs {
		xs[i] = float64(i) * 300
	}
	for _, tc := range []struct {
		name       string
		f          func(x float64) float64
		want, rate float64
	}{
		{"line from the start", func(x float64) float64 { return 2 * x }, 0, 2},
		{"rise from the fifth bucket", func(x float64) float64 { return 3 * max(0, x-1200) }, 1200, 3},
		{"flat", func(float64) float64 { return 5 }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ys := make([]float64, len(xs))
			for i, x := range xs {
				ys[i] = tc.f(x)
			}
			if got, rate := hingeOnset(xs, ys); got != tc.want || math.Abs(rate-tc.rate) > 1e-9 {
				t.Errorf("hingeOnset = %g, %g; want %g, %g", got, rate, tc.want, tc.rate)
			}
		})
	}
}

// TestHingeFitMatchesDirectFit checks the O(n) hingeFit against the fit
// computed directly, knot by knot, on random floors of bucket-like size and
// scale (hundreds of MB, 5-minute buckets over a day, some rising).
func TestHingeFitMatchesDirectFit(t *testing.T) {
	direct := func(xs, ys []float64) (knot, slope, ssr float64) {
		best, knot := -1.0, xs[0]
		var syy float64
		for k := 0; k+2 < len(xs); k++ {
			var m stats.Moments
			for i := range xs {
				m.Add(max(0, xs[i]-xs[k]), ys[i])
			}
			syy = m.SYY
			if m.SXX > 0 && m.SXY > 0 && m.SXY*m.SXY/m.SXX > best {
				best, knot, slope = m.SXY*m.SXY/m.SXX, xs[k], m.SXY/m.SXX
			}
		}
		if best < 0 {
			return knot, 0, math.Inf(1)
		}
		return knot, slope, max(syy-best, 0)
	}
	r := rand.New(rand.NewPCG(10, 12))
	for trial := range 300 {
		n := 3 + r.IntN(290)
		xs, ys := make([]float64, n), make([]float64, n)
		start, rate, onset := 1.7e9+r.Float64()*1e6, r.Float64()*2000-500, r.Float64()*float64(n)*300
		for i := range xs {
			xs[i] = start + float64(i)*300
			ys[i] = 300e6 + rate*max(0, float64(i)*300-onset) + 2e6*r.NormFloat64()
		}
		wk, ws, wssr := direct(xs, ys)
		gk, gs, gssr := hingeFit(xs, ys)
		if math.IsInf(wssr, 1) != math.IsInf(gssr, 1) ||
			!math.IsInf(wssr, 1) && (math.Abs(gssr-wssr) > 1e-9*wssr+1 || math.Abs(gs-ws) > 1e-9*math.Abs(ws)+1e-9) {
			t.Fatalf("trial %d (n %d): hingeFit = %g, %g, %g; direct %g, %g, %g", trial, n, gk, gs, gssr, wk, ws, wssr)
		}
		if gk != wk {
			// Knots may differ only where two fits are equal to rounding.
			t.Logf("trial %d: knot %g against %g at equal fit", trial, gk, wk)
		}
	}
}

// TestYoungLeakIsNotARampedStep: a level step may ramp (Config.StepRamp),
// and a ramp followed by a level can fit a leak that started within the
// window (flat, then rising) better than a line does. Without the hinge
// comparison in stepFit, the 5h window of this series (the recording
// internal/leak/analyze tests with: 30 MB/h from hour 4, a 60 MB floor
// with slow wander, a sample a minute) called the young leak a level step
// 2h10m-2h25m into it (fit ratio 0.43-0.49). No window longer than the
// shortest may call it a level step while it is younger than the window.
func TestYoungLeakIsNotARampedStep(t *testing.T) {
	c := DefaultConfig()
	c.Grace, c.Cycle = 0, 0
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, 7))
	wander := 0.0
	for s := 0.0; s < 8*3600; s += 60 {
		at := time.Duration(s) * time.Second
		if s > 4*3600 && at%(5*time.Minute) == 0 {
			for _, w := range d.Evaluate(t0.Add(at), 0).Windows[1:] {
				if age := at - 4*time.Hour; age < w.Window && strings.HasPrefix(w.Reason, "level step") {
					t.Errorf("%s into the leak, window %s: %s", FormatDuration(age), FormatDuration(w.Window), w.Reason)
				}
			}
		}
		wander = 0.98*wander + 0.3e6*r.NormFloat64()
		floor := 60e6 + wander + 30e6*max(s/3600-4, 0)
		phase := math.Mod(s+r.Float64()*5, 50) / 50
		if err := d.Add(Point{Time: t0.Add(at), Bytes: math.Round(floor*(1+0.4*phase) + 0.5e6*r.NormFloat64())}); err != nil {
			t.Fatal(err)
		}
	}
}
