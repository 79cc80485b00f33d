package quality

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// nearestWarmUp returns the RMS distance, in bytes, from ys (sampled at
// ts, seconds) to the nearest curve b + C(1-exp(-t/tau)) of the warm-up
// family's range (C 50-300 MB, tau 0.5-4 h, any offset b): tau on a grid of
// 0.01 h, C and b by least squares with C clamped to its range.
func nearestWarmUp(ts, ys []float64) float64 {
	best, n := math.Inf(1), float64(len(ts))
	h := make([]float64, len(ts))
	for tauH := 0.5; tauH <= 4+1e-9; tauH += 0.01 {
		var sh, shh, sy, shy float64
		for i, t := range ts {
			h[i] = 1 - math.Exp(-t/(tauH*3600))
			sh += h[i]
			shh += h[i] * h[i]
			sy += ys[i]
			shy += h[i] * ys[i]
		}
		c := min(max((n*shy-sh*sy)/(n*shh-sh*sh), 50*mb), 300*mb)
		b := (sy - c*sh) / n
		var rss float64
		for i := range ts {
			d := ys[i] - b - c*h[i]
			rss += d * d
		}
		best = min(best, math.Sqrt(rss/n))
	}
	return best
}

// nearestLine returns the RMS distance, in bytes, from ys (sampled at ts)
// to the nearest line b + s*t with s in [lo, hi] (bytes per second).
func nearestLine(ts, ys []float64, lo, hi float64) float64 {
	var n, sx, sy, sxx, sxy float64
	for i, t := range ts {
		n++
		sx += t
		sy += ys[i]
		sxx += t * t
		sxy += t * ys[i]
	}
	s := min(max((n*sxy-sx*sy)/(n*sxx-sx*sx), lo), hi)
	b := (sy - s*sx) / n
	var rss float64
	for i, t := range ts {
		d := ys[i] - b - s*t
		rss += d * d
	}
	return math.Sqrt(rss / n)
}

// TestWarmStartBound measures how far the benchmark's "warm-up, then a
// leak from process start" series are, over the data an alert at the
// from-start targets' limits could use (the limit minus the 15 minutes the
// verdict must hold), from a pure warm-up of the warm-up family, and the
// other way round. The distance is made a signal-to-noise figure S: the
// RMS distance of the two curves times the square root of the number of
// effectively independent wander values in that time (T / 2 tau for the
// AR(1) wander of time constant tau) over the wander's standard deviation.
// At S < 1 even a test that knew both curves and the wander's law exactly
// would confuse them about a third of the time or more.
//
// With the family as drawn (300 series each way): a warm-up plus 25 MB/h
// is at S < 1 from some pure warm-up over the first 75 minutes for 96 % of
// series, and 84 % of pure warm-ups are at S < 1 from some warm-up plus
// 25 MB/h; for 5 MB/h over 4h45m, 79 % and 71 %. So a detector that reported
// half of these leaks by the targets' limits (1.5 h, 5 h) would report data
// that most of the family's warm-ups also produce, while the warm-up
// false-alarm target (0.02 a day on 4-day series) allows alarms on at most
// 8 % of them: on this benchmark the two targets cannot both hold.
//
// It also measures the share of pure warm-ups at S < 1 from a straight line
// rising within 25 % of the leak's rate (a leak from process start without
// a warm-up): 12 % at 25 MB/h, under 1 % at 5 MB/h. Under 16 % (twice the
// 8 %), this does not bound those targets. The test fails if the family
// changes so that either statement no longer holds.
func TestWarmStartBound(t *testing.T) {
	for _, tc := range []struct {
		rateMBh  float64
		limitH   float64
		atLeast  float64 // share of series at S < 1 both ways, at least
		lineMax  float64 // share of warm-ups at S < 1 from a line, less than
		n        int
		seedBase uint64
	}{
		{25, 1.5, 0.6, 0.16, 300, 31},
		{5, 5, 0.5, 0.16, 300, 37},
	} {
		t.Run(fmt.Sprintf("%g MB/h by %gh", tc.rateMBh, tc.limitH), func(t *testing.T) {
			rate := tc.rateMBh * mb / 3600
			span := (tc.limitH - 0.25) * 3600
			var ts []float64
			for x := 0.0; x <= span+1e-9; x += 300 {
				ts = append(ts, x)
			}
			ys := make([]float64, len(ts))
			// sign +1: a warm-up plus the leak against pure warm-ups; -1: a
			// pure warm-up against warm-ups plus the leak (the same fit on
			// y - rate*t); 0: a pure warm-up against lines at the leak's
			// rate. It returns the share at S < 1 and the median S.
			share := func(sign float64, seed uint64) (float64, float64) {
				close, snrs := 0, make([]float64, 0, tc.n)
				for i := range tc.n {
					s := Series{Family: WarmUp, Seed: seed + uint64(i)}
					p := s.Draw(rand.New(rand.NewPCG(s.Seed, 1)), 96*3600)
					for k, x := range ts {
						ys[k] = p.WarmC*(1-math.Exp(-x/p.WarmTau)) + sign*rate*x
					}
					d := nearestWarmUp(ts, ys)
					if sign == 0 {
						d = nearestLine(ts, ys, rate, rate)
					}
					snr := d * math.Sqrt(span/(2*p.WanderTau)) / p.WanderSD
					if snr < 1 {
						close++
					}
					snrs = append(snrs, snr)
				}
				slices.Sort(snrs)
				return float64(close) / float64(tc.n), snrs[tc.n/2]
			}
			fwd, fwdMedian := share(1, tc.seedBase*1000)
			rev, _ := share(-1, tc.seedBase*1000+500)
			line, _ := share(0, tc.seedBase*1000+500)
			t.Logf("warm-up + %g MB/h over the first %.2f h: %.0f %% at S < 1 from a pure warm-up (median S %.2f); pure warm-ups at S < 1 from a warm-up + %g MB/h: %.0f %%",
				tc.rateMBh, span/3600, 100*fwd, fwdMedian, tc.rateMBh, 100*rev)
			if fwd < tc.atLeast || rev < tc.atLeast {
				t.Errorf("shares %.2f and %.2f, want both >= %.2f: the argument of the docs no longer holds", fwd, rev, tc.atLeast)
			}
			t.Logf("pure warm-ups at S < 1 from a line rising %g MB/h: %.0f %%", tc.rateMBh, 100*line)
			if line >= tc.lineMax {
				t.Errorf("share %.2f, want < %.2f: the warm-up family now bounds the from-start target without a warm-up too", line, tc.lineMax)
			}
		})
	}
}

