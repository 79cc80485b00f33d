// Command leakbench runs the seeded synthetic quality benchmark of the leak
// detectors and prints a Markdown table: false alarms per simulated day per
// family and median detection delay (share missed) per leak rate.
//
//	go run ./internal/leak/cmd/leakbench            # full run, a few minutes on 2 cores
//	go run ./internal/leak/cmd/leakbench -series 50 # quicker, rougher
//	go run ./internal/leak/cmd/leakbench -tune      # grid over the robust thresholds
//	go run ./internal/leak/cmd/leakbench -seeds 1,2,3 -targets # issue 10's targets per seed
//
// With -targets it prints, for each seed, the table of the quality targets
// (false alarms a day per family, median detection per rate and leak case,
// flap rate, "no leak" after twice the median detection) with pass or fail,
// and exits 1 when a target fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak"
	"github.com/generic-corp/soak-exporter/internal/leak/detect"
	"github.com/generic-corp/soak-exporter/internal/leak/quality"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o := quality.DefaultOptions()
	fs := flag.NewFlagSet("leakbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seeds := fs.String("seeds", "1", "random seeds, comma-separated: one run per seed")
	targets := fs.Bool("targets", false, "print the quality targets table (pass/fail) of the held verdict instead of the detector comparison")
	kinds := fs.String("leak-cases", "", "leak cases, comma-separated: steady, daily, start, warm-start (default all)")
	fs.IntVar(&o.Series, "series", o.Series, "series per non-leaking family")
	fs.IntVar(&o.LeakSeries, "leak-series", o.LeakSeries, "series per leak rate")
	fs.IntVar(&o.Workers, "workers", 0, "parallel workers (0: GOMAXPROCS)")
	fs.DurationVar(&o.Config.Bucket, "bucket", o.Config.Bucket, "robust detector: minimum bucket width")
	fs.IntVar(&o.Config.MaxBuckets, "max-buckets", o.Config.MaxBuckets, "robust detector: buckets per window")
	fs.DurationVar(&o.Config.Grace, "grace", o.Config.Grace, "robust detector: start-up grace")
	fs.Float64Var(&o.Config.Alpha, "alpha", o.Config.Alpha, "robust detector: p-value threshold")
	fs.Float64Var(&o.Config.WarmupShare, "warmup-share", o.Config.WarmupShare, "robust detector: warm-up test, share of the first third's slope the last third must reach (0: off)")
	fs.DurationVar(&o.Config.WarmupMinAge, "warmup-min-age", o.Config.WarmupMinAge, "robust detector: youngest segment the warm-up test judges")
	fs.Float64Var(&o.Config.PartialShare, "partial-share", o.Config.PartialShare, "robust detector: with the warm-up test on, a window shorter than 24h judges a younger segment once it covers this share of the window (1: full windows only)")
	fs.DurationVar(&o.Config.Cycle, "cycle", o.Config.Cycle, "robust detector: period of the day-over-day comparison (0: off)")
	fs.Float64Var(&o.Config.WarmupSE, "warmup-se", o.Config.WarmupSE, "robust detector: warm-up test margin in standard errors")
	minGrowth := fs.Float64("min-growth-mb", o.Config.MinGrowth/detect.MB, "robust detector: minimum floor growth per window, MB (windows without an override)")
	minRate := fs.Float64("min-rate-mbh", o.Config.MinRate*3600/detect.MB, "robust detector: minimum floor slope, MB/h")
	fs.Float64Var(&o.Config.GuardSE, "guard-se", o.Config.GuardSE, "robust detector: persistence guard tolerance in standard errors")
	fs.Float64Var(&o.Config.StepRatio, "step-ratio", o.Config.StepRatio, "robust detector: level-step rejection ratio (0: off)")
	fs.DurationVar(&o.Config.StepRamp, "step-ramp", o.Config.StepRamp, "robust detector: in the windows longer than twice the shortest, the level step of -step-ratio may ramp over up to this long (0: steps at once only)")
	fs.Float64Var(&o.Config.StepSigma, "step-sigma", o.Config.StepSigma, "robust detector: level-shift removal threshold in robust standard deviations (0: off)")
	fs.Float64Var(&o.Config.FastShare, "fast-share", o.Config.FastShare, "robust detector: ceiling of the short windows (the shortest and those up to twice it) as a multiple of their practical minimum (0: off)")
	fs.Float64Var(&o.Config.FastKeepShare, "fast-keep-share", o.Config.FastKeepShare, "robust detector: a rise faster than the ceiling must still rise over the last third at this share of its rate (0: off)")
	fs.Float64Var(&o.Config.GuardMidShare, "guard-mid-share", o.Config.GuardMidShare, "robust detector: persistence guard, windows longer than the shortest up to twice it: last third against a fast middle one (0: off)")
	fs.BoolVar(&o.Config.LaterMin, "guard-last-min", o.Config.LaterMin, "robust detector: the last third must rise at the practical minimum")
	windows := fs.String("windows", "", "robust detector: windows, comma-separated (default that of the agent)")
	growthBy := fs.String("min-growth-by-window", "", "robust detector: minimum growth for given windows, window:amount comma-separated like 1h:18MB (default that of the agent)")
	tune := fs.Bool("tune", false, "print a grid over alpha, min growth and grace instead of the table")
	explainLimit := fs.Int("explain-limit", 30, "with -explain: list at most this many alerts per seed")
	explainFam := fs.String("explain", "", "list the held verdict's alerts (what the targets count) on this family (steady, warm-up, steps, diurnal, ramped-steps) instead of the table")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Config.MinGrowth = *minGrowth * detect.MB
	if *windows != "" {
		o.Config.Windows = nil
		for w := range strings.SplitSeq(*windows, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(w))
			if err != nil {
				fmt.Fprintf(stderr, "leakbench: -windows: %v\n", err)
				return 2
			}
			o.Config.Windows = append(o.Config.Windows, d)
		}
	}
	if *growthBy != "" {
		var g leak.GrowthByWindow
		if err := g.Decode(*growthBy); err != nil {
			fmt.Fprintf(stderr, "leakbench: -min-growth-by-window: %v\n", err)
			return 2
		}
		o.Config.MinGrowthFor = g
	}
	o.Config.MinRate = *minRate * detect.MB / 3600
	if *kinds != "" {
		o.LeakKinds = nil
		names := map[string]quality.LeakKind{"steady": quality.LeakLate, "daily": quality.LeakDiurnal,
			"start": quality.LeakFromStart, "warm-start": quality.LeakWarmStart}
		for k := range strings.SplitSeq(*kinds, ",") {
			kind, ok := names[strings.TrimSpace(k)]
			if !ok {
				fmt.Fprintf(stderr, "leakbench: -leak-cases: unknown case %q\n", k)
				return 2
			}
			o.LeakKinds = append(o.LeakKinds, kind)
		}
	}
	var seedList []uint64
	for v := range strings.SplitSeq(*seeds, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "leakbench: -seeds: %v\n", err)
			return 2
		}
		seedList = append(seedList, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	status := 0
	for _, seed := range seedList {
		o.Seed = seed
		d, err := quality.Simulate(ctx, o)
		if err != nil {
			fmt.Fprintln(stderr, "leakbench:", err)
			return 1
		}
		d.Describe(stdout)
		fmt.Fprintln(stdout)
		switch {
		case *explainFam != "":
			explain(stdout, d, *explainFam, *explainLimit)
		case *tune:
			tuneGrid(stdout, d)
		case *targets:
			if d.Targets(stdout, d.Score(d.Held("held"))) > 0 {
				status = 1
			}
		default:
			d.Markdown(stdout, d.Scores())
		}
		fmt.Fprintln(stdout)
	}
	return status
}

