package quality

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// TestQuickQuality runs a handful of seeded series (the full benchmark is
// `go run ./internal/leak/cmd/leakbench`) and checks what must hold on any
// seed: the rule re-scored from recorded figures equals the detector's own
// verdicts, the robust detector raises no alarm on steady series and fewer
// than the old rule on level steps, and it catches every leak, fast ones
// first. Ramped steps are in for the parity: they exercise the shortest
// window's ceiling (detect.Config.FastShare).
func TestQuickQuality(t *testing.T) {
	o := DefaultOptions()
	o.Series, o.LeakSeries = 6, 2
	o.Families = []Family{Steady, Steps, RampSteps}
	o.LeakRates = []float64{1 * mb / 3600, 25 * mb / 3600}
	o.Length = 72 * time.Hour
	d, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// Parity: scoring from the trace equals the detector's verdicts at
	// every evaluation of every series.
	own, rescored := d.Detector("own"), d.Robust("rescored", ParamsOf(o.Config), nil)
	for _, tr := range d.traces {
		for i := range tr.evals {
			if own.Cond(tr, i) != rescored.Cond(tr, i) {
				t.Fatalf("seed %d eval %d: detector %v, re-scored %v", tr.series.Seed, i, own.Cond(tr, i), rescored.Cond(tr, i))
			}
		}
	}
	robust := d.Score(own)
	old := d.Score(d.OldRule(1)) // the middle default window (5h)
	if robust.FPPerDay[Steady] != 0 {
		t.Errorf("robust detector: %.3f false alarms a day on steady series", robust.FPPerDay[Steady])
	}
	if old.FPPerDay[Steps] == 0 || robust.FPPerDay[Steps] >= old.FPPerDay[Steps] {
		t.Errorf("false alarms a day on steps: robust %.3f, old rule %.3f", robust.FPPerDay[Steps], old.FPPerDay[Steps])
	}
	for _, r := range o.LeakRates {
		if robust.Missed[r] != 0 {
			t.Errorf("%g MB/h: %.0f%% missed", r*3600/mb, 100*robust.Missed[r])
		}
	}
	if fast, slow := robust.MedianDelay[o.LeakRates[1]], robust.MedianDelay[o.LeakRates[0]]; fast >= slow {
		t.Errorf("25 MB/h found after %v, 1 MB/h after %v", fast, slow)
	}
	// The held verdict keeps the raw verdict's alarms and delays on these
	// series and never flaps more than it.
	held := d.Score(d.Held("held"))
	if held.FPPerDay[Steady] != 0 {
		t.Errorf("held verdict: %.3f false alarms a day on steady series", held.FPPerDay[Steady])
	}
	for _, r := range o.LeakRates {
		if held.Missed[r] != 0 || held.MedianDelay[r] > robust.MedianDelay[r] || held.Flap[r] > robust.Flap[r] {
			t.Errorf("%g MB/h: held missed %.0f%% delay %v flap %.3f; raw delay %v flap %.3f",
				r*3600/mb, 100*held.Missed[r], held.MedianDelay[r], held.Flap[r], robust.MedianDelay[r], robust.Flap[r])
		}
	}
	var b strings.Builder
	d.Markdown(&b, []Score{old, robust, held})
	if !strings.Contains(b.String(), "| detector |") || strings.Count(b.String(), "\n") != 5 {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestHeldReplayIsTheDetectorsRule checks that the held verdict the
// benchmark scores (Data.Held, replayed from recorded figures) is the
// detector's own (Report.Suspected) at every evaluation: one rule, not two
// copies that can drift. The detector's own held verdict is recorded when
// it runs without grace.
func TestHeldReplayIsTheDetectorsRule(t *testing.T) {
	o := DefaultOptions()
	o.Config.Grace = 0
	o.Series, o.LeakSeries = 2, 2
	o.Families = []Family{Steady, Diurnal}
	o.LeakRates = []float64{5 * mb / 3600}
	o.Length = 48 * time.Hour
	d, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	held := d.Held("held")
	on := 0
	for _, tr := range d.traces {
		for i := range tr.evals {
			if held.Cond(tr, i) != tr.held[i] {
				t.Fatalf("seed %d eval %d: replayed held %v, detector's own %v", tr.series.Seed, i, held.Cond(tr, i), tr.held[i])
			}
			if tr.held[i] {
				on++
			}
		}
	}
	if on == 0 {
		t.Fatal("no evaluation held a leak: the comparison proves nothing")
	}
}

func TestFirstAlert(t *testing.T) {
	// Evaluations every hour: index i is at i+1 hours; the leak starts at 3 h.
	const every, from = time.Hour, 3 * time.Hour
	cases := []struct {
		name string
		act  string // one character per evaluation: x fires
		want int
	}{
		{"raised after the start", "....xx..", 4},
		{"raised at the start", "..xxx...", 2},
		{"never", "........", -1},
		{"before the start only", "xx......", -1},
		{"false alarm running into the leak, then the detection", ".xxxx..x", 7},
		{"false alarm running into the leak and never stopping", ".xxxxxxx", 2},
		{"false alarm that stops, no detection", ".xxx....", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			act := make([]bool, len(tc.act))
			for i, c := range tc.act {
				act[i] = c == 'x'
			}
			if got := firstAlert(act, every, from); got != tc.want {
				t.Errorf("firstAlert(%s) = %d, want %d", tc.act, got, tc.want)
			}
		})
	}
}

// TestFalseAlarmLength checks the false alarms a day and the median length
// of a false alarm that Score reports, on traces whose condition is given
// (one character per 5-minute evaluation, x: holds; the alert needs it to
// hold 15 minutes, i.e. at four evaluations in a row).
func TestFalseAlarmLength(t *testing.T) {
	for _, tc := range []struct {
		name   string
		conds  []string
		alarms float64 // per day
		length time.Duration
	}{
		{"none", []string{"xxx.........", "............"}, 0, 0},
		{"one of 25 minutes", []string{"..xxxxxxxx..", "............"}, 0.5, 25 * time.Minute},
		{"three: 5, 10 and 15 minutes", []string{"xxxx.xxxxx..", "..xxxxxx...."}, 1.5, 10 * time.Minute},
		{"up to the end", []string{"........xxxx", "............"}, 0.5, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.EvalEvery, o.Hold = 5*time.Minute, 15*time.Minute
			o.Length = time.Duration(len(tc.conds[0])) * o.EvalEvery * 24 // each trace counts as a day
			d := &Data{Opts: o}
			cond := map[*trace]string{}
			for _, c := range tc.conds {
				tr := &trace{series: Series{Family: Steady}, evals: len(c)}
				d.traces = append(d.traces, tr)
				cond[tr] = c
			}
			s := d.Score(Rule{Name: "given", Cond: func(tr *trace, i int) bool { return cond[tr][i] == 'x' }})
			if s.FPPerDay[Steady] != tc.alarms {
				t.Errorf("false alarms a day = %g, want %g", s.FPPerDay[Steady], tc.alarms)
			}
			if s.FPLength[Steady] != tc.length {
				t.Errorf("median length = %v, want %v", s.FPLength[Steady], tc.length)
			}
		})
	}
}

