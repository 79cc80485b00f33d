package detect

import (
	"fmt"
	"math"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/stats"
)

// A daily traffic cycle moves the floor up for hours every day: within a
// window shorter than the cycle that rise looks like a leak, and even a
// window of one whole cycle has a floor slope that depends on where in the
// cycle it starts. A leak, unlike the cycle, leaves the floor higher than it
// was at the same time of the previous cycle. So once the segment holds a
// window plus one cycle (Config.Cycle), each window's floor is also compared
// with the floor one cycle earlier, bucket by bucket: the day-over-day
// difference. Its median (the level) is the growth over one cycle; its slope
// is how much faster the floor rises than at the same time the day before (a
// leak that started within the last cycle). A rise of the floor is a leak
// only when one of the two reaches the window's practical minimum (see
// cycleLeak); a rise that the previous cycle showed too, with the floor no
// higher than then, is the cycle.

// dayRing keeps the floor (minimum) of every Config.Bucket of the segment:
// over the last cycle plus the longest window, for the day-over-day
// comparison, and over the start-up grace plus the longest window, for the
// warm-up test (warmup.go).
type dayRing struct {
	widthS float64
	idx    []int64 // bucket index since the segment origin; -1 when unused
	min    []float64
	tmp    []float64 // scratch of the cycle test
	series []float64 // the floor over the cycle test's span
	have   []bool    // whether each of its buckets holds data
}

// newDayRing returns the ring that c needs, or nil when neither the cycle
// rule nor the warm-up test is on.
func newDayRing(c Config) *dayRing {
	longest := c.Windows[len(c.Windows)-1] // sorted by New
	var span time.Duration
	if c.Cycle > 0 {
		span = c.Cycle + longest
	}
	if c.WarmupShare > 0 {
		span = max(span, c.Grace+longest)
	}
	if span == 0 {
		return nil
	}
	n := int(span/c.Bucket) + 2
	r := &dayRing{widthS: c.Bucket.Seconds(), idx: make([]int64, n), min: make([]float64, n)}
	r.reset()
	return r
}

func (r *dayRing) reset() {
	for i := range r.idx {
		r.idx[i] = -1
	}
}

func (r *dayRing) add(t, y float64) {
	k := int64(t / r.widthS)
	i := k % int64(len(r.idx))
	if r.idx[i] != k {
		r.idx[i], r.min[i] = k, math.Inf(1)
	}
	r.min[i] = min(r.min[i], y)
}

// floor returns the minimum over the ring's buckets that start in [a, b)
// (seconds since the segment origin), and false when none holds data.
func (r *dayRing) floor(a, b float64) (float64, bool) {
	lo := int64(math.Ceil(a/r.widthS - 1e-9))
	hi := int64(math.Ceil(b/r.widthS-1e-9)) - 1
	m, ok := math.Inf(1), false
	for k := max(lo, 0); k <= hi; k++ {
		i := k % int64(len(r.idx))
		if r.idx[i] == k {
			m, ok = min(m, r.min[i]), true
		}
	}
	return m, ok
}

// CycleRatio is the cycle test's threshold: the floor shows a cycle when
// the spread (median absolute deviation) of its differences to one cycle
// earlier is below CycleRatio of the spread of its differences to half a
// cycle earlier. Without a cycle (steady, a leak, a warm-up long done) the
// two spreads are alike; with one, the half-cycle differences swing by twice
// its amplitude while the whole-cycle ones do not.
const CycleRatio = 0.5

// CycleQuarterRatio is the cycle test's threshold against a quarter and
// three quarters of a cycle earlier (see cycleShown).
const CycleQuarterRatio = 0.8

// CycleConfirm is how long the cycle test must pass without a break before
// the segment counts as cycling: with one cycle of history, a level step or
// the start of a leak can pass it for a few hours.
const CycleConfirm = 4 * time.Hour

