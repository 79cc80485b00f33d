package detect

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/stats"
)

// Point is one value of one memory series.
type Point struct {
	// Time is when the value was read.
	Time time.Time
	// Bytes is the memory in bytes (finite, >= 0).
	Bytes float64
	// Start is the process start time in Unix seconds, or 0 when unknown. A
	// change of more than a second means the process restarted.
	Start float64
}

// Errors returned by Add.
var (
	// ErrNotAfter: the point is not later than the previous one.
	ErrNotAfter = errors.New("sample time is not after the previous sample")
	// ErrInvalidValue: the value is negative, NaN or infinite.
	ErrInvalidValue = errors.New("sample value must be a finite number >= 0")
)

// Detector watches one series over all configured windows. It is not safe
// for concurrent use; callers serialise Add and Evaluate.
type Detector struct {
	cfg     Config
	wins    []*window // ascending by length
	rampBuf []float64

	origin    time.Time // start of the current segment
	last      time.Time // time of the last accepted point
	started   bool
	procStart float64
	segment   int
	restarts  int
	segPoints int
	points    int

	// Scratch reused by evaluations.
	buf    []float64
	xs, ys []float64
	amps   []float64
	tmp    []float64
	adj    []float64
	spans  []float64 // ring floors of one span (earlierHigh)

	day        *dayRing  // bucket floors for the cycle rule and the warm-up test; nil when both are off
	dx, dy, da []float64 // day-over-day differences: times, of the raw floor, of the floor without its level shifts
	cycle      bool      // the segment showed a daily cycle (cycle.go)
	cycleSince time.Time // since when the cycle test has passed; zero when it does not

	// The warm-up test's segment figures (warmup.go), cached per segment
	// and complete ring bucket.
	seg         segFigures
	segCacheSeg int
	segCacheC   int64

	hold    Hold // the held verdict (hold.go)
	holdSeg int  // segment the held verdict belongs to

	computes int // evaluations that recomputed a window's figures (tests)
}

type bucket struct {
	idx      int64 // bucket index since the segment origin; -1 when unused
	m        stats.Moments
	min, max float64
	minT     float64 // seconds since origin of the minimum
}

type window struct {
	dur    time.Duration
	width  time.Duration
	widthS float64
	n      int // buckets in the window
	// ceiling is the fastest floor slope the window reports alone
	// (Config.Ceiling).
	ceiling float64
	// guardMid is the persistence guard's share of the middle third
	// (Config.GuardMidShare; 0 but for windows longer than the shortest and
	// at most twice as long), applied to middle thirds rising at guardMidFrom
	// or faster (GuardMidFast times the window's practical minimum).
	guardMid, guardMidFrom float64
	ring                   []bucket
	cur                    int64 // index of the bucket being filled; -1 for none

	// Figures cached per (segment, complete-bucket count).
	cacheSeg int
	cacheC   int64
	dirty    bool
	fig      figures
}

// New returns a Detector for one series.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Windows = slices.Clone(cfg.Windows)
	slices.Sort(cfg.Windows)
	cfg.MinGrowthFor = maps.Clone(cfg.MinGrowthFor)
	d := &Detector{cfg: cfg}
	for i, w := range cfg.Windows {
		width, n := cfg.BucketWidth(w)
		win := &window{dur: w, width: width, widthS: width.Seconds(), n: n, ring: make([]bucket, n+1), ceiling: cfg.Ceiling(w)}
		if i > 0 && w <= 2*cfg.Windows[0] {
			win.guardMid, win.guardMidFrom = cfg.GuardMidShare, GuardMidFast*cfg.MinSlope(w)
		}
		win.reset()
		d.wins = append(d.wins, win)
	}
	d.day = newDayRing(cfg)
	return d, nil
}

// Config returns the detector's configuration (windows sorted ascending).
func (d *Detector) Config() Config {
	c := d.cfg
	c.Windows = slices.Clone(c.Windows)
	c.MinGrowthFor = maps.Clone(c.MinGrowthFor)
	return c
}

func (w *window) reset() {
	for i := range w.ring {
		w.ring[i] = bucket{idx: -1}
	}
	w.cur = -1
	w.cacheSeg = -1
	w.dirty = false
}

// Add feeds one point in O(number of windows). It returns ErrNotAfter or
// ErrInvalidValue (wrapped) for a point it rejects; the detector is then
// unchanged. A restart starts a new segment.
func (d *Detector) Add(p Point) error {
	if math.IsNaN(p.Bytes) || math.IsInf(p.Bytes, 0) || p.Bytes < 0 {
		return fmt.Errorf("%w: got %g", ErrInvalidValue, p.Bytes)
	}
	if d.started && !p.Time.After(d.last) {
		return fmt.Errorf("%w: %s <= %s", ErrNotAfter, p.Time.Format(time.RFC3339Nano), d.last.Format(time.RFC3339Nano))
	}
	switch {
	case !d.started:
		d.newSegment(p)
	case d.isRestart(p):
		d.restarts++
		d.newSegment(p)
	}
	if p.Start != 0 {
		d.procStart = p.Start
	}
	d.last = p.Time
	d.points++
	d.segPoints++
	t := p.Time.Sub(d.origin).Seconds()
	for _, w := range d.wins {
		w.add(t, p.Bytes)
	}
	if d.day != nil {
		d.day.add(t, p.Bytes)
		if int64(t/d.day.widthS) < d.segCacheC {
			d.segCacheC = -1 // a bucket the cached segment figures counted as complete changed
		}
	}
	return nil
}

func (d *Detector) isRestart(p Point) bool {
	if p.Start != 0 && d.procStart != 0 && math.Abs(p.Start-d.procStart) > 1 {
		return true
	}
	if d.cfg.RestartDrop <= 0 {
		return false
	}
	ref := d.recentFloor()
	return ref > 0 && p.Bytes < d.cfg.RestartDrop*ref
}

// recentFloor is the minimum of the last complete bucket of the finest
// window, or of the bucket being filled when none is complete.
func (d *Detector) recentFloor() float64 {
	w := d.wins[0]
	for _, w2 := range d.wins[1:] {
		if w2.width < w.width {
			w = w2
		}
	}
	if w.cur < 0 {
		return 0
	}
	if b := w.bucket(w.cur - 1); b != nil {
		return b.min
	}
	return w.bucket(w.cur).min
}

func (d *Detector) newSegment(p Point) {
	d.started = true
	d.origin = p.Time
	d.procStart = 0
	d.segment++
	d.segPoints = 0
	for _, w := range d.wins {
		w.reset()
	}
	if d.day != nil {
		d.day.reset()
	}
	d.cycle, d.cycleSince = false, time.Time{}
}

func (w *window) bucket(idx int64) *bucket {
	if idx < 0 {
		return nil
	}
	b := &w.ring[idx%int64(len(w.ring))]
	if b.idx != idx {
		return nil
	}
	return b
}

func (w *window) add(t, y float64) {
	k := int64(t / w.widthS)
	b := &w.ring[k%int64(len(w.ring))]
	if b.idx != k {
		*b = bucket{idx: k, min: math.Inf(1), max: math.Inf(-1)}
	}
	b.m.Add(t, y)
	if y < b.min {
		b.min, b.minT = y, t
	}
	b.max = max(b.max, y)
	if k > w.cur {
		w.cur = k
	}
	if w.cacheSeg >= 0 && k < w.cacheC {
		w.dirty = true
	}
}
