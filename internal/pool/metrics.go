package pool

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/probe"
)

// Names of the pool's metrics.
const (
	MetricClientsDesired   = "soak_clients_desired"
	MetricClientsConnected = "soak_clients_connected"
	// MetricClientsByTransport splits MetricClientsConnected by the
	// transport each client runs on now. A gauge rather than a transport
	// label on the connect duration: it answers "how many clients stayed on
	// long-polling" (a refused upgrade) at any moment, for sessions of any
	// age, and leaves the existing histogram series, rules and dashboards
	// unchanged. Bounded: probe.Transports.
	MetricClientsByTransport = "soak_clients_connected_by_transport"
	MetricConnectAttempts    = "soak_connect_attempts_total"
	MetricConnectFailures    = "soak_connect_failures_total"
	MetricConnectDuration    = "soak_connect_duration_seconds"
	MetricDisconnects        = "soak_disconnects_total"
	MetricShortLived         = "soak_connections_short_lived_total"
	MetricAcksUnexpected     = "soak_acks_unexpected_total"
	MetricWritesStalled      = "soak_writes_stalled_total"
)

// LatencyBuckets are the classic buckets of every event latency histogram:
// a boundary at the old suite's 0.2 s p95 threshold, so that alerts on
// classic buckets are exact there.
func LatencyBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10}
}

// ConnectBuckets are the classic buckets of the connect time histogram, with
// a boundary at the old suite's 0.5 s threshold.
func ConnectBuckets() []float64 {
	return []float64{.0025, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10, 30}
}

// HistogramOpts are the settings every histogram of the agent shares:
// the given classic buckets, and native-histogram settings following the
// Prometheus ecosystem's defaults.
func HistogramOpts(name, help string, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Name:                            name,
		Help:                            help,
		Buckets:                         buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

// Metrics are the connection metrics of every pool, built once from a
// Registerer; a pool takes its target's children.
type Metrics struct {
	connectAttempts *prometheus.CounterVec
	connectFailures *prometheus.CounterVec
	connectDuration *prometheus.HistogramVec
	disconnects     *prometheus.CounterVec
	shortLived      *prometheus.CounterVec
	unexpectedAcks  *prometheus.CounterVec
	writesStalled   *prometheus.CounterVec
}

// NewMetrics creates the connection metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		connectAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricConnectAttempts,
			Help: "Connection attempts (Engine.IO open plus namespace CONNECT) started by the pool.",
		}, []string{"target"}),
		connectFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricConnectFailures,
			Help: "Connection attempts that failed, by reason.",
		}, []string{"target", "reason"}),
		connectDuration: prometheus.NewHistogramVec(HistogramOpts(MetricConnectDuration,
			"Time from dial start to the namespace CONNECT answer, for successful attempts.", ConnectBuckets()),
			[]string{"target"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDisconnects,
			Help: "Established connections that ended, by reason.",
		}, []string{"target", "reason"}),
		shortLived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricShortLived,
			Help: "Established connections that ended within SOAK_SHORT_LIVED of opening (flapping); also counted in " + MetricDisconnects + ".",
		}, []string{"target"}),
		unexpectedAcks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricAcksUnexpected,
			Help: "Acks received for an id this agent never sent or already resolved (server protocol anomaly).",
		}, []string{"target"}),
		writesStalled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricWritesStalled,
			Help: "Scheduled items (echo events, scenario flows) whose write blocked until its deadline, or whose turn came after it behind such a write: the server stopped reading the connection. They end as lost, never as dropped.",
		}, []string{"target"}),
	}
	for _, c := range []prometheus.Collector{m.connectAttempts, m.connectFailures, m.connectDuration, m.disconnects, m.shortLived, m.unexpectedAcks, m.writesStalled} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// targetMetrics are the connection children of one target, resolved once
// so that no label lookup happens per connection.
type targetMetrics struct {
	attempts    prometheus.Counter
	failures    map[probe.FailureReason]prometheus.Counter
	duration    prometheus.Observer
	disconnects map[probe.DisconnectReason]prometheus.Counter
	shortLived  prometheus.Counter
	unexpected  prometheus.Counter
	stalled     prometheus.Counter
}

// forTarget returns the children of one target. Every reason is
// initialised so that its series exists (at zero) from the start.
func (m *Metrics) forTarget(target string) *targetMetrics {
	tm := &targetMetrics{
		attempts:    m.connectAttempts.WithLabelValues(target),
		failures:    make(map[probe.FailureReason]prometheus.Counter, len(probe.FailureReasons)),
		duration:    m.connectDuration.WithLabelValues(target),
		disconnects: make(map[probe.DisconnectReason]prometheus.Counter, len(probe.DisconnectReasons)),
		shortLived:  m.shortLived.WithLabelValues(target),
		unexpected:  m.unexpectedAcks.WithLabelValues(target),
		stalled:     m.writesStalled.WithLabelValues(target),
	}
	for _, r := range probe.FailureReasons {
		tm.failures[r] = m.connectFailures.WithLabelValues(target, string(r))
	}
	for _, r := range probe.DisconnectReasons {
		tm.disconnects[r] = m.disconnects.WithLabelValues(target, string(r))
	}
	return tm
}

// failed counts one failed attempt under its reason; an unknown reason
// counts as FailOther so that no label value comes from outside the set.
func (tm *targetMetrics) failed(r probe.FailureReason) {
	c, ok := tm.failures[r]
	if !ok {
		c = tm.failures[probe.FailOther]
	}
	c.Inc()
}

// disconnected counts one ended connection under its reason; an unknown
// reason counts as transport_error.
func (tm *targetMetrics) disconnected(r probe.DisconnectReason) {
	c, ok := tm.disconnects[r]
	if !ok {
		c = tm.disconnects[probe.ReasonTransportError]
	}
	c.Inc()
}
