package web

import (
	"html/template"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
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

func newLandingTemplate() *template.Template {
	return template.Must(template.New("landing").Funcs(template.FuncMap{
		"ms": func(s float64) string {
			if math.IsNaN(s) {
				return "-"
			}
			return template.HTMLEscapeString(time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String())
		},
		"pct": func(part, whole float64) string {
			if whole == 0 {
				return "-"
			}
			return template.HTMLEscapeString(formatPct(100 * part / whole))
		},
		"n":   func(f float64) int64 { return int64(f) },
		"sub": func(a, b float64) float64 { return a - b },
	}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>soak-exporter</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}td:first-child{text-align:left}</style>
</head><body>
<h1>soak-exporter</h1>
<p>Keeps a pool of Socket.IO clients connected to its target(s), probes them with acked echo events, and exports what it sees. Version {{.Page.Version}}; driver {{.Page.Driver}}; soaking: {{.Page.Mode}}.</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="-/healthy">Health</a></li><li><a href="-/ready">Readiness</a></li>{{if .Pprof}}<li><a href="debug/pprof/">Profiling</a></li>{{end}}</ul>
<table><tr><th>target</th><th>connected / desired</th><th>connect attempts</th><th>connect success</th><th>disconnects</th><th>events sent</th><th>acked</th><th>lost</th><th>late</th><th>skipped</th><th>latency p50</th><th>latency p95</th><th>last connect error</th><th>last disconnect</th></tr>
{{range .Targets}}<tr><td>{{.Target}}</td><td>{{n .Connected}} / {{n .Desired}}</td><td>{{n .Attempts}}</td><td>{{pct (sub .Attempts .Failures) .Attempts}}</td><td>{{n .Disconnects}}</td><td>{{n .Sent}}</td><td>{{n .Acked}}</td><td>{{n .Lost}} ({{pct .Lost .Sent}})</td><td>{{n .Late}}</td><td>{{n .Skip}}</td><td>{{ms .LatencyP50}}</td><td>{{ms .LatencyP95}}</td><td>{{.LastConnectError}}</td><td>{{.LastDisconnect}}</td></tr>
{{else}}<tr><td colspan="14">no target yet</td></tr>{{end}}
</table>
<p>Counters are totals since the agent started; latency percentiles are estimated from the histogram buckets. Rendered {{.Now}}.</p>
</body></html>
`))
}

func formatPct(p float64) string {
	if p >= 99.995 && p < 100 {
		return "99.99%" // never round a failure up to 100%
	}
	return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(p, 'f', 2, 64), "0"), ".") + "%"
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
		targets := Summarize(mfs)
		if s.opts.Notes != nil {
			notes := map[string]Note{}
			for _, n := range s.opts.Notes() {
				notes[n.Target] = n
			}
			for i := range targets {
				n := notes[targets[i].Target]
				targets[i].LastConnectError, targets[i].LastDisconnect = n.LastConnectError, n.LastDisconnect
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		data := struct {
			Page    Page
			Targets []TargetSummary
			Pprof   bool
			Now     string
		}{s.opts.Page, targets, s.cfg.EnablePprof, s.opts.Now().UTC().Format(time.RFC3339)}
		if err := tmpl.Execute(w, data); err != nil {
			s.log.Debug("render landing page", zap.Error(err))
		}
	})
}
