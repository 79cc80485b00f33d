package stats

import (
	"math"
	"slices"
)

// MannKendallS returns the Mann-Kendall statistic S = sum over i<j of
// sign(y[j]-y[i]) for a series in time order. O(n²).
func MannKendallS(y []float64) float64 {
	var s int
	for i := 0; i < len(y); i++ {
		yi := y[i]
		for j := i + 1; j < len(y); j++ {
			switch {
			case y[j] > yi:
				s++
			case y[j] < yi:
				s--
			}
		}
	}
	return float64(s)
}

// MannKendallVar returns the variance of S under the null hypothesis of no
// trend and independent values, corrected for ties:
// [n(n-1)(2n+5) - sum over tie groups t(t-1)(2t+5)] / 18.
func MannKendallVar(y []float64) float64 {
	n := float64(len(y))
	v := n * (n - 1) * (2*n + 5)
	sorted := slices.Clone(y)
	slices.Sort(sorted)
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[i] {
			j++
		}
		if t := float64(j - i); t > 1 {
			v -= t * (t - 1) * (2*t + 5)
		}
		i = j
	}
	return v / 18
}

// HamedRaoSignificance is the two-sided level at which a lag's rank
// autocorrelation counts in the Hamed-Rao correction (as in the 1998 paper).
const HamedRaoSignificance = 0.05

// HamedRaoFactor returns the Hamed-Rao variance inflation n/n* for the
// Mann-Kendall test: the series is detrended with the given slope (y -
// slope*x), ranked, and the rank autocorrelations r_k that are significant at
// the 5% level (|r_k| > 1.96/sqrt(n)) enter
// n/n* = 1 + 2/(n(n-1)(n-2)) * sum_k (n-k)(n-k-1)(n-k-2) r_k.
// The raw factor is returned; it may be below 1 for negatively
// autocorrelated series. Returns 1 for n < 3.
func HamedRaoFactor(x, y []float64, slope float64) float64 {
	n := len(y)
	if n < 3 || len(x) != n {
		return 1
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = y[i] - slope*x[i]
	}
	r := Ranks(d)
	mean := float64(n+1) / 2
	var den float64
	for i := range r {
		r[i] -= mean
		den += r[i] * r[i]
	}
	if den == 0 {
		return 1
	}
	bound := 1.959963984540054 / math.Sqrt(float64(n))
	var sum float64
	for k := 1; k <= n-3; k++ {
		var num float64
		for i := 0; i+k < n; i++ {
			num += r[i] * r[i+k]
		}
		rho := num / den
		if math.Abs(rho) <= bound {
			continue
		}
		fk := float64(n - k)
		sum += fk * (fk - 1) * (fk - 2) * rho
	}
	fn := float64(n)
	return 1 + 2*sum/(fn*(fn-1)*(fn-2))
}

// TrendTest is the outcome of a one-sided Mann-Kendall test for an upward
// trend.
type TrendTest struct {
	// N is the number of points.
	N int
	// S is the Mann-Kendall statistic.
	S float64
	// VarS is the tie-corrected variance of S under independence.
	VarS float64
	// Factor is the Hamed-Rao variance inflation actually applied (>= 1).
	Factor float64
	// Z is the continuity-corrected normal score (S-1)/sd for S>0,
	// (S+1)/sd for S<0, 0 otherwise, with sd = sqrt(VarS*Factor).
	Z float64
	// P is the one-sided p-value for an upward trend, P(Z' >= Z).
	P float64
}

// MannKendallHamedRao runs the Mann-Kendall test for an upward trend on y
// (in time order, at times x) with the Hamed-Rao correction computed after
// detrending by slope (normally the Theil-Sen slope of the same points). The
// correction is never allowed to shrink the variance (factor clamped at 1):
// the test stays at least as conservative as the classic one.
func MannKendallHamedRao(x, y []float64, slope float64) TrendTest {
	t := TrendTest{N: len(y), Factor: 1, P: 1}
	if len(y) < 3 || len(x) != len(y) {
		return t
	}
	t.S = MannKendallS(y)
	t.VarS = MannKendallVar(y)
	if f := HamedRaoFactor(x, y, slope); f > 1 {
		t.Factor = f
	}
	sd := math.Sqrt(t.VarS * t.Factor)
	if !(sd > 0) {
		return t
	}
	switch {
	case t.S > 0:
		t.Z = (t.S - 1) / sd
	case t.S < 0:
		t.Z = (t.S + 1) / sd
	}
	t.P = NormalSF(t.Z)
	return t
}
