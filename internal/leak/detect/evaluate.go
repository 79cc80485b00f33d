package detect

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/stats"
)

// Verdict is the outcome for one window or one series.
type Verdict int

// Verdicts.
const (
	// InsufficientData: the window is not full yet, the segment is in its
	// start-up grace, or too many buckets are empty.
	InsufficientData Verdict = iota
	// NoLeak: enough data, and the floor does not grow significantly,
	// practically and persistently.
	NoLeak
	// LeakSuspected: the floor grows significantly, faster than the
	// practical threshold, across the whole window.
	LeakSuspected
)

// String returns insufficient_data, no_leak or leak_suspected.
func (v Verdict) String() string {
	switch v {
	case NoLeak:
		return "no_leak"
	case LeakSuspected:
		return "leak_suspected"
	}
	return "insufficient_data"
}

// MarshalText encodes the verdict as its String.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// figures are what a window's complete buckets say, independent of the
// evaluation time and the limit.
type figures struct {
	raw      stats.Moments // of the raw samples in the complete buckets
	samples  int
	buckets  int     // non-empty complete buckets in the window
	complete int64   // complete buckets of the segment (the index c)
	xEnd     float64 // end of the window, seconds since origin

	ols      bool
	olsSlope float64
	olsR2    float64

	floor      bool
	floorSlope float64
	// riseAge is how long the floor has been rising at the window's end,
	// and riseSlope how fast, by the best hinge fit (flat, then a line);
	// computed only for a window with a ceiling (Config.FastShare).
	riseAge    float64
	riseSlope  float64
	floorR2    float64
	baseline   float64
	amplitude  float64
	trend      stats.TrendTest
	thirds     [3]float64
	thirdSE    [3]float64
	noise      float64 // robust sd of the floor's bucket-to-bucket scatter
	thirdsOK   bool
	stepFit    float64 // SSR of the best step / SSR of the line
	stepFitAdj float64 // the same on the floor without level shifts
	stepSize   float64
	stepAt     float64 // seconds since origin
	stepRamp   float64 // seconds the step took (0: at once)
	shifts     stats.Shifts

	day dayFigures // day-over-day figures (cycle.go)
	// earlierOK tells whether earlier is set: the floor over the last
	// third minus the highest earlier in the segment (earlierHigh).
	earlierOK bool
	earlier   float64
}

// Result is the evaluation of one window.
type Result struct {
	// Window is the window length; BucketWidth and Buckets its bucketing.
	Window      time.Duration
	BucketWidth time.Duration
	Buckets     int
	// Verdict and a human-readable Reason for it.
	Verdict Verdict
	Reason  string
	// Samples is the number of raw samples in the window's complete buckets
	// (while the segment does not fill the window, and for OLSSlope and
	// OLSR2 too, with the bucket being filled);
	// FilledBuckets how many of its buckets hold data.
	Samples       int
	FilledBuckets int
	// Covered is how much of the window the current segment fills.
	Covered time.Duration

	// HasOLS tells whether OLSSlope (bytes/s) and OLSR2, least squares over
	// the raw samples (the old suite's figures), are set.
	HasOLS   bool
	OLSSlope float64
	OLSR2    float64

	// HasFloor tells whether the floor figures are set: the Theil-Sen slope
	// of the bucket minima (bytes/s), the R² of that line, the floor at the
	// end of the window (Baseline, bytes), the median sawtooth amplitude
	// (bucket maximum minus minimum), the Mann-Kendall test with the
	// Hamed-Rao correction (P is the one-sided p-value), and the floor
	// slopes of the window's thirds (NaN where a third has < 2 buckets).
	HasFloor    bool
	FloorSlope  float64
	FloorR2     float64
	Baseline    float64
	Amplitude   float64
	Trend       stats.TrendTest
	P           float64
	ThirdSlopes [3]float64
	// ThirdSE are the standard errors of ThirdSlopes, from Noise, the robust
	// standard deviation of the floor's bucket-to-bucket scatter (bytes).
	ThirdSE      [3]float64
	Noise        float64
	guardSE      float64
	guardMin     float64
	guardMid     float64
	guardMidFrom float64
	// Shifts is the number of level shifts taken out of the floor before
	// the trend was estimated (Config.StepSigma) and ShiftTotal their sum
	// (bytes). Every floor figure above is of the floor without them (and
	// without the dips that stats.RemoveShifts takes out, not counted here).
	Shifts     int
	ShiftTotal float64
	// StepFit is the residual sum of squares of the best single level step
	// of the floor divided by that of its least-squares line (small: a step
	// explains the floor better than a trend; +Inf for an exact line).
	// StepSize (bytes) and StepAt describe that step.
	StepFit  float64
	StepSize float64
	StepAt   time.Time
	// StepFitNoShifts is StepFit on the floor without the level shifts
	// (equal to StepFit when none was taken out). The window is a level
	// step only when both are below Config.StepRatio: a step that was
	// taken out does not veto the trend of the rest.
	StepFitNoShifts float64
	// MinSlope is the practical threshold (bytes/s) for this window.
	MinSlope float64
	// HasDay tells whether the day-over-day figures are set (the segment
	// holds the window plus Config.Cycle): DayLevel is the median of the
	// floor minus the floor one cycle earlier (bytes), DaySlope the slope of
	// that difference (bytes/s) and DayP its trend's one-sided p-value.
	HasDay   bool
	DayLevel float64
	DaySlope float64
	DayP     float64
	// DayShifts is the sum of the level shifts (bytes) that the longest
	// window of at least Config.Cycle took out of its floor when a single
	// level step explains that floor and it does not rise without them
	// (see dayShifts); 0 otherwise. A floor higher than one cycle earlier
	// by no more than them is the step's, not a leak's: DayLevel keeps a
	// held verdict only above them (Config.HoldEvidence).
	DayShifts float64
	// YoungSegment tells whether the warm-up test applied (the window holds
	// data of the segment's first Config.Grace, see Config.WarmupShare), and
	// NotWarmUp whether the curve passed it (true when it did not apply).
	YoungSegment bool
	NotWarmUp    bool
	warmWhy      string
	// AboveEarlier is false when, before the floor has shown a cycle,
	// the floor over the window's last third is less than DayVetoShare of
	// the window's practical minimum growth above the floor at the same
	// time one cycle earlier (Config.Cycle), or, while the segment is too
	// young for DayLastBuckets of that third to have a floor one cycle
	// earlier, above the highest floor of the segment before the window
	// (the highest median of the floor over a third of the window): the
	// window's rise is then not a leak (the second day of a daily swing,
	// or the first day's rise back from its trough). True when it does not
	// apply (no cycle configured, no part of the segment before the
	// window, or a cycle shown).
	AboveEarlier bool
	dayWhy       string
	// CycleShowing is true when the window's verdict was given on its
	// day-over-day figures while the cycle test passes but the cycle is not
	// confirmed yet (Report.Cycle false), against that of its own floor: a
	// leak the floor's own slope did not show, or no leak where it did.
	CycleShowing bool
	// FastYoung is true when the floor rises faster than the window's
	// ceiling (Config.FastShare: the floor slope or the hinge fit's slope,
	// whichever is faster) and the rise has lasted less than
	// FastRiseShare of the window or no longer rises at FastKeepShare of
	// its rate over the window's last third: the window then says no_leak.
	FastYoung bool
	// Wait says, as one of the Wait* constants, why Verdict is
	// InsufficientData; empty otherwise.
	Wait string

	// HasLimit tells whether a limit was given; SecondsToLimit is then the
	// projected time until floor+amplitude reaches it along the floor slope:
	// 0 when already there, +Inf when the floor is not growing.
	HasLimit       bool
	Limit          float64
	SecondsToLimit float64
}

