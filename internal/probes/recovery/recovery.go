// Package recovery is the connection-state recovery probe (Socket.IO 4.6+
// with connectionStateRecovery on the server). It breaks pool connections'
// transports on purpose, as network blips do, at a configured rate; each
// client then reconnects offering its session id and last offset, as
// socket.io-client does, and the probe counts the reconnects the server
// recovered (with the packets it replayed) and those it did not. Transport
// breaks that the network causes by itself are counted the same way.
package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/generic-corp/soak-exporter/internal/pool"
	"github.com/generic-corp/soak-exporter/internal/probe"
)

// Config configures the recovery probe.
type Config struct {
	BreakRate float64 `envconfig:"RECOVERY_BREAK_RATE" default:"0" desc:"Transport breaks per second over the agent for the connection-state recovery probe (0 disables it): a random connected client's TCP connection is closed without a DISCONNECT packet, and its reconnect offers the session for recovery."`
}

// MaxBreakRate bounds SOAK_RECOVERY_BREAK_RATE: breaking is a fault
// injection, not a load.
const MaxBreakRate = 100

// Enabled reports whether the probe runs.
func (c Config) Enabled() bool { return c.BreakRate > 0 }

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	if !(c.BreakRate >= 0 && c.BreakRate <= MaxBreakRate) {
		return fmt.Errorf("SOAK_RECOVERY_BREAK_RATE: must be in [0, %d] breaks per second, got %v", MaxBreakRate, c.BreakRate)
	}
	return nil
}

// Name is the probe's name.
const Name = "recovery"

// Names of the probe's metrics.
const (
	MetricBreaks     = "soak_recovery_breaks_total"
	MetricReconnects = "soak_recovery_reconnects_total"
	MetricPackets    = "soak_recovery_packets_total"
)

// Values of the result label of MetricReconnects.
const (
	ResultRecovered    = "recovered"
	ResultNotRecovered = "not_recovered"
	ResultNotOffered   = "not_offered"
)

// Probe is the recovery probe of an agent.
type Probe struct {
	cfg       Config
	breaks    *prometheus.CounterVec
	reconnect *prometheus.CounterVec
	packets   *prometheus.CounterVec

	mu    sync.Mutex
	pools []*pool.Pool // parallel to parts
	parts []*part
}

// New returns the probe, or nil when cfg disables it.
func New(cfg Config, d pool.Deps) (*Probe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, nil
	}
	pr := &Probe{
		cfg: cfg,
		breaks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBreaks,
			Help: "Transports the recovery probe broke on purpose (closed without a DISCONNECT packet)."}, []string{"target"}),
		reconnect: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReconnects,
			Help: "Reconnects after a transport break (the probe's or the network's), by result: recovered (the server took the session back), not_recovered (offered, refused: expired, other replica, restarted), not_offered (the server gave no session id: recovery is off)."}, []string{"target", "result"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricPackets,
			Help: "Packets the server replayed on recovered reconnects (missed while away)."}, []string{"target"}),
	}
	for _, c := range []prometheus.Collector{pr.breaks, pr.reconnect, pr.packets} {
		if err := d.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

// Name implements pool.Probe.
func (pr *Probe) Name() string { return Name }

// Attach implements pool.Probe.
func (pr *Probe) Attach(p *pool.Pool, _ pool.ID) (pool.Part, error) {
	t := p.Target().Name
	pt := &part{
		breaks:       pr.breaks.WithLabelValues(t),
		recovered:    pr.reconnect.WithLabelValues(t, ResultRecovered),
		notRecovered: pr.reconnect.WithLabelValues(t, ResultNotRecovered),
		notOffered:   pr.reconnect.WithLabelValues(t, ResultNotOffered),
		packets:      pr.packets.WithLabelValues(t),
	}
	pr.mu.Lock()
	pr.pools = append(pr.pools, p)
	pr.parts = append(pr.parts, pt)
	pr.mu.Unlock()
	return pt, nil
}

// Run breaks one random connected client's transport at the configured
// rate (exponential gaps, as independent blips arrive), over the pools in
// proportion to their share, until ctx ends.
func (pr *Probe) Run(ctx context.Context) error {
	pr.mu.Lock()
	pools := append([]*pool.Pool(nil), pr.pools...)
	parts := append([]*part(nil), pr.parts...)
	pr.mu.Unlock()
	if len(pools) == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTimer(gap(pr.cfg.BreakRate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		breakOne(pools, parts)
		t.Reset(gap(pr.cfg.BreakRate))
	}
}

// gap is the time to the next break: exponential with mean 1/rate.
func gap(rate float64) time.Duration {
	return time.Duration(rand.ExpFloat64() / rate * float64(time.Second))
}

// breakOne breaks a random connected session of a pool chosen by share; a
// pick that lands on a client not connected breaks nothing (the next break
// comes at its time).
func breakOne(pools []*pool.Pool, parts []*part) {
	x := rand.Float64()
	i := len(pools) - 1
	for j, c := range pools {
		if x < c.Share() {
			i = j
			break
		}
		x -= c.Share()
	}
	p := pools[i]
	if p.Desired() == 0 {
		return
	}
	if s := p.Session(rand.IntN(p.Desired())); s != nil && s.Break() {
		parts[i].breaks.Inc()
	}
}

// part is the probe in one pool.
type part struct {
	breaks, recovered, notRecovered, notOffered, packets prometheus.Counter
}

func (pt *part) Events() []string                               { return nil }
func (pt *part) Init(*pool.Session) any                         { return nil }
func (pt *part) Event(*pool.Session, string, []json.RawMessage) {}
func (pt *part) Ack(*pool.Session, uint64, []json.RawMessage)   {}
func (pt *part) Close(*pool.Session, probe.DisconnectReason)    {}

// Open counts a reconnect after a transport break by what the server did
// with the offered session.
func (pt *part) Open(s *pool.Session) {
	r := s.Recovery()
	if !r.AfterBreak || !r.Supported {
		return
	}
	switch {
	case !r.Offered:
		pt.notOffered.Inc()
	case r.Conn.Recovered:
		pt.recovered.Inc()
		pt.packets.Add(float64(r.Conn.Replayed))
	default:
		pt.notRecovered.Inc()
	}
}
