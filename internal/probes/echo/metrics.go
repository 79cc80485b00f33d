package echo

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

// Names of the echo probe's metrics.
const (
	MetricSent     = "soak_events_sent_total"
	MetricAcked    = "soak_events_acked_total"
	MetricLost     = "soak_events_lost_total"
	MetricLate     = "soak_events_late_total"
	MetricSkipped  = "soak_events_skipped_total"
	MetricDropped  = "soak_events_dropped_total"
	MetricLatency  = "soak_event_latency_seconds"
	MetricInFlight = "soak_events_in_flight"
)

// metrics are the echo probe's metric vectors.
type metrics struct {
	sent, acked, lost, late, skipped, dropped *prometheus.CounterVec
	latency                                   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		sent:  counter(MetricSent, "Echo events written to a connection.", "target", "event"),
		acked: counter(MetricAcked, "Echo events answered (ack, or the reply event) within the ack timeout.", "target", "event"),
		lost: counter(MetricLost, "Echo events sent whose answer did not arrive within the ack timeout (or whose connection ended first).",
			"target", "event"),
		late: counter(MetricLate, "Lost echo events whose answer arrived after the ack timeout (each counted once).", "target", "event"),
		skipped: counter(MetricSkipped, "Echo events due on a client that was not connected at their scheduled time; not sent.",
			"target", "event"),
		dropped: counter(MetricDropped, "Echo events not sent because the agent's own send backlog was full (agent overload, not a target fault).",
			"target", "event"),
		latency: prometheus.NewHistogramVec(pool.HistogramOpts(MetricLatency,
			"Echo answer latency, measured from the scheduled send time (open loop).", pool.LatencyBuckets()),
			[]string{"target", "event"}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.acked, m.lost, m.late, m.skipped, m.dropped, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// sink is the tracker.Sink of one target: the metric children resolved
// once, and the observer if any.
type sink struct {
	target, event                             string
	sent, acked, lost, late, skipped, dropped prometheus.Counter
	latency                                   prometheus.Observer
	unexpected                                func()
	obs                                       pool.Observer
}

func (m *metrics) sink(target, event string, obs pool.Observer, unexpected func()) *sink {
	return &sink{
		target: target, event: event,
		sent:       m.sent.WithLabelValues(target, event),
		acked:      m.acked.WithLabelValues(target, event),
		lost:       m.lost.WithLabelValues(target, event),
		late:       m.late.WithLabelValues(target, event),
		skipped:    m.skipped.WithLabelValues(target, event),
		dropped:    m.dropped.WithLabelValues(target, event),
		latency:    m.latency.WithLabelValues(target, event),
		unexpected: unexpected,
		obs:        obs,
	}
}

func (s *sink) note(o pool.Outcome, n int, d time.Duration) {
	if s.obs != nil {
		s.obs.Event(s.target, Name, s.event, o, n, d)
	}
}

func (s *sink) Sent() { s.sent.Inc(); s.note(pool.OutcomeSent, 1, 0) }

func (s *sink) Answered(d time.Duration) {
	s.acked.Inc()
	s.latency.Observe(d.Seconds())
	s.note(pool.OutcomeAnswered, 1, d)
}

// Rejected cannot happen: the echo probe does not check answers.
func (s *sink) Rejected(d time.Duration) { s.Answered(d) }

func (s *sink) Lost(n int) { s.lost.Add(float64(n)); s.note(pool.OutcomeLost, n, 0) }
func (s *sink) Late()      { s.late.Inc(); s.note(pool.OutcomeLate, 1, 0) }

// Unexpected counts on the pool's counter, which the observer hears of.
func (s *sink) Unexpected() { s.unexpected() }
func (s *sink) Skipped(n int) {
	s.skipped.Add(float64(n))
	s.note(pool.OutcomeSkipped, n, 0)
}
func (s *sink) Dropped(n int) {
	s.dropped.Add(float64(n))
	s.note(pool.OutcomeDropped, n, 0)
}
