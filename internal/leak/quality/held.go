package quality

import (
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Held returns the rule of the held verdict (detect.Report.Suspected, what
// soak_leak_suspected shows), replayed from the recorded figures through
// detect.Hold, the detector's own state machine, with the hold settings of
// the run's configuration: the raw verdict (Detector) arms it after
// HoldAfter, the recorded evidence (detect.Config.HoldEvidence) keeps it,
// and it clears after ClearAfter without evidence. The rule keeps the
// replay of the last trace it was asked about, so it must be used on one
// trace at a time, in evaluation order or not.
func (d *Data) Held(name string) Rule {
	c := d.Opts.Config
	raw := d.Detector("raw")
	evals := d.traces[0].evals
	t0 := time.Unix(0, 0)
	var cur *trace
	var held []bool
	replay := func(tr *trace) {
		held = make([]bool, tr.evals)
		var h detect.Hold
		for i := range tr.evals {
			now := t0.Add(time.Duration(i+1) * d.Opts.EvalEvery)
			held[i] = h.Step(c, now, raw.Cond(tr, i), 0, "", func() (bool, string) {
				for w := range d.Windows {
					if tr.evidence[w*evals+i] {
						return true, ""
					}
				}
				return false, ""
			})
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
// cond after the alert first fired (act, see firstAlert) that say "no
// leak", and whether the alert fired at all.
func flapShare(r Rule, tr *trace, act []bool, every, from time.Duration) (reverts, hours int) {
	perHour := int(time.Hour / every)
	first := firstAlert(act, every, from)
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

// firstAlert returns the index of the evaluation at which the alert (act)
// first fired for a leak that starts at from: its first rising edge at or
// after from, or -1. An alert already firing when the leak starts (a false
// alarm of the shape under it, a daily cycle's first day) is not the leak's
// detection: the detection is the next time it fires, unless it never
// stops, in which case it counts from the leak's start.
func firstAlert(act []bool, every, from time.Duration) int {
	at := func(i int) time.Duration { return time.Duration(i+1) * every }
	for i := range act {
		if at(i) < from {
			continue
		}
		if !act[i] {
			continue
		}
		if i == 0 || !act[i-1] {
			return i // a rising edge
		}
		// Firing since before the leak started: wait for it to stop.
		j := i
		for j < len(act) && act[j] {
			j++
		}
		if j == len(act) {
			return i
		}
		for k := j; k < len(act); k++ {
			if act[k] {
				return k
			}
		}
		return -1
	}
	return -1
}