// cycleShown runs the cycle test over the last complete buckets (c of them
// since the segment origin): the comparison needs at least a quarter of a
// cycle of differences to one cycle earlier, so the segment must be 1.25
// cycles old; it uses up to one cycle of them.
// It returns the ratio of the spreads (NaN when it cannot tell).
func (r *dayRing) cycleShown(c int64, cycle, stepSigma float64, whole, halves *[]float64) (bool, float64) {
	per := int64(math.Round(cycle / r.widthS))
	half := per / 2
	span := min(per, c-per)
	if half < 4 || span < per/4 {
		return false, math.NaN()
	}
	get := func(k int64) (float64, bool) {
		if k < 0 {
			return 0, false
		}
		i := k % int64(len(r.idx))
		return r.min[i], r.idx[i] == k
	}
	// A level step of the floor (a cache filled at once or over minutes)
	// makes both differences jump, the half-cycle one up and back down
	// within the cycle: steps either way are taken out of the floor first,
	// so that a step does not pass for a cycle. Missing buckets carry the
	// last floor forward and are left out of the differences.
	from := c - span - per
	var last float64
	for k := from; k < c; k++ {
		if y, ok := get(k); ok {
			last = y
			break
		}
	}
	ys, have := r.series[:0], r.have[:0]
	for k := from; k < c; k++ {
		y, ok := get(k)
		if ok {
			last = y
		}
		ys, have = append(ys, last), append(have, ok)
	}
	r.series, r.have = ys, have
	r.removeJumps(ys, stepSigma)
	// The differences to lag buckets earlier, over the test's span.
	diffs := func(lag int64, v []float64) []float64 {
		v = v[:0]
		for k := c - span; k < c; k++ {
			if i, j := k-from, k-lag-from; j >= 0 && have[i] && have[j] {
				v = append(v, ys[i]-ys[j])
			}
		}
		return v
	}
	// Then the lines are taken out, so that a leak that started within
	// the last cycle does not hide one, and the spreads compared.
	spread := func(v []float64) float64 {
		if len(v) < int(per/8) {
			return math.NaN()
		}
		detrend(v)
		return mad(v)
	}
	w := diffs(per, *whole)
	a := spread(w)
	// The floor must be much closer to itself a cycle earlier than half a
	// cycle earlier (CycleRatio), and closer than a quarter and three
	// quarters of a cycle earlier too (CycleQuarterRatio; there a cycle
	// moves the floor by 1/sqrt(2) of its half-cycle change): a level step
	// that the removal above missed, made between half a cycle and a cycle
	// before the span, moves the floor against half a cycle earlier during
	// the span but not against a cycle earlier, and passed for a cycle
	// with the half-cycle comparison alone.
	h := diffs(half, *halves)
	b := spread(h)
	ok := a < CycleRatio*b
	for _, lag := range [2]int64{per / 4, per - per/4} {
		if !ok {
			break
		}
		h = diffs(lag, h)
		ok = len(h) >= int(per/8) && a < CycleQuarterRatio*mad(h)
	}
	*whole, *halves = w, h
	if math.IsNaN(a) || !(b > 0) {
		return false, math.NaN()
	}
	return ok, a / b
}

// removeJumps takes out of v, in place, its level shifts up and down
// (stats.RemoveRamps, which takes out rises, instant or ramped, applied to
// v and then to -v, in place; k <= 0: none). r.tmp is scratch. It counts a
// ramp whose noise broke it into pieces as one shift (RemoveRamps rather
// than the windows' RemoveShifts): a cache fill of 30-35 MB over 40
// minutes under a wander whose 5-minute changes scatter by 2.5 MB stayed
// in the floor, and a day later passed for a cycle (on seed 1's 200
// ramped-step series of the benchmark, 4 of 50 alarms). The windows keep
// RemoveShifts: over a window, a leak that fills less than half of it is
// such a run of rises too (on leak analyze's test recording, 8 hours whose
// last 4 leak 30 MB/h, the 24 h window's floor so far read 0.49 MB/h
// instead of 14.6 MB/h with RemoveRamps), while the cycle test only asks
// whether the floor repeats itself a cycle later.
func (r *dayRing) removeJumps(v []float64, k float64) {
	if !(k > 0) {
		return
	}
	for range 2 {
		_, _, r.tmp = stats.RemoveRamps(v, k, v[:0], r.tmp)
		for i := range v {
			v[i] = -v[i]
		}
	}
}

// detrend subtracts v's least-squares line (over its index) from v, so
// that a leak that started within the last cycle, which makes the
// differences ramp, does not hide the cycle.
func detrend(v []float64) {
	var m stats.Moments
	for i, y := range v {
		m.Add(float64(i), y)
	}
	slope, icept, _, ok := m.Line()
	if !ok {
		return
	}
	for i := range v {
		v[i] -= icept + slope*float64(i)
	}
}

// mad is the median absolute deviation from the median; it reorders v.
func mad(v []float64) float64 {
	m := stats.Median(v)
	for i := range v {
		v[i] = math.Abs(v[i] - m)
	}
	return stats.Median(v)
}

