package stats

import "math"

// TheilSen returns the Theil-Sen slope of y against x (the median of the
// slopes of all pairs with distinct x) and Sen's intercept (the median of
// y - slope*x). It costs O(n²) time; buf is scratch space that is grown when
// too small and returned for reuse, so steady callers do not allocate.
// ok is false when no pair has distinct x.
func TheilSen(x, y, buf []float64) (slope, intercept float64, out []float64, ok bool) {
	n := len(x)
	if len(y) != n || n < 2 {
		return math.NaN(), math.NaN(), buf, false
	}
	need := n * (n - 1) / 2
	if cap(buf) < need {
		buf = make([]float64, 0, need)
	}
	pairs := buf[:0]
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			dx := x[j] - x[i]
			if dx == 0 {
				continue
			}
			pairs = append(pairs, (y[j]-y[i])/dx)
		}
	}
	if len(pairs) == 0 {
		return math.NaN(), math.NaN(), buf, false
	}
	slope = Median(pairs)
	res := pairs[:n]
	for i := range n {
		res[i] = y[i] - slope*x[i]
	}
	intercept = Median(res)
	return slope, intercept, buf, true
}
