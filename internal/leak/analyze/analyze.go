// Package analyze is the offline leak analysis behind
// `soak-exporter leak analyze [--json] FILE`: it reads a recorded memory
// series (CSV or a Prometheus range-query response), replays it through the
// same detector the agent runs, and prints the verdict and per-window
// figures.
package analyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Exit statuses of AnalyzeMain.
const (
	ExitNoLeak   = 0
	ExitLeak     = 1
	ExitBadInput = 2
	// ExitCannotTell: no series leaks, but at least one has too little
	// data for a verdict (the reason is printed). Never 0: a CI job must not
	// pass a recording nobody could judge.
	ExitCannotTell = 3
)

// maxInput bounds the size of the input file.
const maxInput = 512 << 20

// EvalEvery is how often the replay evaluates the detector, as the agent
// would, to find when a leak would first have been flagged.
const EvalEvery = 5 * time.Minute

// Window is the result of one window, as printed.
type Window struct {
	Window  string `json:"window"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	Samples int    `json:"samples"`
	Buckets int    `json:"buckets"`
	// Slopes in bytes per second and MB (10^6 bytes) per hour.
	OLSSlopeBytesPerSecond   *float64 `json:"ols_slope_bytes_per_second"`
	OLSSlopeMBPerHour        *float64 `json:"ols_slope_mb_per_hour"`
	OLSRSquared              *float64 `json:"ols_r_squared"`
	FloorSlopeBytesPerSecond *float64 `json:"floor_slope_bytes_per_second"`
	FloorSlopeMBPerHour      *float64 `json:"floor_slope_mb_per_hour"`
	FloorRSquared            *float64 `json:"floor_r_squared"`
	PValue                   *float64 `json:"p_value"`
	BaselineBytes            *float64 `json:"baseline_bytes"`
	SecondsToLimit           *float64 `json:"seconds_to_limit,omitempty"`
	// FirstSuspected is when, replayed live, this window first suspected a
	// leak.
	FirstSuspected *time.Time `json:"first_suspected"`
}

// SeriesResult is the analysis of one series.
type SeriesResult struct {
	Name     string    `json:"name"`
	Samples  int       `json:"samples"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Restarts int       `json:"restarts"`
	Verdict  string    `json:"verdict"`
	Reason   string    `json:"reason"`
	// LeakSuspected and SlopeBytesPerSecond (the Theil-Sen floor slope of
	// the deciding window) summarise the series.
	LeakSuspected       bool     `json:"leak_suspected"`
	SlopeBytesPerSecond *float64 `json:"slope_bytes_per_second"`
	Window              string   `json:"window"`
	Windows             []Window `json:"windows"`
}

// Output is the whole --json document.
type Output struct {
	File                string         `json:"file"`
	Format              string         `json:"format"`
	LeakSuspected       bool           `json:"leak_suspected"`
	Verdict             string         `json:"verdict"`
	SlopeBytesPerSecond *float64       `json:"slope_bytes_per_second"`
	Series              []SeriesResult `json:"series"`
}

