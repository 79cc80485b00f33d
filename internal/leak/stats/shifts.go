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
	// standard deviation of the differences around it: of the differences
	// outside the shifts when shifts were found (see RemoveShifts).
	Median, Spread float64
}

// RemoveShifts finds the level shifts of a series in time order and returns
// it with them taken out. A shift is a successive difference d[i] = y[i+1] -
// y[i] that lies more than k robust standard deviations above the median
// difference m, or a run of successive differences each more than one above
// it whose summed excess reaches k times the square root of the run's length
// (a shift that ramps over a few values), unless it only brings the series
// back from a dip: then the dip is taken out (its fall and the way back are
// replaced by the typical step) and no shift is counted (see reverts). A
// shift must also move the level: the median of the three values after it
// must exceed the median of the three before it by k spreads, net of the
// typical step (see persists); a spike that falls back at once is left in.
// The spread is 1.4826 x the median
// absolute deviation of the differences, or 1.2533 x their mean absolute
// deviation when that is 0, as Iglewicz and Hoaglin advise. When shifts are
// found, m and the spread are estimated again from the differences outside
// them and the shifts found again with those: in a short series a ramp's own
// differences would otherwise raise the typical difference, and part of the
// ramp would stay in the series as a trend. Each shift is replaced by the
// typical step m by moving every value before it by d[i]-m, so the last
// value, the current level, is unchanged and a steady trend (which moves m,
// not the spread) survives. The result is written into out (grown when too
// small, and returned); y is not modified, unless out is y[:0], which works
// in place. Series of fewer than 5 values, k <= 0 and a zero spread give no
// shifts. tmp is scratch space, grown and returned too. O(n) expected.
func RemoveShifts(y []float64, k float64, out, tmp []float64) (adj []float64, sh Shifts, outTmp []float64) {
	return removeShifts(y, k, false, out, tmp)
}

// RemoveRamps is RemoveShifts that also takes out a ramp whose noise broke
// it into pieces: a run of successive differences each above the typical
// one, at least one of them by more than the spread, whose summed excess
// reaches k times the spread times the square root of the run's length. A
// ramp of 30-40 MB over 40 minutes under a wander whose 5-minute changes
// scatter by 2.5 MB has differences of 0.6-8 MB: RemoveShifts finds runs of
// one or two of them above the spread, none enough alone.
func RemoveRamps(y []float64, k float64, out, tmp []float64) (adj []float64, sh Shifts, outTmp []float64) {
	return removeShifts(y, k, true, out, tmp)
}

func removeShifts(y []float64, k float64, loose bool, out, tmp []float64) (adj []float64, sh Shifts, outTmp []float64) {
	n := len(y)
	adj = append(out[:0], y...)
	if n < 5 || !(k > 0) {
		return adj, sh, tmp
	}
	// tmp holds the differences whose centre and spread are estimated,
	// then the marks (one per difference).
	if cap(tmp) < n-1 {
		tmp = make([]float64, n-1)
	}
	marks := tmp[:n-1]
	for i := 1; i < n; i++ {
		marks[i-1] = y[i] - y[i-1]
	}
	sh.Median, sh.Spread = centre(marks)
	if !(sh.Spread > 0) || math.IsInf(sh.Spread, 0) {
		return adj, sh, marks
	}
	sh.Count, sh.Total = markShifts(y, sh.Median, sh.Spread, k, loose, marks)
	outside := 0
	for _, e := range marks {
		if e == 0 {
			outside++
		}
	}
	if sh.Count > 0 && outside >= 3 {
		// The differences outside the shifts, gathered in place (the mark
		// at i-1 is read before anything is written at or past it), then
		// the shifts found again against their centre and spread.
		rest := marks[:0]
		for i := 1; i < n; i++ {
			if marks[i-1] == 0 {
				rest = append(rest, y[i]-y[i-1])
			}
		}
		m, spread := centre(rest)
		if !(spread > 0) || math.IsInf(spread, 0) {
			spread = sh.Spread
		}
		sh.Median, sh.Spread = m, spread
		sh.Count, sh.Total = markShifts(y, sh.Median, sh.Spread, k, loose, marks)
	}
	// Walk backwards: every value before a shift moves by its excess.
	var moved float64
	for i := n - 1; i >= 1; i-- {
		moved += marks[i-1]
		adj[i-1] = y[i-1] + moved
	}
	return adj, sh, marks
}

// centre returns the median of the differences d and their robust standard
// deviation around it (see RemoveShifts). It reorders d.
func centre(d []float64) (median, spread float64) {
	median = Median(d)
	var meanAD float64
	for i := range d {
		d[i] = math.Abs(d[i] - median)
		meanAD += d[i]
	}
	meanAD /= float64(len(d))
	spread = madScale * Median(d)
	if spread == 0 {
		spread = meanADScale * meanAD
	}
	return median, spread
}

