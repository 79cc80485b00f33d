package oneshot

import (
	"math"
	"strings"
)

// sparkLevels are the eight levels of a sparkline, lowest first.
const sparkLevels = "▁▂▃▄▅▆▇█"

// sparkline draws values as at most width block characters, scaled from the
// series' minimum (lowest block) to its maximum (highest block). Longer
// series are reduced to width columns, each the mean of its share of the
// values. A flat series is drawn at the lowest level; NaN values are
// skipped.
func sparkline(values []float64, width int) string {
	vals := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 || width < 1 {
		return ""
	}
	if len(vals) > width {
		cols := make([]float64, width)
		for c := range cols {
			lo, hi := c*len(vals)/width, (c+1)*len(vals)/width
			var sum float64
			for _, v := range vals[lo:hi] {
				sum += v
			}
			cols[c] = sum / float64(hi-lo)
		}
		vals = cols
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals {
		lo, hi = min(lo, v), max(hi, v)
	}
	levels := []rune(sparkLevels)
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if hi > lo {
			i = int(math.Round((v - lo) / (hi - lo) * float64(len(levels)-1)))
		}
		b.WriteRune(levels[min(max(i, 0), len(levels)-1)])
	}
	return b.String()
}