// Report is the evaluation of one series over all windows.
type Report struct {
	// Verdict is LeakSuspected when any window suspects a leak, NoLeak when
	// none does and at least one has a verdict, InsufficientData otherwise.
	Verdict Verdict
	// Reason explains Verdict, naming the deciding window.
	Reason string
	// Window is the deciding window: the shortest window that suspects a
	// leak, or the longest with a verdict, or the shortest one.
	Window time.Duration
	// Windows holds one Result per window, ascending by length.
	Windows []Result
	// Wait is the deciding window's Result.Wait (WaitNoSamples before the
	// first point): why there is no verdict yet.
	Wait string
	// Suspected is the held verdict, the one to alert on: it becomes true
	// when Verdict is LeakSuspected and stays true while the evidence holds
	// (see Config.HoldAfter). Since is when it last became true and
	// SuspectedWindow the window that raised it; HoldReason explains why it
	// is held. They are zero when Suspected is false.
	Suspected       bool
	Since           time.Time
	SuspectedWindow time.Duration
	HoldReason      string
	// Cycle tells whether the segment's floor has shown a daily cycle
	// (Config.Cycle: the floor was much closer to itself one cycle earlier
	// than half a cycle earlier, and closer than a quarter and three
	// quarters of one earlier), so that windows judge rises against the
	// previous cycle; once shown it stays for the segment. CycleRatio is the
	// test's ratio of spreads against half a cycle earlier now (NaN before
	// the segment is 1.25 cycles old), below CycleRatio for a cycle.
	Cycle      bool
	CycleRatio float64
	// Points is the number of accepted points; SegmentPoints those since the
	// last restart; Restarts the restarts seen.
	Points, SegmentPoints, Restarts int
	// SegmentStart is the time of the first point of the current segment;
	// Last the time of the last point.
	SegmentStart, Last time.Time
}

// Deciding returns the Result of the deciding window.
func (r Report) Deciding() Result {
	for _, w := range r.Windows {
		if w.Window == r.Window {
			return w
		}
	}
	return Result{}
}

