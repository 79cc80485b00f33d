package oneshot

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
	"github.com/generic-corp/soak-exporter/internal/leak/stats"
)

// The HTML report: one self-contained page (inline CSS and SVG, no script,
// no external asset) to attach to a pull request or a CI run.

// htmlFigure is one row of a figures table.
type htmlFigure struct{ Name, Value string }

// htmlSection is a titled group of figures.
type htmlSection struct {
	Title   string
	Figures []htmlFigure
}

// htmlChart is a chart with the sentence that explains it.
type htmlChart struct {
	SVG     template.HTML
	Caption string
}

// htmlPage is the data of the page template.
type htmlPage struct {
	Title       string
	Command     string
	Version     string
	Verdict     string
	Passed      bool
	Interrupted bool
	Subtitle    []string
	Criteria    []Criterion
	Actions     []ActionItem
	Charts      []htmlChart
	Sections    []htmlSection
	Notes       []string
}

func renderHTML(p htmlPage) ([]byte, error) {
	t, err := template.New("report").Parse(htmlTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse html template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("render html: %w", err)
	}
	return buf.Bytes(), nil
}

func verdictOf(cs []Criterion, interrupted bool) (string, bool) {
	failed := 0
	for _, c := range cs {
		if !c.Passed {
			failed++
		}
	}
	switch {
	case interrupted:
		return "INTERRUPTED: the run did not complete", false
	case failed == 0:
		return fmt.Sprintf("PASSED: %d of %d criteria met", len(cs), len(cs)), true
	}
	return fmt.Sprintf("FAILED: %d of %d criteria failed", failed, len(cs)), false
}

func runLine(started, finished time.Time) string {
	return fmt.Sprintf("%s to %s UTC (%s)", started.UTC().Format("2006-01-02 15:04:05"), finished.UTC().Format("15:04:05"),
		fmtDuration(finished.Sub(started).Round(time.Second)))
}

