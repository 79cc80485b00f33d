package quality

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Options configure a benchmark run. DefaultOptions matches the reference
// specification.
type Options struct {
	// Seed makes the run reproducible; each series derives its own seed.
	Seed uint64
	// Series is the number of series per non-leaking family; LeakSeries the
	// number per leak rate.
	Series, LeakSeries int
	// Length of each series, sampling step, evaluation period, how long a
	// verdict must hold to count, and when leaks start.
	Length, Step, EvalEvery, Hold, LeakStart time.Duration
	// MissAfter: a leak not detected this long after it started is missed.
	MissAfter time.Duration
	// LeakRates in bytes per second.
	LeakRates []float64
	// LeakKinds are the leak cases to run, each at every rate.
	LeakKinds []LeakKind
	// Families are the non-leaking families to run.
	Families []Family
	// Config is the robust detector's configuration (also its windows for
	// the other detectors).
	Config detect.Config
	// OLSTargetFP is the false-alarm rate per day on steady series to which
	// the raw least-squares threshold is tuned.
	OLSTargetFP float64
	// Workers run series in parallel; 0 means GOMAXPROCS.
	Workers int
}

// DefaultOptions returns the reference benchmark: 200 series per family and
// per leak rate, 96 h each.
func DefaultOptions() Options {
	return Options{
		Seed:        1,
		Series:      200,
		LeakSeries:  200,
		Length:      96 * time.Hour,
		Step:        5 * time.Second,
		EvalEvery:   5 * time.Minute,
		Hold:        15 * time.Minute,
		LeakStart:   36 * time.Hour,
		MissAfter:   48 * time.Hour,
		LeakRates:   []float64{1 * mb / 3600, 5 * mb / 3600, 25 * mb / 3600},
		LeakKinds:   []LeakKind{LeakLate, LeakDiurnal, LeakFromStart, LeakWarmStart},
		Families:    []Family{Steady, WarmUp, Steps, Diurnal, RampSteps},
		Config:      detect.DefaultConfig(),
		OLSTargetFP: 0.05,
	}
}

// trace is what one series' detector said at each evaluation, per window.
type trace struct {
	series Series
	evals  int
	// Indexed [window*evals + i].
	full, gates, persist []bool
	floor, p, ols, r2    []float32
	stepFit              []float32
	verdict              []bool // the detector's own verdict with Config.Grace
	notWarm              []bool // the window passed the warm-up test (or it did not apply)
	aboveCycle           []bool // the window's floor is above one cycle earlier (or it did not apply)
	fastYoung            []bool // the floor rises faster than the window's ceiling, not yet for long enough
	evidence             []bool // the window keeps a held verdict (detect.Config.HoldEvidence)
	// cycle is 0 when the window was judged on its floor, 1 when it was
	// judged against one cycle earlier and said leak, 2 when it said no
	// leak (a daily cycle shown, detect.Report.Cycle, or showing,
	// detect.Result.CycleShowing).
	cycle []uint8
	// held is the detector's own held verdict (Report.Suspected), indexed
	// by evaluation; valid only when the detector ran with the run's grace
	// (the warm-up test on) or the grace is 0.
	held []bool
}

// Data is the recorded output of a run, from which any detector rule is
// scored without re-simulating.
type Data struct {
	Opts    Options
	Windows []time.Duration
	traces  []*trace
	Elapsed time.Duration
}

// Simulate generates every series and records the detectors' figures.
func Simulate(ctx context.Context, o Options) (*Data, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("detector config: %w", err)
	}
	var jobs []Series
	seed := func(kind, i int) uint64 { return o.Seed*1_000_003 + uint64(kind)*10_007 + uint64(i) }
	for _, f := range o.Families {
		for i := range o.Series {
			jobs = append(jobs, Series{Family: f, Seed: seed(int(f), i)})
		}
	}
	for _, kind := range o.LeakKinds {
		base, fromStart := kind.base()
		at := o.LeakStart.Seconds()
		if fromStart {
			at = 0
		}
		for k, rate := range o.LeakRates {
			for i := range o.LeakSeries {
				jobs = append(jobs, Series{Family: Leak, Base: base, Kind: kind, LeakRate: rate, LeakStart: at, Seed: seed(100+10*int(kind)+k, i)})
			}
		}
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	out := make([]*trace, len(jobs))
	errs := make([]error, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = runSeries(o, jobs[i])
			}
		})
	}
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	wins := slices.Clone(o.Config.Windows)
	slices.Sort(wins)
	return &Data{Opts: o, Windows: wins, traces: out, Elapsed: time.Since(start)}, nil
}