// TestRampedStepsAreNotACycle replays ramped-step series of the benchmark on
// which the cycle test once confirmed a daily cycle (and then judged the
// anniversary of a fall as a rise against one cycle earlier, raising an
// alert that held for a day): the ramps must be taken out of the floor
// before the differences to one and half a cycle earlier are compared.
func TestRampedStepsAreNotACycle(t *testing.T) {
	for _, seed := range []uint64{1050052, 1050073, 1050119} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			det, err := detect.New(detect.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Unix(1_700_000_000, 0)
			next, cycleAt := 300.0, -1.0
			Series{Family: RampSteps, Seed: seed}.Generate(96*3600, 5, func(s, y float64) {
				if s >= next {
					if rep := det.Evaluate(t0.Add(time.Duration(s*float64(time.Second))), 0); rep.Cycle && cycleAt < 0 {
						cycleAt = s / 3600
					}
					next += 300
				}
				if err := det.Add(detect.Point{Time: t0.Add(time.Duration(s * float64(time.Second))), Bytes: y}); err != nil {
					t.Fatal(err)
				}
			})
			if cycleAt >= 0 {
				t.Errorf("a daily cycle confirmed at %.1f h on a series of ramped level steps", cycleAt)
			}
		})
	}
}

// TestRampADayOldIsNotACycle replays ramped-step series of the benchmark
// (seed 1) on which a ramp that noise had broken into pieces stayed in the
// floor that the cycle test reads, and about a day later passed for a
// daily cycle: the windows were then judged against one cycle earlier,
// where the ramp left the floor higher than the day before, and an alert
// fired (1050158: +35 MB over 43 minutes from 53.49 h, "daily cycle
// showing: floor +35.3 MB above one cycle earlier ... in every third of
// the window" at 77h40m; 1050057 and 1050091 likewise). The cycle
// test now takes such a ramp out as one shift (stats.RemoveRamps), and no
// alert comes from a comparison with one cycle earlier.
func TestRampADayOldIsNotACycle(t *testing.T) {
	for _, seed := range []uint64{1050057, 1050091, 1050158} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t0 := time.Unix(1_700_000_000, 0)
			c := detect.DefaultConfig()
			replay(t, Series{Family: RampSteps, Seed: seed}, c, 96*time.Hour, func(at time.Duration, rep detect.Report) {
				if rep.Suspected && t0.Add(at).Sub(rep.Since) == c.HoldAfter && strings.Contains(rep.HoldReason+rep.Reason, "cycle earlier") {
					t.Errorf("alert at %s judged against one cycle earlier: %s", detect.FormatDuration(at), rep.Reason)
				}
			})
		})
	}
}

