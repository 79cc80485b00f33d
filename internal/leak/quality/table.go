package quality

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Scores returns the standard rows: the old rule per window, least squares
// on raw samples per window (threshold tuned to OLSTargetFP on steady
// series), the robust detector per window, and the robust detector with all
// windows (its verdicts as the detector itself gives them).
func (d *Data) Scores() []Score {
	var out []Score
	for w := range d.Windows {
		out = append(out, d.Score(d.OldRule(w)))
	}
	for w := range d.Windows {
		out = append(out, d.Score(d.OLS(w, d.TuneOLS(w, d.Opts.OLSTargetFP))))
	}
	p := ParamsOf(d.Opts.Config)
	for w, win := range d.Windows {
		mask := make([]bool, len(d.Windows))
		mask[w] = true
		out = append(out, d.Score(d.Robust(fmt.Sprintf("robust, %s only", detect.FormatDuration(win)), p, mask)))
	}
	names := make([]string, len(d.Windows))
	for i, w := range d.Windows {
		names[i] = detect.FormatDuration(w)
	}
	out = append(out, d.Score(d.Detector("robust raw verdict, "+strings.Join(names, "+"))))
	out = append(out, d.Score(d.Held("**robust held verdict, "+strings.Join(names, "+")+" (default, soak_leak_suspected)**")))
	return out
}

// Markdown writes scores as a Markdown table.
func (d *Data) Markdown(w io.Writer, scores []Score) {
	var b strings.Builder
	b.WriteString("| detector |")
	for _, f := range d.Opts.Families {
		fmt.Fprintf(&b, " FP/day %s |", f)
	}
	for _, r := range d.Opts.LeakRates {
		fmt.Fprintf(&b, " %g MB/h: median delay (missed) flap |", r*3600/mb)
	}
	b.WriteString("\n|---|")
	for range len(d.Opts.Families) + len(d.Opts.LeakRates) {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, s := range scores {
		fmt.Fprintf(&b, "| %s |", s.Name)
		for _, f := range d.Opts.Families {
			fmt.Fprintf(&b, " %.3f |", s.FPPerDay[f])
		}
		for _, r := range d.Opts.LeakRates {
			fmt.Fprintf(&b, " %s (%.0f%%) %.1f%% |", fmtDelay(s.MedianDelay[r]), 100*s.Missed[r], 100*s.Flap[r])
		}
		b.WriteString("\n")
	}
	io.WriteString(w, b.String())
}

func fmtDelay(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "missed"
	}
	return fmt.Sprintf("%.2f h", d.Hours())
}

// Describe writes a one-paragraph description of the run.
func (d *Data) Describe(w io.Writer) {
	o := d.Opts
	c := o.Config
	fmt.Fprintf(w, "seed %d; %d series per family (%d days each family), %d per leak rate; %s per series sampled every %s, evaluated every %s, a verdict counts after holding %s; leaks start at %s, missed if not detected within %s; %d series in %s.\n",
		o.Seed, o.Series, o.Series*int(o.Length.Hours())/24, o.LeakSeries, detect.FormatDuration(o.Length), o.Step, detect.FormatDuration(o.EvalEvery),
		detect.FormatDuration(o.Hold), detect.FormatDuration(o.LeakStart), detect.FormatDuration(o.MissAfter), len(d.traces), d.Elapsed.Round(time.Second))
	var th []string
	for _, win := range d.Windows {
		th = append(th, fmt.Sprintf("%s: %.3g MB/h", detect.FormatDuration(win), c.MinSlope(win)*3600/mb))
	}
	warm := "off (no verdict in the grace)"
	if c.WarmupShare > 0 {
		warm = fmt.Sprintf("in the grace: last third >= %g (less in older segments, down to %g) x first + %g SE, from %s, a window under %s judged once the segment covers %g of it", c.WarmupShare, min(c.WarmupShare, detect.WarmupMinShare), c.WarmupSE, detect.FormatDuration(c.WarmupMinAge), detect.FormatDuration(detect.PartialMaxWindow), c.PartialShare)
	}
	var ceilings []string
	for _, win := range d.Windows {
		if v := c.Ceiling(win); !math.IsInf(v, 1) {
			ceilings = append(ceilings, fmt.Sprintf("%s: %.3g MB/h", detect.FormatDuration(win), v*3600/mb))
		}
	}
	ceiling := "none"
	if len(ceilings) > 0 {
		ceiling = fmt.Sprintf("%s, still rising at %g of it over the last third", strings.Join(ceilings, ", "), c.FastKeepShare)
	}
	fmt.Fprintf(w, "robust detector: windows %v, bucket >= %s (max %d per window), grace %s, warm-up test %s, p < %g, guard tolerance %g SE, last third >= %g x a middle third faster than %g x the minimum (windows longer than the shortest, up to twice it), step ratio %g (ramping over up to %s in the windows over twice the shortest), floor slope >= %s, ceiling %s.\n",
		fmtWindows(c.Windows), detect.FormatDuration(c.Bucket), c.MaxBuckets, detect.FormatDuration(c.Grace), warm, c.Alpha, c.GuardSE, c.GuardMidShare, detect.GuardMidFast, c.StepRatio, detect.FormatDuration(c.StepRamp), strings.Join(th, ", "), ceiling)
}

