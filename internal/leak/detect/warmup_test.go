package detect

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// startSeries is a memory series from process start: a floor of 250 MB,
// a warm-up that fills warm bytes with time constant tau (seconds; warm 0:
// none), a leak of rate bytes/s from the start, a slow wander (sd 2 MB,
// time constant 20 min), a GC sawtooth and noise.
func startSeries(seed uint64, warm, tau, rate float64) func(float64) float64 {
	r := rand.New(rand.NewPCG(seed, 3))
	wander, last := 0.0, 0.0
	return func(s float64) float64 {
		phi := math.Exp(-(s - last) / 1200)
		wander = phi*wander + 2*MB*math.Sqrt(1-phi*phi)*r.NormFloat64()
		last = s
		floor := 250*MB + wander + rate*s
		if warm > 0 {
			floor += warm * (1 - math.Exp(-s/tau))
		}
		phase := math.Mod(s, 90) / 90
		return floor*(1+0.5*phase) + 1*MB*r.NormFloat64()
	}
}

func TestWarmupFromProcessStart(t *testing.T) {
	const h = 3600.0
	cases := []struct {
		name        string
		warm, tau   float64
		rate        float64 // bytes/s from the start
		share       float64 // Config.WarmupShare
		wantByHours float64 // a leak verdict expected by then (0: never)
		noneBefore  float64 // no leak verdict before this hour
	}{
		// Warm-ups that fill 150-250 MB with time constants of 1-3 h: the
		// shape test must not take them for leaks, whatever the window.
		{name: "warm-up 250 MB, tau 3h", warm: 250 * MB, tau: 3 * h, share: 0.7},
		{name: "warm-up 150 MB, tau 1h", warm: 150 * MB, tau: 1 * h, share: 0.7},
		{name: "warm-up 200 MB, tau 2h", warm: 200 * MB, tau: 2 * h, share: 0.7},
		// The slowest warm-up the default grace allows (time constant
		// grace/2.5): the test asks less of an older segment, not less
		// than such a warm-up's deceleration shows.
		{name: "warm-up 300 MB, tau 4h", warm: 300 * MB, tau: 4 * h, share: 0.7},
		{name: "warm-up 60 MB, tau 4h", warm: 60 * MB, tau: 4 * h, share: 0.7},
		// A leak present from process start is found hours before the
		// grace (10 h) plus the shortest window would allow...
		{name: "25 MB/h from start", rate: 25 * MB / h, share: 0.7, wantByHours: 5},
		{name: "5 MB/h from start", rate: 5 * MB / h, share: 0.7, wantByHours: 9},
		// ... which is what the grace alone does (the test off).
		{name: "25 MB/h from start, test off", rate: 25 * MB / h, wantByHours: 12, noneBefore: 11},
		// Under a warm-up the leak shows once the warm-up has flattened.
		{name: "warm-up and 5 MB/h", warm: 150 * MB, tau: 1 * h, rate: 5 * MB / h, share: 0.7, wantByHours: 16},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.WarmupShare = tc.share
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			first, firstWhy := -1.0, ""
			var waits []string
			daySteps(t, d, startSeries(uint64(i+1), tc.warm, tc.tau, tc.rate), 0, 40, func(hr float64, rep Report) {
				if rep.Verdict == LeakSuspected && first < 0 {
					first, firstWhy = hr, rep.Reason
				}
				if hr == 2 {
					waits = append(waits, rep.Wait)
				}
			})
			switch {
			case tc.wantByHours == 0 && first >= 0:
				t.Fatalf("leak suspected at %.2f h: %s", first, firstWhy)
			case tc.wantByHours > 0 && (first < 0 || first > tc.wantByHours):
				t.Fatalf("first leak verdict at %.2f h, want by %g h", first, tc.wantByHours)
			case first >= 0 && first < tc.noneBefore:
				t.Fatalf("first leak verdict at %.2f h, want none before %g h (%s)", first, tc.noneBefore, firstWhy)
			}
			if tc.share > 0 && tc.wantByHours > 0 && tc.warm == 0 && !strings.Contains(firstWhy, "window") {
				t.Errorf("reason %q does not name the window", firstWhy)
			}
			t.Logf("first leak verdict at %.2f h (%s); wait at 2 h: %v", first, firstWhy, waits)
		})
	}
}

func TestWarmupTestWaitsForMinAge(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WarmupShare = 0.7
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var at90, atMin Report
	daySteps(t, d, startSeries(9, 0, 0, 25*MB/3600), 0, cfg.WarmupMinAge.Hours()+0.5, func(hr float64, rep Report) {
		switch {
		case hr == 1.5:
			at90 = rep
		case hr > cfg.WarmupMinAge.Hours() && atMin.Windows == nil:
			atMin = rep
		}
	})
	w := at90.Windows[0]
	if w.Verdict != InsufficientData || w.Wait != WaitGrace || !strings.Contains(w.Reason, "warm-up test needs") {
		t.Errorf("1h window at 1.5 h: %v, wait %q, %q; want insufficient_data waiting for the warm-up test's minimum age", w.Verdict, w.Wait, w.Reason)
	}
	if w := atMin.Windows[0]; w.Verdict == InsufficientData || !w.YoungSegment {
		t.Errorf("1h window just after the minimum age: %v (%q), young %v; want a verdict under the warm-up test", w.Verdict, w.Reason, w.YoungSegment)
	}
}

