package leak

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/leak/detect"
)

var (
	labelsSK   = []string{"source", "kind"}
	labelsSKW  = []string{"source", "kind", "window"}
	labelsSKWE = []string{"source", "kind", "window", "estimator"}

	descMemory = prometheus.NewDesc("soak_memory_bytes",
		"Last sampled memory of the target (or the agent, source=self), bytes.", labelsSK, nil)
	descLimit = prometheus.NewDesc("soak_memory_limit_bytes",
		"Memory limit used for projections: configured, or discovered (cgroup, GOMEMLIMIT), bytes.", labelsSK, nil)
	descSlope = prometheus.NewDesc("soak_leak_slope_bytes_per_second",
		"Memory growth over the window: estimator=ols is least squares on raw samples (the old suite's figure), estimator=theil_sen the robust slope of the GC floor.", labelsSKWE, nil)
	descR2 = prometheus.NewDesc("soak_leak_r_squared",
		"Coefficient of determination of the slope's line (ols: raw samples; theil_sen: floor).", labelsSKWE, nil)
	descP = prometheus.NewDesc("soak_leak_trend_p_value",
		"One-sided p-value of the Mann-Kendall test (Hamed-Rao corrected) for an upward trend of the floor.", labelsSKW, nil)
	descSamples = prometheus.NewDesc("soak_leak_window_samples",
		"Raw samples in the window's complete buckets, and in the bucket being filled while the process's segment (time since start or restart) is shorter than the window.", labelsSKW, nil)
	descBaseline = prometheus.NewDesc("soak_leak_baseline_bytes",
		"Floor of the GC sawtooth at the end of the window (Theil-Sen line), bytes.", labelsSKW, nil)
	descToLimit = prometheus.NewDesc("soak_leak_seconds_to_limit",
		"Projected seconds until floor plus sawtooth amplitude reaches the limit at the floor's slope; +Inf when not growing. Absent without a limit.", labelsSKW, nil)
	descSuspected = prometheus.NewDesc("soak_leak_suspected",
		"Held leak verdict: 1 on the window that raised it while a leak is suspected (held while the floor keeps rising, see docs/leak-detection.md), else 0.", labelsSKW, nil)
	descSince = prometheus.NewDesc("soak_leak_suspected_since_timestamp_seconds",
		"Unix time when the held leak verdict became true; 0 while no leak is suspected.", labelsSK, nil)
	descState = prometheus.NewDesc("soak_leak_state",
		"1 for the series' current detector state: state=warming_up (no verdict yet; reason no_samples, window_not_full, too_few_buckets, start_up_grace, gaps or no_floor), no_leak or leak_suspected (reason none).", []string{"source", "kind", "state", "reason"}, nil)
	descCycle = prometheus.NewDesc("soak_leak_daily_cycle",
		"1 when the floor has shown a daily cycle since the target's last restart, so every window is judged against the floor one cycle earlier (SOAK_LEAK_CYCLE), else 0.", labelsSK, nil)
	descWindowVerdict = prometheus.NewDesc("soak_leak_window_suspected",
		"1 when the window's own verdict at the last evaluation is leak_suspected, else 0 (unheld, may flap).", labelsSKW, nil)
)

// collector exports the monitor's last sampled values and last evaluation.
// Scrapes do no detection work.
type collector struct{ m *Monitor }

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMemory, descLimit, descSlope, descR2, descP, descSamples, descBaseline, descToLimit, descSuspected, descSince, descState, descWindowVerdict, descCycle} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.m.Reports() {
		src, kind := r.Source, string(r.Kind)
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, r.Bytes, src, kind)
		if r.Limit > 0 {
			ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, r.Limit, src, kind)
		}
		since := 0.0
		if r.Report.Suspected {
			since = float64(r.Report.Since.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descSince, prometheus.GaugeValue, since, src, kind)
		cycle := 0.0
		if r.Report.Cycle {
			cycle = 1
		}
		ch <- prometheus.MustNewConstMetric(descCycle, prometheus.GaugeValue, cycle, src, kind)
		state, reason := "warming_up", r.Report.Wait
		switch {
		case r.Report.Suspected:
			state, reason = "leak_suspected", "none"
		case r.Report.Verdict != detect.InsufficientData:
			state, reason = "no_leak", "none"
		case reason == "":
			reason = detect.WaitNoSamples
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, 1, src, kind, state, reason)
		for _, w := range r.Report.Windows {
			win := detect.FormatDuration(w.Window)
			gauge := func(d *prometheus.Desc, v float64, extra ...string) {
				if math.IsNaN(v) {
					return
				}
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{src, kind, win}, extra...)...)
			}
			if w.HasOLS {
				gauge(descSlope, w.OLSSlope, "ols")
				gauge(descR2, w.OLSR2, "ols")
			}
			if w.HasFloor {
				gauge(descSlope, w.FloorSlope, "theil_sen")
				gauge(descR2, w.FloorR2, "theil_sen")
				gauge(descP, w.P)
				gauge(descBaseline, w.Baseline)
			}
			if w.HasLimit {
				gauge(descToLimit, w.SecondsToLimit)
			}
			gauge(descSamples, float64(w.Samples))
			raw, held := 0.0, 0.0
			if w.Verdict == detect.LeakSuspected {
				raw = 1
			}
			if r.Report.Suspected && w.Window == r.Report.SuspectedWindow {
				held = 1
			}
			gauge(descWindowVerdict, raw)
			gauge(descSuspected, held)
		}
	}
}