// markShifts finds the shifts of y against the typical difference m and the
// spread (see RemoveShifts): marks[i-1] is set to the excess y[i]-y[i-1]-m
// of each difference that belongs to a shift, 0 for the others. It returns
// the number of shifts and their summed excess. With loose (RemoveRamps), a
// run of rising differences that reaches the threshold as a whole is one
// shift too, counted once even when it holds shifts found without loose.
func markShifts(y []float64, m, spread, k float64, loose bool, marks []float64) (count int, total float64) {
	count, total = markRuns(y, m, spread, k, marks)
	if !loose {
		return count, total
	}
	// Maximal runs of rising differences (excess above 0), at least one
	// above the spread: a ramp whose noise broke it into shorter runs.
	n := len(y)
	start, sum, big := -1, 0.0, false
	for i := 1; i <= n; i++ {
		e := math.Inf(-1)
		if i < n {
			e = y[i] - y[i-1] - m
		}
		if e > 0 {
			if start < 0 {
				start, sum, big = i, 0, false
			}
			sum += e
			big = big || e > spread
			continue
		}
		if start >= 0 && big && i-start > 1 && sum > k*spread*math.Sqrt(float64(i-start)) {
			fresh := true
			for j := start; j < i; j++ {
				if marks[j-1] != 0 {
					fresh = false
					continue
				}
				marks[j-1] = y[j] - y[j-1] - m
				total += marks[j-1]
			}
			if fresh {
				count++
			}
		}
		start = -1
	}
	return count, total
}

// markRuns marks the shifts of RemoveShifts (see markShifts).
func markRuns(y []float64, m, spread, k float64, marks []float64) (count int, total float64) {
	n := len(y)
	start, sum := -1, 0.0
	for i := 1; i <= n; i++ {
		e := math.Inf(-1)
		if i < n {
			e = y[i] - y[i-1] - m
		}
		if e > spread {
			if start < 0 {
				start, sum = i, 0
			}
			sum += e
			continue
		}
		if start >= 0 {
			big := sum > k*spread*math.Sqrt(float64(i-start))
			p, back := reverts(y, start, i, m, spread, k)
			big = big && (back || persists(y, start, i, m, spread, k))
			shift := big && !back
			if shift {
				count++
				total += sum
			}
			for j := start; j < i; j++ {
				marks[j-1] = 0
				if big {
					marks[j-1] = y[j] - y[j-1] - m
				}
			}
			if big && back {
				// A dip and back: the fall is taken out with the way
				// back, so the dip's values come up to the level around
				// them and the values before it move by the small net
				// change only. Not a shift.
				for j := p + 1; j < start; j++ {
					marks[j-1] = y[j] - y[j-1] - m
				}
				start = -1
				if i < n {
					marks[i-1] = 0
				}
				continue
			}
			// The values at either end of a ramped shift are often
			// partly on it (a bucket's minimum taken before the ramp
			// started, or as it ended): a rising difference next to a
			// shift belongs to it.
			if shift && i-start > 1 {
				if j := start - 1; j >= 1 && y[j]-y[j-1]-m > 0 && marks[j-1] == 0 {
					marks[j-1] = y[j] - y[j-1] - m
					total += marks[j-1]
				}
				if i < n {
					if e := y[i] - y[i-1] - m; e > 0 {
						marks[i-1] = e
						total += e
						start = -1
						continue
					}
				}
			}
			start = -1
		}
		if i < n {
			marks[i-1] = 0
		}
	}
	return count, total
}

// reverts tells whether the run of rising differences y[start..i-1] (a
// shift by its size alone) only brings the series back from a dip: the
// differences just before it fall by more than the spread each, and from
// the value before that fall, y[p], to the end of the run the series does
// not rise by a shift's threshold. A bucket floor that dips for a bucket or
// two (a deep collection, the wander) and comes back has no level shift:
// taking the way back out alone would lower everything after it against
// everything before, by the depth of the dip, and bias the trend down;
// keeping the dip would make the way back a steep rise in whatever part
// of the window holds it. The dip is taken out instead (see markRuns).
func reverts(y []float64, start, i int, m, spread, k float64) (p int, back bool) {
	p = start - 1
	for p >= 1 && y[p]-y[p-1]-m < -spread {
		p--
	}
	if p == start-1 {
		return p, false
	}
	steps := float64(i - 1 - p)
	return p, y[i-1]-y[p]-m*steps <= k*spread*math.Sqrt(steps)
}

// persists tells whether the run of rising differences y[start..i-1] moves
// the level of the series: the median of the (up to) three values after it
// must exceed the median of the three before it by k spreads, net of the
// typical step over the distance between them. A bucket floor that stands
// high for a bucket or two (the wander) can pass the size test alone;
// taken out, its rise lowers everything after it against everything
// before, as the way back from a dip did (see reverts), and hides a slow
// leak for as long as the window holds it.
func persists(y []float64, start, i int, m, spread, k float64) bool {
	var b, a [3]float64
	nb := 0
	for j := start - 1; j >= 0 && nb < 3; j-- {
		b[nb] = y[j]
		nb++
	}
	na := 0
	for j := i - 1; j < len(y) && na < 3; j++ {
		a[na] = y[j]
		na++
	}
	steps := float64(i-start) + float64(nb-1)/2 + float64(na-1)/2
	// Median reorders only these local copies.
	return Median(a[:na])-Median(b[:nb])-m*steps > k*spread
}
