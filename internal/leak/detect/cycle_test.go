package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// cycleSeries is a memory series with a daily swing of ±amp bytes around
// 300 MB, a GC sawtooth, noise, and a leak of rate bytes/s from leakAt
// (seconds) on.
func cycleSeries(amp, rate, leakAt float64) func(float64) float64 {
	return cycleSeriesAt(amp, 1, rate, leakAt)
}

// cycleSeriesAt is cycleSeries with the swing's phase (radians at 0 s).
func cycleSeriesAt(amp, phase, rate, leakAt float64) func(float64) float64 {
	r := rand.New(rand.NewPCG(7, 11))
	return func(s float64) float64 {
		floor := 300*MB + amp*math.Sin(2*math.Pi*s/86400+phase)
		if s > leakAt {
			floor += rate * (s - leakAt)
		}
		phase := math.Mod(s, 60) / 60
		return floor*(1+0.3*phase) + 0.5*MB*r.NormFloat64()
	}
}

// rampedSteps adds level steps to f, each {start (h), size (MB), ramp
// (minutes)}.
func rampedSteps(f func(float64) float64, steps [][3]float64) func(float64) float64 {
	return func(s float64) float64 {
		y := f(s)
		for _, st := range steps {
			if x := (s - st[0]*3600) / (st[2] * 60); x > 0 {
				y += st[1] * MB * min(x, 1)
			}
		}
		return y
	}
}

