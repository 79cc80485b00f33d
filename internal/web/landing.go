package web

import (
	"html/template"
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/health"
)

// Page is the static part of the landing page.
type Page struct {
	// Version is the agent's version string.
	Version string
	// Mode says what is soaked, e.g. "built-in demo target" or "configured targets".
	Mode string
	// Driver is the client driver in use.
	Driver string
}

// Note is what the landing page shows of a target beyond its metrics.
type Note struct {
	Target           string
	LastConnectError string
	LastDisconnect   string
}

// TargetSummary is one row of the landing page, computed from the metrics.
type TargetSummary struct {
	Target                        string
	Desired, Connected            float64
	OnPolling                     float64 // clients connected over long-polling now
	Attempts, Failures            float64
	Disconnects                   float64
	Sent, Acked, Lost, Late, Skip float64
	LatencyP50, LatencyP95        float64 // seconds, from classic buckets; NaN without data
	LastConnectError              string
	LastDisconnect                string
}

// Summarize reads the gathered families into one summary per target, sorted
// by target name.
func Summarize(mfs []*dto.MetricFamily) []TargetSummary {
	by := map[string]*TargetSummary{}
	get := func(m *dto.Metric) *TargetSummary {
		t := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "target" {
				t = l.GetValue()
			}
		}
		ts, ok := by[t]
		if !ok {
			ts = &TargetSummary{Target: t, LatencyP50: math.NaN(), LatencyP95: math.NaN()}
			by[t] = ts
		}
		return ts
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "soak_clients_desired":
				get(m).Desired += m.GetGauge().GetValue()
			case "soak_clients_connected":
				get(m).Connected += m.GetGauge().GetValue()
			case "soak_clients_connected_by_transport":
				for _, l := range m.GetLabel() {
					if l.GetName() == "transport" && l.GetValue() == "polling" {
						get(m).OnPolling += m.GetGauge().GetValue()
					}
				}
			case "soak_connect_attempts_total":
				get(m).Attempts += m.GetCounter().GetValue()
			case "soak_connect_failures_total":
				get(m).Failures += m.GetCounter().GetValue()
			case "soak_disconnects_total":
				get(m).Disconnects += m.GetCounter().GetValue()
			case "soak_events_sent_total":
				get(m).Sent += m.GetCounter().GetValue()
			case "soak_events_acked_total":
				get(m).Acked += m.GetCounter().GetValue()
			case "soak_events_lost_total":
				get(m).Lost += m.GetCounter().GetValue()
			case "soak_events_late_total":
				get(m).Late += m.GetCounter().GetValue()
			case "soak_events_skipped_total":
				get(m).Skip += m.GetCounter().GetValue()
			case "soak_event_latency_seconds":
				ts := get(m)
				ts.LatencyP50 = BucketQuantile(0.5, m.GetHistogram())
				ts.LatencyP95 = BucketQuantile(0.95, m.GetHistogram())
			}
		}
	}
	out := make([]TargetSummary, 0, len(by))
	for _, ts := range by {
		out = append(out, *ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// BucketQuantile estimates a quantile from a histogram's classic cumulative
// buckets by linear interpolation, as PromQL's histogram_quantile does. It is
// NaN without observations.
func BucketQuantile(q float64, h *dto.Histogram) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	prevUpper, prevCount := 0.0, 0.0
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if c >= rank {
			if c == prevCount {
				return b.GetUpperBound()
			}
			return prevUpper + (b.GetUpperBound()-prevUpper)*(rank-prevCount)/(c-prevCount)
		}
		prevUpper, prevCount = b.GetUpperBound(), c
	}
	return prevUpper // in the +Inf bucket: the highest finite bound
}

const landingHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>soak-exporter</title>
<style>
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0 auto;padding:1em;max-width:72em;color:#222;overflow-wrap:anywhere}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .3em;border-bottom:1px solid #ccc}h3{font-size:1em;margin:.8em 0 .2em}
table{border-collapse:collapse;width:100%;max-width:48em}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
.good{background:#e3f5e1;color:#185c14}.bad{background:#fbe0de;color:#8a1710;font-weight:bold}.na{color:#555}
ul.alerts{padding:0;list-style:none}ul.alerts li{margin:.3em 0;padding:.4em .6em;border-left:4px solid #c0392b;background:#fbe0de}
p.ok{padding:.4em .6em;border-left:4px solid #2e8b2e;background:#e3f5e1}
.small{font-size:.85em;color:#555}
svg{width:100%;max-width:600px;height:auto;border:1px solid #ddd;background:#fafafa}
.cols{display:flex;flex-wrap:wrap;gap:0 2em}.cols>div{flex:1 1 18em;min-width:0}
th{overflow-wrap:normal}
@media (max-width:40em){body{padding:.5em}table{font-size:.8em}td,th{padding:2px 3px}}
</style>
</head><body>
<h1>soak-exporter</h1>
<p class="small">Keeps a pool of Socket.IO clients connected to its target(s), probes them and exports what it sees. Version {{.Page.Version}}; driver {{.Page.Driver}}; soaking: {{.Page.Mode}}. <a href="metrics">Metrics</a> · <a href="-/healthy">Health</a> · <a href="-/ready">Readiness</a>{{if .Pprof}} · <a href="debug/pprof/">Profiling</a>{{end}}</p>
{{range .Targets}}<section class="target" id="target-{{.Name}}">
<h2>Target {{.Name}}: <span class="clients {{.Clients.Class}}">{{.Clients.Text}}</span> clients connected</h2>
{{if .Conditions}}<ul class="alerts">{{range .Conditions}}<li class="condition bad">{{.}}</li>{{end}}</ul>{{else}}<p class="ok">No alert condition holds now.</p>{{end}}
<table class="figures"><tr><th>figure</th><th>last 1 min</th><th>last 10 min</th><th>since start</th><th>threshold</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td>{{range .Cells}}<td class="{{.Class}}">{{.Text}}</td>{{end}}<td class="na">{{.Thresh}}</td></tr>
{{end}}</table>
<div class="cols"><div><h3>Connect errors (10 min)</h3>{{if .ConnectErrors}}<ul>{{range .ConnectErrors}}<li>{{.Reason}}: {{.Count}}</li>{{end}}</ul>{{else}}<p class="small">none</p>{{end}}
{{if .LastMessage}}<p class="small">Last: <span class="message">{{.LastMessage}}</span></p>{{end}}</div>
<div><h3>Disconnect reasons (10 min)</h3>{{if .Disconnects}}<ul>{{range .Disconnects}}<li>{{.Reason}}: {{.Count}}</li>{{end}}</ul>{{else}}<p class="small">none</p>{{end}}
{{if .LastDisconnect}}<p class="small">Last: {{.LastDisconnect}}</p>{{end}}</div></div>
</section>
{{else}}<p>No target yet.</p>{{end}}
<h2>Memory and leaks</h2>
{{range .Memory}}<section class="memory">
<h3>{{.Name}}: <span class="verdict {{.Class}}">{{if .Verdict}}{{.Verdict}}{{else}}no verdict yet{{end}}</span></h3>
<p>Current {{.Current}} (limit {{.Limit}}); slope {{.Slope}}.{{if .Reason}} {{.Reason}}{{end}}</p>
{{if .Chart.HasData}}<svg viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}" role="img" aria-label="memory of the last {{.Chart.Span}}"><polyline fill="none" stroke="#1f5fa8" stroke-width="2" points="{{.Chart.Points}}"/></svg>
<p class="small">Last {{.Chart.Span}}: from {{.Chart.Min}} to {{.Chart.Max}}.</p>{{end}}
</section>
{{else}}<p class="small">No memory source configured.</p>{{end}}
{{if .HeapDiff}}<h3>What grew while a leak was suspected (last heap-capture diff)</h3>
<pre class="heapdiff">{{range .HeapDiff}}{{.}}
{{end}}</pre>{{end}}
<p class="small">"Last 1 min" and "last 10 min" come from the agent's rolling window (percentiles from a log-bucketed sketch, within 4.4 %); "since start" from the cumulative counters. Colours use the alert rules' thresholds; an alert fires only once its condition has held for the rule's "for:". Rendered {{.Now}}; the page reloads every 10 s.</p>
</body></html>
`

func newLandingTemplate() *template.Template {
	return template.Must(template.New("landing").Parse(landingHTML))
}

func (s *Server) landing() http.Handler {
	tmpl := newLandingTemplate()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		mfs, err := s.opts.Gatherer.Gather()
		if err != nil {
			s.log.Debug("gather for landing page", zap.Error(err))
		}
		notes := map[string]Note{}
		if s.opts.Notes != nil {
			for _, n := range s.opts.Notes() {
				notes[n.Target] = n
			}
		}
		var views []health.View
		if s.opts.Health != nil {
			views = s.opts.Health.Views()
		}
		var mem []MemorySeries
		if s.opts.Memory != nil {
			mem = s.opts.Memory.Series()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		var diff []string
		if s.opts.HeapDiff != nil {
			diff = s.opts.HeapDiff()
		}
		data := struct {
			Page     Page
			Targets  []targetPage
			Memory   []memoryPage
			HeapDiff []string
			Pprof    bool
			Now      string
		}{s.opts.Page, buildTargets(views, Summarize(mfs), notes), buildMemory(mem), diff, s.cfg.EnablePprof,
			s.opts.Now().UTC().Format(time.RFC3339)}
		if err := tmpl.Execute(w, data); err != nil {
			s.log.Debug("render landing page", zap.Error(err))
		}
	})
}
