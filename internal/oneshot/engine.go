package oneshot

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"go.uber.org/zap"

	"github.com/generic-corp/soak-exporter/internal/agent"
	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probes/scenario"
	"github.com/generic-corp/soak-exporter/internal/target"
	"github.com/generic-corp/soak-exporter/internal/web"
)

const (
	// defaultServerURL is the old suite's default target.
	defaultServerURL = "http://localhost:3000"
	// preflightTimeout bounds the pre-flight connection.
	preflightTimeout = 5 * time.Second
	// drainSettle lets events already handed to the sessions' writers be
	// written (and registered) after the probe is paused.
	drainSettle = 50 * time.Millisecond
	// drainPoll is how often in-flight events are counted while draining.
	drainPoll = 5 * time.Millisecond
	// sweepMargin covers the pool's ack-timeout sweep resolution (100 ms)
	// with room for a busy machine.
	sweepMargin = 500 * time.Millisecond
)

// resolveTargets returns the targets of a run: the positional URL if given,
// else SOAK_TARGET_URL (one or more), else the old suite's default.
func resolveTargets(pc target.Config, positional string) ([]*probe.Target, error) {
	if positional != "" {
		t, err := pc.Target(positional)
		if err != nil {
			return nil, usagef("server_url: %v", err)
		}
		return []*probe.Target{t}, nil
	}
	ts, err := pc.Targets()
	if err != nil {
		return nil, err
	}
	if len(ts) > 0 {
		return ts, nil
	}
	t, err := pc.Target(defaultServerURL)
	if err != nil {
		return nil, err
	}
	return []*probe.Target{t}, nil
}

// engine is the agent machinery of one run: a fresh registry and the agent
// (one pool per target, the probes), built as the daemon builds it, with a
// tally observing every outcome.
type engine struct {
	log   *zap.Logger
	reg   *prometheus.Registry
	agent *agent.Agent
	tally *tally
	cfg   agent.Config
}

// newEngine builds the agent (not started). cfg is split over the targets
// as the daemon does. The taps also receive every connect duration and every
// answered request's latency, in seconds, for exact percentiles; series,
// if not nil, receives every event for the report's timeline.
func newEngine(cfg agent.Config, driver probe.Driver, targets []*probe.Target, log *zap.Logger,
	connectTap, latencyTap prometheus.Observer, series *timeSeries,
) (*engine, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("soak"),
	)
	t := newTally(connectTap, latencyTap)
	t.series = series
	a, err := agent.New(cfg, agent.Options{
		Driver: driver, Targets: targets, Registerer: reg, Logger: log, Observer: t,
	})
	if err != nil {
		return nil, err
	}
	return &engine{log: log, reg: reg, agent: a, tally: t, cfg: cfg}, nil
}

// start runs the agent until stop is called; stop closes the connections
// cleanly and waits for the agent to return.
func (e *engine) start(ctx context.Context) (stop func()) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.agent.Run(pctx); err != nil {
			e.log.Error("agent stopped on error", zap.Error(err))
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// pause stops (true) or resumes (false) the scheduling of new events.
func (e *engine) pause(paused bool) { e.agent.Pause(paused) }

// running reports whether every pool runs (the endpoint's readiness).
func (e *engine) running() bool { return e.agent.Running() }

func (e *engine) connected() int { return e.agent.Connected() }

func (e *engine) desired() int { return e.agent.Desired() }

func (e *engine) inFlight() int { return e.agent.InFlight() }

// drain pauses the probe and waits until every event sent is resolved
// (acked or lost), at most the ack timeout plus the sweep resolution. It
// returns how many are still in flight (0 unless the wait was cut short by
// ctx or the bound).
func (e *engine) drain(ctx context.Context) int {
	e.pause(true)
	bound := time.NewTimer(e.cfg.AckTimeout + drainSettle + sweepMargin)
	defer bound.Stop()
	settle := time.NewTimer(drainSettle)
	select {
	case <-settle.C:
	case <-ctx.Done():
		settle.Stop()
	}
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		n := e.inFlight()
		if n == 0 || ctx.Err() != nil {
			return n
		}
		select {
		case <-tick.C:
		case <-bound.C:
			return e.inFlight()
		case <-ctx.Done():
		}
	}
}

// counts are the probe counters summed over the targets.
type counts struct {
	attempts, sent, acked, lost, late, skipped, dropped, unexpectedAcks uint64
	failures                                                            map[probe.FailureReason]uint64
	disconnects                                                         map[probe.DisconnectReason]uint64
}

func (e *engine) counts() counts { return e.tally.counts() }