func tuneGrid(w io.Writer, d *quality.Data) {
	slopes := map[time.Duration][]float64{ // MB/h
		time.Hour:      {8, 10, 12, 15, 18, 20, 24},
		5 * time.Hour:  {1.8, 2.4, 3, 3.6, 4.2, 4.8, 6},
		6 * time.Hour:  {1.5, 2, 2.5, 3, 3.5, 4, 5},
		24 * time.Hour: {0.3, 0.4, 0.5, 0.6, 0.75, 1},
	}
	base := quality.ParamsOf(d.Opts.Config)
	for wi, win := range d.Windows {
		fmt.Fprintf(w, "\nwindow %s only\n\n| alpha | min slope MB/h | grace | step ratio | FP/d steady | warm-up | steps | diurnal | 1 MB/h | 5 MB/h | 25 MB/h |\n|---|---|---|---|---|---|---|---|---|---|---|\n", win)
		mask := make([]bool, len(d.Windows))
		mask[wi] = true
		for _, alpha := range []float64{1e-2, 1e-3, 1e-4, 1e-5, 1e-6} {
			for _, sl := range slopes[win] {
				for _, grace := range []time.Duration{12 * time.Hour, 16 * time.Hour, 20 * time.Hour} {
					for _, sr := range []float64{0.5, 0.7} {
						p := base
						p.Alpha, p.Grace, p.StepRatio = alpha, grace, sr
						p.MinSlope = map[time.Duration]float64{win: sl * detect.MB / 3600}
						s := d.Score(d.Robust("", p, mask))
						if s.FPPerDay[quality.Steady]+s.FPPerDay[quality.WarmUp]+s.FPPerDay[quality.Steps] > 0.08 {
							continue
						}
						fmt.Fprintf(w, "| %g | %g | %s | %g |", alpha, sl, detect.FormatDuration(grace), sr)
						for _, f := range d.Opts.Families {
							fmt.Fprintf(w, " %.3f |", s.FPPerDay[f])
						}
						for _, r := range d.Opts.LeakRates {
							fmt.Fprintf(w, " %.1f h (%.0f%%) |", s.MedianDelay[r].Hours(), 100*s.Missed[r])
						}
						fmt.Fprintln(w)
					}
				}
			}
		}
	}
}

func explain(w io.Writer, d *quality.Data, fam string, limit int) {
	for _, f := range []quality.Family{quality.Steady, quality.WarmUp, quality.Steps, quality.Diurnal, quality.Leak, quality.RampSteps} {
		if f.String() == fam || strings.ReplaceAll(f.String(), " ", "-") == fam {
			d.Explain(w, d.Held("held"), f, limit)
			return
		}
	}
	fmt.Fprintf(w, "unknown family %q\n", fam)
}
