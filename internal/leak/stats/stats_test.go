package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(want) && math.IsNaN(got) {
		return
	}
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.12g, want %.12g (±%g)", name, got, want, tol)
	}
}

// Series A is worked by hand in the comments of each test:
// x = 0..4, y = 1 3 2 5 4.
var (
	ax = []float64{0, 1, 2, 3, 4}
	ay = []float64{1, 3, 2, 5, 4}
)

func TestOLS(t *testing.T) {
	tests := []struct {
		name         string
		x, y         []float64
		slope, icept float64
		r2           float64
		ok           bool
	}{
		// mean x 2, mean y 3; Sxy = 8, Sxx = 10, Syy = 10:
		// slope 0.8, intercept 3-1.6 = 1.4, R² = 64/100.
		{"series A", ax, ay, 0.8, 1.4, 0.64, true},
		{"exact line", []float64{1, 2, 3}, []float64{5, 7, 9}, 2, 3, 1, true},
		// Flat: the fit is exact but explains nothing; R² reported as 0.
		{"flat", []float64{1, 2, 3}, []float64{4, 4, 4}, 0, 4, 0, true},
		{"one point", []float64{1}, []float64{1}, math.NaN(), math.NaN(), math.NaN(), false},
		{"same x", []float64{2, 2}, []float64{1, 5}, math.NaN(), math.NaN(), math.NaN(), false},
		// Large offsets (Unix seconds, hundreds of MB) must not lose
		// precision: y = 3e8 + 10*(x-1.7e9).
		{"large offsets", []float64{1.7e9, 1.7e9 + 5, 1.7e9 + 10}, []float64{3e8, 3e8 + 50, 3e8 + 100}, 10, 3e8 - 1.7e10, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, a, r2, ok := OLS(tc.x, tc.y)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			near(t, "slope", s, tc.slope, 1e-9)
			near(t, "intercept", a, tc.icept, 1e-6*math.Max(1, math.Abs(tc.icept)))
			near(t, "r2", r2, tc.r2, 1e-12)
		})
	}
}

func TestMomentsMergeEqualsAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var all, a, b, c Moments
	for i := range 1000 {
		x := 1.7e9 + float64(i)*5
		y := 2e8 + 1e3*float64(i) + rng.NormFloat64()*1e6
		all.Add(x, y)
		switch {
		case i < 300:
			a.Add(x, y)
		case i < 301:
			b.Add(x, y)
		default:
			c.Add(x, y)
		}
	}
	var m Moments
	m.Merge(a)
	m.Merge(Moments{}) // empty merge is a no-op
	m.Merge(b)
	m.Merge(c)
	s1, a1, r1, _ := all.Line()
	s2, a2, r2, _ := m.Line()
	near(t, "slope", s2, s1, 1e-9*math.Abs(s1))
	near(t, "intercept", a2, a1, 1e-6*math.Abs(a1))
	near(t, "r2", r2, r1, 1e-9)
	if m.N != 1000 {
		t.Errorf("N = %v", m.N)
	}
}

func TestTheilSen(t *testing.T) {
	tests := []struct {
		name         string
		x, y         []float64
		slope, icept float64
		ok           bool
	}{
		// Pair slopes: 2, .5, 4/3, .75, -1, 1, 1/3, 3, 1, -1; sorted the
		// middle two are .75 and 1: slope .875. y - .875x = 1, 2.125, .25,
		// 2.375, .5: median 1.
		{"series A", ax, ay, 0.875, 1, true},
		// An outlier moves OLS but not Theil-Sen: pair slopes 1,1,1,1,1,1
		// except the six through the outlier.
		{"outlier", []float64{0, 1, 2, 3, 4, 5}, []float64{0, 1, 2, 100, 4, 5}, 1, 0, true},
		// Equal x pairs are skipped: slopes (0,1)=2, (0,2)=4, (1,2)... x 1 and
		// 1 skipped -> slopes {2, 4}: median 3. Residuals 0, -1, 1 -> 0.
		{"tied x", []float64{0, 1, 1}, []float64{0, 2, 4}, 3, 0, true},
		{"one point", []float64{0}, []float64{1}, math.NaN(), math.NaN(), false},
		{"all x equal", []float64{1, 1}, []float64{1, 2}, math.NaN(), math.NaN(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, a, _, ok := TheilSen(tc.x, tc.y, nil)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			near(t, "slope", s, tc.slope, 1e-12)
			near(t, "intercept", a, tc.icept, 1e-12)
		})
	}
}

