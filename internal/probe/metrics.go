package probe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Histogram settings shared by every latency histogram of the agent. Classic
// buckets keep a boundary at each threshold of the old suite (0.2 s event
// latency p95, 0.5 s connect p95) so that alerts on classic buckets are
// exact at the thresholds; native histogram settings follow the Prometheus
// ecosystem's defaults.
func latencyBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10}
}

func connectBuckets() []float64 {
	return []float64{.0025, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10, 30}
}

const (
	nativeBucketFactor     = 1.1
	nativeMaxBucketNumber  = 160
	nativeMinResetDuration = time.Hour
)

// Metrics holds the probe metrics of every target and event, built once from a
// Registerer. Children for one target are taken with For.
type Metrics struct {
	connectAttempts *prometheus.CounterVec
	connectFailures *prometheus.CounterVec
	connectDuration *prometheus.HistogramVec
	disconnects     *prometheus.CounterVec
	sent            *prometheus.CounterVec
	acked           *prometheus.CounterVec
	lost            *prometheus.CounterVec
	late            *prometheus.CounterVec
	skipped         *prometheus.CounterVec
	dropped         *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	unexpectedAcks  *prometheus.CounterVec
}

// NewMetrics creates the probe metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connectAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_connect_attempts_total",
			Help: "Connection attempts (Engine.IO open plus namespace CONNECT) started by the pool.",
		}, []string{"target"}),
		connectFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_connect_failures_total",
			Help: "Connection attempts that failed, by reason.",
		}, []string{"target", "reason"}),
		connectDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "soak_connect_duration_seconds",
			Help:                            "Time from dial start to the namespace CONNECT answer, for successful attempts.",
			Buckets:                         connectBuckets(),
			NativeHistogramBucketFactor:     nativeBucketFactor,
			NativeHistogramMaxBucketNumber:  nativeMaxBucketNumber,
			NativeHistogramMinResetDuration: nativeMinResetDuration,
		}, []string{"target"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_disconnects_total",
			Help: "Established connections that ended, by reason.",
		}, []string{"target", "reason"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_events_sent_total",
			Help: "Acked-echo events written to a connection.",
		}, []string{"target", "event"}),
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_events_acked_total",
			Help: "Events whose ack arrived within the ack timeout.",
		}, []string{"target", "event"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_events_lost_total",
			Help: "Events sent whose ack did not arrive within the ack timeout (or whose connection ended first).",
		}, []string{"target", "event"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_events_late_total",
			Help: "Lost events whose ack arrived after the ack timeout (each counted once).",
		}, []string{"target", "event"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_events_skipped_total",
			Help: "Events due on a client that was not connected at their scheduled time; not sent.",
		}, []string{"target", "event"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_events_dropped_total",
			Help: "Events not sent because the agent's own send backlog was full (agent overload, not a target fault).",
		}, []string{"target", "event"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "soak_event_latency_seconds",
			Help:                            "Ack latency of acked-echo events, measured from the scheduled send time (open loop).",
			Buckets:                         latencyBuckets(),
			NativeHistogramBucketFactor:     nativeBucketFactor,
			NativeHistogramMaxBucketNumber:  nativeMaxBucketNumber,
			NativeHistogramMinResetDuration: nativeMinResetDuration,
		}, []string{"target", "event"}),
		unexpectedAcks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "soak_acks_unexpected_total",
			Help: "Acks received for an id this agent never sent or already resolved (server protocol anomaly).",
		}, []string{"target"}),
	}
	reg.MustRegister(m.connectAttempts, m.connectFailures, m.connectDuration, m.disconnects,
		m.sent, m.acked, m.lost, m.late, m.skipped, m.dropped, m.latency, m.unexpectedAcks)
	return m
}

// TargetMetrics are the metric children of one target and one event name,
// resolved once so that the hot path does no label lookups.
type TargetMetrics struct {
	ConnectAttempts prometheus.Counter
	ConnectFailures map[FailureReason]prometheus.Counter
	ConnectDuration prometheus.Observer
	Disconnects     map[DisconnectReason]prometheus.Counter
	Sent            prometheus.Counter
	Acked           prometheus.Counter
	Lost            prometheus.Counter
	Late            prometheus.Counter
	Skipped         prometheus.Counter
	Dropped         prometheus.Counter
	Latency         prometheus.Observer
	UnexpectedAcks  prometheus.Counter
}

// For returns the children for one target and event. Every reason is
// initialised so that series exist (at zero) from the start.
func (m *Metrics) For(target, event string) *TargetMetrics {
	tm := &TargetMetrics{
		ConnectAttempts: m.connectAttempts.WithLabelValues(target),
		ConnectFailures: make(map[FailureReason]prometheus.Counter, len(FailureReasons)),
		ConnectDuration: m.connectDuration.WithLabelValues(target),
		Disconnects:     make(map[DisconnectReason]prometheus.Counter, len(DisconnectReasons)),
		Sent:            m.sent.WithLabelValues(target, event),
		Acked:           m.acked.WithLabelValues(target, event),
		Lost:            m.lost.WithLabelValues(target, event),
		Late:            m.late.WithLabelValues(target, event),
		Skipped:         m.skipped.WithLabelValues(target, event),
		Dropped:         m.dropped.WithLabelValues(target, event),
		Latency:         m.latency.WithLabelValues(target, event),
		UnexpectedAcks:  m.unexpectedAcks.WithLabelValues(target),
	}
	for _, r := range FailureReasons {
		tm.ConnectFailures[r] = m.connectFailures.WithLabelValues(target, string(r))
	}
	for _, r := range DisconnectReasons {
		tm.Disconnects[r] = m.disconnects.WithLabelValues(target, string(r))
	}
	return tm
}

// ConnectFailed counts one failed attempt under its reason; an unknown reason
// counts as FailOther so that no label value comes from outside the set.
func (tm *TargetMetrics) ConnectFailed(r FailureReason) {
	c, ok := tm.ConnectFailures[r]
	if !ok {
		c = tm.ConnectFailures[FailOther]
	}
	c.Inc()
}

// Disconnected counts one ended connection under its reason; an unknown
// reason counts as transport_error.
func (tm *TargetMetrics) Disconnected(r DisconnectReason) {
	c, ok := tm.Disconnects[r]
	if !ok {
		c = tm.Disconnects[ReasonTransportError]
	}
	c.Inc()
}
