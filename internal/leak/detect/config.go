package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Guard ratios of the persistence guard (see the package documentation).
const (
	// GuardLaterThirds is the share of the whole-window floor slope that the
	// middle and the last third of the window must each reach.
	GuardLaterThirds = 0.3
	// GuardLastVsFirst is the share of the first third's slope that the
	// last third must reach, so curves that flatten are not leaks.
	GuardLastVsFirst = 0.5
	// GuardMidFast is how fast, as a multiple of the window's practical
	// minimum, the middle third must rise for the last third to be compared
	// with it (Config.GuardMidShare): a ramp rises that fast, while the
	// thirds of a slow leak scatter around its rate and would only delay it.
	GuardMidFast = 2.5
	// MinCoverage is the share of a window's buckets that must hold data for
	// a verdict (sampling gaps leave buckets empty).
	MinCoverage = 2.0 / 3
	// DayVetoShare is the share of a window's practical minimum growth by
	// which the floor over the window's last third must exceed the floor at
	// the same time one cycle earlier (Config.Cycle), when the segment holds
	// both, for a rise to be a leak; before a cycle has shown (after, the
	// windows are judged on the day-over-day figures alone). Within the
	// segment's first cycle, the same share applies against the highest
	// the floor has been earlier in the segment (Result.AboveEarlier).
	DayVetoShare = 0.2
	// FastRiseShare is the share of a window with a ceiling
	// (Config.FastShare) that a rise faster than the ceiling must have
	// lasted to be a leak.
	FastRiseShare = 2.0 / 3
	// HoldPartialShare is the share of its length that a window the
	// segment does not fill yet must cover for its figures (those of the
	// segment so far) to keep a held verdict (Config.HoldEvidence): a leak
	// present from process start is found by the 5h window, whose evidence
	// comes and goes with the wander, hours before the 24h window is full.
	HoldPartialShare = 0.3
	// PartialMaxWindow: windows this long or longer wait to be full
	// (Config.PartialShare applies to shorter ones). Their practical
	// minimum is set for a day of data (the 24h window's 14.4 MB, 0.6
	// MB/h), which part of a day reaches on what is left of a level step or
	// on the wander alone: judged from 14h40m, the 24h window raised 4 more
	// alarms on 200 level-step series of the benchmark (seed 2) and one 7 h
	// sooner, at 14h50m-18h55m, reading 0.75-1.1 MB/h; three of those
	// segments held up-steps (26 MB, 82 MB, 42 and 73 MB), two none.
	PartialMaxWindow = 24 * time.Hour
	// WarmupGraceTaus: the slowest warm-up that the start-up grace
	// (Config.Grace) allows has a time constant of Grace/WarmupGraceTaus
	// (over 2.5 time constants a warm-up fills 92 % of its size).
	WarmupGraceTaus = 2.5
	// WarmupMinShare is the least share of the first third's slope that the
	// warm-up test asks of the last third, however old the segment (see
	// Config.WarmupShare).
	WarmupMinShare = 0.5
	// MB is the unit used in reasons and reports: 10^6 bytes.
	MB = 1e6
)

