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