// Evaluate returns the figures and verdicts as of now (clamped to the last
// point's time), with limit the memory limit in bytes (0 or less: unknown).
// Buckets that end at or before now count as complete. The O(B²) work is done
// only for windows that gained a complete bucket since the last call.
func (d *Detector) Evaluate(now time.Time, limit float64) Report {
	rep := Report{
		Points:        d.points,
		SegmentPoints: d.segPoints,
		Restarts:      d.restarts,
		SegmentStart:  d.origin,
		Last:          d.last,
		Windows:       make([]Result, 0, len(d.wins)),
	}
	if !d.started {
		for _, w := range d.wins {
			rep.Windows = append(rep.Windows, Result{
				Window: w.dur, BucketWidth: w.width, Buckets: w.n,
				MinSlope: d.cfg.MinSlope(w.dur), Verdict: InsufficientData,
				Reason: "no samples yet", SecondsToLimit: math.NaN(), P: math.NaN(),
			})
		}
		rep.Window = d.wins[0].dur
		rep.Reason = "no samples yet"
		rep.Wait = WaitNoSamples
		return rep
	}
	if now.Before(d.last) {
		now = d.last
	}
	age := now.Sub(d.origin)
	for _, w := range d.wins {
		c := int64(age.Seconds() / w.widthS)
		if w.cacheSeg != d.segment || w.cacheC != c || w.dirty {
			w.fig = d.compute(w, c)
			w.cacheSeg, w.cacheC, w.dirty = d.segment, c, false
		}
	}
	var seg *segFigures
	if d.cfg.WarmupShare > 0 && age >= d.cfg.WarmupMinAge && age < d.wins[len(d.wins)-1].dur+d.cfg.Grace {
		seg = d.segmentFigures(age)
	}
	rep.CycleRatio = math.NaN()
	if d.day != nil && d.cfg.Cycle > 0 {
		var shown bool
		shown, rep.CycleRatio = d.day.cycleShown(int64(age.Seconds()/d.day.widthS), d.cfg.Cycle.Seconds(), d.cfg.StepSigma, &d.dx, &d.dy)
		switch {
		case !shown:
			d.cycleSince = time.Time{}
		case d.cycleSince.IsZero():
			d.cycleSince = now
		}
		// A segment that showed a cycle for CycleConfirm keeps it; a step
		// or a leak's start passes the test only for a while.
		if !d.cycleSince.IsZero() && now.Sub(d.cycleSince) >= CycleConfirm {
			d.cycle = true
		}
	}
	rep.Cycle = d.cycle
	for _, w := range d.wins {
		rep.Windows = append(rep.Windows, d.judge(w, age, limit, seg))
	}
	if d.cfg.Cycle > 0 {
		dayShifts(rep.Windows, d.cfg.Cycle, d.cfg.StepRatio)
	}
	rep.Verdict, rep.Window, rep.Reason = summarise(rep.Windows)
	if rep.Verdict == InsufficientData {
		rep.Wait = rep.Deciding().Wait
	}
	d.apply(&rep, now)
	return rep
}

func summarise(rs []Result) (Verdict, time.Duration, string) {
	for _, r := range rs {
		if r.Verdict == LeakSuspected {
			return LeakSuspected, r.Window, fmt.Sprintf("window %s: %s", fmtDur(r.Window), r.Reason)
		}
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if r := rs[i]; r.Verdict == NoLeak {
			return NoLeak, r.Window, fmt.Sprintf("window %s: %s", fmtDur(r.Window), r.Reason)
		}
	}
	r := rs[0]
	return InsufficientData, r.Window, fmt.Sprintf("window %s: %s", fmtDur(r.Window), r.Reason)
}