func TestTheilSenReusesBuffer(t *testing.T) {
	buf := make([]float64, 0, 10)
	_, _, out, _ := TheilSen(ax, ay, buf)
	if cap(out) != 10 || &out[:1][0] != &buf[:1][0] {
		t.Errorf("buffer not reused")
	}
	if n := testing.AllocsPerRun(10, func() { TheilSen(ax, ay, buf) }); n != 0 {
		t.Errorf("allocs = %v, want 0", n)
	}
}

func TestMannKendall(t *testing.T) {
	tests := []struct {
		name   string
		y      []float64
		s, v   float64
		factor float64
	}{
		// 8 concordant, 2 discordant pairs: S = 6; Var = 5*4*15/18 = 50/3.
		{"series A", ay, 6, 50.0 / 3, 1},
		// Pairs: + + + + 0 + 0 + 0 -: S = 5. Ties: one group of three equal
		// values: Var = (5*4*15 - 3*2*11)/18 = 234/18 = 13.
		{"ties", []float64{1, 2, 2, 3, 2}, 5, 13, 1},
		{"falling", []float64{4, 3, 2, 1}, -6, 4 * 3 * 13 / 18.0, 1},
		{"all tied", []float64{7, 7, 7}, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			near(t, "S", MannKendallS(tc.y), tc.s, 0)
			near(t, "Var", MannKendallVar(tc.y), tc.v, 1e-12)
		})
	}
}

func TestHamedRaoFactor(t *testing.T) {
	// Series A detrended by .875: ranks 3 4 1 5 2, centred 0 1 -2 2 -1,
	// sum of squares 10. r1 = -8/10, r2 = 4/10; the 5% bound is
	// 1.96/sqrt(5) = .8765, so neither counts: factor 1.
	near(t, "series A", HamedRaoFactor(ax, ay, 0.875), 1, 1e-12)

	// A ramp 1..10 not detrended (slope 0): ranks 1..10, sum of squares
	// 82.5. r1 = 57.75/82.5 = .7 exceeds 1.96/sqrt(10) = .6198; r2 = .412,
	// r3 = .148, r5 = -.258, r6 = -.376, r7 = -.421 do not.
	// n/n* = 1 + 2/(10*9*8) * (9*8*7 * .7) = 1.98.
	x := make([]float64, 10)
	y := make([]float64, 10)
	for i := range x {
		x[i] = float64(i)
		y[i] = float64(i + 1)
	}
	near(t, "ramp", HamedRaoFactor(x, y, 0), 1.98, 1e-12)

	// Detrended by its own slope the ramp is constant: no correction.
	near(t, "ramp detrended", HamedRaoFactor(x, y, 1), 1, 1e-12)
	near(t, "short", HamedRaoFactor(x[:2], y[:2], 0), 1, 0)

	// The same ramp through the whole test: S = 45, Var = 10*9*25/18 = 125,
	// inflated by 1.98 -> sd sqrt(247.5); Z = 44/sqrt(247.5).
	tt := MannKendallHamedRao(x, y, 0)
	near(t, "S", tt.S, 45, 0)
	near(t, "VarS", tt.VarS, 125, 1e-12)
	near(t, "Factor", tt.Factor, 1.98, 1e-12)
	near(t, "Z", tt.Z, 44/math.Sqrt(247.5), 1e-12)
	near(t, "P", tt.P, NormalSF(44/math.Sqrt(247.5)), 1e-15)
}

func TestMannKendallHamedRao(t *testing.T) {
	tests := []struct {
		name string
		x, y []float64
		z, p float64
	}{
		// S = 6, Var 50/3, factor 1: Z = 5/sqrt(50/3) = 1.224744871,
		// P = 1 - Phi(1.2247) = 0.110335.
		{"series A", ax, ay, 5 / math.Sqrt(50.0/3), 0.1103356810},
		// S = 5, Var 13: Z = 4/sqrt(13) = 1.109400392, P = 0.1336287.
		{"ties", ax, []float64{1, 2, 2, 3, 2}, 4 / math.Sqrt(13), 0.1336287466},
		// S = -6, Var 26/3: Z = -5/sqrt(26/3) = -1.698415551, P = .9552853.
		{"falling", ax[:4], []float64{4, 3, 2, 1}, -5 / math.Sqrt(26.0/3), 0.9552853205},
		{"flat", ax[:4], []float64{1, 1, 1, 1}, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _, _ := TheilSen(tc.x, tc.y, nil)
			if math.IsNaN(s) {
				s = 0
			}
			tt := MannKendallHamedRao(tc.x, tc.y, s)
			near(t, "Z", tt.Z, tc.z, 1e-9)
			near(t, "P", tt.P, tc.p, 1e-9)
		})
	}
}