func num(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

// Analyze replays a series through a detector built from cfg, evaluating
// every EvalEvery like the agent, and returns the final result (evaluated
// one sampling interval after the last point, so a recording of exactly a
// window's length fills it). limit is the memory limit in bytes (0: none).
func Analyze(s Series, cfg detect.Config, limit float64) (SeriesResult, error) {
	det, err := detect.New(cfg)
	if err != nil {
		return SeriesResult{}, err
	}
	res := SeriesResult{Name: s.Name, Samples: len(s.Points)}
	if len(s.Points) == 0 {
		return res, errors.New("no samples")
	}
	res.Start, res.End = s.Points[0].Time, s.Points[len(s.Points)-1].Time
	first := map[time.Duration]time.Time{}
	next := s.Points[0].Time.Add(EvalEvery)
	for _, p := range s.Points {
		if !p.Time.Before(next) {
			for _, w := range det.Evaluate(p.Time, limit).Windows {
				if _, seen := first[w.Window]; !seen && w.Verdict == detect.LeakSuspected {
					first[w.Window] = p.Time
				}
			}
			for !next.After(p.Time) {
				next = next.Add(EvalEvery)
			}
		}
		if err := det.Add(p); err != nil {
			return res, err
		}
	}
	rep := det.Evaluate(res.End.Add(medianGap(s.Points)), limit)
	res.Restarts = rep.Restarts
	res.Verdict, res.Reason, res.Window = rep.Verdict.String(), rep.Reason, detect.FormatDuration(rep.Window)
	res.LeakSuspected = rep.Verdict == detect.LeakSuspected
	if d := rep.Deciding(); d.HasFloor {
		res.SlopeBytesPerSecond = num(d.FloorSlope)
	}
	for _, w := range rep.Windows {
		out := Window{
			Window: detect.FormatDuration(w.Window), Verdict: w.Verdict.String(), Reason: w.Reason,
			Samples: w.Samples, Buckets: w.FilledBuckets,
		}
		if w.Verdict == detect.LeakSuspected {
			if _, seen := first[w.Window]; !seen {
				first[w.Window] = res.End
			}
		}
		if w.HasOLS {
			out.OLSSlopeBytesPerSecond, out.OLSSlopeMBPerHour, out.OLSRSquared = num(w.OLSSlope), num(w.OLSSlope*3600/detect.MB), num(w.OLSR2)
		}
		if w.HasFloor {
			out.FloorSlopeBytesPerSecond, out.FloorSlopeMBPerHour, out.FloorRSquared = num(w.FloorSlope), num(w.FloorSlope*3600/detect.MB), num(w.FloorR2)
			out.PValue, out.BaselineBytes = num(w.P), num(w.Baseline)
		}
		if w.HasLimit && !math.IsInf(w.SecondsToLimit, 0) {
			out.SecondsToLimit = num(w.SecondsToLimit)
		}
		if t, ok := first[w.Window]; ok {
			out.FirstSuspected = &t
		}
		res.Windows = append(res.Windows, out)
	}
	return res, nil
}

func medianGap(ps []detect.Point) time.Duration {
	if len(ps) < 2 {
		return 0
	}
	gaps := make([]time.Duration, 0, len(ps)-1)
	for i := 1; i < len(ps); i++ {
		gaps = append(gaps, ps[i].Time.Sub(ps[i-1].Time))
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

const usage = `usage: soak-exporter leak analyze [flags] FILE

Replays a recorded memory series through the leak detector and prints the
verdict and per-window figures. FILE ("-" for standard input) is either a CSV
of "timestamp,bytes" rows (Unix seconds, bytes; the header line is optional)
or a Prometheus /api/v1/query_range JSON response (every series is analysed;
the worst decides the exit status). A recording is judged as a recording: no
start-up grace unless --grace is given.

Exit status: 0 no leak, 1 leak suspected, 2 bad input or usage, 3 cannot tell
(too little data for a verdict in some series, none leaking; the reason is
printed).

flags:
`

// AnalyzeMain runs the command with args (after "leak analyze") and returns
// the exit status.
func AnalyzeMain(args []string, stdout, stderr io.Writer) int {
	cfg := detect.DefaultConfig()
	cfg.Grace = 0 // a recording has no live start-up to wait out
	fs := flag.NewFlagSet("leak analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	_ = fs.Bool("all", true, "kept for compatibility: every series is always analysed")
	windows := fs.String("windows", joinWindows(cfg.Windows), "rolling windows, comma-separated")
	fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "start-up period after the first sample or a restart, in which windows must pass the warm-up test")
	fs.DurationVar(&cfg.Bucket, "bucket", cfg.Bucket, "smallest bucket (at least twice the longest GC period)")
	fs.Float64Var(&cfg.Alpha, "p-value", cfg.Alpha, "Mann-Kendall p-value threshold")
	minGrowth := fs.Float64("min-growth-mb", cfg.MinGrowth/detect.MB, "least floor growth across a window, MB, for windows without their own default (1h: 18, 2h: 32, 24h: 14.4 MB)")
	limit := fs.Float64("limit-bytes", 0, "memory limit for the projection, bytes (0: none)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitNoLeak
		}
		return ExitBadInput
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "leak analyze: want exactly one FILE argument")
		fs.Usage()
		return ExitBadInput
	}
	ws, err := parseWindows(*windows)
	if err != nil {
		fmt.Fprintf(stderr, "leak analyze: --windows: %v\n", err)
		return ExitBadInput
	}
	cfg.Windows = ws
	cfg.MinGrowth = *minGrowth * detect.MB
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "leak analyze: %v\n", err)
		return ExitBadInput
	}
	name := fs.Arg(0)
	data, err := readInput(name)
	if err != nil {
		fmt.Fprintf(stderr, "leak analyze: %v\n", err)
		return ExitBadInput
	}
	format, series, err := parse(data, true)
	if err != nil {
		fmt.Fprintf(stderr, "leak analyze: %s: %v\n", name, err)
		return ExitBadInput
	}
	out := Output{File: name, Format: format, Verdict: detect.InsufficientData.String()}
	for _, s := range series {
		if len(s.Points) == 0 {
			fmt.Fprintf(stderr, "leak analyze: %s: %s: no samples after the header\n", name, s.Name)
			return ExitBadInput
		}
		r, err := Analyze(s, cfg, *limit)
		if err != nil {
			fmt.Fprintf(stderr, "leak analyze: %s: %s: %v\n", name, s.Name, err)
			return ExitBadInput
		}
		out.Series = append(out.Series, r)
	}
	summarise(&out)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "leak analyze: %v\n", err)
			return ExitBadInput
		}
	} else {
		writeText(stdout, out)
	}
	switch {
	case out.LeakSuspected:
		return ExitLeak
	case out.Verdict == detect.InsufficientData.String():
		for _, s := range out.Series {
			if s.Verdict == out.Verdict {
				fmt.Fprintf(stderr, "leak analyze: cannot tell: %s: %s\n", s.Name, s.Reason)
			}
		}
		return ExitCannotTell
	}
	return ExitNoLeak
}