// TestFastLeaksAreFoundWithinTheHour checks the shortest window's ceiling
// (detect.Config.FastShare) from the other side: a leak four times the
// 25 MB/h of the detection target, which the 1h window reports only once
// the rise has lasted 40 minutes, is still found within the hour, like a
// 25 MB/h one (median of the held verdict's first alerts). With a plain
// ceiling (the rise left to the 2h window) the median was 1.3 h; waiting
// for 45 minutes instead of 40 it was 1.08 h on these series.
func TestFastLeaksAreFoundWithinTheHour(t *testing.T) {
	o := DefaultOptions()
	o.Series, o.LeakSeries = 0, 20
	o.Families = nil
	o.LeakKinds = []LeakKind{LeakLate}
	o.LeakRates = []float64{25 * mb / 3600, 100 * mb / 3600}
	o.Length = 40 * time.Hour
	d, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	s := d.Score(d.Held("held"))
	for _, r := range o.LeakRates {
		if s.MedianDelay[r] > time.Hour || s.Missed[r] != 0 {
			t.Errorf("%g MB/h: median detection %v (%.0f%% missed), want within 1 h", r*3600/mb, s.MedianDelay[r], 100*s.Missed[r])
		}
	}
}

// TestRampedStepAlarmsFallWithTheCeiling replays benchmark series of the
// ramped-step family (caches filling over 5-45 minutes) with and without
// the shortest window's ceiling (detect.Config.FastShare): with it, fewer
// alerts (the held verdict after 15 minutes) fire.
func TestRampedStepAlarmsFallWithTheCeiling(t *testing.T) {
	fp := func(share float64) float64 {
		o := DefaultOptions()
		o.Series, o.LeakSeries = 40, 0
		o.Families = []Family{RampSteps}
		o.LeakKinds = nil
		o.Config.FastShare = share
		d, err := Simulate(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return d.Score(d.Held("held")).FPPerDay[RampSteps]
	}
	with, without := fp(2.5), fp(0)
	if !(with < without) {
		t.Errorf("ramped steps: %.3f false alarms a day with the ceiling, %.3f without; want fewer with it", with, without)
	}
	t.Logf("ramped steps: %.3f false alarms a day with the ceiling, %.3f without", with, without)
}

// TestRampFillingHalfTheWindowIsJudgedAtItsOwnRate replays a benchmark
// series of the ramped-step family whose cache fills 29 MB over 28 minutes
// (62 MB/h) from 30.12 h on. When the ramp ends the 1h window's floor
// rises 30 MB/h over the window, under its 45 MB/h ceiling, because the
// ramp fills only half of it; the rise's own rate (the hinge fit's slope)
// is 54 MB/h. The ceiling compares the faster of the two, so the window
// waits for the rise to have lasted 40 minutes, by when the ramp has
// ended: the raw verdict says leak at two evaluations in a row, not the
// three (15 minutes) an alert needs. Compared with the window's slope
// alone, it said leak from 30h35m and the alert fired; without the ceiling
// it still does.
func TestRampFillingHalfTheWindowIsJudgedAtItsOwnRate(t *testing.T) {
	s := Series{Family: RampSteps, Seed: 1050039}
	for _, tc := range []struct {
		share float64
		alert bool
	}{{2.5, false}, {0, true}} {
		t.Run(fmt.Sprintf("share %g", tc.share), func(t *testing.T) {
			c := detect.DefaultConfig()
			c.FastShare = tc.share
			run, longest, waited := 0, 0, false
			replay(t, s, c, 31*time.Hour+20*time.Minute, func(at time.Duration, rep detect.Report) {
				if at < 30*time.Hour {
					return
				}
				w := rep.Windows[0]
				if w.FastYoung && w.FloorSlope < c.Ceiling(w.Window) {
					waited = true
				}
				run++
				if rep.Verdict != detect.LeakSuspected {
					run = 0
				}
				longest = max(longest, run)
			})
			if alert := longest >= 3; alert != tc.alert {
				t.Errorf("leak verdict at %d evaluations in a row at most; alert %v, want %v", longest, alert, tc.alert)
			}
			if waited != (tc.share > 0) {
				t.Errorf("the 1h window waited for a rise faster than its ceiling while its own slope was below it: %v, want %v", waited, tc.share > 0)
			}
		})
	}
}

// TestRampsThatEndedRaiseNoAlert replays benchmark series of the
// ramped-step family whose alert fired after the ramp had ended, and checks
// that with the default settings none fires between from and to, and that
// with the rule that stops it turned off one does, from the given window:
//   - series 1050045: 76 MB over 37 minutes (123 MB/h) from 7.41 h; the 1h
//     window said leak 8 minutes after the ramp's end, its last third
//     reading 40-55 MB/h of the window's noise (Config.FastKeepShare);
//   - series 1050081, 1050120, 1050084: 60-86 MB over 40-44 minutes; the
//     2h window read flat, rising, flat by thirds (for 1050081, -9.8,
//     75.2, 8.6 MB/h with standard errors of 6-7 MB/h) and passed the
//     guard's comparisons with the whole window and the first third
//     (Config.GuardMidShare). Since the 2h window has a ceiling too
//     (Config.Ceiling), either rule stops these: with both off (FastShare
//     0 takes the 1h window's ceiling too), 1050081's alert comes from the
//     1h window. A window of 0 accepts an alert from any window;
//   - series 1050187, 1050115: 28 MB over 21 minutes and 25 MB over 42
//     minutes, ended 2.6 and 2.3 h before; the ramp's changes were within
//     the noise of the 5h window's floor, so the shift removal kept them,
//     and a level step at once left 0.50 and 0.62 of a line's residuals
//     (the step test needs under 0.5; 1050187 has 10 MB of wander rising
//     before its ramp). A step that ramps leaves 0.30 and 0.38 at the
//     times of the alerts (63h35m, 14h10m): "level step"
//     (Config.StepRamp).
func TestRampsThatEndedRaiseNoAlert(t *testing.T) {
	for _, tc := range []struct {
		seed     uint64
		from, to time.Duration
		off      func(*detect.Config)
		window   time.Duration // of the alert with the rule off
	}{
		{1050045, 7 * time.Hour, 10 * time.Hour, func(c *detect.Config) { c.FastKeepShare = 0 }, time.Hour},
		{1050081, 40 * time.Hour, 43 * time.Hour, func(c *detect.Config) { c.GuardMidShare, c.FastShare = 0, 0 }, 0},
		{1050120, 29 * time.Hour, 32 * time.Hour, func(c *detect.Config) { c.GuardMidShare, c.FastShare = 0, 0 }, 0},
		{1050084, 76 * time.Hour, 79 * time.Hour, func(c *detect.Config) { c.GuardMidShare, c.FastShare = 0, 0 }, 0},
		{1050187, 62 * time.Hour, 65 * time.Hour, func(c *detect.Config) { c.StepRamp = 0 }, 5 * time.Hour},
		{1050115, 13 * time.Hour, 15 * time.Hour, func(c *detect.Config) { c.StepRamp = 0 }, 5 * time.Hour},
	} {
		t.Run(fmt.Sprint(tc.seed), func(t *testing.T) {
			alert := func(c detect.Config) (time.Duration, time.Duration) {
				var at0, win time.Duration
				t0 := time.Unix(1_700_000_000, 0)
				replay(t, Series{Family: RampSteps, Seed: tc.seed}, c, tc.to, func(at time.Duration, rep detect.Report) {
					if at >= tc.from && at0 == 0 && rep.Suspected && t0.Add(at).Sub(rep.Since) >= c.HoldAfter {
						at0, win = at, rep.SuspectedWindow
					}
				})
				return at0, win
			}
			if at, win := alert(detect.DefaultConfig()); at != 0 {
				t.Errorf("defaults: alert at %s from the %s window, want none", detect.FormatDuration(at), detect.FormatDuration(win))
			}
			c := detect.DefaultConfig()
			tc.off(&c)
			if at, win := alert(c); at == 0 || (tc.window != 0 && win != tc.window) {
				want := "any"
				if tc.window != 0 {
					want = "the " + detect.FormatDuration(tc.window)
				}
				t.Errorf("rule off: alert at %s from the %s window, want one from %s window", detect.FormatDuration(at), detect.FormatDuration(win), want)
			}
		})
	}
}

// TestRampedStepSaysSo: the 5h window's verdict on series 1050187 (28 MB
// over 21 minutes from 60h37m, see TestRampsThatEndedRaiseNoAlert) names
// the step and how long it ramped, as the reader of the gauge's reason or
// of leak analyze sees it.
func TestRampedStepSaysSo(t *testing.T) {
	var reason string
	replay(t, Series{Family: RampSteps, Seed: 1050187}, detect.DefaultConfig(), 63*time.Hour+35*time.Minute, func(at time.Duration, rep detect.Report) {
		for _, r := range rep.Windows {
			if r.Window == 5*time.Hour {
				reason = r.Reason
			}
		}
	})
	if !strings.HasPrefix(reason, "level step: a shift of +") || !strings.Contains(reason, " ramping over about ") {
		t.Errorf("5h window at 63h35m: %q, want a level step ramping over some minutes", reason)
	}
}

// TestTwoHourWindowWaitsOutARamp replays benchmark series 1050152 of the
// ramped-step family: 92 MB over 43 minutes from 22.17 h. Before the 2h
// window had a ceiling (detect.Config.Ceiling), the 1h window said leak
// at 22h55m and 23h while the ramp ran, let it go once it had ended (its
// last third no longer rose), and the 2h window then read the ramp as a
// floor rising 62-71 MB/h, persistent by thirds, from 23h05m: between
// the two the raw verdict held for the alert's 15 minutes. The 2h window
// now waits for a rise faster than 40 MB/h (2.5 x its 16 MB/h minimum) to
// last 80 minutes and still be under way, so it never says leak on this
// ramp, and no alert fires; with the ceilings off (FastShare 0) it says
// leak again.
func TestTwoHourWindowWaitsOutARamp(t *testing.T) {
	const from, to = 22 * time.Hour, 25 * time.Hour
	run := func(c detect.Config) (leak2h, waited bool, alert time.Duration) {
		t0 := time.Unix(1_700_000_000, 0)
		replay(t, Series{Family: RampSteps, Seed: 1050152}, c, to, func(at time.Duration, rep detect.Report) {
			if at < from {
				return
			}
			for _, r := range rep.Windows {
				if r.Window != 2*time.Hour {
					continue
				}
				leak2h = leak2h || r.Verdict == detect.LeakSuspected
				waited = waited || strings.Contains(r.Reason, "a rise faster than 40 MB/h")
			}
			if alert == 0 && rep.Suspected && t0.Add(at).Sub(rep.Since) >= c.HoldAfter {
				alert = at
			}
		})
		return leak2h, waited, alert
	}
	leak2h, waited, alert := run(detect.DefaultConfig())
	if leak2h || !waited || alert != 0 {
		t.Errorf("defaults: 2h window said leak %v, waited for its ceiling %v, alert at %s; want false, true, none", leak2h, waited, detect.FormatDuration(alert))
	}
	c := detect.DefaultConfig()
	c.FastShare = 0
	if leak2h, _, _ := run(c); !leak2h {
		t.Error("without the ceilings the 2h window never said leak: the series no longer shows what this test is about")
	}
}

// TestFromStartLeakIsHeldBeforeTheLongestWindowIsFull replays a benchmark
// series leaking 5 MB/h from process start (seed 1, the 18th series of
// that case). Its alert fires after 5h15m, from the 5h window, whose floor
// then wanders: with full windows alone as evidence the alert cleared at
// 7h30m, and at 20h45m it read "no leak" again while the 24h window, not
// full yet, read the segment's floor rising 5.1 MB/h at p = 5e-18. A window
// the segment covers for detect.HoldPartialShare of its length now keeps
// the alert, so it stays up from its first firing to the end of the day.
func TestFromStartLeakIsHeldBeforeTheLongestWindowIsFull(t *testing.T) {
	s := Series{Family: Leak, Base: Steady, Kind: LeakFromStart, LeakRate: 5 * mb / 3600, Seed: 2210867}
	// fired is when the held verdict had first held for the shipped
	// alert's 15 minutes' for:.
	var since, fired, cleared time.Duration
	partial := false
	replay(t, s, detect.DefaultConfig(), 24*time.Hour, func(at time.Duration, rep detect.Report) {
		switch {
		case !rep.Suspected:
			since = 0
			if fired != 0 && cleared == 0 {
				cleared = at
			}
		case since == 0:
			since = at
		case fired == 0 && at-since >= 15*time.Minute:
			fired = at
		}
		partial = partial || (rep.Suspected && strings.Contains(rep.HoldReason, "of it so far"))
	})
	if fired == 0 || fired > 8*time.Hour {
		t.Fatalf("alert fired at %v, want within 8 h", fired)
	}
	if cleared != 0 {
		t.Errorf("alert fired at %v cleared at %v while the leak went on", fired, cleared)
	}
	if !partial {
		t.Error("the held verdict was never kept by a window the segment does not fill yet")
	}
	t.Logf("alert fired at %v", fired)
}

// TestLeakPastADipIsHeldBeforeTwiceTheMedian replays benchmark series
// 2000729 (seed 1, 1 MB/h from 36 h on a steady floor): 14 h into the leak
// one 20-minute bucket of the floor dips by 13 MB and comes straight back.
// Step 2 took the way back out as a level shift of 16 MB, which lowered the
// floor after it against the floor before it: the 24h window read 0.03-0.5
// MB/h until the dip left it at 72 h, past twice the 1 MB/h median (about
// 28 h, i.e. 64 h here). A dip and its way back now come out together (no
// shift is counted), and the leak is held before 64 h and from then on.
func TestLeakPastADipIsHeldBeforeTwiceTheMedian(t *testing.T) {
	s := Series{Family: Leak, Base: Steady, LeakRate: 1 * mb / 3600, LeakStart: 36 * 3600, Seed: 2000729}
	var first time.Duration
	replay(t, s, detect.DefaultConfig(), 66*time.Hour, func(at time.Duration, rep detect.Report) {
		if rep.Suspected && first == 0 {
			first = at
		}
		if at >= 64*time.Hour && !rep.Suspected {
			t.Errorf("%s: no leak held, 28 h into a 1 MB/h leak", detect.FormatDuration(at))
		}
	})
	if first == 0 || first > 64*time.Hour {
		t.Fatalf("first held at %v, want before 64 h", first)
	}
	t.Logf("first held at %s", detect.FormatDuration(first))
}

// TestLeakInACyclesFallingHalfIsFoundWhileTheCycleShows replays a benchmark
// series with a ±23 MB daily cycle (seed 2, the 14th series of that case)
// whose 5 MB/h leak starts at 36 h, as the cycle's floor begins to fall by
// about 6 MB/h: the floor's own slope shows no leak for hours. The cycle
// test passes from then on but is not confirmed (it must pass for
// detect.CycleConfirm), so before, no window judged the floor against one
// cycle earlier, and the leak had no alert 7 hours in (twice the median).
// While the cycle shows, a window may now say leak on the day-over-day
// figures: the 5h window does at 39h55m.
func TestLeakInACyclesFallingHalfIsFoundWhileTheCycleShows(t *testing.T) {
	s := Series{Family: Leak, Base: Diurnal, Kind: LeakDiurnal, LeakRate: 5 * mb / 3600, LeakStart: 36 * 3600, Seed: 3110796}
	end := 43 * time.Hour
	var since, fired time.Duration
	showing := false
	replay(t, s, detect.DefaultConfig(), end, func(at time.Duration, rep detect.Report) {
		for _, w := range rep.Windows {
			showing = showing || (w.CycleShowing && w.Verdict == detect.LeakSuspected && !rep.Cycle)
		}
		switch {
		case at <= 36*time.Hour || !rep.Suspected:
			since = 0
		case since == 0:
			since = at
		case fired == 0 && at-since >= 15*time.Minute:
			fired = at
		}
	})
	if !showing {
		t.Error("no window said leak on the day-over-day figures before the cycle was confirmed")
	}
	if fired == 0 {
		t.Fatalf("no alert on the leak by %v", end)
	}
	t.Logf("alert fired at %v", fired)
}

// replay feeds series s, as the benchmark generates it, to a detector with
// configuration c up to end, and calls eval with every 5-minute evaluation.
func replay(t *testing.T, s Series, c detect.Config, end time.Duration, eval func(at time.Duration, rep detect.Report)) {
	t.Helper()
	d, err := detect.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	next := 5 * time.Minute
	s.Generate(96*3600, 5, func(x, y float64) {
		at := time.Duration(x * float64(time.Second))
		if at > end {
			return
		}
		for ; at >= next; next += 5 * time.Minute {
			eval(next, d.Evaluate(t0.Add(next), 0))
		}
		if err := d.Add(detect.Point{Time: t0.Add(at), Bytes: y}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDailyCycleWanderRaisesNoAlert replays benchmark series with a daily
// cycle (seed 1) whose alerts after the first day came from wander against
// the day before; each window involved now says why it is not a leak:
//   - 1030089: at 25h25m the 5h window rose 4.25 MB/h over the second
//     day's rise of the cycle, before the segment held that window plus a
//     day (29 h); its last third is compared with the day before as soon
//     as a quarter of it can be (detect.DayLastBuckets);
//   - 1030039: at 35h45m the cycle test passed but had not passed for
//     detect.CycleConfirm; the 5h window's floor rose 4.53 MB/h, while
//     against the day before it rose 1.4 MB/h: the window is now judged on
//     that difference as soon as the cycle shows;
//   - 1030068: at 58h the cycle was confirmed and the 5h window's
//     difference to the day before rose 5.19 MB/h (p = 7e-13) as the floor
//     came back from below the day before (detect.CycleLastShare, 0.75 of
//     the window's minimum growth, where 0.5 let it through).
func TestDailyCycleWanderRaisesNoAlert(t *testing.T) {
	for _, tc := range []struct {
		seed     uint64
		from, to time.Duration
		reason   string
	}{
		{1030089, 24 * time.Hour, 28 * time.Hour, "no higher than one cycle earlier"},
		{1030039, 33 * time.Hour, 38 * time.Hour, "daily cycle showing: "},
		{1030068, 56 * time.Hour, 60 * time.Hour, "but over the last third of the window it is"},
	} {
		t.Run(fmt.Sprint(tc.seed), func(t *testing.T) {
			t0 := time.Unix(1_700_000_000, 0)
			c := detect.DefaultConfig()
			said := false
			replay(t, Series{Family: Diurnal, Seed: tc.seed}, c, tc.to, func(at time.Duration, rep detect.Report) {
				if at < tc.from {
					return
				}
				if rep.Suspected && t0.Add(at).Sub(rep.Since) >= c.HoldAfter && rep.Since.Sub(t0) >= tc.from {
					t.Fatalf("alert at %s from the %s window: %s", detect.FormatDuration(at), detect.FormatDuration(rep.SuspectedWindow), rep.Reason)
				}
				for _, r := range rep.Windows {
					said = said || (r.Verdict == detect.NoLeak && strings.Contains(r.Reason, tc.reason))
				}
			})
			if !said {
				t.Errorf("no window said %q between %s and %s", tc.reason, detect.FormatDuration(tc.from), detect.FormatDuration(tc.to))
			}
		})
	}
}

// TestStepAlarmClearsOnceTheStepIsOver replays a benchmark series (seed 1,
// ramped steps) whose +99 MB level step ramped over 45 minutes from
// 37h27m: like a fast leak, it arms the alert at 38h15m. Afterwards the
// floor is flat, but it is 99 MB higher than a day earlier, which the
// day-over-day level of the 5h window read as a 4 MB/h leak over the cycle:
// the alert stayed up to 78 h. The 24h window took the step out of its
// floor, which does not rise without it, so the step no longer counts as
// evidence (detect.Result.DayShifts) and the alert clears within hours.
// Since the 2h window has a ceiling too (detect.Config.Ceiling), this ramp
// no longer arms an alert with the default settings; the ceilings are off
// here (FastShare 0) so that it does, and the test is about what holds it.
func TestStepAlarmClearsOnceTheStepIsOver(t *testing.T) {
	var fired, cleared time.Duration
	c := detect.DefaultConfig()
	c.FastShare = 0
	t0 := time.Unix(1_700_000_000, 0)
	replay(t, Series{Family: RampSteps, Seed: 1050117}, c, 62*time.Hour, func(at time.Duration, rep detect.Report) {
		switch {
		case rep.Suspected && fired == 0 && t0.Add(at).Sub(rep.Since) >= c.HoldAfter:
			fired = at
		case rep.Suspected && cleared != 0:
			t.Fatalf("alert up again at %s after it cleared at %s: %s", detect.FormatDuration(at), detect.FormatDuration(cleared), rep.HoldReason)
		case !rep.Suspected && fired != 0 && cleared == 0:
			cleared = at
		}
	})
	if fired == 0 {
		t.Fatal("no alert on the ramp: the series no longer shows what this test is about")
	}
	if cleared == 0 || cleared-fired > 8*time.Hour {
		t.Errorf("alert fired at %s cleared at %s, want within 8 h", detect.FormatDuration(fired), detect.FormatDuration(cleared))
	}
	t.Logf("alert from %s to %s", detect.FormatDuration(fired), detect.FormatDuration(cleared))
}

// TestOlderSegmentAsksLessOfTheWarmUpTest replays benchmark series 3210860
// (seed 2, 5 MB/h from process start, wander only): the wander made the
// segment's first hours rise faster than the leak, and at 9h10m the
// warm-up test read its floor as 7.23, 4.66 and 4.72 MB/h by thirds, 0.65
// of the first third's slope in the last where it asked for 0.7 plus a
// standard error, and the leak was first held at 9h30m, past twice the
// median detection time (9h10m on that seed). In a segment that old, the
// slowest warm-up the grace allows (time constant grace/2.5, 4 h) has
// decelerated to a fifth, and the test asks for half: the leak is held from
// 5h30m on.
func TestOlderSegmentAsksLessOfTheWarmUpTest(t *testing.T) {
	s := Series{Family: Leak, Base: Steady, Kind: LeakFromStart, LeakRate: 5 * mb / 3600, Seed: 3210860}
	var first time.Duration
	replay(t, s, detect.DefaultConfig(), 12*time.Hour, func(at time.Duration, rep detect.Report) {
		if rep.Suspected && first == 0 {
			first = at
		}
		if at >= 9*time.Hour+10*time.Minute && !rep.Suspected {
			t.Errorf("%s: no leak held on a 5 MB/h leak from process start: %s", detect.FormatDuration(at), rep.Reason)
		}
	})
	t.Logf("first held at %s", detect.FormatDuration(first))
}

// TestWarmUpTailInADayWindowIsNotALeak replays benchmark series 1010053
// (seed 1, warm-up family): the 24h window, which holds the tail of the
// warm-up until the segment is 34 h old, read its floor rising 0.72 MB/h at
// 32 h. The warm-up test of that segment (the whole curve's thirds) asks
// for at least half the first third's slope in the last one, however old
// the segment: asking less as the segment ages without that bound raised
// an alert there.
func TestWarmUpTailInADayWindowIsNotALeak(t *testing.T) {
	s := Series{Family: WarmUp, Seed: 1010053}
	var since time.Duration
	replay(t, s, detect.DefaultConfig(), 40*time.Hour, func(at time.Duration, rep detect.Report) {
		switch {
		case !rep.Suspected:
			since = 0
		case since == 0:
			since = at
		case at-since >= 15*time.Minute:
			t.Fatalf("alert at %s (raised %s): %s", detect.FormatDuration(at), detect.FormatDuration(since), rep.Reason)
		}
	})
}

// TestLeakPastAHighFloorIsHeld replays benchmark series 2200938 (seed 1,
// 1 MB/h from process start): at 35 h one 20-minute bucket floor stands
// 17 MB above the one before it and falls part of the way back. The 24h
// window took that rise out as a level shift, which left it 0.08 MB/h of
// the leak: the alert was gone from 44 h to past twice the median detection
// time (48h30m on that seed). The medians of three floors either side
// differ by 14 MB, about the shift threshold, which moves with the window's
// spread: the rise is now left in at most evaluations (not all: the alert
// still clears from 46 h to 47 h), and the leak is held from 47 h on.
func TestLeakPastAHighFloorIsHeld(t *testing.T) {
	s := Series{Family: Leak, Base: Steady, Kind: LeakFromStart, LeakRate: 1 * mb / 3600, Seed: 2200938}
	replay(t, s, detect.DefaultConfig(), 50*time.Hour, func(at time.Duration, rep detect.Report) {
		if at >= 47*time.Hour && !rep.Suspected {
			t.Errorf("%s: no leak held on a 1 MB/h leak from process start: %s", detect.FormatDuration(at), rep.Reason)
		}
	})
}

// TestStepADayAgoWhileTheCycleShowsRaisesNoAlert replays ramped-step series
// of the benchmark whose cycle test passed for a while without being
// confirmed (a level step the removal left in part), during which the 24h
// window, judged against one cycle earlier, said "daily cycle showing:
// floor ... above one cycle earlier, in every third of the window" about a
// step made a day before, where its own floor said no leak: an alert,
// each.
// Until the cycle is confirmed only a rise against one cycle earlier may
// overrule the window's own floor (detect's cycleLeak with level false).
func TestStepADayAgoWhileTheCycleShowsRaisesNoAlert(t *testing.T) {
	for _, tc := range []struct {
		seed     uint64
		from, to time.Duration
	}{
		{1050094, 77 * time.Hour, 82 * time.Hour},
		{2050151, 53 * time.Hour, 58 * time.Hour},
		{3050201, 50 * time.Hour, 55 * time.Hour},
	} {
		t.Run(fmt.Sprint(tc.seed), func(t *testing.T) {
			c := detect.DefaultConfig()
			t0 := time.Unix(1_700_000_000, 0)
			replay(t, Series{Family: RampSteps, Seed: tc.seed}, c, tc.to, func(at time.Duration, rep detect.Report) {
				if at >= tc.from && rep.Suspected && t0.Add(at).Sub(rep.Since) >= c.HoldAfter {
					t.Fatalf("alert held at %s since %s: %s", detect.FormatDuration(at), detect.FormatDuration(rep.Since.Sub(t0)), rep.HoldReason)
				}
			})
		})
	}
}
