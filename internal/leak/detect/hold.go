package detect

import (
	"fmt"
	"time"
)

// hold is the verdict with memory of one series (see Config.HoldAfter and
// the package documentation, "Held verdict").
type hold struct {
	seg      int           // segment the state belongs to
	on       bool          // a leak is suspected (the held verdict)
	since    time.Time     // when on last became true
	win      time.Duration // window that raised it
	rawSince time.Time     // start of the current run of raw suspicions; zero when none
	armed    bool          // the raw verdict held HoldAfter in this suspicion
	lostAt   time.Time     // when the evidence was last seen gone; zero while it holds
	why      string
}

// apply updates the held verdict from one evaluation at now and copies it
// into rep.
func (d *Detector) apply(rep *Report, now time.Time) {
	h := &d.hold
	if h.seg != d.segment {
		// A restart starts a new segment: nothing carries over.
		*h = hold{seg: d.segment}
	}
	raw := rep.Verdict == LeakSuspected
	switch {
	case raw:
		if h.rawSince.IsZero() {
			h.rawSince = now
		}
		h.lostAt = time.Time{}
		if !h.on {
			h.on, h.since, h.win = true, now, rep.Window
		}
		if now.Sub(h.rawSince) >= d.cfg.HoldAfter {
			h.armed = true
		}
		h.why = rep.Reason
	case h.on:
		h.rawSince = time.Time{}
		ev, why := d.evidence(rep.Windows)
		switch {
		case !h.armed:
			// Never held long enough to page: a raw blip is not latched.
			*h = hold{seg: d.segment}
		case ev:
			h.lostAt = time.Time{}
			h.why = "held: " + why
		default:
			if h.lostAt.IsZero() {
				h.lostAt = now
			}
			if now.Sub(h.lostAt) >= d.cfg.ClearAfter {
				*h = hold{seg: d.segment}
			} else {
				h.why = fmt.Sprintf("held: the floor stopped rising %s ago; clears after %s", fmtDur(now.Sub(h.lostAt)), fmtDur(d.cfg.ClearAfter))
			}
		}
	default:
		h.rawSince = time.Time{}
	}
	rep.Suspected = h.on
	if h.on {
		rep.Since, rep.SuspectedWindow, rep.HoldReason = h.since, h.win, h.why
	}
}

// evidence tells whether any window still shows the floor rising: a slope of
// at least HoldShare of the window's practical minimum with p < HoldAlpha.
func (d *Detector) evidence(rs []Result) (bool, string) {
	for _, r := range rs {
		if r.Verdict == InsufficientData || !r.HasFloor {
			continue
		}
		if r.FloorSlope >= d.cfg.HoldShare*r.MinSlope && r.P < d.cfg.HoldAlpha {
			return true, fmt.Sprintf("window %s: floor still rising %s (p=%.3g)", fmtDur(r.Window), fmtRate(r.FloorSlope), r.P)
		}
	}
	return false, ""
}
