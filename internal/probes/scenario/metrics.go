package scenario

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

// Names of the scenario probe's metrics.
const (
	MetricStepsSent       = "soak_scenario_steps_sent_total"
	MetricStepsAnswered   = "soak_scenario_steps_answered_total"
	MetricStepsRejected   = "soak_scenario_steps_rejected_total"
	MetricStepsLost       = "soak_scenario_steps_lost_total"
	MetricStepsLate       = "soak_scenario_steps_late_total"
	MetricStepLatency     = "soak_scenario_step_latency_seconds"
	MetricFlowsStarted    = "soak_scenario_flows_started_total"
	MetricFlowsCompleted  = "soak_scenario_flows_completed_total"
	MetricFlowsAborted    = "soak_scenario_flows_aborted_total"
	MetricFlowsSkipped    = "soak_scenario_flows_skipped_total"
	MetricFlowsDropped    = "soak_scenario_flows_dropped_total"
	MetricConnectFailures = "soak_scenario_connect_steps_failed_total"
	MetricOverload        = "soak_scenario_overload_total"
)

type metrics struct {
	sent, answered, rejected, lost, late *prometheus.CounterVec
	latency                              *prometheus.HistogramVec
	started, completed, aborted          *prometheus.CounterVec
	skipped, dropped                     *prometheus.CounterVec
	connectFailed                        *prometheus.CounterVec
	overload                             prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &metrics{
		sent:     vec(MetricStepsSent, "Scenario steps started: events emitted, or waits begun.", "target", "step"),
		answered: vec(MetricStepsAnswered, "Scenario steps answered (ack, reply event or awaited event) within their timeout, passing their assert.", "target", "step"),
		rejected: vec(MetricStepsRejected, "Scenario steps answered within their timeout whose answer failed the step's assert (the application said no).", "target", "step"),
		lost:     vec(MetricStepsLost, "Scenario steps not answered within their timeout (or whose write failed).", "target", "step"),
		late:     vec(MetricStepsLate, "Lost scenario steps whose answer came after the timeout (each counted once).", "target", "step"),
		latency: prometheus.NewHistogramVec(pool.HistogramOpts(MetricStepLatency,
			"Scenario step latency from its scheduled time (open loop) to its answer.", pool.LatencyBuckets()),
			[]string{"target", "step"}),
		started:   vec(MetricFlowsStarted, "Scenario flows started.", "target", "flow"),
		completed: vec(MetricFlowsCompleted, "Scenario flows whose every step was answered.", "target", "flow"),
		aborted:   vec(MetricFlowsAborted, "Scenario flows ended early by a lost or rejected step.", "target", "flow"),
		skipped:   vec(MetricFlowsSkipped, "Scenario flows due on a client that was not connected, or still running its on_connect steps; not started.", "target"),
		dropped:   vec(MetricFlowsDropped, "Scenario flows not started because the agent's own send backlog was full (agent overload, not a target fault).", "target"),
		connectFailed: vec(MetricConnectFailures,
			"Client sessions whose on_connect steps failed (lost or rejected): the session takes no flows until it reconnects.", "target"),
		overload: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricOverload,
			Help: "Scenario step continuations not run because the agent's scenario workers were a full queue behind (agent overload)."}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.answered, m.rejected, m.lost, m.late, m.latency,
		m.started, m.completed, m.aborted, m.skipped, m.dropped, m.connectFailed, m.overload} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// stepSink is the tracker.Sink of one step on one target.
type stepSink struct {
	target, step                         string
	sent, answered, rejected, lost, late prometheus.Counter
	latency                              prometheus.Observer
	unexpected                           func()
	obs                                  pool.Observer
}

func (m *metrics) sink(target, step string, obs pool.Observer, unexpected func()) *stepSink {
	return &stepSink{
		target: target, step: step,
		sent: m.sent.WithLabelValues(target, step), answered: m.answered.WithLabelValues(target, step),
		rejected: m.rejected.WithLabelValues(target, step), lost: m.lost.WithLabelValues(target, step),
		late: m.late.WithLabelValues(target, step), latency: m.latency.WithLabelValues(target, step),
		unexpected: unexpected, obs: obs,
	}
}

func (s *stepSink) note(o pool.Outcome, n int, d time.Duration) {
	if s.obs != nil {
		s.obs.Event(s.target, Name, s.step, o, n, d)
	}
}

func (s *stepSink) Sent() { s.sent.Inc(); s.note(pool.OutcomeSent, 1, 0) }
func (s *stepSink) Answered(d time.Duration) {
	s.answered.Inc()
	s.latency.Observe(d.Seconds())
	s.note(pool.OutcomeAnswered, 1, d)
}
func (s *stepSink) Rejected(d time.Duration) { s.rejected.Inc(); s.note(pool.OutcomeRejected, 1, d) }
func (s *stepSink) Lost(n int)               { s.lost.Add(float64(n)); s.note(pool.OutcomeLost, n, 0) }
func (s *stepSink) Late()                    { s.late.Inc(); s.note(pool.OutcomeLate, 1, 0) }
func (s *stepSink) Unexpected()              { s.unexpected() }

// flowMetrics are the children of one flow on one target.
type flowMetrics struct{ started, completed, aborted prometheus.Counter }

func (m *metrics) flow(target, flow string, _ pool.Observer) *flowMetrics {
	return &flowMetrics{
		started:   m.started.WithLabelValues(target, flow),
		completed: m.completed.WithLabelValues(target, flow),
		aborted:   m.aborted.WithLabelValues(target, flow),
	}
}

// counts returns a counter function for a stream's skipped or dropped flows.
func (m *metrics) counts(target string, vec *prometheus.CounterVec, o pool.Outcome, obs pool.Observer) func(int) {
	c := vec.WithLabelValues(target)
	return func(n int) {
		c.Add(float64(n))
		if obs != nil {
			obs.Event(target, Name, "", o, n, 0)
		}
	}
}