// compute derives a window's figures from its complete buckets
// [c-n, c-1].
func (d *Detector) compute(w *window, c int64) figures {
	d.computes++
	f := figures{complete: c, xEnd: float64(c) * w.widthS}
	lo := c - int64(w.n)
	var raw stats.Moments
	xs, ys, amps := d.xs[:0], d.ys[:0], d.amps[:0]
	var pos []int64
	for idx := max(lo, 0); idx < c; idx++ {
		b := w.bucket(idx)
		if b == nil || b.m.N == 0 {
			continue
		}
		raw.Merge(b.m)
		xs = append(xs, b.minT)
		ys = append(ys, b.min)
		amps = append(amps, b.max-b.min)
		pos = append(pos, idx-lo)
	}
	d.xs, d.ys, d.amps = xs, ys, amps
	f.raw, f.samples = raw, int(raw.N)
	f.buckets = len(xs)
	if s, _, r2, ok := raw.Line(); ok {
		f.ols, f.olsSlope, f.olsR2 = true, s, r2
	}
	if len(xs) < 3 {
		return f
	}
	rawFloor := ys
	if d.cfg.StepSigma > 0 {
		d.adj, f.shifts, d.tmp = stats.RemoveShifts(rawFloor, d.cfg.StepSigma, d.adj, d.tmp)
		ys = d.adj
	}
	slope, icept, buf, ok := stats.TheilSen(xs, ys, d.buf)
	d.buf = buf
	if !ok {
		return f
	}
	f.floor = true
	f.floorSlope = slope
	f.baseline = icept + slope*f.xEnd
	f.floorR2 = fitR2(xs, ys, slope, icept)
	f.trend = stats.MannKendallHamedRao(xs, ys, slope)
	f.amplitude = stats.Median(amps)
	f.stepFit, f.stepSize, f.stepAt = math.NaN(), math.NaN(), math.NaN()
	f.stepFitAdj = math.NaN()
	// The step may ramp over up to Config.StepRamp, a quarter of the
	// window at most (a longer ramp is the shape of a leak that started
	// within the window), in the windows longer than twice the shortest
	// (and a lone window, a one-shot run). The short ones are there to
	// find a 25 MB/h leak within the hour, and in their 12-24 buckets a
	// ramp followed by a level fits a leak that started within the last
	// hour about as well: with the ramp in the shortest window, the
	// 25 MB/h median of quality.TestFastLeaksAreFoundWithinTheHour went
	// past the hour; in the 2h window, that of the benchmark's seed 1
	// (200 series) went from 1.0 h to 1.04 h.
	maxRamp := 0
	if len(d.wins) == 1 || w.dur > 2*d.wins[0].dur {
		maxRamp = min(len(xs)/4, int(math.Ceil(d.cfg.StepRamp.Seconds()/w.widthS)))
	}
	if st, fit, ok := stepFit(xs, rawFloor, maxRamp, &d.rampBuf); ok {
		f.stepFit, f.stepSize = fit, st.Size
		f.stepAt = (xs[st.At-1] + xs[st.At+st.Ramp]) / 2
		if st.Ramp > 0 {
			f.stepRamp = xs[st.At+st.Ramp] - xs[st.At-1]
		}
		f.stepFitAdj = fit
		// A step that the shift removal took out must not veto the trend
		// that the floor without it still shows: the step test must then
		// hold on that floor too.
		if f.shifts.Count > 0 {
			f.stepFitAdj = math.Inf(1)
			if _, fa, ok := stepFit(xs, ys, maxRamp, &d.rampBuf); ok {
				f.stepFitAdj = fa
			}
		}
	}

	// Slopes of the thirds, by position in the window, and their standard
	// errors from the bucket-to-bucket scatter of the floor.
	f.noise = diffNoise(rawFloor, &d.tmp)
	// A window the segment does not fill yet (Config.PartialShare) is
	// cut into thirds of the part it covers.
	f.thirdsOK = true
	start := 0
	span, off := int64(w.n), int64(0)
	if lo < 0 {
		span, off = c, -lo
	}
	for j := range 3 {
		end := start
		for end < len(pos) && int((pos[end]-off)*3/span) <= j {
			end++
		}
		f.thirds[j], f.thirdSE[j] = math.NaN(), math.NaN()
		if end-start >= 2 {
			s, _, buf, ok := stats.TheilSen(xs[start:end], ys[start:end], d.buf)
			d.buf = buf
			if ok {
				f.thirds[j] = s
				var m stats.Moments
				for i := start; i < end; i++ {
					m.Add(xs[i], 0)
				}
				f.thirdSE[j] = f.noise / math.Sqrt(m.SXX)
			}
		}
		if math.IsNaN(f.thirds[j]) {
			f.thirdsOK = false
		}
		start = end
	}
	f.riseAge, f.riseSlope = math.NaN(), math.NaN()
	if !math.IsInf(w.ceiling, 1) {
		var knot float64
		knot, f.riseSlope = hingeOnset(xs, rawFloor)
		f.riseAge = f.xEnd - knot
	}
	d.dayCompare(w, &f, lo, xs, rawFloor, ys, pos)
	return f
}

// fastYoung tells whether the window's floor rises faster than its ceiling
// (Config.FastShare) and the rise is not established: it has lasted less
// than FastRiseShare of the window, or (Config.FastKeepShare) its last third
// of the window no longer rises at FastKeepShare of its rate, within tol
// standard errors. How fast is the faster of the window's floor slope and
// the rise's own slope: a ramp that fills half the window reads at about
// half its rate over the window.
func fastYoung(w *window, f figures, keep, tol float64) bool {
	if !f.floor || !(riseRate(f) > w.ceiling) {
		return false
	}
	return f.riseAge < FastRiseShare*w.dur.Seconds() || fastStopped(f, keep, tol)
}

// fastStopped tells whether a fast rise's last third of the window rises at
// less than keep of the rise's rate, within tol standard errors.
func fastStopped(f figures, keep, tol float64) bool {
	return keep > 0 && f.thirdsOK && f.thirds[2]+tol*f.thirdSE[2] < keep*riseRate(f)
}

// riseRate is the rate that fastYoung compares with the ceiling.
func riseRate(f figures) float64 {
	if math.IsNaN(f.riseSlope) {
		return f.floorSlope
	}
	return max(f.floorSlope, f.riseSlope)
}

// hingeOnset returns the x at which a floor that was flat and then rose
// along a line most likely began to rise, and the slope of that rise: the
// knot and b of the least-squares hinge fit a + b*max(0, x-knot), b > 0,
// over the knots xs[0..n-3] (the first is a plain line; xs[0] and 0 when no
// knot gives a rise). O(n).
func hingeOnset(xs, ys []float64) (float64, float64) {
	knot, slope, _ := hingeFit(xs, ys)
	return knot, slope
}