// loadHTML renders the HTML report of a loadtest.
func loadHTML(r LoadReport) ([]byte, error) {
	s := r.Settings
	verdict, ok := verdictOf(r.Criteria, r.Interrupted)
	p := htmlPage{
		Title: "soak-exporter loadtest", Command: "loadtest", Version: r.Version,
		Verdict: verdict, Passed: ok, Interrupted: r.Interrupted,
		Criteria: r.Criteria, Actions: r.ActionItems, Notes: r.Notes,
	}
	for _, t := range s.Targets {
		p.Subtitle = append(p.Subtitle, "Target "+t.URL)
	}
	p.Subtitle = append(p.Subtitle,
		fmt.Sprintf("%d connections, %s events/s, %s measured after a %s warmup, driver %s",
			s.Connections, strconv.FormatFloat(s.EventRate, 'f', -1, 64),
			fmtDuration(secondsDuration(s.Duration)), fmtDuration(secondsDuration(s.Warmup)), s.Driver),
		runLine(r.StartedAt, r.FinishedAt))

	limit := threshold(r.Criteria, "event_latency_p95")
	iv := r.Intervals
	n := len(iv.Points)
	xs, p50, p95, mx := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	sent, acked, lost := make([]float64, n), make([]float64, n), make([]float64, n)
	for i, pt := range iv.Points {
		xs[i] = pt.T + iv.Width/2
		p50[i], p95[i], mx[i] = float64(pt.P50), float64(pt.P95), float64(pt.MaxLat)
		sent[i], acked[i], lost[i] = float64(pt.Sent)/iv.Width, float64(pt.Acked)/iv.Width, float64(pt.Lost)/iv.Width
	}
	p.Charts = append(p.Charts, htmlChart{
		SVG: lineChart{
			title: "Event latency over time", yFmt: fmtAxisSeconds, yFromZero: true,
			lines: []chartLine{
				{name: "max", color: colGrey, xs: xs, ys: mx, width: 1},
				{name: "p95", color: colOrange, xs: xs, ys: p95},
				{name: "p50", color: colBlue, xs: xs, ys: p50},
			},
			rules:     []chartRule{{y: limit, label: "p95 threshold " + fmtSeconds(limit), color: colRed}},
			shadeFrom: 0, shadeTo: iv.MeasuredFrom, shadeLabel: "warmup",
		}.svg(),
		Caption: fmt.Sprintf("Latency of the acks received in each %s interval, from the scheduled send time (open loop); p50 and p95 per interval are read from a histogram (±6 %%), the maximum is exact. The criterion judges the p95 of the whole measured phase: %s.",
			fmtDuration(secondsDuration(iv.Width)), fmtSeconds(float64(r.Events.Latency.P95))),
	})
	p.Charts = append(p.Charts, htmlChart{
		SVG: lineChart{
			title: "Events per second", yFmt: fmtAxisCount, yFromZero: true,
			lines: []chartLine{
				{name: "sent", color: colBlue, xs: xs, ys: sent},
				{name: "acked", color: colGreen, xs: xs, ys: acked, dash: true},
				{name: "lost", color: colRed, xs: xs, ys: lost},
			},
			shadeFrom: 0, shadeTo: iv.MeasuredFrom, shadeLabel: "warmup",
		}.svg(),
		Caption: "Events sent, acked and lost per second, by the time each happened (a lost event is counted when its ack timeout expires).",
	})
	climit := threshold(r.Criteria, "connection_time_p95")
	bins := connectBins(r.Connections.Histogram, climit)
	caption := fmt.Sprintf("Time from dial to the namespace CONNECT answer of the %d connections established: p50 %s, p95 %s, p99 %s.",
		r.Connections.Established, fmtSeconds(float64(r.Connections.Establishment.P50)),
		fmtSeconds(float64(r.Connections.Establishment.P95)), fmtSeconds(float64(r.Connections.Establishment.P99)))
	if r.Connections.Establishment.Sampled {
		caption += " Counts are of a uniform sample of the connections."
	}
	p.Charts = append(p.Charts, htmlChart{
		SVG:     barChart("Connection time distribution", "above the p95 threshold ("+fmtSeconds(climit)+")", bins),
		Caption: caption,
	})

	c, e, d := r.Connections, r.Events, r.Disconnects
	p.Sections = []htmlSection{
		{Title: "Connections (whole run)", Figures: []htmlFigure{
			{"Attempts", strconv.FormatUint(c.Attempts, 10)},
			{"Established", strconv.FormatUint(c.Established, 10)},
			{"Failed", strconv.FormatUint(c.Failed, 10) + reasons(c.FailuresByReason)},
			{"Success rate", fmtPct(float64(c.SuccessRatio))},
			{"Establishment time", fmt.Sprintf("avg %s, p50 %s, p95 %s, p99 %s", fmtSeconds(float64(c.Establishment.Avg)),
				fmtSeconds(float64(c.Establishment.P50)), fmtSeconds(float64(c.Establishment.P95)), fmtSeconds(float64(c.Establishment.P99)))},
			{"Unexpected disconnects", fmt.Sprintf("%d (%s of connections)%s", d.Unexpected, fmtPct(float64(d.Ratio)), reasons(unexpectedOnly(d.ByReason)))},
		}},
		{Title: fmt.Sprintf("Events %q (measured phase, %s)", e.Event, fmtSeconds(e.Measured)), Figures: []htmlFigure{
			{"Sent", strconv.FormatUint(e.Sent, 10)},
			{"Acked", fmt.Sprintf("%d (%s/s)", e.Acked, strconv.FormatFloat(roundTo(float64(e.Throughput), 1), 'f', -1, 64))},
			{"Lost", fmt.Sprintf("%d (loss rate %s, %d late)", e.Lost, fmtPct(float64(e.LossRatio)), e.Late)},
			{"Not sent", fmt.Sprintf("%d skipped (client not connected), %d dropped (agent behind)", e.Skipped, e.Dropped)},
			{"Latency", fmt.Sprintf("avg %s, p50 %s, p95 %s, p99 %s, max %s", fmtSeconds(float64(e.Latency.Avg)), fmtSeconds(float64(e.Latency.P50)),
				fmtSeconds(float64(e.Latency.P95)), fmtSeconds(float64(e.Latency.P99)), fmtSeconds(float64(e.Latency.Max)))},
		}},
		{Title: "Agent memory (this process)", Figures: []htmlFigure{
			{"Heap", memFigure(r.AgentMemory.Heap)},
			{"RSS", memFigure(r.AgentMemory.RSS)},
		}},
	}
	return renderHTML(p)
}