func fmtWindows(ws []time.Duration) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = detect.FormatDuration(w)
	}
	return strings.Join(s, ",")
}

// FPTarget is the most false alarms a day allowed in any non-leaking family
// (issue 10's quality targets).
const FPTarget = 0.02

// FlapTarget is the largest share of hourly verdicts allowed to say "no
// leak" after the alert fired while the leak goes on.
const FlapTarget = 0.01

// DelayTarget returns the median detection target of a leak case, and false
// when the case has none.
func DelayTarget(c LeakCase) (time.Duration, bool) {
	h := func(x float64) time.Duration { return time.Duration(x * float64(time.Hour)) }
	rate := math.Round(c.Rate * 3600 / mb)
	targets := map[LeakKind]map[float64]time.Duration{
		LeakLate:      {25: h(1), 5: h(4), 1: h(16)},
		LeakDiurnal:   {5: h(8), 1: h(24)},
		LeakFromStart: {25: h(1.5), 5: h(5)},
		LeakWarmStart: {25: h(1.5), 5: h(5)},
	}
	t, ok := targets[c.Kind][rate]
	return t, ok
}

// Targets writes the quality targets of issue 10 as one Markdown table for
// score s (the held verdict): false alarms a day per family (and, with no
// limit, how long the median false alarm stays up), median
// detection per leak case and rate, flap rate, and the share of series that
// read "no leak" after their leak has run twice the median detection time;
// each with its limit and pass or fail. It returns how many targets fail.
func (d *Data) Targets(w io.Writer, s Score) (failed int) {
	var b strings.Builder
	b.WriteString("| target | limit | measured | |\n|---|---|---|---|\n")
	row := func(name, limit, got string, ok bool) {
		mark := "pass"
		if !ok {
			mark, failed = "**FAIL**", failed+1
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, limit, got, mark)
	}
	for _, f := range d.Opts.Families {
		row("false alarms a day, "+f.String(), fmt.Sprintf("<= %g", FPTarget), fmt.Sprintf("%.3f", s.FPPerDay[f]), s.FPPerDay[f] <= FPTarget)
	}
	for _, f := range d.Opts.Families {
		if l, ok := s.FPLength[f]; ok {
			fmt.Fprintf(&b, "| median length of a false alarm, %s | none | %s | |\n", f, fmtDelay(l))
		}
	}
	for _, k := range d.Opts.LeakKinds {
		for _, r := range d.Opts.LeakRates {
			c, ok := s.Cases[LeakCase{k, r}]
			if !ok {
				continue
			}
			name := fmt.Sprintf("%g MB/h, %s", r*3600/mb, k)
			got := fmt.Sprintf("%s (%.0f%% missed)", fmtDelay(c.MedianDelay), 100*c.Missed)
			if t, ok := DelayTarget(LeakCase{k, r}); ok {
				row("median detection, "+name, "<= "+fmtDelay(t), got, c.MedianDelay <= t)
			} else {
				fmt.Fprintf(&b, "| median detection, %s | none | %s | |\n", name, got)
			}
			row("flap, "+name, fmt.Sprintf("<= %g%%", 100*FlapTarget), fmt.Sprintf("%.1f%%", 100*c.Flap), c.Flap <= FlapTarget)
			late := fmt.Sprintf("%.1f%% of %d", 100*c.LateNo, c.Series)
			if c.MedianDelay == time.Duration(math.MaxInt64) {
				late = "median missed"
			}
			row("\"no leak\" after 2x median, "+name, "0", late, c.LateNo == 0 && c.MedianDelay != time.Duration(math.MaxInt64))
		}
	}
	io.WriteString(w, b.String())
	return failed
}
