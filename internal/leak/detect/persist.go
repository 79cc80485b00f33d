package detect

import (
	"fmt"
	"math"
	"time"
)

// Persistent tells whether the floor slopes of the window's thirds pass the
// persistence guard (see guard). It is false when a third could not be
// fitted.
func (r Result) Persistent() bool {
	if !r.HasFloor {
		return false
	}
	ok, _ := guard(r.FloorSlope, r.ThirdSlopes, r.ThirdSE, r.guardSE, r.guardMin, r.guardMid, r.guardMidFrom)
	return ok
}

// guard is the persistence guard: the middle and last thirds' floor slopes
// must each reach GuardLaterThirds of the whole-window slope s, and the last
// GuardLastVsFirst of the first, so curves that flatten are not leaks. Each
// comparison allows tol standard errors of the thirds' slopes, so that with
// few buckets per third (short windows) noise alone does not fail it. With
// mid > 0, when the middle third rises at midFrom or faster, the last third
// must also reach mid of the middle third's slope: a ramp over the middle of
// the window then flat is not a leak.
func guard(s float64, t, se [3]float64, tol, minLast, mid, midFrom float64) (bool, string) {
	for j := range 3 {
		if math.IsNaN(t[j]) || math.IsNaN(se[j]) {
			return false, "not persistent: a third of the window has too few buckets"
		}
	}
	if t[1]+tol*se[1] < GuardLaterThirds*s || t[2]+tol*se[2] < GuardLaterThirds*s {
		return false, fmt.Sprintf("not persistent: thirds rise %s, %s, %s against %s over the window",
			fmtRate(t[0]), fmtRate(t[1]), fmtRate(t[2]), fmtRate(s))
	}
	if t[2]-GuardLastVsFirst*t[0]+tol*math.Hypot(se[2], GuardLastVsFirst*se[0]) < 0 {
		return false, fmt.Sprintf("flattening: last third rises %s against %s in the first", fmtRate(t[2]), fmtRate(t[0]))
	}
	if mid > 0 && t[1] >= midFrom && t[2]-mid*t[1]+tol*math.Hypot(se[2], mid*se[1]) < 0 {
		return false, fmt.Sprintf("flattening: last third rises %s against %s in the middle one (a level shift that ramped?)", fmtRate(t[2]), fmtRate(t[1]))
	}
	if minLast > 0 && t[2]+tol*se[2] < minLast {
		return false, fmt.Sprintf("fading: last third rises %s, below the practical minimum %s", fmtRate(t[2]), fmtRate(minLast))
	}
	return true, ""
}

func laterMin(c Config, minSlope float64) float64 {
	if c.LaterMin {
		return minSlope
	}
	return 0
}

// warmup is the warm-up test, applied to a window that holds data of the
// segment's start-up grace (Config.Grace): a warm-up decelerates toward a
// plateau, a leak does not. The floor's slope over the last third of the
// segment so far must reach share of its slope over the first third, by at
// least z standard errors: the curve must be shown not to flatten, not
// merely be unproven to flatten, because early in a slow warm-up the two
// look alike. Later they do not: by a segment age T, a warm-up of time
// constant tau has decelerated to exp(-2T/3tau) between the first third and
// the last, so the test asks at most the square root of that for the
// slowest warm-up the grace allows (halfway, in ratio, between it and a
// leak's 1), and at least WarmupMinShare: with the fixed share, the wander
// of a segment's first hours kept 5 MB/h leaks from process start from
// being reported for hours past their median detection time.
func warmup(seg *segFigures, share float64, grace time.Duration, z float64) (bool, string) {
	if seg == nil {
		return false, "warm-up test: too few buckets since the segment started to tell a warm-up from a leak"
	}
	if tau := grace.Seconds() / WarmupGraceTaus; tau > 0 {
		share = min(share, max(WarmupMinShare, math.Exp(-seg.age/(3*tau))))
	}
	t, se := seg.thirds, seg.se
	if t[2]-share*t[0] < z*math.Hypot(se[2], share*se[0]) {
		return false, fmt.Sprintf("warm-up: since the segment started the floor rose %s, %s, %s by thirds; a leak's last third reaches %.2g of its first (decelerating, or not yet shown steady)",
			fmtRate(t[0]), fmtRate(t[1]), fmtRate(t[2]), share)
	}
	return true, ""
}
