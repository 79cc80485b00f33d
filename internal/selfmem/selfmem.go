// Package selfmem keeps the agent's own memory in view and in check: a soft
// memory limit for the Go runtime derived from the container's limit (so
// that the garbage collector's headroom does not double the live heap of a
// large pool), the agent's memory per connected client as a gauge, and,
// once the pool is up, the executable's pages that only the start-up used
// taken out of the resident set (ReleaseStartupPages).
package selfmem

import (
	"context"
	"math"
	"runtime/metrics"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// MetricBytesPerClient is the name of the per-client memory gauge.
const MetricBytesPerClient = "soak_agent_memory_per_client_bytes"

// limitRatio is the share of the container's memory limit given to the Go
// runtime as its soft limit; the rest is for what the runtime does not
// count (stacks of threads in system calls, the C side, the page cache).
const limitRatio = 0.9

// SetLimit sets the runtime's soft memory limit to 90 % of the cgroup's
// memory limit, unless GOMEMLIMIT is set (then it is left alone, as the Go
// runtime documents) or AUTOMEMLIMIT=off. It returns the limit in force
// (math.MaxInt64 for none) and logs it once.
func SetLimit(log *zap.Logger) int64 {
	limit, err := memlimit.Set(memlimit.WithRatio(limitRatio), memlimit.WithProvider(memlimit.FromCgroup))
	switch {
	case err != nil:
		log.Warn("cannot derive a memory limit from the container; the Go runtime keeps its default", zap.Error(err))
	case limit == math.MaxInt64:
		log.Info("no container memory limit found: the Go runtime's soft memory limit stays unset")
	default:
		log.Info("Go runtime soft memory limit set", zap.Int64("bytes", limit), zap.Float64("share_of_container_limit", limitRatio))
	}
	return limit
}

// NewCollector returns a collector of the agent's memory per connected
// client, computed at scrape time: the memory the Go runtime holds from the
// operating system (mapped, minus what it has released) over the clients
// connected now (no sample while none is).
func NewCollector(connected func() int) prometheus.Collector {
	return &collector{
		desc: prometheus.NewDesc(MetricBytesPerClient,
			"Memory the agent's Go runtime holds from the operating system, divided by the clients connected now.", nil, nil),
		connected: connected,
	}
}

type collector struct {
	desc      *prometheus.Desc
	connected func() int
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := c.connected()
	if n <= 0 {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(heldBytes())/float64(n))
}

// heldBytes is the memory the runtime has mapped and not released.
func heldBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	total, released := s[0].Value.Uint64(), s[1].Value.Uint64()
	if released > total {
		return 0
	}
	return total - released
}

// releaseCheck is how often ReleaseWhenReady looks whether the pool is up;
// it releases no sooner than releaseMinWait after it was called (so that the
// first scrapes, samples and probe rounds are behind it too) and no later
// than releaseMaxWait.
const (
	releaseCheck   = time.Second
	releaseMinWait = time.Minute
	releaseMaxWait = 5 * time.Minute
)

// ReleaseWhenReady calls release (ReleaseStartupPages, in the agent) once,
// when ready first says yes (the pool has connected every client) but not
// before releaseMinWait, or at releaseMaxWait if the pool is not up by then.
// It logs what was released, or why not, once, and returns then or when ctx
// ends.
func ReleaseWhenReady(ctx context.Context, log *zap.Logger, ready func() bool, release func() (int64, error)) {
	t := time.NewTicker(releaseCheck)
	defer t.Stop()
	start := time.Now()
	for time.Since(start) < releaseMinWait || !ready() {
		if time.Since(start) >= releaseMaxWait {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	n, err := release()
	if err != nil {
		log.Info("start-up pages of the executable not released", zap.Error(err))
		return
	}
	log.Info("start-up pages of the executable released from the resident set", zap.Int64("bytes", n))
}