// Config tunes a Detector. DefaultConfig returns the tuned defaults that the
// quality benchmark measures; callers such as a short one-shot run change the
// windows, the bucket width and the grace.
type Config struct {
	// Windows are the rolling windows, each evaluated separately.
	Windows []time.Duration
	// Bucket is the smallest bucket width: the floor of a bucket is its
	// minimum, so a bucket must span at least one full GC cycle (twice the
	// longest GC period is safe). A window uses max(Bucket, window/MaxBuckets).
	Bucket time.Duration
	// MaxBuckets bounds the number of buckets per window (and so the O(B²)
	// cost of an evaluation).
	MaxBuckets int
	// MinBuckets is the fewest complete buckets a window needs for a verdict.
	MinBuckets int
	// Grace is the start-up period of a segment (the time since the first
	// sample or the last restart) in which a warm-up may still be under
	// way. A window that holds data from it is judged only once the segment
	// is WarmupMinAge old and only if the floor of the whole segment passes
	// the warm-up test (WarmupShare); with the test off (WarmupShare 0) it
	// gives no verdict at all, so the first verdict of window W comes at
	// W+Grace.
	Grace time.Duration
	// WarmupShare is the warm-up test, applied to the windows that hold
	// data from the first Grace of the segment: such a window suspects a
	// leak only when the floor's slope over the last third of the segment
	// so far reaches WarmupShare of that over its first third by at least
	// WarmupSE standard errors. A warm-up decelerates toward a plateau; a
	// leak present from process start does not. In an older segment the
	// test asks less: the square root of the share to which the slowest
	// warm-up the grace allows (time constant Grace/WarmupGraceTaus) has
	// decelerated by then, when that is lower, and at least WarmupMinShare.
	// 0 disables the test (and such windows then wait for the grace to
	// pass).
	WarmupShare float64
	// WarmupMinAge is the youngest segment the warm-up test judges: over a
	// shorter time a warm-up with a time constant of hours is still a
	// straight line.
	WarmupMinAge time.Duration
	// WarmupSE is the margin of the warm-up test in standard errors of the
	// thirds' slopes (see WarmupShare).
	WarmupSE float64
	// PartialShare lets a window shorter than PartialMaxWindow judge a
	// segment younger than itself (after the first sample or a restart)
	// once the segment covers this share of it, on the segment so far, with
	// the window's own practical minimum slope; 1 waits for the whole
	// window. It applies with the warm-up test on (WarmupShare > 0), which
	// such a window must pass: without it a leak present from process start
	// waits for the window that can see it to fill (5 MB/h: the 5h window,
	// 5 h plus the alert's hold at least).
	PartialShare float64
	// Alpha is the p-value of the Hamed-Rao Mann-Kendall test below which an
	// upward trend of the floor counts as significant.
	Alpha float64
	// MinGrowth is the least growth of the floor over a whole window, in
	// bytes, that can be a leak: a window of length W needs a floor slope of
	// at least MinGrowth/W. It scales the practical threshold with the
	// window, because slow wander of the live set moves the floor by a few
	// MB whatever the window.
	MinGrowth float64
	// MinGrowthFor overrides MinGrowth for some window lengths. Short
	// windows see the random wander of the live set as fast slopes; long
	// windows average it out and can afford a lower growth.
	MinGrowthFor map[time.Duration]float64
	// MinRate is the least floor slope, in bytes per second, that can be a
	// leak in any window.
	MinRate float64
	// StepRatio rejects a window whose floor a single level step explains
	// better than a line: the verdict is no_leak when the residual sum of
	// squares of the best two-level fit is below StepRatio times that of the
	// least-squares line. 0 disables the check. Rising lines give ratios
	// above 1; a leak that started in the middle of the window gives about
	// 0.8; a one-off step gives close to 0.
	StepRatio float64
	// StepRamp lets the level step of StepRatio ramp, in the windows
	// longer than twice the shortest and in a lone window: the two levels
	// may be joined by a straight ramp lasting up to StepRamp (and up to a
	// quarter of the window), so a cache that filled over minutes is a
	// step like one filled at once; the ramp must also fit better than a
	// leak that started within the window. 0: steps at once only.
	StepRamp time.Duration
	// GuardSE is the tolerance of the persistence guard in standard errors
	// of the thirds' slopes (0: the plain guard).
	GuardSE float64
	// GuardMidShare is the share of the middle third's floor slope that the
	// last third must reach (within GuardSE) in the windows longer than the
	// shortest configured and at most twice as long (the default 2h), when
	// the middle third rises GuardMidFast times the window's practical
	// minimum or faster: a level shift that ramped over the middle of the
	// window reads flat, rising, flat by thirds, where a leak keeps rising.
	// The shortest window is left out because it must find fast leaks
	// within its own length, where a third holds a few buckets (its
	// ceiling, FastKeepShare, covers the fast ramps there); longer windows
	// because a ramp of minutes fills a small part of their thirds, while
	// the thirds of a slow leak scatter around its rate. 0 disables it.
	GuardMidShare float64
	// RestartDrop starts a new segment when a sample falls below this share
	// of the recent floor (0.5: memory dropped by more than half).
	RestartDrop float64
	// StepSigma takes level steps out of a window's floor before its trend
	// is judged: a bucket-to-bucket change of the floor more than StepSigma
	// robust standard deviations away from the median change is a level
	// shift (a cache filled at once, a new tenant, a staircase of such), not
	// growth, and is replaced by the median change (stats.RemoveShifts). 0
	// disables it.
	StepSigma float64
	// FastShare is the ceiling of the shortest window and of every window
	// at most twice as long (see Ceiling), as a multiple of the window's
	// practical minimum slope, when such a second window is configured: a
	// floor rising faster than that is most often a level shift still
	// ramping (a cache filling over half an hour), which until it ends is
	// the same data as a leak of its rate. Such a window reports such a
	// rise only once it has lasted FastRiseShare of the window (by the knot
	// of a hinge fit: flat, then a line), so a leak that fast is still
	// reported by the shortest window as soon as a leak at its minimum
	// would be. The longer of the two (the default 2h) has one too since
	// 2026-12-06 (fourth session): without it, it read the ramp that the
	// shortest window had just let go (92 MB over 43 minutes: 62-71 MB/h
	// over 2 h) as a leak, and the two windows' verdicts in turn held the
	// raw verdict for the alert's 15 minutes. How fast the floor rises is
	// the faster of the window's floor slope and the hinge fit's slope: a
	// ramp that fills half the window reads at about half its rate over the
	// whole window. 0 disables it.
	FastShare float64
	// FastKeepShare is the second half of the ceiling: a rise faster than
	// it must also still be under way, its last third of the window rising
	// at FastKeepShare of the rise's rate (within GuardSE standard errors),
	// because a ramp that has just ended has lasted long enough but no
	// longer rises. 0 disables it (the ceiling then only waits).
	FastKeepShare float64
	// LaterMin requires the last third's floor slope (within GuardSE
	// standard errors) to reach the window's practical minimum too: the
	// growth must still be of practical size at the end of the window.
	LaterMin bool
	// HoldAfter arms the held verdict (Report.Suspected): once the raw
	// verdict has said LeakSuspected at every evaluation for HoldAfter (the
	// shipped alert's for:), the held verdict stays true while any window
	// still shows the floor rising (slope >= HoldShare of its practical
	// minimum with p < HoldAlpha), and clears only when that evidence has
	// been gone for ClearAfter, or at a restart. Before it is armed, the held
	// verdict follows the raw one.
	HoldAfter time.Duration
	// HoldShare is the share of a window's practical minimum slope that
	// keeps a held verdict.
	HoldShare float64
	// HoldAlpha is the p-value below which a rising floor keeps a held
	// verdict.
	HoldAlpha float64
	// ClearAfter is how long the evidence must stay gone before a held
	// verdict clears.
	ClearAfter time.Duration
	// Cycle is the period of a traffic cycle (a day) that the floor is
	// compared against (cycle.go): once the segment holds a window plus one
	// cycle, a rise of that window's floor is a leak only when the floor is
	// higher than one cycle earlier by the window's practical minimum over
	// the cycle, or rises faster than then by that minimum; the held verdict
	// is then kept by the same day-over-day evidence. 0 disables it.
	Cycle time.Duration
}

