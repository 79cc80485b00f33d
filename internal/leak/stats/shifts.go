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
	// Count is the number of level shifts (a ramped shift spans several
	// differences).
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
// y[i] that lies more than k robust standard deviations above the median
// difference m, or a run of successive differences each more than one above
// it whose summed excess reaches k times the square root of the run's length
// (a shift that ramps over a few values). The spread is 1.4826 x the median
// absolute deviation of the differences, or 1.2533 x their mean absolute
// deviation when that is 0, as Iglewicz and Hoaglin advise. Each shift is replaced by the typical step m
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
	// A shift may ramp over a few values (a cache filling over minutes):
	// a run of successive differences that each exceed the median by more
	// than one spread is one shift when their summed excess reaches k
	// spreads times the square root of the run's length (a single
	// difference: k spreads). d is reused to hold each difference's excess
	// when it belongs to a shift, 0 otherwise.
	d = d[:n-1]
	start, sum := -1, 0.0
	for i := 1; i <= n; i++ {
		e := math.Inf(-1)
		if i < n {
			e = y[i] - y[i-1] - sh.Median
		}
		if e > sh.Spread {
			if start < 0 {
				start, sum = i, 0
			}
			sum += e
			continue
		}
		if start >= 0 {
			shift := sum > k*sh.Spread*math.Sqrt(float64(i-start))
			if shift {
				sh.Count++
				sh.Total += sum
			}
			for j := start; j < i; j++ {
				d[j-1] = 0
				if shift {
					d[j-1] = y[j] - y[j-1] - sh.Median
				}
			}
			// The values at either end of a ramped shift are often
			// partly on it (a bucket's minimum taken before the ramp
			// started, or as it ended): a rising difference next to a
			// shift belongs to it.
			if shift && i-start > 1 {
				if j := start - 1; j >= 1 && y[j]-y[j-1]-sh.Median > 0 && d[j-1] == 0 {
					d[j-1] = y[j] - y[j-1] - sh.Median
					sh.Total += d[j-1]
				}
				if i < n {
					if e := y[i] - y[i-1] - sh.Median; e > 0 {
						d[i-1] = e
						sh.Total += e
						start = -1
						continue
					}
				}
			}
			start = -1
		}
		if i < n {
			d[i-1] = 0
		}
	}
	// Walk backwards: every value before a shift moves by its excess.
	var moved float64
	for i := n - 1; i >= 1; i-- {
		moved += d[i-1]
		adj[i-1] = y[i-1] + moved
	}
	return adj, sh, d
}
