package probe

import "github.com/prometheus/client_golang/prometheus"

// FanoutMetrics are the metrics of the fan-out probe. The sender's target is
// `target` on soak_fanout_sent_total; the other series carry the receiver's
// target as `target` and the sender's as `sender_target`. Both label sets are
// bounded by the configured targets (n targets give n*n pairs).
type FanoutMetrics struct {
	sent      *prometheus.CounterVec
	sendFails *prometheus.CounterVec
	expected  *prometheus.CounterVec
	delivered *prometheus.CounterVec
	lost      *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

// NewFanoutMetrics creates the fan-out metrics and registers them with reg.
func NewFanoutMetrics(reg prometheus.Registerer) *FanoutMetrics {
	pair := []string{"sender_target", "target"}
	m := &FanoutMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_fanout_sent_total",
			Help: "Fan-out messages emitted by a pool client of the target.",
		}, []string{"target"}),
		sendFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_fanout_send_failures_total",
			Help: "Fan-out messages due but not emitted because the write failed (target = sender's target) or no client of any target was connected (target = the first target).",
		}, []string{"target"}),
		expected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_fanout_expected_total",
			Help: "Fan-out deliveries expected: one per message and per other pool client connected to the receiver target when it was sent.",
		}, pair),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_fanout_delivered_total",
			Help: "Expected fan-out deliveries that arrived within the fan-out timeout (each counted once).",
		}, pair),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_fanout_lost_total",
			Help: "Expected fan-out deliveries that had not arrived when the fan-out timeout expired.",
		}, pair),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "soak_fanout_latency_seconds",
			Help:                            "Fan-out delivery latency from the send to the arrival at another pool client, both on the agent's clock.",
			Buckets:                         latencyBuckets(),
			NativeHistogramBucketFactor:     nativeBucketFactor,
			NativeHistogramMaxBucketNumber:  nativeMaxBucketNumber,
			NativeHistogramMinResetDuration: nativeMinResetDuration,
		}, pair),
	}
	reg.MustRegister(m.sent, m.sendFails, m.expected, m.delivered, m.lost, m.latency)
	return m
}

// FanoutSenderMetrics are the children of one sender target.
type FanoutSenderMetrics struct {
	Sent, SendFailures prometheus.Counter
}

// FanoutPairMetrics are the children of one (sender target, receiver target) pair.
type FanoutPairMetrics struct {
	Expected, Delivered, Lost prometheus.Counter
	Latency                   prometheus.Observer
}

// Sender returns the children of one sender target.
func (m *FanoutMetrics) Sender(target string) *FanoutSenderMetrics {
	return &FanoutSenderMetrics{
		Sent:         m.sent.WithLabelValues(target),
		SendFailures: m.sendFails.WithLabelValues(target),
	}
}

// Pair returns the children of one sender/receiver target pair.
func (m *FanoutMetrics) Pair(sender, receiver string) *FanoutPairMetrics {
	return &FanoutPairMetrics{
		Expected:  m.expected.WithLabelValues(sender, receiver),
		Delivered: m.delivered.WithLabelValues(sender, receiver),
		Lost:      m.lost.WithLabelValues(sender, receiver),
		Latency:   m.latency.WithLabelValues(sender, receiver),
	}
}