// hingeFit is hingeOnset with the residual sum of squares of that fit
// (+Inf when no knot gives a rise). For the knot xs[k] the regressor is
// u = max(0, x-xs[k]), zero before k, so its sums over the window follow in
// O(1) from suffix sums over k..n-1, and all knots cost O(n). x is counted
// from xs[0] and y from its mean, which keeps the sums small and makes the
// sum of u*(y-mean) already centred.
func hingeFit(xs, ys []float64) (knot, slope, ssr float64) {
	n := len(xs)
	best, knot, slope := -1.0, xs[0], 0.0
	if n < 3 {
		return knot, slope, math.Inf(1)
	}
	var ybar, syy float64
	for _, y := range ys {
		ybar += y
	}
	ybar /= float64(n)
	for _, y := range ys {
		syy += (y - ybar) * (y - ybar)
	}
	// Suffix sums over i >= k of x, x², x*dy and dy.
	var sx, sxx, sxy, sy float64
	add := func(i int) {
		x, dy := xs[i]-xs[0], ys[i]-ybar
		sx += x
		sxx += x * x
		sxy += x * dy
		sy += dy
	}
	add(n - 1)
	add(n - 2)
	// Knots from the last to the first; >= keeps the earliest of equal fits.
	for k := n - 3; k >= 0; k-- {
		add(k)
		t, m := xs[k]-xs[0], float64(n-k)
		su := sx - m*t
		uxx := sxx - 2*t*sx + m*t*t - su*su/float64(n)
		uxy := sxy - t*sy
		if uxx <= 0 || uxy <= 0 {
			continue
		}
		if fit := uxy * uxy / uxx; fit >= best {
			best, knot, slope = fit, xs[k], uxy/uxx
		}
	}
	if best < 0 {
		return knot, slope, math.Inf(1)
	}
	return knot, slope, max(syy-best, 0)
}

// stepFit returns the best single level step of ys and the residual sum of
// squares of that fit divided by that of the least-squares line (+Inf for
// an exact line). The step is at once, or, when that fits better, ramps
// over up to maxRamp points; a ramp counts only if it also fits better
// than a hinge (flat, then rising: a leak that started within the window),
// which a ramp followed by a level can otherwise pass for.
func stepFit(xs, ys []float64, maxRamp int, buf *[]float64) (stats.Step, float64, bool) {
	var m stats.Moments
	for i := range xs {
		m.Add(xs[i], ys[i])
	}
	st, b, ok := stats.BestRamp(ys, maxRamp, *buf)
	*buf = b
	if !ok {
		return st, math.NaN(), false
	}
	// The best fit is a ramp only when it beats every step at once; if it
	// does not also beat the hinge, the best step at once stands.
	if st.Ramp > 0 {
		if _, _, hinge := hingeFit(xs, ys); st.SSR >= hinge {
			st, *buf, _ = stats.BestRamp(ys, 0, *buf)
		}
	}
	if line := m.SYY - m.SXY*m.SXY/m.SXX; line > 0 {
		return st, st.SSR / line, true
	}
	return st, math.Inf(1), true
}

// diffNoise estimates the standard deviation of the noise of a series from
// its successive differences, robustly (median absolute deviation), so a
// trend, a step or a few outliers barely move it.
func diffNoise(ys []float64, tmp *[]float64) float64 {
	if len(ys) < 3 {
		return math.NaN()
	}
	d := (*tmp)[:0]
	for i := 1; i < len(ys); i++ {
		d = append(d, ys[i]-ys[i-1])
	}
	med := stats.Median(d)
	for i := range d {
		d[i] = math.Abs(d[i] - med)
	}
	mad := stats.Median(d)
	*tmp = d
	return 1.4826 * mad / math.Sqrt2
}

// fitR2 is 1 - SSres/SStot of a given line, clamped to [0, 1].
func fitR2(xs, ys []float64, slope, icept float64) float64 {
	var mean float64
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	var res, tot float64
	for i, y := range ys {
		e := y - (icept + slope*xs[i])
		res += e * e
		tot += (y - mean) * (y - mean)
	}
	if tot == 0 {
		return 0
	}
	return min(max(1-res/tot, 0), 1)
}

