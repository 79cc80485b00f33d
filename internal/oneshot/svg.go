package oneshot

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Inline SVG charts of the HTML report: no script, no external asset.

// Chart colours.
const (
	colBlue   = "#1f6feb"
	colOrange = "#d9730d"
	colGrey   = "#8c959f"
	colRed    = "#cf222e"
	colGreen  = "#1a7f37"
	colPurple = "#8250df"
)

// chartLine is one series of a line chart; NaN values break the line.
type chartLine struct {
	name   string
	color  string
	xs, ys []float64
	dash   bool
	dots   bool // a dot per point
	noLine bool // dots only
	width  float64
}

// chartRule is a horizontal line across the chart (a threshold).
type chartRule struct {
	y     float64
	label string
	color string
}

// lineChart is a chart of lines over x (seconds).
type lineChart struct {
	title     string
	yFmt      func(float64) string
	yFromZero bool
	lines     []chartLine
	rules     []chartRule
	// shade, when shadeTo > shadeFrom, greys the x range with shadeLabel.
	shadeFrom, shadeTo float64
	shadeLabel         string
}

const (
	svgW, svgH                     = 960.0, 280.0
	padL, padR, padT, padB         = 70.0, 20.0, 50.0, 36.0
	plotW, plotH                   = svgW - padL - padR, svgH - padT - padB
	barW, barH                     = 960.0, 260.0
	barPadL, barPadR, barPadT, bPB = 60.0, 20.0, 30.0, 44.0
)