// connectBins lays the connect-time histogram on the 1-2-5 scale from one
// bin below the fastest connection to one bin past the slowest or the
// threshold, whichever is higher, so that the distance to the threshold
// shows; bins beyond the threshold are marked.
func connectBins(hist []HistBin, limit float64) []barBin {
	if len(hist) == 0 {
		return nil
	}
	edges := histEdges()
	counts := map[int]uint64{}
	lo, hi := len(edges), -1
	for _, h := range hist {
		i, _ := slices.BinarySearch(edges, float64(h.Upper))
		if math.IsNaN(float64(h.Upper)) {
			i = len(edges) - 1
		}
		i = min(i, len(edges)-1)
		counts[i] += h.Count
		lo, hi = min(lo, i), max(hi, i)
	}
	if finite(limit) {
		li, _ := slices.BinarySearch(edges, limit)
		hi = max(hi, li+1)
	}
	lo, hi = max(lo-1, 0), min(hi, len(edges)-1)
	out := make([]barBin, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		prev := 0.0
		if i > 0 {
			prev = edges[i-1]
		}
		label := "≤ " + fmtSeconds(edges[i])
		if math.IsInf(edges[i], 1) {
			label = "> " + fmtSeconds(prev)
		}
		out = append(out, barBin{label: label, count: counts[i], alert: finite(limit) && prev >= limit})
	}
	return out
}

func memFigure(s SeriesReport) string {
	if !s.Available {
		return "not available"
	}
	return fmt.Sprintf("min %s, avg %s, max %s", fmtMB(float64(s.Min)), fmtMB(float64(s.Avg)), fmtMB(float64(s.Max)))
}

// threshold is the threshold of the named criterion, NaN if absent.
func threshold(cs []Criterion, name string) float64 {
	for _, c := range cs {
		if c.Name == name {
			return float64(c.Threshold)
		}
	}
	return math.NaN()
}

// leakHTML renders the HTML report of a leaktest.
func leakHTML(r LeakReport) ([]byte, error) {
	s := r.Settings
	verdict, ok := verdictOf(r.Criteria, r.Interrupted)
	p := htmlPage{
		Title: "soak-exporter leaktest", Command: "leaktest", Version: r.Version,
		Verdict: verdict, Passed: ok, Interrupted: r.Interrupted,
		Criteria: r.Criteria, Actions: r.ActionItems, Notes: r.Notes,
	}
	for _, t := range s.Targets {
		p.Subtitle = append(p.Subtitle, "Target "+t.URL)
	}
	p.Subtitle = append(p.Subtitle,
		"Memory source "+r.Source.Description,
		fmt.Sprintf("%s, a sample every %s, %d clients at %s actions/min each; %s judged",
			fmtDuration(secondsDuration(s.Duration)), fmtDuration(secondsDuration(s.Sampling)), s.Clients,
			strconv.FormatFloat(s.Activity, 'f', -1, 64), kindTitle(s.Kind)),
		runLine(r.StartedAt, r.FinishedAt))
	kinds := []string{s.Kind}
	if other := map[string]string{kindHeap: kindRSS, kindRSS: kindHeap}[s.Kind]; other != "" {
		kinds = append(kinds, other)
	}
	for _, k := range kinds {
		ls := r.series(k)
		if !ls.Available {
			continue
		}
		p.Charts = append(p.Charts, memoryChart(r.Timeline, k, ls, k == s.Kind))
	}
	for _, k := range kinds {
		ls := r.series(k)
		title := kindTitle(k)
		if k == s.Kind {
			title += " (judged)"
		}
		if !ls.Available {
			p.Sections = append(p.Sections, htmlSection{Title: title, Figures: []htmlFigure{{"Series", "not reported by this memory source"}}})
			continue
		}
		r2 := "n/a"
		if v := float64(ls.RSquared); !math.IsNaN(v) {
			r2 = fmt.Sprintf("%.2f", v)
		}
		growthPct := "n/a"
		if g := float64(ls.GrowthRatio); !math.IsNaN(g) {
			growthPct = fmt.Sprintf("%+.1f%%", g*100)
		}
		p.Sections = append(p.Sections, htmlSection{Title: title, Figures: []htmlFigure{
			{"Initial, final", fmt.Sprintf("%s, %s (growth %s, %s)", fmtMB(float64(ls.Initial)), fmtMB(float64(ls.Final)), fmtSignedMB(float64(ls.Growth)), growthPct)},
			{"Min, avg, max", fmt.Sprintf("%s, %s, %s (%d samples)", fmtMB(float64(ls.Min)), fmtMB(float64(ls.Avg)), fmtMB(float64(ls.Max)), ls.Samples)},
			{"Leak rate (least squares)", fmt.Sprintf("%s, R² %s", fmtRate(float64(ls.LeakRate)), r2)},
			{"Robust verdict", fmt.Sprintf("%s (%s)", ls.Robust.Verdict, ls.Robust.Reason)},
			{"Floor slope", fmt.Sprintf("%s (practical minimum %s), %d of %d buckets of %s", fmtRate(float64(ls.Robust.FloorSlope)),
				fmtRate(float64(ls.Robust.MinSlope)), ls.Robust.FilledBuckets, ls.Robust.Buckets, fmtDuration(secondsDuration(ls.Robust.Bucket)))},
		}})
	}
	a := r.Activity
	p.Sections = append(p.Sections, htmlSection{Title: "Activity", Figures: []htmlFigure{
		{"Connections", fmt.Sprintf("%d established, %d failed, %d unexpected disconnects", a.Established, a.Failed, a.Unexpected)},
		{"Events", fmt.Sprintf("%d sent, %d acked, %d lost (loss rate %s), latency p95 %s", a.Sent, a.Acked, a.Lost, fmtPct(float64(a.LossRatio)), fmtSeconds(float64(a.Latency.P95)))},
	}})
	return renderHTML(p)
}