// dayFigures are a window's day-over-day figures.
type dayFigures struct {
	ok bool
	// lastOK tells whether last is set: when ok, or when enough of the
	// window's last third has a floor one cycle earlier (DayLastBuckets)
	// while the rest of the window does not yet.
	lastOK bool
	level  float64 // median of floor minus the floor one cycle earlier, bytes
	lowest float64 // the least of that median over each third of the window
	last   float64 // that median over the last third of the window
	slope  float64 // Theil-Sen slope of that difference, bytes/s
	p      float64 // one-sided Mann-Kendall (Hamed-Rao) p-value of its rise
	step   float64 // SSR of its best level step / SSR of its line
}

// DayLastBuckets is the share of a window's last third that must have a
// floor one cycle earlier for the comparison of that third alone (the
// veto before a cycle has shown, DayVetoShare) while the segment does not
// yet hold the whole window plus one cycle: on the second day the 5h
// window judges a rise that repeats the first day's from 24h25m instead of
// 29h.
const DayLastBuckets = 0.25

// dayCompare fills f.day from the window's bucket floors (times xs, raw
// floors ys, the same without the level shifts that the window took out
// adj, bucket indices lo+pos): all of it when the segment holds the window
// plus one cycle, the last third's level (f.day.last) when enough of that
// third has a floor one cycle earlier. The levels and the step test use
// the raw floor; the slope and its trend test the floor without its
// shifts, as the window's own slope does: a level shift that ramped over
// minutes (a cache filling) is not a rise faster than one cycle earlier.
func (d *Detector) dayCompare(w *window, f *figures, lo int64, xs, ys, adj []float64, pos []int64) {
	if d.day == nil || d.cfg.Cycle <= 0 {
		return
	}
	cycle := d.cfg.Cycle.Seconds()
	whole := float64(lo)*w.widthS >= cycle
	defer d.earlierHigh(w, f, lo)
	if !whole && float64(lo+int64(w.n))*w.widthS < cycle {
		return
	}
	dx, dy, da := d.dx[:0], d.dy[:0], d.da[:0]
	lastFrom := -1 // index in dy of the first bucket of the last third
	for i, p := range pos {
		a := float64(lo+p) * w.widthS
		if a < cycle {
			continue
		}
		prev, ok := d.day.floor(a-cycle, a+w.widthS-cycle)
		if !ok {
			continue
		}
		if lastFrom < 0 && p*3/int64(w.n) >= 2 {
			lastFrom = len(dy)
		}
		dx = append(dx, xs[i])
		dy = append(dy, ys[i]-prev)
		da = append(da, adj[i]-prev)
	}
	d.dx, d.dy, d.da = dx, dy, da
	if !whole {
		if n := len(dy) - lastFrom; lastFrom >= 0 && n >= max(3, int(math.Ceil(DayLastBuckets*float64(w.n)/3))) {
			tmp := append(d.tmp[:0], dy[lastFrom:]...)
			f.day = dayFigures{lastOK: true, last: stats.Median(tmp)}
			d.tmp = tmp
		}
		return
	}
	if len(dy) < d.cfg.MinBuckets || float64(len(dy)) < MinCoverage*float64(w.n) {
		return
	}
	slope, _, buf, ok := stats.TheilSen(dx, da, d.buf)
	d.buf = buf
	if !ok {
		return
	}
	trend := stats.MannKendallHamedRao(dx, da, slope)
	day := dayFigures{ok: true, lastOK: true, slope: slope, p: trend.P, step: math.Inf(1), lowest: math.Inf(1)}
	if _, fit, ok := stepFit(dx, dy, 0, &d.rampBuf); ok {
		day.step = fit
	}
	tmp := append(d.tmp[:0], dy...)
	n := len(tmp)
	for j := range 3 {
		m := stats.Median(tmp[j*n/3 : (j+1)*n/3])
		day.lowest = min(day.lowest, m)
		if j == 2 {
			day.last = m
		}
	}
	day.level = stats.Median(tmp)
	f.day = day
	d.tmp = tmp
}

// ShortCycleAlpha scales the significance level of the day-over-day slope
// in windows shorter than the cycle: the difference of two floors a cycle
// apart carries the wander of both, which a short window cannot average.
const ShortCycleAlpha = 0.1

