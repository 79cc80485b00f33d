// Package agent builds the whole soak agent from its configuration: one
// pool of clients per target, the probes of the probe table attached to
// every pool, their metrics in one registry. The daemon and the one-shot
// mode build it the same way, with New; the one-shot mode reads results
// through a pool.Observer.
package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
	"github.com/generic-corp/soak-exporter/internal/probes/echo"
	"github.com/generic-corp/soak-exporter/internal/probes/fanout"
	"github.com/generic-corp/soak-exporter/internal/probes/push"
	"github.com/generic-corp/soak-exporter/internal/probes/recovery"
	"github.com/generic-corp/soak-exporter/internal/probes/scenario"
	"github.com/generic-corp/soak-exporter/internal/selfmem"
	"github.com/generic-corp/soak-exporter/internal/target"
)

// Aliases give the embedded configurations distinct field names.
type (
	// PoolConfig is the pools' configuration.
	PoolConfig = pool.Config
	// EchoConfig is the echo probe's configuration.
	EchoConfig = echo.Config
	// PushConfig is the push probe's configuration.
	PushConfig = push.Config
	// FanoutConfig is the fan-out probe's configuration.
	FanoutConfig = fanout.Config
	// ScenarioConfig is the scenario probe's configuration.
	ScenarioConfig = scenario.Config
	// RecoveryConfig is the connection-state recovery probe's configuration.
	RecoveryConfig = recovery.Config
)

// Config is the agent's configuration: the pools' and every probe's,
// embedded so that their variables keep the plain SOAK_ prefix.
type Config struct {
	PoolConfig
	EchoConfig
	PushConfig
	FanoutConfig
	ScenarioConfig
	RecoveryConfig
}