// subEvents returns c minus an earlier snapshot b of the event counters (the
// connection counters are kept whole: connections are made in the warmup).
func (c counts) subEvents(b counts) counts {
	c.sent -= b.sent
	c.acked -= b.acked
	c.lost -= b.lost
	c.late -= b.late
	c.skipped -= b.skipped
	c.dropped -= b.dropped
	c.unexpectedAcks -= b.unexpectedAcks
	return c
}

func (c counts) totalFailures() uint64 {
	var n uint64
	for _, v := range c.failures {
		n += v
	}
	return n
}

// unexpectedDisconnects counts ends of connections this agent did not ask
// for (every reason but io_client_disconnect).
func (c counts) unexpectedDisconnects() uint64 {
	var n uint64
	for r, v := range c.disconnects {
		if r != probe.ReasonClientClose {
			n += v
		}
	}
	return n
}

// tally is the pool.Observer of a one-shot run: it counts what the agent
// reports, as it happens, and feeds the taps.
type tally struct {
	connectTap, latencyTap prometheus.Observer
	// series, if not nil, receives every event for the timeline.
	series *timeSeries

	mu    sync.Mutex
	c     counts
	steps map[string]*stepTally // scenario steps, by name
	// stepsOn enables the steps' latency recorders (the measured phase).
	stepsOn atomic.Bool
}

// stepTally is one scenario step's outcomes and latencies.
type stepTally struct {
	sent, answered, rejected, lost, late uint64
	latency                              *recorder
}

func newTally(connectTap, latencyTap prometheus.Observer) *tally {
	return &tally{
		connectTap: connectTap, latencyTap: latencyTap,
		c: counts{failures: map[probe.FailureReason]uint64{}, disconnects: map[probe.DisconnectReason]uint64{}},
	}
}

// Connection implements pool.Observer.
func (t *tally) Connection(_ string, ev pool.ConnEvent, reason string, took time.Duration) {
	if ev == pool.ConnEstablished && t.connectTap != nil {
		t.connectTap.Observe(took.Seconds())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev {
	case pool.ConnAttempt:
		t.c.attempts++
	case pool.ConnFailed:
		t.c.failures[probe.FailureReason(reason)]++
	case pool.ConnClosed:
		t.c.disconnects[probe.DisconnectReason(reason)]++
	}
}

// Event implements pool.Observer.
func (t *tally) Event(_, probeName, step string, o pool.Outcome, n int, latency time.Duration) {
	if probeName == scenario.Name {
		t.stepEvent(step, o, n, latency)
		return
	}
	if o == pool.OutcomeAnswered && t.latencyTap != nil {
		t.latencyTap.Observe(latency.Seconds())
	}
	if t.series != nil {
		t.series.event(o, n, latency)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := uint64(n)
	switch o {
	case pool.OutcomeSent:
		t.c.sent += k
	case pool.OutcomeAnswered:
		t.c.acked += k
	case pool.OutcomeRejected:
		t.c.lost += k // a refused answer is not a good one: it fails the loss criterion
	case pool.OutcomeLost:
		t.c.lost += k
	case pool.OutcomeLate:
		t.c.late += k
	case pool.OutcomeSkipped:
		t.c.skipped += k
	case pool.OutcomeDropped:
		t.c.dropped += k
	case pool.OutcomeUnexpected:
		t.c.unexpectedAcks += k
	}
}

// stepEvent accounts an outcome of a scenario step: kept apart from the
// echo probe's, for the per-step criteria.
func (t *tally) stepEvent(step string, o pool.Outcome, n int, latency time.Duration) {
	if step == "" {
		return // flows skipped or dropped before a step
	}
	t.mu.Lock()
	st := t.steps[step]
	if st == nil {
		if t.steps == nil {
			t.steps = map[string]*stepTally{}
		}
		st = &stepTally{latency: newRecorder(defaultReservoir, uint64(len(t.steps))+7)}
		st.latency.enabled.Store(true)
		t.steps[step] = st
	}
	k := uint64(n)
	switch o {
	case pool.OutcomeSent:
		st.sent += k
	case pool.OutcomeAnswered:
		st.answered += k
	case pool.OutcomeRejected:
		st.rejected += k
	case pool.OutcomeLost:
		st.lost += k
	case pool.OutcomeLate:
		st.late += k
	}
	t.mu.Unlock()
	if o == pool.OutcomeAnswered && t.stepsOn.Load() {
		st.latency.Observe(latency.Seconds())
	}
}

// stepCounts returns a copy of the steps' counts (latency recorders shared).
func (t *tally) stepCounts() map[string]stepTally {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]stepTally, len(t.steps))
	for k, v := range t.steps {
		out[k] = *v
	}
	return out
}