// memoryChart draws one memory series with its least-squares line and the
// floor the robust detector judges: each bucket's minimum and their
// Theil-Sen line.
func memoryChart(tl []TimelinePoint, kind string, ls LeakSeries, judged bool) htmlChart {
	var xs, ys []float64
	for _, p := range tl {
		v := float64(p.Heap)
		if kind == kindRSS {
			v = float64(p.RSS)
		}
		xs, ys = append(xs, p.T), append(ys, v)
	}
	var fx, fy []float64 // finite points
	for i := range xs {
		if finite(ys[i]) {
			fx, fy = append(fx, xs[i]), append(fy, ys[i])
		}
	}
	lines := []chartLine{{name: kindTitle(kind) + " samples", color: colBlue, xs: xs, ys: ys, dots: len(fx) <= 400, width: 1.2}}
	caption := ""
	if slope, icept, _, ok := stats.OLS(fx, fy); ok && len(fx) >= 2 {
		if rs := float64(ls.LeakRate) * detect.MB / 3600; finite(rs) {
			// The report's own figure (computed on unrounded times):
			// the same line through the means.
			var mx, my float64
			for i := range fx {
				mx, my = mx+fx[i], my+fy[i]
			}
			mx, my = mx/float64(len(fx)), my/float64(len(fy))
			slope, icept = rs, my-rs*mx
		}
		x0, x1 := fx[0], fx[len(fx)-1]
		lines = append(lines, chartLine{name: "least squares " + fmtRate(slope*3600/detect.MB), color: colOrange,
			xs: []float64{x0, x1}, ys: []float64{icept + slope*x0, icept + slope*x1}, dash: true, width: 2})
	}
	bx, by := bucketMinima(fx, fy, ls.Robust.Bucket)
	if len(bx) >= 2 {
		lines = append(lines, chartLine{name: "floor (bucket minima)", color: colPurple, xs: bx, ys: by, dots: true, noLine: true})
		slope, icept, _, ok := stats.TheilSen(bx, by, nil)
		if rs := float64(ls.Robust.FloorSlope) * detect.MB / 3600; ok && finite(rs) {
			// The detector's own slope (its buckets and level-shift
			// removal), through these minima by Sen's intercept.
			slope = rs
			res := make([]float64, len(bx))
			for i := range bx {
				res[i] = by[i] - slope*bx[i]
			}
			icept = stats.Median(res)
		}
		if ok {
			x0, x1 := fx[0], fx[len(fx)-1]
			lines = append(lines, chartLine{name: "floor trend " + fmtRate(slope*3600/detect.MB), color: colPurple,
				xs: []float64{x0, x1}, ys: []float64{icept + slope*x0, icept + slope*x1}, width: 2})
		}
		caption = fmt.Sprintf(" The floor is the minimum of each %s bucket (the memory left after the GC), with the detector's floor slope; the detector judges it (after removing level shifts) and said %s: %s.",
			fmtDuration(secondsDuration(ls.Robust.Bucket)), ls.Robust.Verdict, ls.Robust.Reason)
	}
	title := kindTitle(kind) + " over time"
	if judged {
		title += " (judged)"
	}
	return htmlChart{
		SVG:     lineChart{title: title, yFmt: fmtAxisMB, lines: lines}.svg(),
		Caption: "Samples of the target's memory with the least-squares line of the old suite." + caption,
	}
}

