package detect

import (
	"testing"
	"time"
)

// step is one evaluation fed to the held verdict: the raw series verdict and
// the figures of a single 5h window.
type step struct {
	min     int     // minutes since t0
	raw     Verdict // raw series verdict
	slope   float64 // window floor slope, as a share of its practical minimum
	p       float64
	restart bool // a restart happened before this evaluation
	want    bool // held verdict expected after it
}

func TestHeldVerdict(t *testing.T) {
	const ms = 4 * MB / 3600 // practical minimum of the window
	tests := []struct {
		name  string
		steps []step
	}{
		{"raw blip shorter than HoldAfter is not latched", []step{
			{0, NoLeak, 0.2, 0.3, false, false},
			{5, LeakSuspected, 1.1, 0.001, false, true},
			{10, NoLeak, 0.9, 0.01, false, false}, // evidence holds, but never armed
			{15, NoLeak, 0.9, 0.01, false, false},
		}},
		// The flapping case measured in issue 10: a leak's raw verdict goes
		// back to no_leak on noise while the floor keeps rising.
		{"flapping raw verdict holds while the floor rises", []step{
			{0, LeakSuspected, 1.2, 0.001, false, true},
			{10, LeakSuspected, 1.1, 0.001, false, true},
			{15, LeakSuspected, 1.1, 0.001, false, true}, // armed
			{20, NoLeak, 0.8, 0.01, false, true},
			{25, LeakSuspected, 1.1, 0.001, false, true},
			{30, NoLeak, 0.6, 0.04, false, true},
			{35, NoLeak, 0.55, 0.03, false, true},
		}},
		{"clears after the floor stopped rising for ClearAfter", []step{
			{0, LeakSuspected, 1.2, 0.001, false, true},
			{20, LeakSuspected, 1.2, 0.001, false, true},
			{25, NoLeak, 0.3, 0.01, false, true}, // slope too small: evidence gone
			{55, NoLeak, 0.9, 0.2, false, true},  // not significant: still gone
			{60, NoLeak, 0.8, 0.01, false, true}, // back: the clock restarts
			{65, NoLeak, 0.1, 0.5, false, true},
			{124, NoLeak, 0.1, 0.5, false, true},
			{125, NoLeak, 0.1, 0.5, false, false},
		}},
		{"restart clears at once", []step{
			{0, LeakSuspected, 1.2, 0.001, false, true},
			{20, LeakSuspected, 1.2, 0.001, false, true},
			{25, InsufficientData, 0, 1, true, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			d.segment = 1
			var since time.Time
			for _, s := range tt.steps {
				if s.restart {
					d.segment++
				}
				now := t0.Add(time.Duration(s.min) * time.Minute)
				rep := Report{Verdict: s.raw, Reason: "raw", Window: 5 * time.Hour, Windows: []Result{{
					Window: 5 * time.Hour, Verdict: NoLeak, HasFloor: true,
					FloorSlope: s.slope * ms, MinSlope: ms, P: s.p,
				}}}
				if s.raw == InsufficientData {
					rep.Windows[0].Verdict = InsufficientData
				}
				d.apply(&rep, now)
				if rep.Suspected != s.want {
					t.Fatalf("minute %d: Suspected = %v, want %v (%s)", s.min, rep.Suspected, s.want, rep.HoldReason)
				}
				if !rep.Suspected {
					if !rep.Since.IsZero() {
						t.Fatalf("minute %d: Since = %v while not suspected", s.min, rep.Since)
					}
					since = time.Time{}
					continue
				}
				if since.IsZero() {
					since = now
				}
				if !rep.Since.Equal(since) || rep.SuspectedWindow != 5*time.Hour || rep.HoldReason == "" {
					t.Fatalf("minute %d: Since %v window %v reason %q, want since %v window 5h and a reason",
						s.min, rep.Since, rep.SuspectedWindow, rep.HoldReason, since)
				}
			}
		})
	}
}

func TestHoldEvidence(t *testing.T) {
	const ms = 0.6 * MB / 3600 // practical minimum of the 24h window
	full := Result{Window: 24 * time.Hour, Verdict: NoLeak, HasFloor: true, Covered: 24 * time.Hour,
		FilledBuckets: 72, MinSlope: ms, FloorSlope: 5 * ms, P: 1e-10}
	partial := full
	partial.Verdict, partial.Wait, partial.Covered, partial.FilledBuckets = InsufficientData, WaitWindowNotFull, 10*time.Hour, 30
	for _, tc := range []struct {
		name string
		edit func(*Result)
		want bool
	}{
		{"full window, floor rising", func(*Result) {}, true},
		{"full window, slope under HoldShare of the minimum", func(r *Result) { r.FloorSlope = 0.4 * ms }, false},
		{"full window, not significant", func(r *Result) { r.P = 0.06 }, false},
		{"no floor", func(r *Result) { r.HasFloor = false }, false},
		{"not full, covered for 10h of 24h", func(r *Result) { *r = partial }, true},
		{"not full, covered for 7h of 24h", func(r *Result) { *r = partial; r.Covered = 7 * time.Hour }, false},
		{"not full, too few buckets", func(r *Result) { *r = partial; r.FilledBuckets = 9 }, false},
		{"not full, not significant", func(r *Result) { *r = partial; r.P = 0.2 }, false},
		{"start-up grace", func(r *Result) { *r = partial; r.Wait = WaitGrace; r.Covered = 24 * time.Hour }, false},
		{"floor flat, 99 MB above one cycle earlier", func(r *Result) { r.FloorSlope, r.HasDay, r.DayLevel, r.DayP = 0, true, 99*MB, 1 }, true},
		{"floor flat, 99 MB above one cycle earlier by a 99 MB step", func(r *Result) {
			r.FloorSlope, r.HasDay, r.DayLevel, r.DayP, r.DayShifts = 0, true, 99*MB, 1, 99*MB
		}, false},
		{"floor flat, 99 MB above one cycle earlier, 70 MB of it a step", func(r *Result) {
			r.FloorSlope, r.HasDay, r.DayLevel, r.DayP, r.DayShifts = 0, true, 99*MB, 1, 70*MB
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := full
			tc.edit(&r)
			if got := DefaultConfig().HoldEvidence(r); got != tc.want {
				t.Errorf("HoldEvidence = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDayShifts checks which level shifts discount the day-over-day level
// as evidence: those the longest window of at least a cycle took out while
// its floor without them does not rise.
func TestDayShifts(t *testing.T) {
	const ms = 0.6 * MB / 3600
	day := Result{Window: 5 * time.Hour, Verdict: NoLeak, HasFloor: true, HasDay: true}
	long := Result{Window: 24 * time.Hour, Verdict: NoLeak, HasFloor: true, MinSlope: ms, Shifts: 1, ShiftTotal: 99 * MB, StepFit: 0.1}
	for _, tc := range []struct {
		name  string
		long  func(*Result)
		cycle time.Duration
		want  float64
	}{
		{"a step, floor flat without it", func(*Result) {}, 24 * time.Hour, 99 * MB},
		{"a step and a leak: floor rising without it", func(r *Result) { r.FloorSlope = 2 * ms }, 24 * time.Hour, 0},
		{"no step", func(r *Result) { r.Shifts, r.ShiftTotal = 0, 0 }, 24 * time.Hour, 0},
		{"shifts taken out of a floor that a step does not explain", func(r *Result) { r.ShiftTotal, r.StepFit = 16*MB, 1.7 }, 24 * time.Hour, 0},
		{"longest window without a verdict", func(r *Result) { r.Verdict = InsufficientData }, 24 * time.Hour, 0},
		{"longest window shorter than the cycle", func(*Result) {}, 48 * time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := long
			tc.long(&l)
			rs := []Result{day, l}
			dayShifts(rs, tc.cycle, DefaultConfig().StepRatio)
			if rs[0].DayShifts != tc.want {
				t.Errorf("DayShifts = %.3g MB, want %.3g MB", rs[0].DayShifts/MB, tc.want/MB)
			}
			if rs[1].DayShifts != 0 {
				t.Errorf("set on a window without day-over-day figures: %.3g MB", rs[1].DayShifts/MB)
			}
		})
	}
}

// TestHeldVerdictOnSeries replays a real series: a leak whose floor then
// stops rising. The held verdict must stay true through the raw verdict's
// first no_leak and clear by itself later.
func TestHeldVerdictOnSeries(t *testing.T) {
	d, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	// 30 MB/h for 4 h, then flat for 10 h.
	f := func(s float64) float64 {
		return sawtooth(200*MB, 30*MB/3600)(min(s, 4*3600))
	}
	var firstSuspect, rawOffWhileHeld, cleared time.Duration
	for at := time.Duration(0); at < 14*time.Hour; at += 10 * time.Second {
		if err := d.Add(Point{Time: t0.Add(at), Bytes: f(at.Seconds())}); err != nil {
			t.Fatal(err)
		}
		if at%(5*time.Minute) != 0 {
			continue
		}
		rep := d.Evaluate(t0.Add(at), 0)
		switch {
		case rep.Suspected && firstSuspect == 0:
			firstSuspect = at
		case rep.Suspected && rep.Verdict != LeakSuspected && rawOffWhileHeld == 0:
			rawOffWhileHeld = at
		case !rep.Suspected && firstSuspect != 0 && cleared == 0:
			cleared = at
		}
	}
	t.Logf("first suspected at %s, raw off while held at %s, cleared at %s", firstSuspect, rawOffWhileHeld, cleared)
	if firstSuspect == 0 || firstSuspect > 4*time.Hour {
		t.Fatalf("leak first suspected at %s, want within its 4 h", firstSuspect)
	}
	if rawOffWhileHeld == 0 {
		t.Fatal("raw verdict never went off while the held verdict stayed on")
	}
	if cleared == 0 || cleared < 4*time.Hour {
		t.Fatalf("held verdict cleared at %s, want after the leak stopped at 4h and before the end", cleared)
	}
}

func TestWaitReasons(t *testing.T) {
	cfg := testConfig()
	cfg.Grace = 2 * time.Hour
	tests := []struct {
		name   string
		length time.Duration
		want   string
	}{
		{"no samples", 0, WaitNoSamples},
		{"first minute", time.Minute, WaitWindowNotFull},
		{"window full, in the grace", 90 * time.Minute, WaitGrace},
		{"past the grace of the 1h window", 3*time.Hour + 10*time.Minute, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			feed(t, d, 0, tt.length, 10*time.Second, sawtooth(200*MB, 0), 0)
			rep := d.Evaluate(t0.Add(tt.length), 0)
			if rep.Wait != tt.want {
				t.Fatalf("Wait = %q, want %q (verdict %s: %s)", rep.Wait, tt.want, rep.Verdict, rep.Reason)
			}
			if (rep.Verdict == InsufficientData) != (tt.want != "") {
				t.Fatalf("verdict %s with Wait %q", rep.Verdict, rep.Wait)
			}
		})
	}
	if got := waitCode("too many gaps: 3 of 12 buckets hold samples"); got != WaitGaps {
		t.Errorf("gaps: %q", got)
	}
	if got := waitCode("window too short for a verdict: 4 buckets"); got != WaitTooShort {
		t.Errorf("too short: %q", got)
	}
}
