package push

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

// Names of the push probe's metrics.
const (
	MetricReceived   = "soak_push_received_total"
	MetricLost       = "soak_push_lost_total"
	MetricDuplicated = "soak_push_duplicated_total"
	MetricOutOfOrder = "soak_push_out_of_order_total"
	MetricMissed     = "soak_push_missed_total"
	MetricMalformed  = "soak_push_malformed_total"
	MetricLatency    = "soak_push_latency_seconds"
)

// metrics are the metrics of the server-push probe, labelled by target.
type metrics struct {
	received   *prometheus.CounterVec
	lost       *prometheus.CounterVec
	duplicated *prometheus.CounterVec
	outOfOrder *prometheus.CounterVec
	missed     *prometheus.CounterVec
	malformed  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// newMetrics creates the server-push metrics and registers them with reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"target"})
	}
	m := &metrics{
		received: counter(MetricReceived,
			"Server-push events received by pool clients (every copy, duplicates included)."),
		lost: counter(MetricLost,
			"Server-push sequence numbers skipped within one client session (gaps), summed over clients."),
		duplicated: counter(MetricDuplicated,
			"Server-push events whose sequence number repeats the previous one of the same client session."),
		outOfOrder: counter(MetricOutOfOrder,
			"Server-push events older than the newest one already received by the same client session."),
		missed: counter(MetricMissed,
			"Server-push sequence numbers a client missed while it was reconnecting (gap between its previous session's last and its new session's first event)."),
		malformed: counter(MetricMalformed,
			"Server-push events without a readable integer sequence field (not counted as received)."),
		latency: prometheus.NewHistogramVec(pool.HistogramOpts(MetricLatency,
			"One-way server-push latency from the event's timestamp field to its arrival; only observed when SOAK_PUSH_CLOCK_SHARED is set.",
			pool.LatencyBuckets()), []string{"target"}),
	}
	for _, c := range []prometheus.Collector{m.received, m.lost, m.duplicated, m.outOfOrder, m.missed, m.malformed, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// targetMetrics are the server-push children of one target.
type targetMetrics struct {
	Received, Lost, Duplicated, OutOfOrder, Missed, Malformed prometheus.Counter
	Latency                                                   prometheus.Observer
}

// forTarget returns the children of one target; they exist (at zero) from then on.
func (m *metrics) forTarget(target string) *targetMetrics {
	return &targetMetrics{
		Received:   m.received.WithLabelValues(target),
		Lost:       m.lost.WithLabelValues(target),
		Duplicated: m.duplicated.WithLabelValues(target),
		OutOfOrder: m.outOfOrder.WithLabelValues(target),
		Missed:     m.missed.WithLabelValues(target),
		Malformed:  m.malformed.WithLabelValues(target),
		Latency:    m.latency.WithLabelValues(target),
	}
}
