package quality

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

// Explain writes, for each firing of the rule on a series of family f, the
// series' parameters and what each window said at that moment, to help
// understand false alarms and late detections. At most limit firings.
func (d *Data) Explain(w io.Writer, r Rule, f Family, limit int) {
	n := 0
	for _, tr := range d.traces {
		if tr.series.Family != f {
			continue
		}
		act := d.active(r, tr)
		for i := range act {
			if !act[i] || (i > 0 && act[i-1]) {
				continue
			}
			if n >= limit {
				return
			}
			n++
			p := tr.series.Draw(rand.New(rand.NewPCG(tr.series.Seed, 0x9e3779b97f4a7c15)), d.Opts.Length.Seconds())
			t := time.Duration(i+1) * d.Opts.EvalEvery
			end := i
			for end < len(act) && act[end] {
				end++
			}
			fmt.Fprintf(w, "seed %d at %s for %s: live %.0f MB wander sd %.1f MB tau %.0f min, gc %.0f s g %.2f noise %.1f MB",
				tr.series.Seed, detect.FormatDuration(t), detect.FormatDuration(time.Duration(end-i)*d.Opts.EvalEvery), p.Live/mb, p.WanderSD/mb, p.WanderTau/60, p.GCPeriod, p.GCGain, p.NoiseSD/mb)
			if p.WarmC > 0 {
				fmt.Fprintf(w, " warm C %.0f MB tau %.1f h", p.WarmC/mb, p.WarmTau/3600)
			}
			for k := range p.StepTimes {
				fmt.Fprintf(w, " step %+.0f MB at %.2f h", p.StepSizes[k]/mb, p.StepTimes[k]/3600)
				if k < len(p.StepRamps) {
					fmt.Fprintf(w, " ramping %.0f min", p.StepRamps[k]/60)
				}
			}
			if p.DiurnalAmp > 0 {
				fmt.Fprintf(w, " diurnal ±%.0f MB", p.DiurnalAmp/mb)
			}
			fmt.Fprintln(w)
			for wi, win := range d.Windows {
				k := wi*tr.evals + i - int(d.Opts.Hold/d.Opts.EvalEvery)
				fmt.Fprintf(w, "   %s: gates %v persist %v floor %.2f MB/h p %.2g\n", detect.FormatDuration(win),
					tr.gates[k], tr.persist[k], float64(tr.floor[k])*3600/mb, tr.p[k])
			}
		}
	}
}
