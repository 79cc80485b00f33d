package detect

import (
	"fmt"
	"time"
)

// Hold is the state machine of the held verdict (Report.Suspected, see
// Config.HoldAfter and the package documentation). The Detector steps one
// per series; the quality benchmark replays the same machine over recorded
// figures, so the rule exists once. The zero value is "no leak suspected".
type Hold struct {
	on       bool          // a leak is suspected (the held verdict)
	since    time.Time     // when on last became true
	win      time.Duration // window that raised it
	rawSince time.Time     // start of the current run of raw suspicions; zero when none
	armed    bool          // the raw verdict held HoldAfter in this suspicion
	lostAt   time.Time     // when the evidence was last seen gone; zero while it holds
	why      string
}

// Step updates the held verdict from one evaluation at now: raw tells
// whether the raw verdict suspects a leak (window is then the deciding
// window and reason its reason); evidence is asked, only when the raw
// verdict does not suspect a leak while one is held, whether any window
// still shows the floor rising (see Config.HoldEvidence) and why. It
// returns the held verdict.
func (h *Hold) Step(c Config, now time.Time, raw bool, window time.Duration, reason string, evidence func() (bool, string)) bool {
	switch {
	case raw:
		if h.rawSince.IsZero() {
			h.rawSince = now
		}
		h.lostAt = time.Time{}
		if !h.on {
			h.on, h.since, h.win = true, now, window
		}
		if now.Sub(h.rawSince) >= c.HoldAfter {
			h.armed = true
		}
		h.why = reason
	case h.on:
		h.rawSince = time.Time{}
		if !h.armed {
			// Never held long enough to page: a raw blip is not latched.
			*h = Hold{}
			break
		}
		if ev, why := evidence(); ev {
			h.lostAt = time.Time{}
			h.why = "held: " + why
			break
		}
		if h.lostAt.IsZero() {
			h.lostAt = now
		}
		if now.Sub(h.lostAt) >= c.ClearAfter {
			*h = Hold{}
		} else {
			h.why = fmt.Sprintf("held: the floor stopped rising %s ago; clears after %s", fmtDur(now.Sub(h.lostAt)), fmtDur(c.ClearAfter))
		}
	default:
		h.rawSince = time.Time{}
	}
	return h.on
}

// apply updates the held verdict from one evaluation at now and copies it
// into rep. A restart starts a new segment: nothing carries over.
func (d *Detector) apply(rep *Report, now time.Time) {
	if d.holdSeg != d.segment {
		d.hold, d.holdSeg = Hold{}, d.segment
	}
	h := &d.hold
	rep.Suspected = h.Step(d.cfg, now, rep.Verdict == LeakSuspected, rep.Window, rep.Reason, func() (bool, string) {
		return d.evidence(rep.Windows)
	})
	if h.on {
		rep.Since, rep.SuspectedWindow, rep.HoldReason = h.since, h.win, h.why
	}
}

// HoldEvidence tells whether a window's result keeps a held verdict: a
// verdict was given (or the window is one the segment does not fill yet but
// covers for HoldPartialShare of its length) and the floor slope reaches
// HoldShare of the window's practical minimum with p < HoldAlpha, or, once
// the window has day-over-day figures (Config.Cycle), the floor is higher
// than one cycle earlier by HoldShare of the minimum over the cycle (not
// counting Result.DayShifts, a level step's share), or rises faster than
// then by HoldShare of it with p < HoldAlpha. (A held
// verdict that a cycle's rise raised before the cycle was known clears when
// the cycle falls.)
func (c Config) HoldEvidence(r Result) bool {
	if !r.HasFloor || (r.Verdict == InsufficientData && !c.partial(r)) {
		return false
	}
	m := c.HoldShare * r.MinSlope
	if r.HasDay && ((r.DayLevel-r.DayShifts)/c.Cycle.Seconds() >= m || (r.DaySlope >= m && r.DayP < c.HoldAlpha)) {
		return true
	}
	return r.FloorSlope >= m && r.P < c.HoldAlpha
}

// partial tells whether r is a window that the segment does not fill yet
// but covers for HoldPartialShare of its length, with MinBuckets buckets
// holding samples: its figures are those of the segment so far.
func (c Config) partial(r Result) bool {
	return r.Wait == WaitWindowNotFull && float64(r.Covered) >= HoldPartialShare*float64(r.Window) && r.FilledBuckets >= c.MinBuckets
}

// evidence tells whether any window still shows the floor rising (see
// HoldEvidence).
func (d *Detector) evidence(rs []Result) (bool, string) {
	for _, r := range rs {
		if !d.cfg.HoldEvidence(r) {
			continue
		}
		if m := d.cfg.HoldShare * r.MinSlope; r.FloorSlope >= m && r.P < d.cfg.HoldAlpha {
			if r.Verdict == InsufficientData {
				return true, fmt.Sprintf("window %s (%s of it so far): floor still rising %s (p=%.3g)", fmtDur(r.Window), fmtDur(r.Covered), fmtRate(r.FloorSlope), r.P)
			}
			return true, fmt.Sprintf("window %s: floor still rising %s (p=%.3g)", fmtDur(r.Window), fmtRate(r.FloorSlope), r.P)
		}
		return true, fmt.Sprintf("window %s: floor %+.3g MB against one cycle earlier, rising %s faster than then (p=%.3g)",
			fmtDur(r.Window), r.DayLevel/MB, fmtRate(r.DaySlope), r.DayP)
	}
	return false, ""
}