// DefaultConfig returns the defaults tuned with the quality benchmark
// (internal/leak/quality).
func DefaultConfig() Config {
	return Config{
		Windows:      []time.Duration{time.Hour, 2 * time.Hour, 5 * time.Hour, 24 * time.Hour},
		Bucket:       5 * time.Minute,
		MaxBuckets:   72,
		MinBuckets:   10,
		Grace:        10 * time.Hour,
		WarmupShare:  0.7,
		WarmupSE:     1,
		WarmupMinAge: 3 * time.Hour,
		PartialShare: 0.6,
		Alpha:        0.002,
		MinGrowth:    21 * MB,
		MinGrowthFor: map[time.Duration]float64{
			time.Hour:      18 * MB,
			2 * time.Hour:  32 * MB,
			24 * time.Hour: 14.4 * MB,
		},
		MinRate:       0.25 * MB / 3600,
		StepRatio:     0.5,
		StepRamp:      30 * time.Minute,
		GuardSE:       1,
		GuardMidShare: 0.5,
		RestartDrop:   0.5,
		StepSigma:     4,
		FastShare:     2.5,
		FastKeepShare: 0.7,
		HoldAfter:     15 * time.Minute,
		HoldShare:     0.5,
		HoldAlpha:     0.05,
		ClearAfter:    time.Hour,
		Cycle:         24 * time.Hour,
	}
}