// Validate checks every part; errors name the variable.
func (c Config) Validate() error {
	for _, v := range []interface{ Validate() error }{c.PoolConfig, c.EchoConfig, c.PushConfig, c.FanoutConfig, c.ScenarioConfig, c.RecoveryConfig} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// probeEntry is one line of the probe table.
type probeEntry struct {
	name  string
	build func(pool.Deps) (pool.Probe, error)
}

// probeTable lists every probe the agent can run, in the order they attach
// to a pool. Adding a probe is one package implementing pool.Probe, its
// Config embedded above, and one line here.
func (c Config) probeTable() []probeEntry {
	return []probeEntry{
		{echo.Name, entry(echo.New, c.EchoConfig)},
		{push.Name, entry(push.New, c.PushConfig)},
		{fanout.Name, entry(fanout.New, c.FanoutConfig)},
		{scenario.Name, entry(scenario.New, c.ScenarioConfig)},
		{recovery.Name, entry(recovery.New, c.RecoveryConfig)},
	}
}

// entry adapts a probe constructor, which returns a nil pointer when its
// configuration disables it, to the table.
func entry[C any, P interface {
	comparable
	pool.Probe
}](build func(C, pool.Deps) (P, error), cfg C) func(pool.Deps) (pool.Probe, error) {
	return func(d pool.Deps) (pool.Probe, error) {
		p, err := build(cfg, d)
		var off P
		if err != nil || p == off {
			return nil, err
		}
		return p, nil
	}
}

// Options are the agent's collaborators.
type Options struct {
	// Driver dials the connections.
	Driver probe.Driver
	// Targets are the server replicas; at least one.
	Targets []*probe.Target
	// Registerer takes every metric of the agent.
	Registerer prometheus.Registerer
	// Logger is named by the caller.
	Logger *zap.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Observer, if not nil, also receives every connection event and every
	// probe outcome.
	Observer pool.Observer
	// Seed seeds the pools' jitter; zero picks random seeds.
	Seed uint64
	// EphemeralPorts is the size of the system's ephemeral port range, which
	// bounds the connections per source address to one server address;
	// zero reads it from target.EphemeralPortsFile.
	EphemeralPorts int
	// ReleasePages, if not nil, is called once when every pool has
	// connected all its clients, at least a minute and at most 5 minutes
	// after Run starts (selfmem.ReleaseWhenReady): main gives
	// selfmem.ReleaseStartupPages, which takes the executable's pages that
	// only the start-up used out of the resident set.
	ReleasePages func() (int64, error)
}

// Agent is the pools and the probes running through them.
type Agent struct {
	log          *zap.Logger
	pools        []*pool.Pool
	probes       []pool.Probe
	releasePages func() (int64, error)
}

// New builds the agent: the probes of the table that the configuration
// enables, and one pool per target with every probe attached. Nothing runs
// until Run.
func New(cfg Config, o Options) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Driver == nil || len(o.Targets) == 0 || o.Registerer == nil {
		return nil, errors.New("agent: driver, targets and registerer are required")
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if rd, ok := o.Driver.(probe.RecoveryDriver); cfg.RecoveryConfig.Enabled() && (!ok || !rd.Recovers()) {
		return nil, fmt.Errorf("SOAK_RECOVERY_BREAK_RATE: the %s driver does not support connection-state recovery: use SOAK_DRIVER=native", o.Driver.Name())
	}
	ports := o.EphemeralPorts
	if ports <= 0 {
		var err error
		if ports, err = target.EphemeralPorts(target.EphemeralPortsFile); err != nil {
			return nil, err
		}
	}
	for i, pc := range cfg.PoolConfig.Split(len(o.Targets)) {
		if err := target.CheckCapacity(o.Targets[i], pc.Clients, ports); err != nil {
			return nil, err
		}
	}
	a := &Agent{log: log, releasePages: o.ReleasePages}
	for _, e := range cfg.probeTable() {
		p, err := e.build(pool.Deps{Registerer: o.Registerer, Logger: log.Named(e.name), Now: now, Observer: o.Observer})
		if err != nil {
			return nil, err
		}
		if p != nil {
			a.probes = append(a.probes, p)
		}
	}
	metrics, err := pool.NewMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	for i, pc := range cfg.PoolConfig.Split(len(o.Targets)) {
		t := o.Targets[i]
		seed := o.Seed
		if seed != 0 {
			seed += uint64(i)
		}
		p, err := pool.New(pc, pool.Options{
			Driver: o.Driver, Target: t, Metrics: metrics, Registerer: o.Registerer,
			Logger: log.Named("pool").With(zap.String("target", t.Name)),
			Now:    now, Seed: seed, Observer: o.Observer, Probes: a.probes,
			Share: pool.Share(pc.Clients, cfg.Clients, len(o.Targets)),
		})
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		a.pools = append(a.pools, p)
	}
	if err := o.Registerer.Register(selfmem.NewCollector(a.Connected)); err != nil {
		return nil, err
	}
	return a, nil
}

// Run runs the pools and the probes until ctx ends, then returns once the
// connections are closed and every goroutine is done.
func (a *Agent) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range a.pools {
		g.Go(func() error { return p.Run(gctx) })
	}
	for _, pr := range a.probes {
		g.Go(func() error {
			if err := pr.Run(gctx); err != nil {
				return fmt.Errorf("%s probe: %w", pr.Name(), err)
			}
			return nil
		})
	}
	if a.releasePages != nil {
		g.Go(func() error {
			ready := func() bool { return a.Connected() >= a.Desired() }
			selfmem.ReleaseWhenReady(gctx, a.log.Named("selfmem"), ready, a.releasePages)
			return nil
		})
	}
	return g.Wait()
}

// Pools are the agent's pools, one per target, in the targets' order.
func (a *Agent) Pools() []*pool.Pool { return a.pools }

// Probes are the probes the configuration enabled, in the table's order.
func (a *Agent) Probes() []pool.Probe { return a.probes }

// Running reports whether every pool runs (the agent's readiness).
func (a *Agent) Running() bool {
	for _, p := range a.pools {
		if !p.Running() {
			return false
		}
	}
	return true
}

// Connected is the number of connected clients over every pool.
func (a *Agent) Connected() int {
	n := 0
	for _, p := range a.pools {
		n += p.Connected()
	}
	return n
}

// Desired is the number of clients over every pool.
func (a *Agent) Desired() int {
	n := 0
	for _, p := range a.pools {
		n += p.Desired()
	}
	return n
}

// Pause stops (true) or resumes (false) every pool's streams and every
// probe that sends on its own; what was sent is still resolved.
func (a *Agent) Pause(paused bool) {
	for _, p := range a.pools {
		p.Pause(paused)
	}
	for _, pr := range a.probes {
		if pp, ok := pr.(interface{ Pause(bool) }); ok {
			pp.Pause(paused)
		}
	}
}

// InFlight is the number of requests sent and not yet resolved, over every
// probe that tracks requests.
func (a *Agent) InFlight() int {
	n := 0
	for _, pr := range a.probes {
		if f, ok := pr.(interface{ InFlight() int }); ok {
			n += f.InFlight()
		}
	}
	return n
}
