package stats

import "math"

// Moments accumulates the sufficient statistics of a least-squares line
// y = a + b*x in a numerically stable way (Welford's update for one point,
// Chan's formula to merge two sets). The zero value is an empty set.
type Moments struct {
	// N is the number of points.
	N float64
	// MeanX and MeanY are the means of x and y.
	MeanX, MeanY float64
	// SXX, SXY and SYY are the sums of products of deviations from the means:
	// sum (x-mx)^2, sum (x-mx)(y-my), sum (y-my)^2.
	SXX, SXY, SYY float64
}

// Add adds one point in O(1).
func (m *Moments) Add(x, y float64) {
	m.N++
	dx := x - m.MeanX
	dy := y - m.MeanY
	m.MeanX += dx / m.N
	m.MeanY += dy / m.N
	m.SXX += dx * (x - m.MeanX)
	m.SXY += dx * (y - m.MeanY)
	m.SYY += dy * (y - m.MeanY)
}

// Merge adds all the points summarised by o in O(1).
func (m *Moments) Merge(o Moments) {
	if o.N == 0 {
		return
	}
	if m.N == 0 {
		*m = o
		return
	}
	n := m.N + o.N
	dx := o.MeanX - m.MeanX
	dy := o.MeanY - m.MeanY
	w := m.N * o.N / n
	m.SXX += o.SXX + dx*dx*w
	m.SXY += o.SXY + dx*dy*w
	m.SYY += o.SYY + dy*dy*w
	m.MeanX += dx * o.N / n
	m.MeanY += dy * o.N / n
	m.N = n
}

// Line returns the least-squares slope and intercept and the coefficient of
// determination R². ok is false when there are fewer than two distinct x
// values. When all y are equal the fit is exact but R² is undefined; it is
// reported as 0 (no trend explained).
func (m Moments) Line() (slope, intercept, r2 float64, ok bool) {
	if m.N < 2 || !(m.SXX > 0) {
		return math.NaN(), math.NaN(), math.NaN(), false
	}
	slope = m.SXY / m.SXX
	intercept = m.MeanY - slope*m.MeanX
	if m.SYY > 0 {
		r2 = m.SXY * m.SXY / (m.SXX * m.SYY)
		if r2 > 1 {
			r2 = 1
		}
	}
	return slope, intercept, r2, true
}

// OLS fits y = a + b*x by ordinary least squares over paired slices and
// returns the slope b, the intercept a and R². ok is false when the slices
// differ in length or hold fewer than two distinct x values.
func OLS(x, y []float64) (slope, intercept, r2 float64, ok bool) {
	if len(x) != len(y) {
		return math.NaN(), math.NaN(), math.NaN(), false
	}
	var m Moments
	for i := range x {
		m.Add(x[i], y[i])
	}
	return m.Line()
}

// Step is the best single level shift of a series.
type Step struct {
	// At is the index of the first point after the shift.
	At int
	// Size is the mean after minus the mean before.
	Size float64
	// SSR is the residual sum of squares about the two means.
	SSR float64
}

// BestStep finds the split of y (each side at least two points) that
// minimises the residual sum of squares about the means of both sides, in
// O(n). ok is false for fewer than four points.
func BestStep(y []float64) (st Step, ok bool) {
	n := len(y)
	if n < 4 {
		return Step{SSR: math.NaN()}, false
	}
	// Centre on the first value to keep the sums of squares small.
	ref := y[0]
	var totS, totQ float64
	for _, v := range y {
		v -= ref
		totS += v
		totQ += v * v
	}
	st.SSR = math.Inf(1)
	var s, q float64
	for k := 1; k <= n-2; k++ {
		v := y[k-1] - ref
		s += v
		q += v * v
		if k < 2 {
			continue
		}
		na, nb := float64(k), float64(n-k)
		sb, qb := totS-s, totQ-q
		ssr := (q - s*s/na) + (qb - sb*sb/nb)
		if ssr < st.SSR {
			st = Step{At: k, Size: sb/nb - s/na, SSR: max(ssr, 0)}
		}
	}
	return st, true
}