// niceStep is a 1-2-5 step giving about n ticks over span.
func niceStep(span float64, n int) float64 {
	if !(span > 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// svg draws the chart, or a note when it has no data.
func (c lineChart) svg() template.HTML {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, l := range c.lines {
		for i, x := range l.xs {
			if y := l.ys[i]; finite(x) && finite(y) {
				xmin, xmax = min(xmin, x), max(xmax, x)
				ymin, ymax = min(ymin, y), max(ymax, y)
			}
		}
	}
	if !finite(xmin) {
		return template.HTML(`<p class="nodata">` + html.EscapeString(c.title) + `: no data.</p>`)
	}
	for _, r := range c.rules {
		if finite(r.y) {
			ymin, ymax = min(ymin, r.y), max(ymax, r.y)
		}
	}
	if c.yFromZero {
		ymin = min(0, ymin)
	}
	if ymax == ymin {
		ymax = ymin + max(math.Abs(ymin)*0.1, 1e-3)
	}
	pad := (ymax - ymin) * 0.05
	if !c.yFromZero || ymin < 0 {
		ymin -= pad
	}
	ymax += pad
	if xmax == xmin {
		xmax = xmin + 1
	}
	sx := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*plotW }
	sy := func(y float64) float64 { return padT + plotH - (y-ymin)/(ymax-ymin)*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, svgW, svgH, html.EscapeString(c.title))
	fmt.Fprintf(&b, `<text x="%.0f" y="18" class="ct">%s</text>`, padL, html.EscapeString(c.title))
	if c.shadeTo > c.shadeFrom {
		x0, x1 := sx(max(c.shadeFrom, xmin)), sx(min(c.shadeTo, xmax))
		if x1 > x0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#eaeef2"/>`, x0, padT, x1-x0, plotH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tk">%s</text>`, x0+4, padT+plotH-6, html.EscapeString(c.shadeLabel))
		}
	}
	// Grid and ticks.
	ys := niceStep(ymax-ymin, 5)
	for y := math.Ceil(ymin/ys) * ys; y <= ymax+ys*1e-9; y += ys {
		py := sy(y)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, padL, padL+plotW, py, py)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tk" text-anchor="end">%s</text>`, padL-6, py+4, html.EscapeString(c.yFmt(y)))
	}
	xs := niceTimeStep(xmax-xmin, 8)
	for x := math.Ceil(xmin/xs) * xs; x <= xmax+xs*1e-9; x += xs {
		px := sx(x)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, px, px, padT+plotH, padT+plotH+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tk" text-anchor="middle">%s</text>`, px, padT+plotH+18, html.EscapeString(fmtElapsed(x)))
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="frame"/>`, padL, padT, plotW, plotH)
	for _, l := range c.lines {
		width := l.width
		if width == 0 {
			width = 1.6
		}
		if !l.noLine {
			var d strings.Builder
			pen := false
			for i, x := range l.xs {
				y := l.ys[i]
				if !finite(x) || !finite(y) {
					pen = false
					continue
				}
				cmd := "L"
				if !pen {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, sx(x), sy(y))
				pen = true
			}
			dash := ""
			if l.dash {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="%.1f"%s/>`, strings.TrimSpace(d.String()), l.color, width, dash)
		}
		if l.dots {
			for i, x := range l.xs {
				if y := l.ys[i]; finite(x) && finite(y) {
					if l.noLine { // markers of their own: hollow, larger
						fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="none" stroke="%s" stroke-width="1.5"/>`, sx(x), sy(y), l.color)
					} else {
						fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"/>`, sx(x), sy(y), l.color)
					}
				}
			}
		}
	}
	for _, r := range c.rules {
		if !finite(r.y) {
			continue
		}
		py := sy(r.y)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="3 3"/>`, padL, padL+plotW, py, py, r.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tk" text-anchor="end" fill="%s">%s</text>`, padL+plotW-4, py-4, r.color, html.EscapeString(r.label))
	}
	// Legend, under the title.
	lx := padL
	for _, l := range c.lines {
		fmt.Fprintf(&b, `<rect x="%.1f" y="31" width="14" height="4" fill="%s"/><text x="%.1f" y="37" class="lg">%s</text>`, lx, l.color, lx+18, html.EscapeString(l.name))
		lx += 34 + 6.5*float64(len([]rune(l.name)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from escaped text
}

// barBin is one bar of a histogram.
type barBin struct {
	label string
	count uint64
	alert bool // drawn red: beyond the threshold
}

// barChart draws a histogram with a caption.
func barChart(title, alertLegend string, bins []barBin) template.HTML {
	if len(bins) == 0 {
		return template.HTML(`<p class="nodata">` + html.EscapeString(title) + `: no data.</p>`)
	}
	var top uint64
	for _, bn := range bins {
		top = max(top, bn.count)
	}
	pw, ph := barW-barPadL-barPadR, barH-barPadT-bPB
	slot := pw / float64(len(bins))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, barW, barH, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="18" class="ct">%s</text>`, barPadL, html.EscapeString(title))
	if alertLegend != "" {
		fmt.Fprintf(&b, `<rect x="%.1f" y="9" width="12" height="8" fill="%s"/><text x="%.1f" y="17" class="tk">%s</text>`, barPadL+420, colRed, barPadL+436, html.EscapeString(alertLegend))
	}
	ys := niceStep(float64(top), 4)
	ymax := math.Ceil(float64(top)*1.12/ys) * ys
	for y := 0.0; y <= ymax+1e-9; y += ys {
		py := barPadT + ph - y/ymax*ph
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, barPadL, barPadL+pw, py, py)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tk" text-anchor="end">%.0f</text>`, barPadL-6, py+4, y)
	}
	for i, bn := range bins {
		h := float64(bn.count) / ymax * ph
		x := barPadL + float64(i)*slot + slot*0.1
		fill := colBlue
		if bn.alert {
			fill = colRed
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d</title></rect>`,
			x, barPadT+ph-h, slot*0.8, h, fill, html.EscapeString(bn.label), bn.count)
		if bn.count > 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tk" text-anchor="middle">%d</text>`, x+slot*0.4, barPadT+ph-h-4, bn.count)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tk" text-anchor="middle">%s</text>`, x+slot*0.4, barPadT+ph+16, html.EscapeString(bn.label))
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="frame"/>`, barPadL, barPadT, pw, ph)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from escaped text
}

// niceTimeStep is a round step of time (seconds) giving about n ticks
// over span.
func niceTimeStep(span float64, n int) float64 {
	raw := span / float64(n)
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400} {
		if s >= raw {
			return s
		}
	}
	return niceStep(span, n)
}

// fmtElapsed prints seconds since the start as an axis label (1m30s).
func fmtElapsed(s float64) string {
	if s < 1 || s != math.Trunc(s) {
		return fmt.Sprintf("%gs", roundTo(s, 2))
	}
	return detect.FormatDuration(time.Duration(s) * time.Second)
}

// fmtAxisSeconds prints a latency axis label.
func fmtAxisSeconds(s float64) string {
	switch {
	case s == 0:
		return "0"
	case math.Abs(s) < 1:
		return fmt.Sprintf("%gms", roundTo(s*1e3, 3))
	}
	return fmt.Sprintf("%gs", roundTo(s, 3))
}

// fmtAxisMB prints a memory axis label.
func fmtAxisMB(b float64) string { return fmt.Sprintf("%g MB", noNegZero(roundTo(b/1e6, 2))) }

// noNegZero turns -0 (a tick just below zero, rounded) into 0.
func noNegZero(v float64) float64 {
	if v == 0 {
		return 0
	}
	return v
}

// fmtAxisCount prints a count axis label.
func fmtAxisCount(v float64) string { return fmt.Sprintf("%g", roundTo(v, 2)) }
