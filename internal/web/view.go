package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/health"
)

// HealthView gives the landing page the recent figures of each target
// (health.Health implements it).
type HealthView interface {
	Views() []health.View
}

// MemoryView gives the landing page the memory series of the leak monitor.
type MemoryView interface {
	Series() []MemorySeries
}

// MemorySeries is one memory series (a source and kind) as the page shows it.
type MemorySeries struct {
	// Source and Kind name the series, e.g. "node-metrics" and "heap".
	Source, Kind string
	// Bytes is the latest sample; Limit the limit in force (0: none).
	Bytes, Limit float64
	// Slope is the deciding window's slope in bytes per second (NaN: none).
	Slope float64
	// Verdict and Reason are the detector's verdict and its explanation.
	Verdict, Reason string
	// Suspected: a leak is suspected (coloured bad).
	Suspected bool
	// Points are the samples of the last hours, oldest first, for the chart.
	Points []MemoryPoint
}

// MemoryPoint is one memory sample.
type MemoryPoint struct {
	Time  time.Time
	Bytes float64
}

// figureRow is one line of a target's table: a figure over the last minute,
// the last ten minutes and since start, each with its class.
type figureRow struct {
	Name   string
	Cells  [3]cell
	Thresh string // the threshold, in words
}

type cell struct {
	Text  string
	Class string // good, bad or na
}

// targetPage is one target's section.
type targetPage struct {
	Name           string
	Clients        cell
	Conditions     []string
	Rows           []figureRow
	ConnectErrors  []reasonLine
	Disconnects    []reasonLine
	LastMessage    string
	LastDisconnect string
}

type reasonLine struct {
	Reason string
	Count  int64
}

func classOf(bad, known bool) string {
	switch {
	case !known:
		return "na"
	case bad:
		return "bad"
	}
	return "good"
}

func count(n int64) cell { return cell{Text: strconv.FormatInt(n, 10), Class: "na"} }

func lossCell(lost, sent int64) cell {
	if sent == 0 {
		return cell{Text: "-", Class: "na"}
	}
	r := float64(lost) / float64(sent)
	return cell{Text: fmt.Sprintf("%d (%s)", lost, health.Percent(r)), Class: classOf(r > health.EventLossMax, true)}
}

func latencyCell(s float64, max time.Duration) cell {
	return cell{Text: health.Millis(s), Class: classOf(s > max.Seconds(), !math.IsNaN(s))}
}

func successCell(ok, attempts float64) cell {
	if attempts == 0 {
		return cell{Text: "-", Class: "na"}
	}
	r := math.Max(0, ok/attempts)
	return cell{Text: health.Percent(r), Class: classOf(r < health.ConnectSuccessMin, true)}
}

func dropCell(n int64) cell {
	return cell{Text: strconv.FormatInt(n, 10), Class: classOf(float64(n) > health.DroppedMax, true)}
}

func naCell() cell { return cell{Text: "-", Class: "na"} }

// plainLatency is a latency without a threshold (p50, p99).
func plainLatency(s float64) cell { return cell{Text: health.Millis(s), Class: "na"} }