// summarise sets the document's verdict from the worst series: leak if any
// series leaks, else insufficient_data if any cannot be judged, else
// no_leak.
func summarise(out *Output) {
	rank := map[string]int{detect.NoLeak.String(): 0, detect.InsufficientData.String(): 1, detect.LeakSuspected.String(): 2}
	best := -1
	for i, s := range out.Series {
		if best < 0 || rank[s.Verdict] > rank[out.Series[best].Verdict] {
			best = i
		}
	}
	if best >= 0 {
		b := out.Series[best]
		out.Verdict, out.LeakSuspected, out.SlopeBytesPerSecond = b.Verdict, b.LeakSuspected, b.SlopeBytesPerSecond
	}
}

func readInput(name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxInput {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxInput>>20)
	}
	return data, nil
}

// parse detects the format: a JSON object, or else CSV.
func parse(data []byte, all bool) (string, []Series, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		ss, err := ParsePromJSON(data)
		if err != nil {
			return "prometheus", nil, err
		}
		if !all {
			ss = ss[:1]
		}
		return "prometheus", ss, nil
	}
	s, err := ParseCSV(bytes.NewReader(data))
	if err != nil {
		return "csv", nil, err
	}
	return "csv", []Series{s}, nil
}

func parseWindows(s string) ([]time.Duration, error) {
	var out []time.Duration
	for part := range strings.SplitSeq(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration", part)
		}
		out = append(out, d)
	}
	return out, nil
}

func joinWindows(ws []time.Duration) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = detect.FormatDuration(w)
	}
	return strings.Join(s, ",")
}

func fmtNum(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func writeText(w io.Writer, out Output) {
	fmt.Fprintf(w, "file: %s (%s, %d series)\n", out.File, out.Format, len(out.Series))
	for _, s := range out.Series {
		fmt.Fprintf(w, "\nseries: %s\n", s.Name)
		fmt.Fprintf(w, "samples: %d from %s to %s (%s), %d restarts\n", s.Samples,
			s.Start.UTC().Format(time.RFC3339), s.End.UTC().Format(time.RFC3339), detect.FormatDuration(s.End.Sub(s.Start)), s.Restarts)
		fmt.Fprintf(w, "verdict: %s (%s)\n\n", s.Verdict, s.Reason)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "window\tverdict\tsamples\tOLS MB/h\tOLS R²\tfloor MB/h\tfloor R²\tp-value\tfirst suspected\t")
		for _, win := range s.Windows {
			first := "-"
			if win.FirstSuspected != nil {
				first = win.FirstSuspected.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", win.Window, win.Verdict, win.Samples,
				fmtNum(win.OLSSlopeMBPerHour, "%.3f"), fmtNum(win.OLSRSquared, "%.3f"),
				fmtNum(win.FloorSlopeMBPerHour, "%.3f"), fmtNum(win.FloorRSquared, "%.3f"), fmtNum(win.PValue, "%.3g"), first)
		}
		tw.Flush()
		fmt.Fprintln(w)
		for _, win := range s.Windows {
			fmt.Fprintf(w, "%s: %s\n", win.Window, win.Reason)
		}
	}
	fmt.Fprintf(w, "\nresult: %s\n", out.Verdict)
}
