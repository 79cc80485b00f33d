package quality

import "time"

// Held returns the rule of the held verdict (detect.Report.Suspected, what
// soak_leak_suspected shows), replayed from the recorded figures with the
// hold settings of the run's configuration: the raw verdict (Detector)
// arms it after HoldAfter, the evidence (a window with a verdict whose floor
// slope reaches HoldShare of its practical minimum at p < HoldAlpha) keeps
// it, and it clears after ClearAfter without evidence. The rule keeps the
// replay of the last trace it was asked about, so it must be used on one
// trace at a time, in evaluation order or not.
func (d *Data) Held(name string) Rule {
	c := d.Opts.Config
	raw := d.Detector("raw")
	evals := d.traces[0].evals
	minSlope := make([]float64, len(d.Windows))
	for w, win := range d.Windows {
		minSlope[w] = c.MinSlope(win)
	}
	every := d.Opts.EvalEvery
	var cur *trace
	var held []bool
	replay := func(tr *trace) {
		held = make([]bool, tr.evals)
		on, armed := false, false
		rawRun, lost := -1, -1 // start indices; -1 when none
		for i := range tr.evals {
			if raw.Cond(tr, i) {
				if rawRun < 0 {
					rawRun = i
				}
				lost = -1
				on = true
				if time.Duration(i-rawRun)*every >= c.HoldAfter {
					armed = true
				}
				held[i] = on
				continue
			}
			rawRun = -1
			if !on {
				continue
			}
			ev := false
			for w := range d.Windows {
				k := w*evals + i
				if tr.gates[k] && float64(tr.floor[k]) >= c.HoldShare*minSlope[w] && float64(tr.p[k]) < c.HoldAlpha {
					ev = true
					break
				}
			}
			switch {
			case !armed:
				on = false
			case ev:
				lost = -1
			default:
				if lost < 0 {
					lost = i
				}
				if time.Duration(i-lost)*every >= c.ClearAfter {
					on, armed, lost = false, false, -1
				}
			}
			held[i] = on
		}
	}
	return Rule{Name: name, Cond: func(tr *trace, i int) bool {
		if tr != cur {
			cur = tr
			replay(tr)
		}
		return held[i]
	}}
}

// flapShare returns, for a leak series, the share of hourly verdicts of
// cond after the alert first fired (act) that say "no leak", and whether
// the alert fired at all.
func flapShare(r Rule, tr *trace, act []bool, every, from time.Duration) (reverts, hours int) {
	perHour := int(time.Hour / every)
	first := -1
	for i := range act {
		if act[i] && time.Duration(i+1)*every >= from {
			first = i
			break
		}
	}
	if first < 0 || perHour < 1 {
		return 0, 0
	}
	for i := first + perHour; i < tr.evals; i += perHour {
		hours++
		if !r.Cond(tr, i) {
			reverts++
		}
	}
	return reverts, hours
}