// bucketMinima returns the minimum of each bucket of width seconds (from
// the first x), at the time of that minimum.
func bucketMinima(xs, ys []float64, width float64) (bx, by []float64) {
	if len(xs) == 0 || !(width > 0) {
		return nil, nil
	}
	cur := -1
	for i, x := range xs {
		b := int((x - xs[0]) / width)
		if b != cur {
			bx, by = append(bx, x), append(by, ys[i])
			cur = b
			continue
		}
		if ys[i] < by[len(by)-1] {
			bx[len(bx)-1], by[len(by)-1] = x, ys[i]
		}
	}
	return bx, by
}

const htmlTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}: {{.Verdict}}</title>
<style>
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328; background: #f6f8fa; }
main { max-width: 1040px; margin: 0 auto; padding: 16px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
.sub { color: #59636e; margin: 0; font-size: 14px; overflow-wrap: anywhere; }
.verdict { margin: 14px 0; padding: 12px 16px; border-radius: 6px; font-weight: 600; font-size: 18px; color: #fff; }
.verdict.pass { background: #1a7f37; }
.verdict.fail { background: #cf222e; }
.card { background: #fff; border: 1px solid #d1d9e0; border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e6ebf0; vertical-align: top; }
th { font-size: 13px; color: #59636e; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
#criteria td:first-child { white-space: nowrap; }
tr.failed td { background: #ffebe9; }
.ok { color: #1a7f37; font-weight: 600; }
.ko { color: #cf222e; font-weight: 600; }
.detail { color: #59636e; font-size: 13px; }
.actions h3 { font-size: 15px; margin: 10px 0 4px; color: #cf222e; }
.actions ul { margin: 0 0 8px; padding-left: 20px; }
svg.chart { width: 100%; height: auto; display: block; }
svg .ct { font-size: 14px; font-weight: 600; fill: #1f2328; }
svg .tk { font-size: 11px; fill: #59636e; }
svg .lg { font-size: 12px; fill: #1f2328; }
svg .grid { stroke: #e6ebf0; stroke-width: 1; }
svg .frame { fill: none; stroke: #afb8c1; stroke-width: 1; }
.caption { color: #59636e; font-size: 13px; margin: 4px 0 0; }
.nodata { color: #59636e; font-style: italic; }
.figs td:first-child { width: 34%; color: #59636e; }
.notes li { margin: 4px 0; }
footer { color: #59636e; font-size: 12px; margin: 24px 0 8px; }
@media (max-width: 640px) { main { padding: 8px; } .figs td:first-child { width: 45%; } }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{range .Subtitle}}<p class="sub">{{.}}</p>
{{end}}
<div class="verdict {{if .Passed}}pass{{else}}fail{{end}}" id="verdict">{{if .Passed}}✓{{else}}✗{{end}} {{.Verdict}}</div>

<section class="card" id="criteria">
<h2>Pass criteria</h2>
<table>
<thead><tr><th></th><th>Criterion</th><th>Measured</th><th>Threshold</th></tr></thead>
<tbody>
{{range .Criteria}}<tr class="{{if .Passed}}passed{{else}}failed{{end}}" data-criterion="{{.Name}}"><td>{{if .Passed}}<span class="ok">✓ pass</span>{{else}}<span class="ko">✗ fail</span>{{end}}</td><td>{{.Title}}{{if .Detail}}<div class="detail">{{.Detail}}</div>{{end}}</td><td class="num">{{.Observed}}</td><td class="num">{{.Limit}}</td></tr>
{{end}}</tbody>
</table>
</section>
{{if .Actions}}
<section class="card actions" id="actions">
<h2>Action items</h2>
{{range .Actions}}<h3>{{.Title}} failed</h3>
<ul>
{{range .Items}}<li>{{.}}</li>
{{end}}</ul>
{{end}}</section>
{{end}}
{{range .Charts}}<section class="card">
{{.SVG}}
<p class="caption">{{.Caption}}</p>
</section>
{{end}}
{{range .Sections}}<section class="card">
<h2>{{.Title}}</h2>
<table class="figs">
{{range .Figures}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>
{{end}}</table>
</section>
{{end}}
{{if .Notes}}<section class="card notes">
<h2>Notes</h2>
<ul>
{{range .Notes}}<li>{{.}}</li>
{{end}}</ul>
</section>
{{end}}
<footer>soak-exporter {{.Version}}, {{.Command}}. The JSON report (--json) has every figure of this page.</footer>
</main>
</body>
</html>
`