// newCycleDetector returns a Detector with the defaults and Cycle cycle.
func newCycleDetector(t *testing.T, cycle time.Duration) *Detector {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Cycle = cycle
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// daySteps evaluates d every 5 minutes over [from, to) hours while feeding
// f every 30 s, and calls see with each report.
func daySteps(t *testing.T, d *Detector, f func(float64) float64, from, to float64, see func(h float64, rep Report)) {
	t.Helper()
	next := from * 3600
	for s := from * 3600; s < to*3600; s += 30 {
		if s >= next {
			see(next/3600, d.Evaluate(t0.Add(time.Duration(next*float64(time.Second))), 0))
			next += 300
		}
		if err := d.Add(Point{Time: t0.Add(time.Duration(s * float64(time.Second))), Bytes: f(s)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDailyCycle(t *testing.T) {
	// A swing of ±30 MB a day rises up to 7.9 MB/h: in a 5h window that is
	// above the practical minimum (4.2 MB/h) every day, and over 24h the
	// floor's slope depends on where the window starts.
	cases := []struct {
		name  string
		cycle time.Duration
		rate  float64 // bytes/s from 48 h on
		// Raw leak verdicts expected from 40 h on; the first hours
		// cannot tell a cycle from a leak (no previous day yet).
		wantRaw bool
		// Held verdict expected true from 72 h to the end.
		wantHeld bool
	}{
		{name: "cycle, no leak", cycle: 24 * time.Hour},
		{name: "cycle, no leak, comparison off", cycle: 0, wantRaw: true},
		{name: "cycle and a 2 MB/h leak", cycle: 24 * time.Hour, rate: 2 * MB / 3600, wantRaw: true, wantHeld: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newCycleDetector(t, tc.cycle)
			raw, notHeld, cycleFrom := 0, 0, -1.0
			var lastWhy string
			daySteps(t, d, cycleSeries(30*MB, tc.rate, 48*3600), 0, 96, func(h float64, rep Report) {
				if rep.Cycle && cycleFrom < 0 {
					cycleFrom = h
				}
				if h >= 40 && rep.Verdict == LeakSuspected {
					raw++
					lastWhy = rep.Reason
				}
				if h >= 72 && !rep.Suspected {
					notHeld++
				}
			})
			if tc.cycle > 0 && !(cycleFrom > 0 && cycleFrom <= 36) {
				t.Errorf("cycle shown from %.1f h, want by 36 h", cycleFrom)
			}
			if got := raw > 0; got != tc.wantRaw {
				t.Errorf("raw leak verdicts after 40 h: %d (last: %q), want some: %v", raw, lastWhy, tc.wantRaw)
			}
			if tc.wantHeld && notHeld > 0 {
				t.Errorf("held verdict false at %d evaluations after 72 h", notHeld)
			}
			if tc.wantHeld && !strings.Contains(lastWhy, "one cycle earlier") {
				t.Errorf("reason %q does not say it compared with one cycle earlier", lastWhy)
			}
		})
	}
}

func TestCycleTestIgnoresStepsAndLeaks(t *testing.T) {
	// Neither a level step nor a leak that started within the last day is a
	// cycle: only a floor that comes back to where it was a day earlier.
	cases := []struct {
		name string
		f    func(float64) float64
		want bool
	}{
		{"steady", cycleSeries(0, 0, 0), false},
		{"up-step 20 h before", func(s float64) float64 {
			y := cycleSeries(0, 0, 0)(s)
			if s > 40*3600 {
				y += 70 * MB
			}
			return y
		}, false},
		{"leak from 40 h", cycleSeries(0, 3*MB/3600, 40*3600), false},
		// Three falls of a cache that empties over 18 to 33 minutes.
		{"ramped down-steps", rampedSteps(cycleSeries(0, 0, 0), [][3]float64{{11.64, -40, 18}, {31.5, -45, 21}, {33.83, -25, 33}}), false},
		// A slow fall and a slow rise (3 h) between half a day and a day
		// before the test's span: the step removal does not take them
		// out, and they move the floor against half a day earlier but
		// not against a day earlier (CycleQuarterRatio).
		{"slow fall 17 h in", rampedSteps(cycleSeries(0, 0, 0), [][3]float64{{17, -22, 180}}), false},
		{"slow rise 14 h in", rampedSteps(cycleSeries(0, 0, 0), [][3]float64{{14, 25, 180}}), false},
		{"daily swing", cycleSeries(15*MB, 0, 0), true},
		{"daily swing and a leak from 40 h", cycleSeries(15*MB, 1*MB/3600, 40*3600), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			var rep Report
			daySteps(t, d, tc.f, 0, 60, func(_ float64, r Report) { rep = r })
			if rep.Cycle != tc.want {
				t.Errorf("Cycle = %v (ratio %.2f), want %v", rep.Cycle, rep.CycleRatio, tc.want)
			}
		})
	}
}

// Before the cycle test has confirmed a cycle, a rise that leaves the floor
// no higher than at the same time a day earlier is not a leak (the second
// day of a daily swing), while a leak that started within the last day is
// still one. The first swing rises from 2 h to 14 h and again from 26 h to
// 38 h, at up to 7.9 MB/h; the second from 20 h to 32 h, so that from 24 h
// the 5h window sees its second rise before the segment holds that window
// plus a day (29 h): the window's last third is compared with the day
// before as soon as DayLastBuckets of it can be.
func TestNoHigherThanADayEarlier(t *testing.T) {
	const phase, early = -2 * math.Pi / 3, -math.Pi / 6
	cases := []struct {
		name     string
		cycle    time.Duration
		f        func(float64) float64
		from, to float64 // hours
		wantRaw  bool
		wantVeto bool
	}{
		{"second day of a swing", 24 * time.Hour, cycleSeriesAt(30*MB, phase, 0, 0), 26, 38, false, true},
		{"second day of a swing, comparison off", 0, cycleSeriesAt(30*MB, phase, 0, 0), 26, 38, true, false},
		{"5 MB/h leak from 28 h", 24 * time.Hour, cycleSeriesAt(0, 0, 5*MB/3600, 28*3600), 26, 38, true, false},
		{"second rise from 24 h", 24 * time.Hour, cycleSeriesAt(30*MB, early, 0, 0), 24.5, 29, false, true},
		{"second rise from 24 h, comparison off", 0, cycleSeriesAt(30*MB, early, 0, 0), 24.5, 29, true, false},
		{"5 MB/h leak from 22 h", 24 * time.Hour, cycleSeriesAt(0, 0, 5*MB/3600, 22*3600), 24.5, 29, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newCycleDetector(t, tc.cycle)
			raw, veto := 0, 0
			var why string
			daySteps(t, d, tc.f, 0, tc.to, func(h float64, rep Report) {
				if h < tc.from || rep.Cycle {
					return
				}
				if rep.Verdict == LeakSuspected {
					raw++
					why = rep.Reason
				}
				for _, r := range rep.Windows {
					if strings.HasPrefix(r.Reason, "no higher than one cycle earlier") {
						veto++
					}
				}
			})
			if got := raw > 0; got != tc.wantRaw {
				t.Errorf("raw leak verdicts from %g h until a cycle shows: %d (last: %q), want some: %v", tc.from, raw, why, tc.wantRaw)
			}
			if got := veto > 0; got != tc.wantVeto {
				t.Errorf("window verdicts vetoed as no higher than one cycle earlier: %d, want some: %v", veto, tc.wantVeto)
			}
		})
	}
}

// Once the cycle is known, windows are judged on the difference to one
// cycle earlier, which carries the wander of two floors: a floor that fell
// 20 MB below the day before and came back to it over four hours rises
// 5 MB/h against then, significantly, but ends no higher than the day
// before; a leak of the same rate that started at the same time ends above
// it.
func TestWanderAgainstTheDayBefore(t *testing.T) {
	dip := func(s float64) float64 {
		switch h := s / 3600; {
		case h < 61 || h >= 67:
			return 0
		case h < 63:
			return -20 * MB
		default:
			return -20 * MB * (67 - h) / 4
		}
	}
	swing := cycleSeries(20*MB, 0, 0)
	cases := []struct {
		name string
		f    func(float64) float64
		want bool
	}{
		{"back to the day before", func(s float64) float64 { return swing(s) + dip(s) }, false},
		{"5 MB/h leak from 63 h", cycleSeries(20*MB, 5*MB/3600, 63*3600), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newCycleDetector(t, 24*time.Hour)
			raw := false
			var why string
			daySteps(t, d, tc.f, 0, 67.5, func(h float64, rep Report) {
				if h < 62 {
					return
				}
				if !rep.Cycle {
					t.Fatalf("%.1f h: no cycle confirmed (ratio %.2f)", h, rep.CycleRatio)
				}
				for _, r := range rep.Windows {
					if r.Window == 5*time.Hour {
						why = r.Reason
						raw = raw || r.Verdict == LeakSuspected
					}
				}
			})
			if raw != tc.want {
				t.Errorf("5h window said leak: %v, want %v (last: %s)", raw, tc.want, why)
			}
		})
	}
}

// TestRampedStepInACyclingSegment: once the segment cycles, windows are
// judged against one cycle earlier, and a level shift that ramps over 35-45
// minutes (a cache filling) is still not a leak. Two rules see to it, as
// without a cycle: the difference's slope is taken on the floor without
// the level shifts that the window took out (without it, the 2h window
// read the 25-40 MB ramps as a rise of 17-28 MB/h faster than one cycle
// earlier and alerted), and a rise faster than the short windows' ceiling
// is set aside (fastYoung; without it, the 1h window alerted on the
// 45-minute ramps of 40-90 MB).
func TestRampedStepInACyclingSegment(t *testing.T) {
	for _, tc := range []struct{ size, ramp float64 }{{25, 35}, {40, 35}, {40, 45}, {60, 45}, {90, 45}} {
		t.Run(fmt.Sprintf("%+.0f MB over %.0f min", tc.size, tc.ramp), func(t *testing.T) {
			d := newCycleDetector(t, 24*time.Hour)
			f := rampedSteps(cycleSeries(15*MB, 0, 0), [][3]float64{{50, tc.size, tc.ramp}})
			daySteps(t, d, f, 0, 56, func(h float64, rep Report) {
				if h < 49 {
					return
				}
				if !rep.Cycle {
					t.Fatalf("at %.2f h: no cycle shown", h)
				}
				at := t0.Add(time.Duration(h * float64(time.Hour)))
				if rep.Suspected && at.Sub(rep.Since) >= d.cfg.HoldAfter {
					t.Fatalf("at %.2f h: alert held since %s: %s", h, rep.Since.Sub(t0), rep.HoldReason)
				}
			})
		})
	}
}

// Within a segment's first cycle there is no day before to compare with:
// a swing that falls from process start and rises back rises like a leak
// for hours, but only to where the floor has been already. A leak takes
// the floor above that; one that starts after a fall is judged only once
// it has.
func TestNoHigherThanEarlierInTheSegment(t *testing.T) {
	const some, none, either = 1, 0, -1
	fallThenLeak := rampedSteps(cycleSeriesAt(0, 0, 5*MB/3600, 8*3600), [][3]float64{{2, -30, 120}})
	cases := []struct {
		name     string
		cycle    time.Duration
		f        func(float64) float64
		from, to float64 // hours
		wantRaw  bool
		veto     int
		notUntil float64 // hours: no leak verdict before
	}{
		{"first-day rise back from the trough", 24 * time.Hour, cycleSeriesAt(30*MB, math.Pi/2, 0, 0), 12, 24, false, some, 0},
		{"first-day rise back from the trough, comparison off", 0, cycleSeriesAt(30*MB, math.Pi/2, 0, 0), 12, 24, true, none, 0},
		{"5 MB/h leak from 10 h", 24 * time.Hour, cycleSeriesAt(0, 0, 5*MB/3600, 10*3600), 10, 16, true, either, 0},
		{"5 MB/h leak from 8 h after a 30 MB fall", 24 * time.Hour, fallThenLeak, 8, 24, true, some, 14},
		{"5 MB/h leak from 8 h after a 30 MB fall, comparison off", 0, fallThenLeak, 8, 24, true, none, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newCycleDetector(t, tc.cycle)
			raw, veto, first := 0, 0, math.Inf(1)
			var why string
			daySteps(t, d, tc.f, 0, tc.to, func(h float64, rep Report) {
				if h < tc.from {
					return
				}
				if rep.Verdict == LeakSuspected {
					raw++
					why = rep.Reason
					first = min(first, h)
				}
				for _, r := range rep.Windows {
					if strings.HasPrefix(r.Reason, "no higher than earlier in the segment") {
						veto++
					}
				}
			})
			if got := raw > 0; got != tc.wantRaw {
				t.Errorf("raw leak verdicts from %g h to %g h: %d (last: %q), want some: %v", tc.from, tc.to, raw, why, tc.wantRaw)
			}
			if tc.veto != either && (veto > 0) != (tc.veto == some) {
				t.Errorf("window verdicts vetoed as no higher than earlier in the segment: %d, want some: %v", veto, tc.veto == some)
			}
			if first < tc.notUntil {
				t.Errorf("first leak verdict at %.2f h, want none before %g h (the floor is back to its earlier high at 14 h)", first, tc.notUntil)
			}
			t.Logf("raw leak verdicts %d, first at %.2f h; vetoed window verdicts %d", raw, first, veto)
		})
	}
}