// counts returns a copy of the counts so far.
func (t *tally) counts() counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.c
	c.failures = maps.Clone(t.c.failures)
	c.disconnects = maps.Clone(t.c.disconnects)
	return c
}

// preflight dials each target once, bounded by preflightTimeout, and
// closes the connection. Its error says what to check.
func preflight(ctx context.Context, driver probe.Driver, targets []*probe.Target) error {
	for _, t := range targets {
		dctx, cancel := context.WithTimeout(ctx, preflightTimeout)
		conn, err := driver.Dial(dctx, t, probe.Handlers{})
		dctxErr := dctx.Err()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &unreachableError{target: t, reason: probe.ClassifyDialError(err, dctxErr), err: err}
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), preflightTimeout)
		_ = conn.Close(cctx)
		cancel()
	}
	return nil
}

// unreachableError is a failed pre-flight connection.
type unreachableError struct {
	target *probe.Target
	reason probe.FailureReason
	err    error
}

func (e *unreachableError) Error() string {
	t := e.target
	host := t.URL.Hostname()
	port := t.URL.Port()
	if port == "" {
		port = "80"
		if t.URL.Scheme == "https" || t.URL.Scheme == "wss" {
			port = "443"
		}
	}
	addr := net.JoinHostPort(host, port)
	u := t.URL.Scheme + "://" + addr + t.Namespace
	var hint string
	switch e.reason {
	case probe.FailRefused:
		hint = fmt.Sprintf("nothing accepts connections on %s. Check that the server is up, that the port (%s) is right, and that it listens on that address (e.g. 0.0.0.0, not only 127.0.0.1 inside a container).", addr, port)
	case probe.FailDNS:
		hint = fmt.Sprintf("the host name %q does not resolve. Check the URL's host.", host)
	case probe.FailTimeout:
		hint = fmt.Sprintf("no Socket.IO answer from %s within %s. Check that the server is up and not overloaded, that the port (%s) is right, and that no firewall drops the traffic.", addr, preflightTimeout, port)
	case probe.FailTLS:
		hint = fmt.Sprintf("the TLS handshake with %s failed. Check the scheme (http:// for a plain server, https:// for TLS) and the certificate (SOAK_TLS_CA_FILE).", addr)
	case probe.FailHandshake:
		hint = fmt.Sprintf("%s answered, but not as a Socket.IO v4 server. Check the URL and scheme, and the Engine.IO path (SOAK_SOCKETIO_PATH, now %q).", addr, t.Path)
	case probe.FailConnectError:
		hint = fmt.Sprintf("the server refused the namespace CONNECT to %q. Check the namespace (the URL path) and the credentials (SOAK_AUTH_TOKEN, SOAK_AUTH_JSON).", t.Namespace)
	case probe.FailReset:
		hint = fmt.Sprintf("the connection to %s was closed during the handshake. Check the scheme (http vs https) and the port, and whether a proxy in between supports WebSocket.", addr)
	default:
		hint = fmt.Sprintf("check the URL, the port and that the server is up (%s).", e.reason)
	}
	return fmt.Sprintf("cannot reach %s (%s): %s\n  detail: %v", u, e.reason, hint, e.err)
}

// serveMetrics serves reg on cfg.ListenAddress until the returned stop is
// called; with no address it does nothing.
func serveMetrics(ctx context.Context, cfg serveConfig, reg *prometheus.Registry, log *zap.Logger,
	page web.Page, ready func() bool,
) (addr string, stop func(), err error) {
	if cfg.ListenAddress == "" {
		return "", func() {}, nil
	}
	wc := web.Config{ListenAddress: cfg.ListenAddress, WebConfigFile: cfg.WebConfigFile}
	if err := wc.Validate(); err != nil {
		return "", nil, err
	}
	srv := web.New(wc, log.Named("web"), web.Options{Gatherer: reg, Registerer: reg, Ready: ready, Page: page})
	ln, err := srv.Listen()
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(sctx, ln); err != nil {
			log.Warn("metrics endpoint stopped", zap.Error(err))
		}
	}()
	return ln.Addr().String(), func() { cancel(); <-done }, nil
}

// progress redraws one status line on w once a second while enabled (w is
// a terminal), until the returned stop is called, which clears the line.
func progress(w io.Writer, enabled bool, line func() string) (stop func()) {
	if !enabled {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprint(w, "\r\033[K"+line())
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

// sleep waits for d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