// judge turns cached figures into a Result as of segment age age.
func (d *Detector) judge(w *window, age time.Duration, limit float64, seg *segFigures) Result {
	f := w.fig
	r := Result{
		Window: w.dur, BucketWidth: w.width, Buckets: w.n,
		Samples: f.samples, FilledBuckets: f.buckets,
		Covered:  min(time.Duration(f.complete)*w.width, w.dur),
		HasOLS:   f.ols,
		OLSSlope: f.olsSlope, OLSR2: f.olsR2,
		HasFloor: f.floor, FloorSlope: f.floorSlope, FloorR2: f.floorR2,
		Baseline: f.baseline, Amplitude: f.amplitude, Trend: f.trend,
		P:            math.NaN(),
		ThirdSlopes:  f.thirds,
		ThirdSE:      f.thirdSE,
		Noise:        f.noise,
		guardSE:      d.cfg.GuardSE,
		guardMin:     laterMin(d.cfg, d.cfg.MinSlope(w.dur)),
		guardMid:     w.guardMid,
		guardMidFrom: w.guardMidFrom,
		Shifts:       f.shifts.Count,
		ShiftTotal:   f.shifts.Total,
		MinSlope:     d.cfg.MinSlope(w.dur),
		StepFit:      f.stepFit, StepSize: f.stepSize, StepFitNoShifts: f.stepFitAdj,
		SecondsToLimit: math.NaN(),
		HasDay:         f.day.ok, DayLevel: math.NaN(), DaySlope: math.NaN(), DayP: math.NaN(),
	}
	if r.HasDay {
		r.DayLevel, r.DaySlope, r.DayP = f.day.level, f.day.slope, f.day.p
	}
	if f.floor && !math.IsNaN(f.stepAt) {
		r.StepAt = d.origin.Add(time.Duration(f.stepAt * float64(time.Second)))
	}
	if b := w.bucket(f.complete); f.complete < int64(w.n) && b != nil && b.m.N > 0 {
		// A window the segment does not fill yet: its raw figures (not
		// part of the verdict) take in the bucket being filled too, so
		// the sample count and the raw slope show from the first
		// samples instead of once the first bucket is complete.
		raw := f.raw
		raw.Merge(b.m)
		r.Samples = int(raw.N)
		if s, _, r2, ok := raw.Line(); ok {
			r.HasOLS, r.OLSSlope, r.OLSR2 = true, s, r2
		}
	}
	if !r.HasOLS {
		r.OLSSlope, r.OLSR2 = math.NaN(), math.NaN()
	}
	if f.floor {
		r.P = f.trend.P
	} else {
		r.FloorSlope, r.FloorR2, r.Baseline, r.Amplitude = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		r.StepFit, r.StepSize, r.StepFitNoShifts = math.NaN(), math.NaN(), math.NaN()
		r.ThirdSlopes = [3]float64{math.NaN(), math.NaN(), math.NaN()}
		r.ThirdSE = r.ThirdSlopes
		r.Noise = math.NaN()
	}
	r.YoungSegment = d.cfg.WarmupShare > 0 && age < w.dur+d.cfg.Grace
	r.NotWarmUp, r.warmWhy = true, ""
	if r.YoungSegment {
		r.NotWarmUp, r.warmWhy = warmup(seg, d.cfg.WarmupShare, d.cfg.Grace, d.cfg.WarmupSE)
	}
	r.AboveEarlier, r.dayWhy = true, ""
	g := DayVetoShare * r.MinSlope * w.dur.Seconds()
	switch {
	case d.cfg.Cycle <= 0 || d.cycle:
	case f.day.lastOK && f.day.last < g:
		// Before a cycle has shown: a rise that leaves the floor no higher
		// than at the same time one cycle earlier is not a leak's.
		r.AboveEarlier = false
		r.dayWhy = fmt.Sprintf("no higher than one cycle earlier: the floor rises %s, but over the last third of the window it is %+.3g MB against the same time one cycle earlier (a leak needs %+.3g MB)",
			fmtRate(f.floorSlope), f.day.last/MB, g/MB)
	case f.earlierOK && f.earlier < g:
		// The same rule within the segment's first cycle, against the
		// highest the floor has been before the window: a rise that only
		// takes the floor back to where it was (a daily swing's rise from
		// its trough on the day of a deploy) is not a leak's.
		r.AboveEarlier = false
		r.dayWhy = fmt.Sprintf("no higher than earlier in the segment: the floor rises %s, but over the last third of the window it is %+.3g MB against its highest before the window (a leak needs %+.3g MB)",
			fmtRate(f.floorSlope), f.earlier/MB, g/MB)
	}
	r.FastYoung = fastYoung(w, f, d.cfg.FastKeepShare, d.cfg.GuardSE)
	r.Verdict, r.Reason = d.verdict(w, f, age, r.MinSlope, r.warmWhy, r.dayWhy)
	if r.Verdict != InsufficientData && f.day.ok && !d.cycle && !d.cycleSince.IsZero() && r.warmWhy == "" {
		// The cycle test passes but has not passed for CycleConfirm yet:
		// the window is judged against one cycle earlier already, as it
		// will be once the cycle is confirmed. A leak that the cycle's
		// falling half hides from the floor's own slope is found, and a
		// rise of the floor that the day-over-day figures do not show
		// (the cycle's rising half plus wander) is not a leak. A floor
		// that is only higher than one cycle earlier, without rising
		// against it, does not overrule the window's own floor until the
		// cycle is confirmed: it is as much the mark of a level step made
		// about a cycle ago (which the window no longer holds) as of a
		// leak older than the cycle, and the cycle test passes for a while
		// on such steps.
		ok, why := cycleLeak(f.day, w.dur.Seconds(), d.cfg.Cycle.Seconds(), r.MinSlope, d.cfg.Alpha, d.cfg.StepRatio, true)
		rise, whyRise := ok, why
		if ok && r.Verdict == NoLeak {
			rise, whyRise = cycleLeak(f.day, w.dur.Seconds(), d.cfg.Cycle.Seconds(), r.MinSlope, d.cfg.Alpha, d.cfg.StepRatio, false)
		}
		switch {
		case rise && r.Verdict == NoLeak && !r.FastYoung:
			r.Verdict, r.Reason, r.CycleShowing = LeakSuspected, "daily cycle showing: "+whyRise, true
		case !ok && r.Verdict == LeakSuspected:
			r.Verdict, r.Reason, r.CycleShowing = NoLeak, "daily cycle showing: "+why, true
		}
	}
	if r.Verdict == InsufficientData {
		r.Wait = waitCode(r.Reason)
	}
	if limit > 0 && !math.IsInf(limit, 0) {
		r.HasLimit, r.Limit = true, limit
		// Project only a growth the window can vouch for: a full window past
		// the start-up grace whose floor trends up significantly. Otherwise a
		// warm-up curve or noise would project a limit breach and page.
		switch {
		case r.Verdict == InsufficientData, !f.floor, !(f.floorSlope > 0), !(f.trend.P < d.cfg.Alpha):
			r.SecondsToLimit = math.Inf(1)
		default:
			r.SecondsToLimit = max((limit-(f.baseline+f.amplitude))/f.floorSlope, 0)
		}
	}
	return r
}