// Validate reports the first invalid field by its Go name.
func (c Config) Validate() error {
	if len(c.Windows) == 0 {
		return errors.New("Windows: at least one window is required")
	}
	for i, w := range c.Windows {
		if w <= 0 {
			return fmt.Errorf("Windows: must be > 0, got %q", w)
		}
		if slices.Contains(c.Windows[:i], w) {
			return fmt.Errorf("Windows: %s listed twice", w)
		}
	}
	switch {
	case c.Bucket <= 0:
		return fmt.Errorf("Bucket: must be > 0, got %q", c.Bucket)
	case c.MaxBuckets < 3 || c.MaxBuckets > 1000:
		return fmt.Errorf("MaxBuckets: must be in [3, 1000], got %d", c.MaxBuckets)
	case c.MinBuckets < 3 || c.MinBuckets > c.MaxBuckets:
		return fmt.Errorf("MinBuckets: must be in [3, MaxBuckets=%d], got %d", c.MaxBuckets, c.MinBuckets)
	case c.Grace < 0:
		return fmt.Errorf("Grace: must be >= 0, got %q", c.Grace)
	case !(c.WarmupShare >= 0 && c.WarmupShare <= 1):
		return fmt.Errorf("WarmupShare: must be in [0, 1], got %g", c.WarmupShare)
	case c.WarmupMinAge < 0:
		return fmt.Errorf("WarmupMinAge: must be >= 0, got %q", c.WarmupMinAge)
	case !(c.WarmupSE >= 0) || math.IsInf(c.WarmupSE, 0):
		return fmt.Errorf("WarmupSE: must be a finite number >= 0, got %g", c.WarmupSE)
	case !(c.PartialShare > 0 && c.PartialShare <= 1):
		return fmt.Errorf("PartialShare: must be in (0, 1], got %g", c.PartialShare)
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fmt.Errorf("Alpha: must be in (0, 1), got %g", c.Alpha)
	case !(c.MinGrowth >= 0) || math.IsInf(c.MinGrowth, 0):
		return fmt.Errorf("MinGrowth: must be a finite number >= 0, got %g", c.MinGrowth)
	case !validGrowth(c.MinGrowthFor):
		return fmt.Errorf("MinGrowthFor: values must be finite numbers >= 0 for windows > 0, got %v", c.MinGrowthFor)
	case !(c.MinRate >= 0) || math.IsInf(c.MinRate, 0):
		return fmt.Errorf("MinRate: must be a finite number >= 0, got %g", c.MinRate)
	case !(c.StepRatio >= 0 && c.StepRatio < 1):
		return fmt.Errorf("StepRatio: must be in [0, 1), got %g", c.StepRatio)
	case c.StepRamp < 0:
		return fmt.Errorf("StepRamp: must be >= 0, got %q", c.StepRamp)
	case !(c.GuardSE >= 0) || math.IsInf(c.GuardSE, 0):
		return fmt.Errorf("GuardSE: must be a finite number >= 0, got %g", c.GuardSE)
	case !(c.GuardMidShare >= 0 && c.GuardMidShare <= 1):
		return fmt.Errorf("GuardMidShare: must be in [0, 1], got %g", c.GuardMidShare)
	case !(c.FastKeepShare >= 0 && c.FastKeepShare <= 1):
		return fmt.Errorf("FastKeepShare: must be in [0, 1], got %g", c.FastKeepShare)
	case !(c.RestartDrop >= 0 && c.RestartDrop < 1):
		return fmt.Errorf("RestartDrop: must be in [0, 1), got %g", c.RestartDrop)
	case !(c.StepSigma >= 0) || math.IsInf(c.StepSigma, 0):
		return fmt.Errorf("StepSigma: must be a finite number >= 0, got %g", c.StepSigma)
	case !(c.FastShare == 0 || c.FastShare > 1) || math.IsInf(c.FastShare, 0):
		return fmt.Errorf("FastShare: must be 0 (off) or a finite number > 1, got %g", c.FastShare)
	case c.HoldAfter < 0:
		return fmt.Errorf("HoldAfter: must be >= 0, got %q", c.HoldAfter)
	case !(c.HoldShare >= 0 && c.HoldShare <= 1):
		return fmt.Errorf("HoldShare: must be in [0, 1], got %g", c.HoldShare)
	case !(c.HoldAlpha > 0 && c.HoldAlpha < 1):
		return fmt.Errorf("HoldAlpha: must be in (0, 1), got %g", c.HoldAlpha)
	case c.ClearAfter < 0:
		return fmt.Errorf("ClearAfter: must be >= 0, got %q", c.ClearAfter)
	case c.Cycle < 0 || (c.Cycle > 0 && c.Cycle < c.Bucket):
		return fmt.Errorf("Cycle: must be 0 (off) or at least the bucket width (%s), got %q", c.Bucket, c.Cycle)
	}
	return nil
}

// Ceiling returns the fastest floor slope (bytes per second) that window w
// reports as a leak by itself (see FastShare), or +Inf when it has none:
// when a window at most twice the shortest's length is configured, the
// shortest window and every window at most twice its length have one (the
// default 1h and 2h); none otherwise.
func (c Config) Ceiling(w time.Duration) float64 {
	if c.FastShare == 0 || len(c.Windows) < 2 {
		return math.Inf(1)
	}
	ws := slices.Sorted(slices.Values(c.Windows))
	if ws[1] > 2*ws[0] || w > 2*ws[0] {
		return math.Inf(1)
	}
	return c.FastShare * c.MinSlope(w)
}

// BucketWidth returns the bucket width and the number of buckets that this
// configuration uses for window w.
func (c Config) BucketWidth(w time.Duration) (time.Duration, int) {
	width := max(c.Bucket, w/time.Duration(c.MaxBuckets))
	n := int((w + width/2) / width)
	return width, max(n, 1)
}

// MinSlope returns the least floor slope (bytes per second) that can be a
// leak in window w: max(MinRate, growth/w) with growth MinGrowthFor[w] or
// else MinGrowth.
func (c Config) MinSlope(w time.Duration) float64 {
	g, ok := c.MinGrowthFor[w]
	if !ok {
		g = c.MinGrowth
	}
	return max(c.MinRate, g/w.Seconds())
}

func validGrowth(m map[time.Duration]float64) bool {
	for w, g := range m {
		if w <= 0 || !(g >= 0) || math.IsInf(g, 0) {
			return false
		}
	}
	return true
}