func runSeries(o Options, s Series) (*trace, error) {
	cfg := o.Config
	grace := cfg.Grace
	if cfg.WarmupShare == 0 {
		// Gates are recorded without grace; it is applied when scoring. With
		// the warm-up test on, the grace decides which windows the test
		// judges: the detector must see it.
		cfg.Grace = 0
	} else {
		grace = 0
	}
	det, err := detect.New(cfg)
	if err != nil {
		return nil, err
	}
	evals := int(o.Length / o.EvalEvery)
	nw := len(cfg.Windows)
	tr := &trace{
		series: s, evals: evals,
		full: make([]bool, nw*evals), gates: make([]bool, nw*evals), persist: make([]bool, nw*evals),
		floor: make([]float32, nw*evals), p: make([]float32, nw*evals),
		ols: make([]float32, nw*evals), r2: make([]float32, nw*evals), stepFit: make([]float32, nw*evals),
		verdict: make([]bool, nw*evals), notWarm: make([]bool, nw*evals), evidence: make([]bool, nw*evals),
		aboveCycle: make([]bool, nw*evals), fastYoung: make([]bool, nw*evals),
		cycle: make([]uint8, nw*evals),
		held:  make([]bool, evals),
	}
	t0 := time.Unix(1_700_000_000, 0)
	every := o.EvalEvery.Seconds()
	nextEval, ei := every, 0
	var addErr error
	record := func(now float64) {
		rep := det.Evaluate(t0.Add(time.Duration(now*float64(time.Second))), 0)
		for w, r := range rep.Windows {
			k := w*evals + ei
			tr.full[k] = r.Covered == r.Window
			tr.gates[k] = r.Verdict != detect.InsufficientData
			tr.persist[k] = r.Persistent()
			tr.floor[k] = float32(r.FloorSlope)
			tr.p[k] = float32(r.P)
			tr.ols[k] = float32(r.OLSSlope)
			tr.r2[k] = float32(r.OLSR2)
			// The detector vetoes a level step only when both fits say so.
			tr.stepFit[k] = float32(r.StepFit)
			if r.StepFitNoShifts > r.StepFit {
				tr.stepFit[k] = float32(r.StepFitNoShifts)
			}
			// With the warm-up test on, a window may judge a segment
			// younger than itself (detect.Config.PartialShare).
			tr.verdict[k] = r.Verdict == detect.LeakSuspected && (grace == 0 || now >= (r.Window+grace).Seconds())
			tr.notWarm[k] = r.NotWarmUp
			tr.aboveCycle[k] = r.AboveEarlier
			tr.fastYoung[k] = r.FastYoung
			tr.evidence[k] = cfg.HoldEvidence(r)
			switch {
			case !rep.Cycle && !r.CycleShowing:
			case r.Verdict == detect.LeakSuspected:
				tr.cycle[k] = 1
			default:
				tr.cycle[k] = 2
			}
		}
		tr.held[ei] = rep.Suspected
		ei++
	}
	s.Generate(o.Length.Seconds(), o.Step.Seconds(), func(t, y float64) {
		for t >= nextEval && ei < evals {
			record(nextEval)
			nextEval += every
		}
		if err := det.Add(detect.Point{Time: t0.Add(time.Duration(t * float64(time.Second))), Bytes: y}); err != nil && addErr == nil {
			addErr = err
		}
	})
	for ei < evals {
		record(nextEval)
		nextEval += every
	}
	return tr, addErr
}

// Rule decides, from a trace, whether a detector's condition holds at
// evaluation i.
type Rule struct {
	Name string
	// Cond is called for each evaluation index.
	Cond func(tr *trace, i int) bool
}

// RobustParams are the tunable thresholds of the robust rule.
type RobustParams struct {
	Alpha, StepRatio float64
	// MinSlope is the practical threshold per window (bytes/s).
	MinSlope map[time.Duration]float64
	// Grace is applied when scoring, as a time with no verdict after the
	// start; 0 when the run's detector applied it itself (the warm-up test
	// on).
	Grace time.Duration
}

// ParamsOf extracts the tunable thresholds of a detector configuration.
func ParamsOf(c detect.Config) RobustParams {
	p := RobustParams{Alpha: c.Alpha, StepRatio: c.StepRatio, Grace: c.Grace, MinSlope: map[time.Duration]float64{}}
	if c.WarmupShare > 0 {
		p.Grace = 0 // the detector applied it, through the warm-up test (runSeries)
	}
	for _, w := range c.Windows {
		p.MinSlope[w] = c.MinSlope(w)
	}
	return p
}