func (d *Detector) verdict(w *window, f figures, age time.Duration, minSlope float64, warmWhy, dayWhy string) (Verdict, string) {
	cfg := d.cfg
	need, covered := int64(w.n), float64(w.n)
	if cfg.WarmupShare > 0 && cfg.PartialShare < 1 && w.dur < PartialMaxWindow && f.complete < need {
		// A young segment: judged once it covers PartialShare of the window.
		need, covered = int64(math.Ceil(cfg.PartialShare*float64(w.n)-1e-9)), float64(f.complete)
	}
	switch {
	case f.complete < need && need < int64(w.n):
		return InsufficientData, fmt.Sprintf("window not full: %s of %s since the segment started (%d of %d buckets of %s; judged once the segment is %s old)",
			fmtDur(time.Duration(f.complete)*w.width), fmtDur(w.dur), f.complete, w.n, fmtDur(w.width), fmtDur(max(time.Duration(need)*w.width, cfg.WarmupMinAge)))
	case f.complete < need:
		return InsufficientData, fmt.Sprintf("window not full: %s of %s since the segment started (%d of %d buckets of %s)",
			fmtDur(time.Duration(f.complete)*w.width), fmtDur(w.dur), f.complete, w.n, fmtDur(w.width))
	case w.n < cfg.MinBuckets:
		return InsufficientData, fmt.Sprintf("window too short for a verdict: %d buckets of %s, need at least %d (longer window or smaller bucket)",
			w.n, fmtDur(w.width), cfg.MinBuckets)
	case age < w.dur+cfg.Grace && cfg.WarmupShare == 0:
		return InsufficientData, fmt.Sprintf("start-up grace: the window must hold no data of the first %s of the segment (segment is %s old)",
			fmtDur(cfg.Grace), fmtDur(age))
	case age < w.dur+cfg.Grace && age < cfg.WarmupMinAge:
		return InsufficientData, fmt.Sprintf("start-up grace: the warm-up test needs a segment of %s (segment is %s old)",
			fmtDur(cfg.WarmupMinAge), fmtDur(age))
	case f.buckets < cfg.MinBuckets || float64(f.buckets) < MinCoverage*covered:
		return InsufficientData, fmt.Sprintf("too many gaps: %d of %d buckets hold samples", f.buckets, int(covered))
	case !f.floor:
		return InsufficientData, "floor could not be fitted"
	case d.cycle && fastYoung(w, f, cfg.FastKeepShare, cfg.GuardSE):
		// A rise faster than the ceiling is a level shift ramping, or one
		// that ramped and stopped, whether or not the floor cycles: a daily
		// cycle rises far slower than any ceiling.
		return NoLeak, fastWhy(w, f)
	case d.cycle && !f.day.ok:
		return NoLeak, fmt.Sprintf("daily cycle: the floor follows a cycle of %s; this window is judged against one cycle earlier once the segment holds the window plus the cycle",
			fmtDur(cfg.Cycle))
	case d.cycle:
		// Judged on the day-over-day figures alone (the warm-up test cannot
		// apply: a cycle is shown only in a segment older than the windows).
		if ok, why := cycleLeak(f.day, w.dur.Seconds(), cfg.Cycle.Seconds(), minSlope, cfg.Alpha, cfg.StepRatio, true); ok {
			return LeakSuspected, why
		} else {
			return NoLeak, why
		}
	case f.floorSlope < minSlope:
		return NoLeak, fmt.Sprintf("floor slope %s below the practical minimum %s", fmtRate(f.floorSlope), fmtRate(minSlope))
	case !(f.trend.P < cfg.Alpha):
		return NoLeak, fmt.Sprintf("floor rising %s but not significantly (p=%.3g, threshold %.3g)", fmtRate(f.floorSlope), f.trend.P, cfg.Alpha)
	case fastYoung(w, f, cfg.FastKeepShare, cfg.GuardSE):
		return NoLeak, fastWhy(w, f)
	case !f.thirdsOK:
		return NoLeak, "not persistent: a third of the window has too few buckets"
	}
	if ok, why := guard(f.floorSlope, f.thirds, f.thirdSE, cfg.GuardSE, laterMin(cfg, minSlope), w.guardMid, w.guardMidFrom); !ok {
		return NoLeak, why
	}
	switch {
	case cfg.StepRatio > 0 && f.stepFit < cfg.StepRatio && f.stepFitAdj < cfg.StepRatio:
		ramp := ""
		if f.stepRamp > 0 {
			ramp = " ramping over about " + fmtDur(time.Duration(f.stepRamp*float64(time.Second)).Round(time.Minute))
		}
		return NoLeak, fmt.Sprintf("level step: a shift of %+.3g MB%s explains the floor better than a trend (fit ratio %.2f)",
			f.stepSize/MB, ramp, f.stepFit)
	}
	if warmWhy != "" {
		return NoLeak, warmWhy
	}
	if dayWhy != "" {
		return NoLeak, dayWhy
	}
	return LeakSuspected, fmt.Sprintf("floor rising %s (p=%.3g), persistent across the window", fmtRate(f.floorSlope), f.trend.P)
}

