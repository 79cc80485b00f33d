package stats

import "math"

// madScale turns a median absolute deviation into a standard deviation for
// normal data; meanADScale does the same for a mean absolute deviation.
const (
	madScale    = 1.4826
	meanADScale = 1.2533
)

// Shifts is the outcome of RemoveShifts.
type Shifts struct {
	// Count is the number of differences that were level shifts.
	Count int
	// Total is the sum of their excess over the typical difference (bytes
	// for a memory floor): positive when the shifts raised the level.
	Total float64
	// Median is the median successive difference and Spread the robust
	// standard deviation of the differences around it.
	Median, Spread float64
}

// RemoveShifts finds the level shifts of a series in time order and returns
// it with them taken out. A shift is a successive difference d[i] = y[i+1] -
// y[i] that lies more than k robust standard deviations from the median
// difference m (the spread is 1.4826 x the median absolute deviation of the
// differences, or 1.2533 x their mean absolute deviation when that is 0, as
// Iglewicz and Hoaglin advise). Each shift is replaced by the typical step m
// by moving every value before it by d[i]-m, so the last value, the current
// level, is unchanged and a steady trend (which moves m, not the spread)
// survives. The result is written into out (grown when too small, and
// returned); y is not modified. Series of fewer than 5 values, k <= 0 and a
// zero spread give no shifts. tmp is scratch space, grown and returned too.
// O(n) expected.
func RemoveShifts(y []float64, k float64, out, tmp []float64) (adj []float64, sh Shifts, outTmp []float64) {
	n := len(y)
	adj = append(out[:0], y...)
	if n < 5 || !(k > 0) {
		return adj, sh, tmp
	}
	d := tmp[:0]
	for i := 1; i < n; i++ {
		d = append(d, y[i]-y[i-1])
	}
	sh.Median = Median(d) // reorders d
	var meanAD float64
	for i := range d {
		d[i] = math.Abs(d[i] - sh.Median)
		meanAD += d[i]
	}
	meanAD /= float64(len(d))
	sh.Spread = madScale * Median(d)
	if sh.Spread == 0 {
		sh.Spread = meanADScale * meanAD
	}
	if !(sh.Spread > 0) || math.IsInf(sh.Spread, 0) {
		return adj, sh, d
	}
	// Walk backwards: every value before a shift moves by its excess.
	var moved float64
	for i := n - 1; i >= 1; i-- {
		if e := y[i] - y[i-1] - sh.Median; e > k*sh.Spread {
			sh.Count++
			sh.Total += e
			moved += e
		}
		adj[i-1] = y[i-1] + moved
	}
	return adj, sh, d
}