// buildTargets joins the recent figures (views) with the totals (metrics).
func buildTargets(views []health.View, totals []TargetSummary, notes map[string]Note) []targetPage {
	byName := map[string]health.View{}
	names := []string{}
	for _, v := range views {
		byName[v.Target] = v
		names = append(names, v.Target)
	}
	tot := map[string]TargetSummary{}
	for _, t := range totals {
		tot[t.Target] = t
		if _, ok := byName[t.Target]; !ok {
			names = append(names, t.Target)
		}
	}
	out := make([]targetPage, 0, len(names))
	for _, name := range names {
		v, hasView := byName[name]
		ts := tot[name]
		connected, desired := int(ts.Connected), int(ts.Desired)
		if hasView && v.Desired > 0 {
			connected, desired = v.Connected, v.Desired
		}
		tp := targetPage{Name: name,
			Clients: cell{Text: fmt.Sprintf("%d / %d", connected, desired), Class: classOf(connected < desired, desired > 0)}}
		if ts.OnPolling > 0 {
			// Clients that stayed on long-polling: an upgrade refused (a
			// proxy without Upgrade headers) or SOAK_TRANSPORTS=polling.
			tp.Clients.Text += fmt.Sprintf(" (%d on long-polling)", int(ts.OnPolling))
		}
		m, ten := v.Minute, v.TenMinutes
		recent := func(f func(health.Figures) cell) [2]cell {
			if !hasView {
				return [2]cell{naCell(), naCell()}
			}
			return [2]cell{f(m), f(ten)}
		}
		row := func(name, thresh string, r [2]cell, total cell) figureRow {
			return figureRow{Name: name, Thresh: thresh, Cells: [3]cell{r[0], r[1], total}}
		}
		tp.Rows = []figureRow{
			row("connect attempts", "", recent(func(f health.Figures) cell { return count(f.Attempts) }), count(int64(ts.Attempts))),
			row("connect success", "≥ "+health.Percent(health.ConnectSuccessMin),
				recent(func(f health.Figures) cell { return successCell(float64(f.Attempts-f.Failures), float64(f.Attempts)) }),
				successCell(ts.Attempts-ts.Failures, ts.Attempts)),
			row("connect p95", "≤ "+health.Millis(health.ConnectP95Max.Seconds()),
				recent(func(f health.Figures) cell { return latencyCell(f.ConnectP95, health.ConnectP95Max) }), naCell()),
			row("requests sent", "", recent(func(f health.Figures) cell { return count(f.Sent) }), count(int64(ts.Sent))),
			row("lost", "= 0%", recent(func(f health.Figures) cell { return lossCell(f.Lost, f.Sent) }), lossCell(int64(ts.Lost), int64(ts.Sent))),
			row("late", "", recent(func(f health.Figures) cell { return count(f.Late) }), count(int64(ts.Late))),
			row("skipped (not connected)", "", recent(func(f health.Figures) cell { return count(f.Skipped) }), count(int64(ts.Skip))),
			row("dropped (agent backlog)", "= 0", recent(func(f health.Figures) cell { return dropCell(f.Dropped) }), naCell()),
			row("latency p50", "", recent(func(f health.Figures) cell { return plainLatency(f.P50) }), naCell()),
			row("latency p95", "≤ "+health.Millis(health.EventP95Max.Seconds()),
				recent(func(f health.Figures) cell { return latencyCell(f.P95, health.EventP95Max) }), naCell()),
			row("latency p99", "", recent(func(f health.Figures) cell { return plainLatency(f.P99) }), naCell()),
			row("disconnects", "", recent(func(f health.Figures) cell { return count(f.Disconnects) }), count(int64(ts.Disconnects))),
		}
		for _, c := range v.Conditions {
			s := fmt.Sprintf("%s for %s", c.Text, roundFor(c.For))
			if c.Firing {
				s += fmt.Sprintf(" (alert %s firing: past its %s)", c.Alert, roundFor(c.After))
			} else {
				s += fmt.Sprintf(" (alert %s fires after %s)", c.Alert, roundFor(c.After))
			}
			tp.Conditions = append(tp.Conditions, s)
		}
		for _, r := range v.ConnectErrors {
			tp.ConnectErrors = append(tp.ConnectErrors, reasonLine{r.Reason, r.Count})
		}
		for _, r := range v.Disconnects {
			tp.Disconnects = append(tp.Disconnects, reasonLine{r.Reason, r.Count})
		}
		tp.LastMessage = notes[name].LastConnectError
		tp.LastDisconnect = notes[name].LastDisconnect
		if tp.LastMessage == "" && v.LastConnectReason != "" {
			tp.LastMessage = strings.TrimSpace(v.LastConnectReason + ": " + v.LastConnectMessage)
		}
		out = append(out, tp)
	}
	return out
}

// roundFor writes a duration the way a person says it: "45 s", "3 min", "1 h 5 min".
func roundFor(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	}
	h := int(d.Hours())
	m := int(d.Minutes()) - 60*h
	if m == 0 {
		return strconv.Itoa(h) + " h"
	}
	return fmt.Sprintf("%d h %d min", h, m)
}

// memoryPage is one memory series as the page shows it.
type memoryPage struct {
	Name, Current, Limit, Slope, Verdict, Reason string
	Class                                        string
	Chart                                        chart
}

type chart struct {
	Points         string // SVG polyline points
	Min, Max, Span string
	Width, Height  int
	HasData        bool
}

func buildMemory(series []MemorySeries) []memoryPage {
	out := make([]memoryPage, 0, len(series))
	for _, s := range series {
		mp := memoryPage{Name: s.Source + " " + s.Kind, Current: bytesText(s.Bytes), Verdict: s.Verdict, Reason: s.Reason,
			Class: classOf(s.Suspected, s.Verdict != ""), Slope: "-", Limit: "none"}
		if s.Limit > 0 {
			mp.Limit = bytesText(s.Limit)
		}
		if !math.IsNaN(s.Slope) {
			mp.Slope = bytesText(s.Slope*3600) + "/h"
		}
		mp.Chart = buildChart(s.Points)
		out = append(out, mp)
	}
	return out
}

func buildChart(pts []MemoryPoint) chart {
	c := chart{Width: 600, Height: 120}
	if len(pts) < 2 {
		return c
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		lo, hi = math.Min(lo, p.Bytes), math.Max(hi, p.Bytes)
	}
	if hi == lo {
		hi = lo + 1
	}
	t0, t1 := pts[0].Time, pts[len(pts)-1].Time
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	var b strings.Builder
	for i, p := range pts {
		x := float64(c.Width) * p.Time.Sub(t0).Seconds() / span
		y := float64(c.Height-4) - float64(c.Height-8)*(p.Bytes-lo)/(hi-lo)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64))
	}
	c.Points, c.HasData = b.String(), true
	c.Min, c.Max, c.Span = bytesText(lo), bytesText(hi), roundFor(t1.Sub(t0))
	return c
}

// bytesText writes bytes in binary units ("312.4 MiB").
func bytesText(b float64) string {
	if math.IsNaN(b) {
		return "-"
	}
	neg := b < 0
	b = math.Abs(b)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	s := strconv.FormatFloat(b, 'f', 1, 64) + " " + units[i]
	if i == 0 {
		s = strconv.FormatFloat(b, 'f', 0, 64) + " B"
	}
	if neg {
		s = "-" + s
	}
	return s
}