// fastWhy is the reason of a window that fastYoung sets aside.
func fastWhy(w *window, f figures) string {
	if f.riseAge < FastRiseShare*w.dur.Seconds() {
		return fmt.Sprintf("floor rising %s for about %s: a rise faster than %s is judged once it has lasted %s (a level shift may still be ramping)",
			fmtRate(riseRate(f)), fmtDur(time.Duration(f.riseAge)*time.Second), fmtRate(w.ceiling), fmtDur(time.Duration(FastRiseShare*float64(w.dur))))
	}
	return fmt.Sprintf("floor rose %s, but only %s over the last third of the window: a rise faster than %s must still be under way (a level shift that ramped and stopped)",
		fmtRate(riseRate(f)), fmtRate(f.thirds[2]), fmtRate(w.ceiling))
}

func fmtRate(bytesPerSecond float64) string {
	return fmt.Sprintf("%.3g MB/h", bytesPerSecond*3600/MB)
}

// fmtDur prints durations as window labels are printed.
func fmtDur(d time.Duration) string { return FormatDuration(d) }

// FormatDuration prints d as Go does but without zero trailing units, as
// used for window labels: "1h", "6h", "1h30m", "5m", "2m30s", "500ms".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Reasons for InsufficientData, a bounded set fit for a metric label.
const (
	WaitNoSamples     = "no_samples"      // nothing sampled yet
	WaitWindowNotFull = "window_not_full" // the segment is shorter than the window
	WaitTooShort      = "too_few_buckets" // the window has fewer than MinBuckets buckets
	WaitGrace         = "start_up_grace"  // the window holds data of the start-up grace
	WaitGaps          = "gaps"            // too many buckets are empty
	WaitNoFloor       = "no_floor"        // the floor could not be fitted
)

// waitCode maps a reason given by verdict for InsufficientData to its Wait
// constant.
func waitCode(reason string) string {
	for _, c := range []struct{ prefix, code string }{
		{"window not full", WaitWindowNotFull},
		{"window too short", WaitTooShort},
		{"start-up grace", WaitGrace},
		{"too many gaps", WaitGaps},
	} {
		if strings.HasPrefix(reason, c.prefix) {
			return c.code
		}
	}
	return WaitNoFloor
}

// dayShifts sets DayShifts on the results that have day-over-day figures:
// when the longest window of at least cycle has a verdict, a single level
// step explains its floor better than a line (StepFit below stepRatio),
// and its floor without the level shifts it took out does not rise (slope
// below its practical minimum), the sum of those shifts. Within the last
// cycle the floor then rose by a step alone, and a floor higher than one
// cycle earlier by its size is no evidence of a leak. Without this, an
// up-step of 99 MB kept the held verdict that its ramp had armed for a
// day and a half (the day-over-day level of the 5h window read it as a
// 4 MB/h leak over the cycle). The step test matters: the shift removal
// also takes 16-27 MB out of the 24h window's floor under some 1 MB/h
// leaks (wander on a slow rise), whose floor a step does not explain
// (fit ratios 1.4-1.8 against 0.04-0.2 after that step).
func dayShifts(rs []Result, cycle time.Duration, stepRatio float64) {
	var shifts float64
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if r.Window < cycle {
			return
		}
		if r.Verdict == InsufficientData || !r.HasFloor {
			continue
		}
		if r.Shifts == 0 || r.ShiftTotal <= 0 || r.FloorSlope >= r.MinSlope || !(r.StepFit < stepRatio) {
			return
		}
		shifts = r.ShiftTotal
		break
	}
	for i := range rs {
		if rs[i].HasDay {
			rs[i].DayShifts = shifts
		}
	}
}