func TestHamedRaoNeverShrinks(t *testing.T) {
	// An alternating series has strongly negative lag-1 autocorrelation:
	// the raw factor is below 1, the applied one is clamped to 1.
	y := []float64{1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5}
	x := make([]float64, len(y))
	for i := range x {
		x[i] = float64(i)
	}
	if f := HamedRaoFactor(x, y, 0); f >= 1 {
		t.Fatalf("raw factor %v, want < 1", f)
	}
	if tt := MannKendallHamedRao(x, y, 0); tt.Factor != 1 {
		t.Errorf("applied factor %v, want 1", tt.Factor)
	}
}

func TestNormal(t *testing.T) {
	tests := []struct{ z, sf float64 }{
		{0, 0.5},
		{1.6448536269514722, 0.05},
		{2.3263478740408408, 0.01},
		{3.090232306167813, 0.001},
		{-1.959963984540054, 0.975},
		{8, 6.22096057427178e-16},
	}
	for _, tc := range tests {
		near(t, "NormalSF", NormalSF(tc.z), tc.sf, 1e-12*math.Max(tc.sf, 1e-4))
		near(t, "NormalCDF", NormalCDF(tc.z), 1-tc.sf, 1e-12)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		v    []float64
		want float64
	}{
		{nil, math.NaN()},
		{[]float64{3}, 3},
		{[]float64{3, 1}, 2},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 4, 4, 1, 9, 4}, 4},
		{[]float64{-1, -1, 1, 1}, 0},
	}
	for _, tc := range tests {
		near(t, "median", Median(slices.Clone(tc.v)), tc.want, 0)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 1; n < 300; n++ {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(rng.IntN(20)) // many ties
		}
		s := slices.Clone(v)
		slices.Sort(s)
		want := s[n/2]
		if n%2 == 0 {
			want = (s[n/2-1] + s[n/2]) / 2
		}
		if got := Median(v); got != want {
			t.Fatalf("n=%d: median %v, want %v", n, got, want)
		}
	}
}

func TestRanks(t *testing.T) {
	got := Ranks([]float64{10, 20, 10, 30, 20, 20})
	want := []float64{1.5, 4, 1.5, 6, 4, 4}
	if !slices.Equal(got, want) {
		t.Errorf("Ranks = %v, want %v", got, want)
	}
}

func BenchmarkTheilSen72(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float64, 72)
	y := make([]float64, 72)
	for i := range x {
		x[i] = float64(i) * 1200
		y[i] = 2e8 + rng.NormFloat64()*1e6
	}
	var buf []float64
	b.ReportAllocs()
	for b.Loop() {
		_, _, buf, _ = TheilSen(x, y, buf)
	}
}

func BenchmarkMannKendallHamedRao72(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float64, 72)
	y := make([]float64, 72)
	for i := range x {
		x[i] = float64(i) * 1200
		y[i] = 2e8 + rng.NormFloat64()*1e6
	}
	b.ReportAllocs()
	for b.Loop() {
		MannKendallHamedRao(x, y, 0)
	}
}