// TestDailyFirstDayBound measures the false alarms a day that the daily
// cycle's first day forces on a detector that finds 5 MB/h leaks starting
// on a segment's first day as it finds them later on: reading "leak" once
// the leak has run 8 h, twice the steady 5 MB/h median. For each series of
// the daily-cycle family as drawn, it takes, over every end time te within
// the first day and every leak start tL with te - tL >= 8 h, the smallest
// signal-to-noise figure S (as in TestWarmStartBound) between the cycle over
// [0, te] and a flat floor that starts rising 5 MB/h at tL. Data S apart
// differ by at most 2 Phi(S/2) - 1 in total variation, so such a detector
// reads "leak" on the cycle with at least one minus that: summed over the
// series, a floor on first-day alarms, whatever the method.
//
// Leaks of 5-25 MB/h are fitted (least squares, any offset); those faster
// than 5 MB/h are assumed found no later than it. With the family as drawn
// (300 series): 9 % of cycles at S < 1, at least 0.034 first-day false
// alarms a day, above the 0.02 target.
//
// The benchmark scores leaks at 36 h and from process start only; with tL
// held at 0 (a leak from process start that has run twice its 4.5 h
// median) the same figure bounds the benchmark as it stands: 2 %, 0.012 a
// day, under the target. The test logs both and fails if the family
// changes so that the first stops exceeding the 0.02 a day target or the
// second stops falling short of it.
func TestDailyFirstDayBound(t *testing.T) {
	const (
		n       = 300
		rate    = 5 * mb / 3600
		minRun  = 8 * 3600.0
		fromRun = 9 * 3600.0
		days    = 4.0
	)
	var ts []float64
	for x := 0.0; x <= 86400+1e-9; x += 300 {
		ts = append(ts, x)
	}
	ys := make([]float64, len(ts))
	// rms fits b + r*max(0, t-tL) to the first k points, r within the
	// scored rates (5-25 MB/h), and returns the RMS residual.
	rms := func(k int, tL float64) float64 {
		var n, sh, shh, sy, shy float64
		for i := range k {
			h := max(0, ts[i]-tL)
			n++
			sh += h
			shh += h * h
			sy += ys[i]
			shy += h * ys[i]
		}
		r := min(max((n*shy-sh*sy)/(n*shh-sh*sh), rate), 5*rate)
		b := (sy - r*sh) / n
		var ss float64
		for i := range k {
			d := ys[i] - b - r*max(0, ts[i]-tL)
			ss += d * d
		}
		return math.Sqrt(ss / n)
	}
	var anyStart, fromStart float64 // expected first-day alarms, at least
	closeAny, closeFrom := 0, 0
	for i := range n {
		s := Series{Family: Diurnal, Seed: 41000 + uint64(i)}
		p := s.Draw(rand.New(rand.NewPCG(s.Seed, 1)), days*86400)
		for k, x := range ts {
			ys[k] = p.DiurnalAmp * math.Sin(2*math.Pi*x/86400+p.DiurnalPh)
		}
		bestAny, bestFrom := math.Inf(1), math.Inf(1)
		for k := 1; k <= len(ts); k += 3 {
			te := ts[k-1]
			if te < minRun {
				continue
			}
			noise := math.Sqrt(te/(2*p.WanderTau)) / p.WanderSD
			for tL := 0.0; te-tL >= minRun; tL += 900 {
				bestAny = min(bestAny, rms(k, tL)*noise)
			}
			if te >= fromRun {
				bestFrom = min(bestFrom, rms(k, 0)*noise)
			}
		}
		if bestAny < 1 {
			closeAny++
		}
		if bestFrom < 1 {
			closeFrom++
		}
		anyStart += 1 - math.Erf(bestAny/(2*math.Sqrt2))
		fromStart += 1 - math.Erf(bestFrom/(2*math.Sqrt2))
	}
	perDay := func(alarms float64) float64 { return alarms / (n * days) }
	t.Logf("leaks starting any time on the first day: %.0f %% of cycles at S < 1, first-day alarms forced >= %.3f a day",
		100*float64(closeAny)/n, perDay(anyStart))
	t.Logf("leaks from process start only (the benchmark's): %.0f %% of cycles at S < 1, first-day alarms forced >= %.3f a day",
		100*float64(closeFrom)/n, perDay(fromStart))
	if perDay(anyStart) <= 0.02 {
		t.Errorf("first-day floor %.3f a day, want > 0.02: the docs' argument no longer holds", perDay(anyStart))
	}
	if perDay(fromStart) >= 0.02 {
		t.Errorf("from-start floor %.3f a day, want < 0.02: the benchmark itself now bounds the target", perDay(fromStart))
	}
}
