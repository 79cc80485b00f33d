package fanout

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

// Names of the fan-out probe's metrics.
const (
	MetricSent         = "soak_fanout_sent_total"
	MetricSendFailures = "soak_fanout_send_failures_total"
	MetricExpected     = "soak_fanout_expected_total"
	MetricDelivered    = "soak_fanout_delivered_total"
	MetricLost         = "soak_fanout_lost_total"
	MetricLatency      = "soak_fanout_latency_seconds"
	MetricJoins        = "soak_fanout_joins_total"
)

// metrics are the metrics of the fan-out probe. The sender's target is
// `target` on soak_fanout_sent_total; the other series carry the receiver's
// target as `target` and the sender's as `sender_target`. Both label sets are
// bounded by the configured targets (n targets give n*n pairs).
type metrics struct {
	joins     *prometheus.CounterVec
	sent      *prometheus.CounterVec
	sendFails *prometheus.CounterVec
	expected  *prometheus.CounterVec
	delivered *prometheus.CounterVec
	lost      *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

// newMetrics creates the fan-out metrics and registers them with reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	pair := []string{"sender_target", "target"}
	m := &metrics{
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricJoins,
			Help: "Join steps (SOAK_FANOUT_JOIN_EVENT) by result: ok (acked in time) or failed (no ack within SOAK_FANOUT_TIMEOUT).",
		}, []string{"target", "result"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricSent,
			Help: "Fan-out messages emitted by a pool client of the target.",
		}, []string{"target"}),
		sendFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricSendFailures,
			Help: "Fan-out messages due but not emitted because the write failed (target = sender's target) or no client of any target was connected (target = the first target).",
		}, []string{"target"}),
		expected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricExpected,
			Help: "Fan-out deliveries expected: one per message and per other pool client connected to the receiver target when it was sent.",
		}, pair),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDelivered,
			Help: "Expected fan-out deliveries that arrived within the fan-out timeout (each counted once).",
		}, pair),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricLost,
			Help: "Expected fan-out deliveries that had not arrived when the fan-out timeout expired.",
		}, pair),
		latency: prometheus.NewHistogramVec(pool.HistogramOpts(MetricLatency,
			"Fan-out delivery latency from the send to the arrival at another pool client, both on the agent's clock.",
			pool.LatencyBuckets()), pair),
	}
	for _, c := range []prometheus.Collector{m.joins, m.sent, m.sendFails, m.expected, m.delivered, m.lost, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// senderMetrics are the children of one sender target.
type senderMetrics struct {
	sent, sendFailures prometheus.Counter
}

// pairMetrics are the children of one (sender target, receiver target) pair.
type pairMetrics struct {
	expected, delivered, lost prometheus.Counter
	latency                   prometheus.Observer
}

// sender returns the children of one sender target.
func (m *metrics) sender(target string) *senderMetrics {
	return &senderMetrics{
		sent:         m.sent.WithLabelValues(target),
		sendFailures: m.sendFails.WithLabelValues(target),
	}
}

// pair returns the children of one sender/receiver target pair.
func (m *metrics) pair(sender, receiver string) *pairMetrics {
	return &pairMetrics{
		expected:  m.expected.WithLabelValues(sender, receiver),
		delivered: m.delivered.WithLabelValues(sender, receiver),
		lost:      m.lost.WithLabelValues(sender, receiver),
		latency:   m.latency.WithLabelValues(sender, receiver),
	}
}

// joinSink counts the join steps of one target (tracker.Sink).
type joinSink struct{ ok, failed prometheus.Counter }

func (m *metrics) joinSink(target string) *joinSink {
	return &joinSink{ok: m.joins.WithLabelValues(target, "ok"), failed: m.joins.WithLabelValues(target, "failed")}
}

func (j *joinSink) Sent()                  {}
func (j *joinSink) Answered(time.Duration) { j.ok.Inc() }
func (j *joinSink) Rejected(time.Duration) { j.ok.Inc() }
func (j *joinSink) Lost(n int)             { j.failed.Add(float64(n)) }
func (j *joinSink) Late()                  {}
func (j *joinSink) Unexpected()            {}