// Robust is the robust detector's rule over the windows selected by mask
// (nil: all), re-scored with p; with the configured thresholds it equals
// the detector's own verdict.
func (d *Data) Robust(name string, p RobustParams, mask []bool) Rule {
	evals := d.traces[0].evals
	every := d.Opts.EvalEvery.Seconds()
	minSlope := make([]float64, len(d.Windows))
	for w, win := range d.Windows {
		minSlope[w] = p.MinSlope[win]
	}
	return Rule{Name: name, Cond: func(tr *trace, i int) bool {
		for w, win := range d.Windows {
			if mask != nil && !mask[w] {
				continue
			}
			if p.Grace > 0 && float64(i+1)*every < (win+p.Grace).Seconds() {
				continue
			}
			k := w*evals + i
			if tr.cycle[k] != 0 {
				// Judged against one cycle earlier: the detector's own verdict.
				if tr.gates[k] && tr.cycle[k] == 1 {
					return true
				}
				continue
			}
			if tr.gates[k] && tr.persist[k] && tr.notWarm[k] && tr.aboveCycle[k] && !tr.fastYoung[k] && float64(tr.floor[k]) >= minSlope[w] && float64(tr.p[k]) < p.Alpha &&
				!(p.StepRatio > 0 && float64(tr.stepFit[k]) < p.StepRatio) {
				return true
			}
		}
		return false
	}}
}

// Detector returns the rule that reads the detector's own verdicts (any
// window).
func (d *Data) Detector(name string) Rule {
	evals := d.traces[0].evals
	return Rule{Name: name, Cond: func(tr *trace, i int) bool {
		for w := range d.Windows {
			if tr.verdict[w*evals+i] {
				return true
			}
		}
		return false
	}}
}

// OldRule is the old suite's rule on window w read as "fail if either limit
// is crossed": slope >= 5 MB/h, or R² >= 0.7 with a rising slope.
func (d *Data) OldRule(w int) Rule {
	evals := d.traces[0].evals
	lim := 5 * mb / 3600
	return Rule{Name: fmt.Sprintf("old rule (either limit), %s", detect.FormatDuration(d.Windows[w])), Cond: func(tr *trace, i int) bool {
		k := w*evals + i
		return tr.full[k] && (float64(tr.ols[k]) >= lim || (tr.r2[k] >= 0.7 && tr.ols[k] > 0))
	}}
}

// OLS is least squares on the raw samples of window w with a slope
// threshold in bytes per second.
func (d *Data) OLS(w int, threshold float64) Rule {
	evals := d.traces[0].evals
	return Rule{Name: fmt.Sprintf("OLS on raw, %s, slope >= %.2f MB/h", detect.FormatDuration(d.Windows[w]), threshold*3600/mb), Cond: func(tr *trace, i int) bool {
		k := w*evals + i
		return tr.full[k] && float64(tr.ols[k]) >= threshold
	}}
}

// alarms returns the evaluation indices at which the rule's alert fires (its
// condition has held for Hold) and a per-index "active" reporter.
func (d *Data) active(r Rule, tr *trace) []bool {
	need := int(d.Opts.Hold/d.Opts.EvalEvery) + 1
	act := make([]bool, tr.evals)
	run := 0
	for i := range tr.evals {
		if r.Cond(tr, i) {
			run++
		} else {
			run = 0
		}
		act[i] = run >= need
	}
	return act
}

// Score is one detector's results.
type Score struct {
	Name string
	// FPPerDay per non-leaking family.
	FPPerDay map[Family]float64
	// FPLength is, per non-leaking family with a false alarm, the median
	// time a false alarm stays up (no entry without one): what an on-call
	// engineer lives with once it fires. A false alarm still up at the end
	// of its series counts with the time it was up by then.
	FPLength map[Family]time.Duration
	// Per leak rate (bytes/s) of the LeakLate case: median delay (+Inf when
	// more than half are missed) and the share missed within MissAfter.
	MedianDelay map[float64]time.Duration
	Missed      map[float64]float64
	// Delays per leak rate, sorted, +Inf-free (detected ones only).
	Delays map[float64][]time.Duration
	// Flap per leak rate: the share of hourly verdicts after the alert
	// first fired that say "no leak" while the leak goes on.
	Flap map[float64]float64
	// Cases holds the same figures for every leak case and rate.
	Cases map[LeakCase]CaseScore
}

// LeakCase is one leak case at one rate (bytes/s).
type LeakCase struct {
	Kind LeakKind
	Rate float64
}

// CaseScore is a rule's result on the series of one leak case.
type CaseScore struct {
	// MedianDelay from the leak's start (MaxInt64 when more than half are
	// missed), Missed the share not detected within MissAfter.
	MedianDelay time.Duration
	Missed      float64
	// Flap is the share of hourly verdicts after the alert first fired that
	// say "no leak" while the leak goes on.
	Flap float64
	// LateNo is the share of series that read "no leak" at some evaluation
	// after the leak has run twice MedianDelay (0 when the median is
	// missed).
	LateNo float64
	// Series is the number of series.
	Series int
}

