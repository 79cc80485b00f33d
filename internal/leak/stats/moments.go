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
	// At is the index of the first point after a shift at once, or of the
	// first point of the ramp.
	At int
	// Size is the level after minus the level before (for a shift at once
	// the mean after minus the mean before).
	Size float64
	// SSR is the residual sum of squares of the fit (two levels, joined
	// by the ramp if any).
	SSR float64
	// Ramp is the number of points over which the shift ramps (BestRamp;
	// 0 for a shift at once).
	Ramp int
}

// BestRamp finds the single level shift of y that minimises the residual
// sum of squares: one level, then the other (each at least two points),
// either at once or joined by a straight ramp of up to maxRamp points (a
// cache filling over minutes), the level after a ramp lasting at least a
// quarter of the points. Step.At is the first point of the ramp (the first
// after the shift when Step.Ramp is 0). prefix is scratch space, returned
// for reuse. ok is false for fewer than four points. O(n x (maxRamp+1)).
func BestRamp(y []float64, maxRamp int, prefix []float64) (st Step, buf []float64, ok bool) {
	n := len(y)
	if n < 4 {
		return Step{SSR: math.NaN()}, prefix, false
	}
	// Prefix sums of y and of i*y (centred on the first value).
	ref := y[0]
	prefix = append(prefix[:0], make([]float64, 2*(n+1))...)
	p0, p1 := prefix[:n+1], prefix[n+1:]
	for i, v := range y {
		v -= ref
		p0[i+1] = p0[i] + v
		p1[i+1] = p1[i] + float64(i)*v
	}
	var syy float64
	for _, v := range y {
		v -= ref
		syy += v * v
	}
	fn := float64(n)
	sy := p0[n]
	syyc := syy - sy*sy/fn
	st.SSR = math.Inf(1)
	for g := 0; g <= maxRamp; g++ {
		gf := float64(g)
		inv := 1 / (gf + 1)
		rampW := gf / 2                            // sum of j/(g+1), j = 1..g
		rampW2 := gf * (2*gf + 1) / (6 * (gf + 1)) // sum of (j/(g+1))^2
		// A ramp must be followed by a quarter of the points at the level
		// after it: one running into the end of the series is the shape
		// of a trend that started within it.
		after := 2
		if g > 0 {
			after = max(2, n/4)
		}
		for k := 2; k+g <= n-after; k++ {
			na := float64(n - k - g)
			sw := rampW + na
			sww := rampW2 + na
			// sum over the ramp of (i-k+1) y_i, then the level after.
			rampWY := (p1[k+g] - p1[k]) - float64(k-1)*(p0[k+g]-p0[k])
			swy := inv*rampWY + (p0[n] - p0[k+g])
			vw := sww - sw*sw/fn
			if vw <= 0 {
				continue
			}
			cwy := swy - sw*sy/fn
			ssr := syyc - cwy*cwy/vw
			if ssr < st.SSR {
				st = Step{At: k, Ramp: g, Size: cwy / vw, SSR: max(ssr, 0)}
			}
		}
	}
	return st, prefix, true
}