// TestPartialWindowJudgesAYoungSegment: with the warm-up test on, a window
// longer than the segment so far gives a verdict once the segment covers
// Config.PartialShare of it. A 5 MB/h leak from process start is below the
// practical minimum of the 1h and 2h windows, so without it only the full
// 5h window (5 h after the start) could report it. Warm-ups (200 MB with
// a time constant of 2 h, 100 MB with 1 h) must still not be taken for
// leaks by the 5h window judging 3-5 h of them, and the 24h window
// (PartialMaxWindow) waits to be full.
func TestPartialWindowJudgesAYoungSegment(t *testing.T) {
	const h = 3600.0
	cases := []struct {
		name       string
		warm, tau  float64
		rate       float64
		share      float64 // Config.PartialShare
		wantBefore float64 // the 5h window suspects a leak before this hour (0: never within 8 h)
		noneBefore float64 // and not before this one
	}{
		{name: "5 MB/h, judged from 3h", rate: 5 * MB / h, share: 0.6, wantBefore: 4.5, noneBefore: 3},
		{name: "5 MB/h, full window only", rate: 5 * MB / h, share: 1, wantBefore: 8, noneBefore: 5},
		{name: "warm-up 200 MB, tau 2h, judged from 3h", warm: 200 * MB, tau: 2 * h, share: 0.6},
		{name: "warm-up 100 MB, tau 1h, judged from 3h", warm: 100 * MB, tau: 1 * h, share: 0.6},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PartialShare = tc.share
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			first, why, covered := -1.0, "", 0.0
			var at2, day string
			daySteps(t, d, startSeries(uint64(40+i), tc.warm, tc.tau, tc.rate), 0, 8, func(hr float64, rep Report) {
				w := rep.Windows[2] // 5h
				if hr == 2 {
					at2, day = w.Reason, rep.Windows[3].Reason
				}
				if w.Verdict == LeakSuspected && first < 0 {
					first, why, covered = hr, w.Reason, w.Covered.Hours()
				}
			})
			switch {
			case tc.wantBefore == 0 && first >= 0:
				t.Fatalf("5h window suspected a leak at %.2f h (%.2f h of it covered): %s", first, covered, why)
			case tc.wantBefore > 0 && (first < 0 || first >= tc.wantBefore):
				t.Fatalf("5h window first suspected a leak at %.2f h, want before %g h", first, tc.wantBefore)
			case first >= 0 && first < tc.noneBefore:
				t.Fatalf("5h window suspected a leak at %.2f h, want none before %g h", first, tc.noneBefore)
			}
			if want := "judged once the segment is 3h old"; tc.share < 1 && !strings.Contains(at2, want) {
				t.Errorf("5h window at 2 h: %q, want it to say %q", at2, want)
			}
			if strings.Contains(day, "judged once") {
				t.Errorf("24h window at 2 h: %q; a window of PartialMaxWindow waits to be full", day)
			}
			t.Logf("5h window: first leak verdict at %.2f h (%.2f h covered): %s", first, covered, why)
		})
	}
}

// TestWarmupShareFallsWithTheSegmentsAge: the warm-up test asks the last
// third for Config.WarmupShare of the first third's slope in a young
// segment, less in an older one (the square root of the deceleration of
// the slowest warm-up the grace allows, exp(-T/(3 grace/2.5))), and never
// less than WarmupMinShare.
func TestWarmupShareFallsWithTheSegmentsAge(t *testing.T) {
	const h = 3600.0
	cases := []struct {
		name  string
		age   float64 // seconds
		grace time.Duration
		last  float64 // last third's slope against a first third of 1
		want  bool    // passes (not a warm-up)
	}{
		{name: "3h, 0.69", age: 3 * h, grace: 10 * time.Hour, last: 0.69},
		{name: "3h, 0.71", age: 3 * h, grace: 10 * time.Hour, last: 0.71, want: true},
		{name: "6h, 0.60", age: 6 * h, grace: 10 * time.Hour, last: 0.60},
		{name: "6h, 0.62", age: 6 * h, grace: 10 * time.Hour, last: 0.62, want: true},
		{name: "9h, 0.51", age: 9 * h, grace: 10 * time.Hour, last: 0.51, want: true},
		{name: "30h, 0.49", age: 30 * h, grace: 10 * time.Hour, last: 0.49},
		{name: "no grace, 9h, 0.69", age: 9 * h, last: 0.69},
		{name: "grace 30h, 9h, 0.69", age: 9 * h, grace: 30 * time.Hour, last: 0.69},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seg := &segFigures{ok: true, age: tc.age, thirds: [3]float64{1, 1, tc.last}}
			got, why := warmup(seg, 0.7, tc.grace, 1)
			if got != tc.want {
				t.Errorf("warmup = %v (%q), want %v", got, why, tc.want)
			}
		})
	}
}