func TestBestRampAtOnce(t *testing.T) {
	tests := []struct {
		name string
		y    []float64
		want Step
		ok   bool
	}{
		// Split after 1 1: means 1 and 5, no residual.
		{"clean", []float64{1, 1, 5, 5, 5}, Step{At: 2, Size: 4, SSR: 0}, true},
		// 1 2 | 10 11: means 1.5 and 10.5, SSR 4*.25 = 1.
		{"noisy", []float64{1, 2, 10, 11}, Step{At: 2, Size: 9, SSR: 1}, true},
		// A straight line 0..5: best split in the middle, 0 1 2 | 3 4 5:
		// means 1 and 4, SSR 2+2 = 4.
		{"line", []float64{0, 1, 2, 3, 4, 5}, Step{At: 3, Size: 3, SSR: 4}, true},
		{"short", []float64{1, 2, 3}, Step{SSR: math.NaN()}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, ok := BestRamp(tc.y, 0, nil)
			if ok != tc.ok || got.At != tc.want.At || got.Ramp != 0 {
				t.Fatalf("BestRamp(0) = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
			near(t, "Size", got.Size, tc.want.Size, 1e-12)
			near(t, "SSR", got.SSR, tc.want.SSR, 1e-12)
		})
	}
}

func TestBestRamp(t *testing.T) {
	// Twelve points: four at 0, a ramp, and the level 10 after it.
	ramp := []float64{0, 0, 0, 0, 2, 4, 6, 8, 10, 10, 10, 10}
	tests := []struct {
		name    string
		y       []float64
		maxRamp int
		want    Step
		ok      bool
	}{
		// The ramp 2 4 6 8 over four points is found exactly.
		{"ramp", ramp, 4, Step{At: 4, Ramp: 4, Size: 10, SSR: 0}, true},
		// No ramp allowed: the best step at once, 0 0 0 0 2 4 | 6 8 10 10
		// 10 10, means 1 and 9, SSR 14 + 14.
		{"steps at once", ramp, 0, Step{At: 6, Size: 8, SSR: 28}, true},
		{"short", []float64{1, 2, 3}, 2, Step{SSR: math.NaN()}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, ok := BestRamp(tc.y, tc.maxRamp, nil)
			if ok != tc.ok || got.At != tc.want.At || got.Ramp != tc.want.Ramp {
				t.Fatalf("BestRamp = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
			near(t, "Size", got.Size, tc.want.Size, 1e-9)
			near(t, "SSR", got.SSR, tc.want.SSR, 1e-9)
		})
	}
	// A ramp must be followed by a quarter of the points at the new level
	// (a rise into the end of the series is the shape of a trend that
	// started within it): the ramp 2 4 6 8 fits exactly with four points
	// of 10 after it in sixteen, not with three.
	for _, after := range []int{4, 3} {
		y := make([]float64, 16)
		for i := range y {
			y[i] = min(10, max(0, 2*float64(i-(11-after))))
		}
		got, _, _ := BestRamp(y, 4, nil)
		if exact := got.Ramp == 4 && got.SSR < 1e-9; exact != (after == 4) {
			t.Errorf("%v with %d points after the ramp: BestRamp = %+v", y, after, got)
		}
	}
	// With no ramp allowed it is the best split into two means, here
	// found by trying every split, on noise of any length.
	r := rand.New(rand.NewPCG(1, 2))
	var buf []float64
	for range 200 {
		y := make([]float64, 4+r.IntN(70))
		for i := range y {
			y[i] = 100 + 3*r.NormFloat64()
		}
		want := Step{SSR: math.Inf(1)}
		for k := 2; k <= len(y)-2; k++ {
			a, b := mean(y[:k]), mean(y[k:])
			var ssr float64
			for i, v := range y {
				m := a
				if i >= k {
					m = b
				}
				ssr += (v - m) * (v - m)
			}
			if ssr < want.SSR {
				want = Step{At: k, Size: b - a, SSR: ssr}
			}
		}
		var got Step
		got, buf, _ = BestRamp(y, 0, buf)
		if got.At != want.At || math.Abs(got.SSR-want.SSR) > 1e-6*(1+want.SSR) || math.Abs(got.Size-want.Size) > 1e-9*(1+math.Abs(want.Size)) {
			t.Fatalf("n %d: BestRamp(0) = %+v, every split: %+v", len(y), got, want)
		}
	}
}

func mean(y []float64) float64 {
	var s float64
	for _, v := range y {
		s += v
	}
	return s / float64(len(y))
}

func TestRemoveShifts(t *testing.T) {
	tests := []struct {
		name   string
		y      []float64
		k      float64
		want   []float64
		count  int
		total  float64
		median float64
		spread float64
	}{
		// Differences 1 1 11 1 1: median 1, every deviation but one is 0,
		// so the MAD is 0 and the spread is 1.2533 x mean deviation 10/5.
		// The rise of 11 exceeds the median by 10 > 3 x 2.5066: the values
		// before it move up by 10.
		{"one rise, MAD 0", []float64{0, 1, 2, 13, 14, 15}, 3,
			[]float64{10, 11, 12, 13, 14, 15}, 1, 10, 1, 1.2533 * 2},
		// Differences 2 1 2 1 20 2 1: median 2, deviations 0 1 0 1 18 0 1,
		// MAD 1, spread 1.4826; 18 > 5 x 1.4826. Without the rise the
		// differences are 2 1 2 1 2 1: median 1.5, MAD 0.5, and the rise
		// exceeds that median by 18.5.
		{"one rise", []float64{0, 2, 3, 5, 6, 26, 28, 29}, 5,
			[]float64{18.5, 20.5, 21.5, 23.5, 24.5, 26, 28, 29}, 1, 18.5, 1.5, 1.4826 * 0.5},
		// A ramp over a third of a short series: differences +1 -1 +1 -1,
		// 10 10 10 10, -1 +1 -1 +1. Its own differences raise the median of
		// all twelve to 1, which would leave 4 of the ramp in the series as
		// a trend; the differences outside it have median 0 and MAD 1, so
		// the whole ramp comes out and the series is flat.
		{"ramp over a third", []float64{0, 1, 0, 1, 0, 10, 20, 30, 40, 39, 40, 39, 40}, 4,
			[]float64{40, 41, 40, 41, 40, 40, 40, 40, 40, 39, 40, 39, 40}, 1, 40, 0, 1.4826},
		// Two rises of 10 above the median difference 1 (a staircase).
		{"staircase", []float64{0, 1, 2, 13, 14, 15, 26, 27, 28}, 3,
			[]float64{20, 21, 22, 23, 24, 25, 26, 27, 28}, 2, 20, 1, 1.2533 * 20 / 8},
		// A fall alone (no way back) is never taken out: it can only hide
		// growth.
		{"fall kept", []float64{10, 11, 12, 2, 3, 4}, 3,
			[]float64{10, 11, 12, 2, 3, 4}, 0, 0, 1, 1.2533 * 11 / 5},
		// A dip and back (differences 1 -1 1 -1 -15 16 -1 1 -1 1: median 0,
		// MAD 1): the rise of 16 exceeds 4 spreads, but from before the
		// fall of 15 to after it the series rises by 1, under the
		// threshold for those two differences (4 x 1.4826 x sqrt 2): no
		// shift. The dip comes out (its value up by 16, those before it
		// by the net 1); taking only the way back out would lower every
		// value before it by 16 against those after.
		{"dip and back", []float64{0, 1, 0, 1, 0, -15, 1, 0, 1, 0, 1}, 4,
			[]float64{1, 2, 1, 2, 1, 1, 1, 0, 1, 0, 1}, 0, 0, 0, 1.4826},
		// A dip and then higher than before by a shift (21 over two
		// differences): the rise is a shift and comes out whole, as
		// without the dip. The differences outside it (1 -1 1 -1 -15 -1 1
		// -1 1) have median -1 and MAD 2, so its excess is 37.
		{"dip then a step", []float64{0, 1, 0, 1, 0, -15, 21, 20, 21, 20, 21}, 4,
			[]float64{37, 38, 37, 38, 37, 22, 21, 20, 21, 20, 21}, 1, 37, -1, 1.4826 * 2},
		// A spike and back (differences 1 -1 1 -1 16 -14 -1 1 -1 1: median
		// 0, MAD 1): the rise of 16 exceeds 4 spreads, but the level does
		// not move: the median of the three values after it (2) is within
		// the threshold of the median of the three before (0). Taking the
		// rise out would lower every value after it by 16 against those
		// before; the spike stays instead.
		{"spike and back", []float64{0, 1, 0, 1, 0, 16, 2, 1, 2, 1, 2}, 4,
			[]float64{0, 1, 0, 1, 0, 16, 2, 1, 2, 1, 2}, 0, 0, 0, 1.4826},
		// A steady trend moves the median, not the spread: nothing to take
		// out.
		{"trend", []float64{0, 3, 6, 9, 12, 15}, 3,
			[]float64{0, 3, 6, 9, 12, 15}, 0, 0, 3, 0},
		// Within k spreads: kept.
		{"small rise", []float64{0, 2, 3, 5, 6, 26, 28, 29}, 13,
			[]float64{0, 2, 3, 5, 6, 26, 28, 29}, 0, 0, 2, 1.4826},
		{"too short", []float64{0, 1, 20, 21}, 3, []float64{0, 1, 20, 21}, 0, 0, 0, 0},
		{"off", []float64{0, 1, 2, 13, 14, 15}, 0, []float64{0, 1, 2, 13, 14, 15}, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := slices.Clone(tc.y)
			adj, sh, _ := RemoveShifts(y, tc.k, nil, nil)
			if !slices.Equal(y, tc.y) {
				t.Fatalf("input modified: %v", y)
			}
			if len(adj) != len(tc.want) {
				t.Fatalf("adjusted %v, want %v", adj, tc.want)
			}
			for i := range adj {
				near(t, "adjusted value", adj[i], tc.want[i], 1e-9)
			}
			if sh.Count != tc.count {
				t.Errorf("count %d, want %d", sh.Count, tc.count)
			}
			near(t, "total", sh.Total, tc.total, 1e-9)
			near(t, "median", sh.Median, tc.median, 1e-9)
			near(t, "spread", sh.Spread, tc.spread, 1e-9)
			// In place (out = y[:0]): the same result, written over y.
			in := slices.Clone(tc.y)
			got, shIn, _ := RemoveShifts(in, tc.k, in[:0], nil)
			if !slices.Equal(got, adj) || !slices.Equal(in, adj) || shIn != sh {
				t.Errorf("in place: %v %+v, want %v %+v", in, shIn, adj, sh)
			}
		})
	}
	// Scratch and output buffers are reused.
	out, tmp := make([]float64, 0, 16), make([]float64, 0, 16)
	adj, _, tmp2 := RemoveShifts([]float64{0, 1, 2, 13, 14, 15}, 3, out, tmp)
	if &adj[0] != &out[:1][0] || &tmp2[0] != &tmp[:1][0] {
		t.Error("buffers not reused")
	}
}

// TestRemoveRamps checks the one thing RemoveRamps adds to RemoveShifts: a
// ramp whose differences noise broke into pieces, none of them a shift
// alone (rises of 5, 1.5, 5, 1.5, 5 among differences of +-0.5: the first
// estimate of the spread, 1.4826, includes the ramp, and a single 4.5 above
// the median 0.5 is under 4 spreads), is one shift when the whole run of
// rising differences is counted, with the rising difference of 0.5 that
// follows it (18.5 in all). A rise that RemoveShifts takes out is taken
// out with the rising differences next to it (19 instead of 18.5); series
// without a run of rises come out as RemoveShifts leaves them.
func TestRemoveRamps(t *testing.T) {
	var broken []float64
	y := 0.0
	add := func(ds ...float64) {
		for _, d := range ds {
			y += d
			broken = append(broken, y)
		}
	}
	broken = append(broken, 0)
	for range 20 {
		add(0.5, -0.5)
	}
	add(5, 1.5, 5, 1.5, 5)
	for range 20 {
		add(0.5, -0.5)
	}
	tests := []struct {
		name          string
		y             []float64
		shifts, ramps int
		total         float64 // of RemoveRamps
	}{
		{"ramp broken by noise", broken, 0, 1, 18.5},
		{"trend", []float64{0, 3, 6, 9, 12, 15, 18, 21}, 0, 0, 0},
		{"fall kept", []float64{10, 11, 12, 2, 3, 4, 5, 6}, 0, 0, 0},
		{"one rise", []float64{0, 2, 3, 5, 6, 26, 28, 29}, 1, 1, 19},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, sh, _ := RemoveShifts(tc.y, 4, nil, nil)
			if sh.Count != tc.shifts {
				t.Errorf("RemoveShifts: %d shifts, want %d", sh.Count, tc.shifts)
			}
			adj, rp, _ := RemoveRamps(tc.y, 4, nil, nil)
			if rp.Count != tc.ramps {
				t.Fatalf("RemoveRamps: %d shifts, want %d", rp.Count, tc.ramps)
			}
			near(t, "total", rp.Total, tc.total, 1e-9)
			near(t, "last value", adj[len(adj)-1], tc.y[len(tc.y)-1], 1e-9)
			near(t, "first value moved by", adj[0]-tc.y[0], tc.total, 1e-9)
		})
	}
}