// Score runs a rule over every trace.
func (d *Data) Score(r Rule) Score {
	s := Score{Name: r.Name, FPPerDay: map[Family]float64{}, FPLength: map[Family]time.Duration{}, MedianDelay: map[float64]time.Duration{},
		Missed: map[float64]float64{}, Delays: map[float64][]time.Duration{}, Flap: map[float64]float64{},
		Cases: map[LeakCase]CaseScore{}}
	reverts, hours := map[LeakCase]int{}, map[LeakCase]int{}
	alarms := map[Family]int{}
	lengths := map[Family][]time.Duration{}
	days := map[Family]float64{}
	all := map[LeakCase][]time.Duration{}
	byCase := map[LeakCase][]*trace{}
	every := d.Opts.EvalEvery
	for _, tr := range d.traces {
		act := d.active(r, tr)
		f := tr.series.Family
		if f != Leak {
			for i := range act {
				if act[i] && (i == 0 || !act[i-1]) {
					alarms[f]++
					end := i
					for end < len(act) && act[end] {
						end++
					}
					lengths[f] = append(lengths[f], time.Duration(end-i)*every)
				}
			}
			days[f] += d.Opts.Length.Hours() / 24
			continue
		}
		lc := LeakCase{tr.series.Kind, tr.series.LeakRate}
		byCase[lc] = append(byCase[lc], tr)
		start := time.Duration(tr.series.LeakStart * float64(time.Second))
		rv, h := flapShare(r, tr, act, every, start)
		reverts[lc] += rv
		hours[lc] += h
		all[lc] = append(all[lc], d.delay(act, start))
	}
	for f, n := range days {
		s.FPPerDay[f] = float64(alarms[f]) / n
		if ls := lengths[f]; len(ls) > 0 {
			slices.Sort(ls)
			s.FPLength[f] = ls[len(ls)/2]
		}
	}
	for lc, ds := range all {
		slices.Sort(ds)
		cs := CaseScore{Series: len(ds)}
		if h := hours[lc]; h > 0 {
			cs.Flap = float64(reverts[lc]) / float64(h)
		}
		var detected []time.Duration
		for _, dl := range ds {
			if dl != time.Duration(math.MaxInt64) {
				detected = append(detected, dl)
			}
		}
		cs.Missed = float64(len(ds)-len(detected)) / float64(len(ds))
		cs.MedianDelay = ds[(len(ds)-1)/2]
		if len(ds)%2 == 0 && ds[len(ds)/2] != time.Duration(math.MaxInt64) {
			cs.MedianDelay = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
		}
		if cs.MedianDelay != time.Duration(math.MaxInt64) {
			cs.LateNo = d.lateNo(r, byCase[lc], 2*cs.MedianDelay)
		}
		s.Cases[lc] = cs
		if lc.Kind == LeakLate {
			s.MedianDelay[lc.Rate], s.Missed[lc.Rate], s.Flap[lc.Rate] = cs.MedianDelay, cs.Missed, cs.Flap
			s.Delays[lc.Rate] = detected
		}
	}
	return s
}

// delay is the time from the leak's start to the alert (MaxInt64 when not
// within MissAfter).
func (d *Data) delay(act []bool, start time.Duration) time.Duration {
	if i := firstAlert(act, d.Opts.EvalEvery, start); i >= 0 {
		if dl := time.Duration(i+1)*d.Opts.EvalEvery - start; dl <= d.Opts.MissAfter {
			return dl
		}
	}
	return time.Duration(math.MaxInt64)
}

// lateNo returns the share of traces whose rule reads "no leak" at some
// evaluation once the leak has run for after.
func (d *Data) lateNo(r Rule, trs []*trace, after time.Duration) float64 {
	n := 0
	for _, tr := range trs {
		from := time.Duration(tr.series.LeakStart*float64(time.Second)) + after
		for i := range tr.evals {
			if time.Duration(i+1)*d.Opts.EvalEvery >= from && !r.Cond(tr, i) {
				n++
				break
			}
		}
	}
	return float64(n) / float64(len(trs))
}

// TuneOLS returns the smallest slope threshold (bytes/s, on a 0.1 MB/h grid)
// at which least squares on window w raises at most target false alarms a
// day on the steady family.
func (d *Data) TuneOLS(w int, target float64) float64 {
	lo, hi := 0.0, 2000.0 // in 0.1 MB/h steps
	fp := func(step float64) float64 {
		s := d.Score(d.OLS(w, step*0.1*mb/3600))
		return s.FPPerDay[Steady]
	}
	for hi-lo > 1 {
		mid := math.Floor((lo + hi) / 2)
		if fp(mid) <= target {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi * 0.1 * mb / 3600
}
