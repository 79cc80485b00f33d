package leak

import (
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metric names the target's vitals are read from (prom-client's and
// client_golang's default process metrics, prom-client's Node metrics).
const (
	vitalsCPUMetric    = "process_cpu_seconds_total"
	vitalsLagMetric    = "nodejs_eventloop_lag_seconds"
	vitalsLagP99Metric = "nodejs_eventloop_lag_p99_seconds"
)

var (
	descTargetCPU = prometheus.NewDesc("soak_target_cpu_ratio",
		"CPU time the target used per second between the last two memory scrapes (1 = one core busy), from its process_cpu_seconds_total.", nil, nil)
	descTargetLag = prometheus.NewDesc("soak_target_event_loop_lag_seconds",
		"The Node target's event-loop lag at the last memory scrape: stat=last from nodejs_eventloop_lag_seconds, stat=p99 from nodejs_eventloop_lag_p99_seconds.", []string{"stat"}, nil)
)

// Vitals are the target's CPU use and event-loop lag, read from the same
// scrape as its memory (source scrape). It is a prometheus.Collector whose
// series exist only while the last scrape succeeded and held the metric.
type Vitals struct {
	mu      sync.Mutex
	prevCPU float64
	prevAt  time.Time
	cpu     float64 // NaN: unknown
	lag     map[string]float64
}

func newVitals() *Vitals { return &Vitals{cpu: math.NaN(), lag: map[string]float64{}} }

// observe takes the vitals from one scrape at t; nil fams (a failed scrape)
// forgets them.
func (v *Vitals) observe(t time.Time, fams map[string]*dto.MetricFamily) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cpu = math.NaN()
	clear(v.lag)
	cpu, ok := familyValue(fams[vitalsCPUMetric])
	if !ok {
		v.prevAt = time.Time{}
	} else {
		if dt := t.Sub(v.prevAt).Seconds(); !v.prevAt.IsZero() && dt > 0 && cpu >= v.prevCPU {
			v.cpu = (cpu - v.prevCPU) / dt
		}
		v.prevCPU, v.prevAt = cpu, t
	}
	for stat, name := range map[string]string{"last": vitalsLagMetric, "p99": vitalsLagP99Metric} {
		if lag, ok := familyValue(fams[name]); ok {
			v.lag[stat] = lag
		}
	}
}

// familyValue is the sum of a family's gauge, counter or untyped values.
func familyValue(f *dto.MetricFamily) (float64, bool) {
	if f == nil {
		return 0, false
	}
	val, ok := selector{name: f.GetName()}.value(f)
	if !ok || math.IsNaN(val) || math.IsInf(val, 0) || val < 0 {
		return 0, false
	}
	return val, true
}

// Describe implements prometheus.Collector.
func (v *Vitals) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTargetCPU
	ch <- descTargetLag
}

// Collect implements prometheus.Collector.
func (v *Vitals) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !math.IsNaN(v.cpu) {
		ch <- prometheus.MustNewConstMetric(descTargetCPU, prometheus.GaugeValue, v.cpu)
	}
	for stat, lag := range v.lag {
		ch <- prometheus.MustNewConstMetric(descTargetLag, prometheus.GaugeValue, lag, stat)
	}
}
