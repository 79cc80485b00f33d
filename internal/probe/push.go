package probe

import "github.com/prometheus/client_golang/prometheus"

// PushMetrics are the metrics of the server-push probe, labelled by target.
type PushMetrics struct {
	received   *prometheus.CounterVec
	lost       *prometheus.CounterVec
	duplicated *prometheus.CounterVec
	outOfOrder *prometheus.CounterVec
	missed     *prometheus.CounterVec
	malformed  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// NewPushMetrics creates the server-push metrics and registers them with reg.
func NewPushMetrics(reg prometheus.Registerer) *PushMetrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"target"})
	}
	m := &PushMetrics{
		received: counter("soak_push_received_total",
			"Server-push events received by pool clients (every copy, duplicates included)."),
		lost: counter("soak_push_lost_total",
			"Server-push sequence numbers skipped within one client session (gaps), summed over clients."),
		duplicated: counter("soak_push_duplicated_total",
			"Server-push events whose sequence number repeats the previous one of the same client session."),
		outOfOrder: counter("soak_push_out_of_order_total",
			"Server-push events older than the newest one already received by the same client session."),
		missed: counter("soak_push_missed_total",
			"Server-push sequence numbers a client missed while it was reconnecting (gap between its previous session's last and its new session's first event)."),
		malformed: counter("soak_push_malformed_total",
			"Server-push events without a readable integer sequence field (not counted as received)."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "soak_push_latency_seconds",
			Help:                            "One-way server-push latency from the event's timestamp field to its arrival; only observed when SOAK_PUSH_CLOCK_SHARED is set.",
			Buckets:                         latencyBuckets(),
			NativeHistogramBucketFactor:     nativeBucketFactor,
			NativeHistogramMaxBucketNumber:  nativeMaxBucketNumber,
			NativeHistogramMinResetDuration: nativeMinResetDuration,
		}, []string{"target"}),
	}
	reg.MustRegister(m.received, m.lost, m.duplicated, m.outOfOrder, m.missed, m.malformed, m.latency)
	return m
}

// PushTargetMetrics are the server-push children of one target.
type PushTargetMetrics struct {
	Received, Lost, Duplicated, OutOfOrder, Missed, Malformed prometheus.Counter
	Latency                                                   prometheus.Observer
}

// For returns the children of one target; they exist (at zero) from then on.
func (m *PushMetrics) For(target string) *PushTargetMetrics {
	return &PushTargetMetrics{
		Received:   m.received.WithLabelValues(target),
		Lost:       m.lost.WithLabelValues(target),
		Duplicated: m.duplicated.WithLabelValues(target),
		OutOfOrder: m.outOfOrder.WithLabelValues(target),
		Missed:     m.missed.WithLabelValues(target),
		Malformed:  m.malformed.WithLabelValues(target),
		Latency:    m.latency.WithLabelValues(target),
	}
}
