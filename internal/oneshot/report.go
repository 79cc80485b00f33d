package oneshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Float is a number in a JSON report; NaN and infinities (no data) are
// written as null.
type Float float64

// MarshalJSON writes f, or null when it is not finite.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// TargetInfo names one target of a run.
type TargetInfo struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Dist is a distribution in a report: durations in seconds.
type Dist struct {
	Count uint64 `json:"count"`
	Avg   Float  `json:"avg"`
	P50   Float  `json:"p50"`
	P95   Float  `json:"p95"`
	P99   Float  `json:"p99"`
	Min   Float  `json:"min"`
	Max   Float  `json:"max"`
	// Sampled is true when the percentiles come from a uniform sample of
	// the values (more than the recorder keeps); count, avg, min and max
	// are always exact.
	Sampled bool `json:"sampled"`
}

func distOf(s Summary) Dist {
	return Dist{
		Count: s.Count, Avg: Float(s.Avg), P50: Float(s.P50), P95: Float(s.P95), P99: Float(s.P99),
		Min: Float(s.Min), Max: Float(s.Max), Sampled: s.Sampled,
	}
}

// Criterion is one pass criterion with its threshold and outcome.
type Criterion struct {
	// Name is a stable identifier, e.g. "event_latency_p95".
	Name string `json:"name"`
	// Title is the human name, e.g. "Event latency p95".
	Title string `json:"title"`
	// Op is how Value compares with Threshold: ">", "<", "<=" or "!=".
	Op string `json:"op"`
	// Value and Threshold are in Unit ("ratio", "seconds", "mb_per_hour");
	// for a verdict they are null and Observed/Limit carry the text.
	Value     Float  `json:"value"`
	Threshold Float  `json:"threshold"`
	Unit      string `json:"unit"`
	// Observed and Limit are Value and Threshold as printed.
	Observed string `json:"observed"`
	Limit    string `json:"limit"`
	Passed   bool   `json:"passed"`
	// Detail explains a failure that has no value (no data).
	Detail string `json:"detail,omitempty"`
}

// SeriesReport summarises one memory series (bytes).
type SeriesReport struct {
	Available bool  `json:"available"`
	Samples   int   `json:"samples"`
	Initial   Float `json:"initial_bytes"`
	Final     Float `json:"final_bytes"`
	Min       Float `json:"min_bytes"`
	Avg       Float `json:"avg_bytes"`
	Max       Float `json:"max_bytes"`
	// Growth is Final - Initial; GrowthRatio is Growth / Initial.
	Growth      Float  `json:"growth_bytes"`
	GrowthRatio Float  `json:"growth_ratio"`
	Sparkline   string `json:"sparkline"`
}

// sparkWidth is the width of report sparklines.
const sparkWidth = 60

func seriesReport(s seriesStats) SeriesReport {
	r := SeriesReport{
		Available: s.Available, Samples: s.N,
		Initial: Float(s.Initial), Final: Float(s.Final), Min: Float(s.Min), Avg: Float(s.Avg), Max: Float(s.Max),
		Growth: Float(math.NaN()), GrowthRatio: Float(math.NaN()),
		Sparkline: sparkline(s.Values, sparkWidth),
	}
	if s.Available {
		r.Growth = Float(s.Final - s.Initial)
		if s.Initial > 0 {
			r.GrowthRatio = Float((s.Final - s.Initial) / s.Initial)
		}
	}
	return r
}

// TimelinePoint is one memory sample of a report's timeline; T is seconds
// since the first sample.
type TimelinePoint struct {
	T    float64 `json:"t_seconds"`
	Heap Float   `json:"heap_bytes"`
	RSS  Float   `json:"rss_bytes"`
}

func timelineOf(points []memPoint) []TimelinePoint {
	out := make([]TimelinePoint, 0, len(points))
	for _, p := range points {
		out = append(out, TimelinePoint{
			T:    roundTo(p.T.Sub(points[0].T).Seconds(), 3),
			Heap: Float(p.Heap), RSS: Float(p.RSS),
		})
	}
	return out
}

func roundTo(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// reportFlags adds the report file flags shared by every one-shot command.
func reportFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.ReportJSON, "json", c.ReportJSON, "also write the JSON report to `FILE` (- for stdout; SOAK_REPORT_JSON)")
	fs.StringVar(&c.ReportHTML, "html", c.ReportHTML, "also write a self-contained HTML report with charts to `FILE` (SOAK_REPORT_HTML)")
	fs.StringVar(&c.ReportJUnit, "junit", c.ReportJUnit, "also write a JUnit XML file, one test case per criterion, to `FILE` (SOAK_REPORT_JUNIT)")
}

