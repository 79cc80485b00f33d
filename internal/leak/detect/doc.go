// Package detect decides whether one memory series is leaking, over several
// rolling windows at once. It is pure: samples go in through Add, figures and
// verdicts come out of Evaluate, and nothing here does I/O or reads a clock,
// so the same code serves the live agent, one-shot runs, the offline
// analyser and the quality benchmark.
//
// # Method
//
// Samples are folded into fixed-width time buckets per window (aligned to the
// start of the current segment). A bucket keeps least-squares moments of its
// raw samples and its minimum, so adding a sample costs O(windows) and memory
// is O(buckets), whatever the sampling rate. At evaluation, over the last B
// complete buckets of each window:
//
//   - the old suite's figures: least squares over the raw samples (slope in
//     bytes per second, R²), kept because users know them;
//   - the floor of the GC sawtooth: each bucket's minimum (a bucket spans at
//     least one GC cycle), with its level shifts taken out (Config.StepSigma:
//     a bucket-to-bucket rise that is an outlier among the floor's changes
//     is replaced by the median change, see stats.RemoveShifts), then its
//     Theil-Sen slope (median of pairwise slopes, robust to outliers) and
//     intercept;
//   - a one-sided Mann-Kendall test for an upward trend of the floor, with
//     the Hamed-Rao correction for autocorrelation (never shrinking the
//     variance);
//   - a persistence guard: the floor slopes of the middle and last thirds
//     must each reach GuardLaterThirds of the whole-window slope, and the
//     last third GuardLastVsFirst of the first, so warm-up curves that
//     flatten are not leaks (with Config.LaterMin the last third must also
//     reach the practical minimum); in the windows longer than the shortest
//     and at most twice as long, the last third must also reach
//     Config.GuardMidShare of a middle third rising GuardMidFast times the
//     practical minimum or faster, so a level shift that ramped over the
//     middle of the window is not one;
//   - a practical threshold: the floor slope must reach Config.MinSlope;
//   - a ceiling of the shortest window and of the windows up to twice as
//     long (Config.FastShare, Config.Ceiling):
//     a rise faster than that (the window's floor slope or, if faster, the
//     hinge fit's slope) counts only once it has lasted FastRiseShare of
//     the window (the knot of the hinge fit: flat, then a line), because
//     until it ends a level shift ramping over half an hour is the same
//     data as a fast leak, and only while the window's last third still
//     rises at Config.FastKeepShare of its rate (a ramp that has just
//     ended has lasted long enough but no longer rises);
//   - a projection: seconds until the limit, from the current floor plus the
//     typical sawtooth amplitude, +Inf when the floor is not growing.
//
// A restart (the process start time changes, or a sample falls below
// RestartDrop times the recent floor) starts a new segment and clears every
// window. No window gives a verdict before it holds B complete buckets of the
// current segment (with the warm-up test on, a window shorter than
// PartialMaxWindow: Config.PartialShare of them, its figures then those of
// the segment so far), at least MinBuckets of them with data, nor, while it
// holds data of the start-up grace, before the segment is
// Config.WarmupMinAge old and passes the warm-up test (with the test off:
// before the grace has passed). The Theil-Sen and Mann-Kendall steps cost
// O(B²) and run only when a window gained a complete bucket since the last
// evaluation.
//
// A segment whose floor shows a daily cycle (Config.Cycle, cycle.go) has its
// windows judged against the floor one cycle earlier: only on those figures
// once the cycle is confirmed, and on them too while the cycle test passes
// but is not confirmed yet (Result.CycleShowing: where they disagree with
// the floor's own, they decide; a rise faster than the window's ceiling is
// set aside either way, and the difference's slope is that of the floor
// without its level shifts). Before that, a rise that leaves the floor
// over the window's last third no higher than one cycle earlier is not a
// leak, as soon as part of that third can be compared (DayLastBuckets).
// The held verdict (Report.Suspected, hold.go) arms once the raw verdict has
// said leak for Config.HoldAfter and stays while any window, or a window the
// segment covers for HoldPartialShare of its length, shows the floor rising
// or higher than one cycle earlier (Config.HoldEvidence).
package detect