// CycleLastShare is the share of a window's practical minimum growth by
// which, once the segment cycles, the floor over the window's last third
// must exceed the floor one cycle earlier for a difference that rises
// faster than then to be a leak. The difference carries the wander of two
// floors, which moves it by several MB for hours: it rises significantly
// when the floor comes back from below the day before to it, or a little
// above. The rule before a cycle has shown uses DayVetoShare (0.2); with
// the cycle known, the difference is the only evidence and 0.2 (4.2 MB in
// the 5 h window) vetoed almost none of those swings; on seed 1's 200
// daily-cycle series of the benchmark, 0.5 left 12 alarms from windows
// judged on a confirmed cycle, 0.75 none (see docs/leak-detection.md,
// which also gives the cost in detection time).
const CycleLastShare = 0.75

// cycleLeak tells whether the day-over-day figures show a leak at the
// practical minimum minSlope (bytes/s), and says why or why not. No single
// level step may explain the difference better than a line (stepRatio: a
// level step of the floor makes it a block); then the floor must be higher
// than one cycle earlier by at least minSlope over the cycle in every third
// of the window (a leak older than the cycle), or the difference must rise
// by minSlope, significantly (p < alpha, ShortCycleAlpha times that in
// windows shorter than the cycle: a leak that started within the last
// cycle), and the floor over the window's last third must then be higher
// than one cycle earlier by CycleLastShare of the window's practical
// minimum growth. With level false, only the second (a rise against one
// cycle earlier) counts.
func cycleLeak(day dayFigures, window, cycle, minSlope, alpha, stepRatio float64, level bool) (bool, string) {
	switch {
	case stepRatio > 0 && day.step < stepRatio:
		// A level step of the floor within the last cycle and a half makes
		// the difference a block: not a leak.
		return false, fmt.Sprintf("daily cycle: a level step explains the floor's difference to one cycle earlier better than a trend (fit ratio %.2f)", day.step)
	case level && day.lowest/cycle >= minSlope:
		return true, fmt.Sprintf("floor %+.3g MB above one cycle earlier (%s), in every third of the window", day.level/MB, fmtRate(day.level/cycle))
	case window < cycle && !(day.p < alpha*ShortCycleAlpha):
	case day.slope >= minSlope && day.p < alpha && day.last < CycleLastShare*minSlope*window:
		return false, fmt.Sprintf("daily cycle: the floor rises %s faster than one cycle earlier (p=%.3g), but over the last third of the window it is %+.3g MB against then (a leak needs %+.3g MB)",
			fmtRate(day.slope), day.p, day.last/MB, CycleLastShare*minSlope*window/MB)
	case day.slope >= minSlope && day.p < alpha:
		return true, fmt.Sprintf("floor rising %s faster than one cycle earlier (p=%.3g)", fmtRate(day.slope), day.p)
	}
	return false, fmt.Sprintf("daily cycle: against one cycle earlier the floor is %+.3g MB and rising %s (p=%.3g), below the practical minimum %s",
		day.level/MB, fmtRate(day.slope), day.p, fmtRate(minSlope))
}

// earlierHigh fills f.earlier while the window's last third has no floor
// one cycle earlier (f.day.lastOK false) and part of the segment lies
// before the window: how far the floor over that third is above the
// highest the floor has been before the window. Both are medians of the
// ring's bucket floors over a third of the window: that of the last third,
// and the highest of those of the thirds before the window's start, back
// to the segment's origin.
func (d *Detector) earlierHigh(w *window, f *figures, lo int64) {
	if f.day.lastOK || lo <= 0 {
		return
	}
	third := w.dur.Seconds() / 3
	last, ok := d.ringMedian(f.xEnd-third, f.xEnd)
	if !ok {
		return
	}
	high, found := math.Inf(-1), false
	for b := float64(lo) * w.widthS; b >= third-1e-9; b -= third {
		if m, ok := d.ringMedian(b-third, b); ok {
			high, found = max(high, m), true
		}
	}
	if found {
		f.earlierOK, f.earlier = true, last-high
	}
}

// ringMedian is the median of the ring's bucket floors that start in
// [a, b) (seconds since the segment origin); false when fewer than three
// hold data.
func (d *Detector) ringMedian(a, b float64) (float64, bool) {
	tmp := d.spans[:0]
	for x := a; x < b-1e-9; x += d.day.widthS {
		if m, ok := d.day.floor(x, x+d.day.widthS); ok {
			tmp = append(tmp, m)
		}
	}
	d.spans = tmp
	if len(tmp) < 3 {
		return 0, false
	}
	return stats.Median(tmp), true
}
