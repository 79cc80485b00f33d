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
	return fmt.Sprintf("%.1f h", d.Hours())
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
	fmt.Fprintf(w, "robust detector: windows %v, bucket >= %s (max %d per window), grace %s, p < %g, guard tolerance %g SE, step ratio %g, floor slope >= %s.\n",
		fmtWindows(c.Windows), detect.FormatDuration(c.Bucket), c.MaxBuckets, detect.FormatDuration(c.Grace), c.Alpha, c.GuardSE, c.StepRatio, strings.Join(th, ", "))
}

func fmtWindows(ws []time.Duration) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = detect.FormatDuration(w)
	}
	return strings.Join(s, ",")
}
