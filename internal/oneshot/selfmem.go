package oneshot

import (
	"context"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak"
)

// selfMemory samples the agent's own memory through the leak package's
// self source (Go heap objects from runtime/metrics, RSS from procfs). Where
// procfs is missing (not Linux), the RSS is reported as unavailable.
type selfMemory struct {
	src leak.Sampler // nil when the self source is unavailable
	now func() time.Time

	mu     sync.Mutex
	points []memPoint
}

// memPoint is one memory sample; NaN marks a value that could not be read.
type memPoint struct {
	T         time.Time
	Heap, RSS float64
}

func newSelfMemory(now func() time.Time) *selfMemory {
	s := &selfMemory{now: now}
	if src, err := leak.NewSelf("/proc", "/sys/fs/cgroup", now); err == nil {
		s.src = src
	}
	return s
}

// sample reads one point and appends it.
func (s *selfMemory) sample(ctx context.Context) {
	p := memPoint{T: s.now(), Heap: math.NaN(), RSS: math.NaN()}
	if s.src != nil {
		smp, _ := s.src.Sample(ctx) // a procfs failure still returns the heap
		if !smp.Time.IsZero() {
			p.T = smp.Time
		}
		for _, r := range smp.Readings {
			switch r.Kind {
			case leak.KindHeap:
				p.Heap = r.Bytes
			case leak.KindRSS:
				p.RSS = r.Bytes
			}
		}
	}
	if math.IsNaN(p.Heap) && ctx.Err() == nil {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		p.Heap = float64(ms.HeapAlloc)
	}
	if math.IsNaN(p.Heap) && math.IsNaN(p.RSS) {
		return
	}
	s.mu.Lock()
	s.points = append(s.points, p)
	s.mu.Unlock()
}

// Run samples now and then on every tick until ctx ends.
func (s *selfMemory) Run(ctx context.Context, tick <-chan time.Time) {
	s.sample(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			s.sample(ctx)
		}
	}
}

// Points returns a copy of the samples so far.
func (s *selfMemory) Points() []memPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]memPoint(nil), s.points...)
}

// seriesStats are the figures of one memory series.
type seriesStats struct {
	N                             int
	Initial, Final, Min, Avg, Max float64
	InitialT, FinalT              time.Time
	Values                        []float64
	Available                     bool
}

// statsOf summarises the finite values of one series of points.
func statsOf(points []memPoint, pick func(memPoint) float64) seriesStats {
	s := seriesStats{Initial: math.NaN(), Final: math.NaN(), Min: math.NaN(), Avg: math.NaN(), Max: math.NaN()}
	var sum float64
	for _, p := range points {
		v := pick(p)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if s.N == 0 {
			s.Initial, s.InitialT, s.Min, s.Max = v, p.T, v, v
		}
		s.N++
		s.Final, s.FinalT = v, p.T
		s.Min, s.Max = min(s.Min, v), max(s.Max, v)
		sum += v
		s.Values = append(s.Values, v)
	}
	if s.N > 0 {
		s.Avg = sum / float64(s.N)
		s.Available = true
	}
	return s
}

func heapOf(p memPoint) float64 { return p.Heap }
func rssOf(p memPoint) float64  { return p.RSS }