// reportFile is the destination of one report file, opened before the run
// so that a bad path stops it at once (exit 2) rather than after it.
type reportFile struct {
	path    string
	f       *os.File
	created bool
	done    bool
}

// openReportFile opens path for a report; "" means no report and "-"
// stdout. name names the flag and variable in errors.
func openReportFile(path, name string) (*reportFile, error) {
	r := &reportFile{path: path}
	if path == "" || path == "-" {
		return r, nil
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.f, r.created = f, errors.Is(statErr, fs.ErrNotExist)
	return r, nil
}

// write writes b as the report, to stdout for "-".
func (r *reportFile) write(stdout io.Writer, b []byte) error {
	r.done = true
	if r.path == "" {
		return nil
	}
	if r.f == nil {
		_, err := stdout.Write(b)
		return err
	}
	if err := r.f.Truncate(0); err != nil {
		_ = r.f.Close()
		return fmt.Errorf("write report %s: %w", r.path, err)
	}
	_, err := r.f.Write(b)
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write report %s: %w", r.path, err)
	}
	return nil
}

// close closes the file when no report was written, removing it if this
// run created it.
func (r *reportFile) close() {
	if r.done || r.f == nil {
		return
	}
	_ = r.f.Close()
	if r.created {
		_ = os.Remove(r.path)
	}
}

// outputs are the report files of a run: JSON, HTML and JUnit.
type outputs struct {
	json, html, junit *reportFile
}

// openOutputs opens the report files named by c.
func openOutputs(c Config) (*outputs, error) {
	o := &outputs{}
	var err error
	if o.json, err = openReportFile(c.ReportJSON, "--json (SOAK_REPORT_JSON)"); err != nil {
		return nil, err
	}
	if o.html, err = openReportFile(c.ReportHTML, "--html (SOAK_REPORT_HTML)"); err != nil {
		o.close()
		return nil, err
	}
	if o.junit, err = openReportFile(c.ReportJUnit, "--junit (SOAK_REPORT_JUNIT)"); err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

// close removes the files this run created and did not write.
func (o *outputs) close() {
	for _, r := range []*reportFile{o.json, o.html, o.junit} {
		if r != nil {
			r.close()
		}
	}
}

// write renders and writes each report asked for; the renderers are only
// called for the files asked for. It returns the first error, after trying
// every file.
func (o *outputs) write(stdout io.Writer, rep any, html, junit func() ([]byte, error)) error {
	var errs []error
	for _, w := range []struct {
		f      *reportFile
		render func() ([]byte, error)
	}{
		{o.json, func() ([]byte, error) { return marshalReport(rep) }},
		{o.html, html},
		{o.junit, junit},
	} {
		if w.f.path == "" {
			w.f.done = true
			continue
		}
		b, err := w.render()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := w.f.write(stdout, b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// marshalReport encodes a report as indented JSON with a final newline,
// leaving <, > and & as they are.
func marshalReport(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Text formatting helpers.

// fmtSeconds prints a duration in seconds with a unit suited to its size.
func fmtSeconds(s float64) string {
	switch {
	case math.IsNaN(s) || math.IsInf(s, 0):
		return "n/a"
	case s < 0.001:
		return fmt.Sprintf("%.0fµs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1fms", s*1e3)
	case s < 100:
		return fmt.Sprintf("%.2fs", s)
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

// fmtDuration prints a setting's duration.
func fmtDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d%time.Second == 0 && d >= time.Second {
		return detect.FormatDuration(d)
	}
	return fmtSeconds(d.Seconds())
}

// fmtPct prints a ratio as a percentage with two decimals.
func fmtPct(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", r*100)
}

// fmtMB prints bytes in MB (10^6 bytes).
func fmtMB(b float64) string {
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MB", b/1e6)
}

// fmtSignedMB prints a growth in MB with its sign.
func fmtSignedMB(b float64) string {
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f MB", b/1e6)
}

// fmtRate prints MB/hour.
func fmtRate(mbh float64) string {
	if math.IsNaN(mbh) || math.IsInf(mbh, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f MB/hour", mbh)
}

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}
