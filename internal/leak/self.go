package leak

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/prometheus/procfs"
)

// Runtime metrics read by the self source.
const (
	metricHeapObjects = "/memory/classes/heap/objects:bytes"
	metricMemLimit    = "/gc/gomemlimit:bytes"
)

// Self reads the agent's own memory: heap objects from runtime/metrics and
// resident memory from procfs, so the agent watches itself too.
type Self struct {
	fs                   procfs.FS
	procPath, cgroupPath string
	now                  func() time.Time
	samples              []metrics.Sample
	pid                  int
}

// NewSelf returns the self source.
func NewSelf(procPath, cgroupPath string, now func() time.Time) (*Self, error) {
	fs, err := procfs.NewFS(procPath)
	if err != nil {
		return nil, fmt.Errorf("self: %w", err)
	}
	return &Self{
		fs: fs, procPath: procPath, cgroupPath: cgroupPath, now: now, pid: os.Getpid(),
		samples: []metrics.Sample{{Name: metricHeapObjects}, {Name: metricMemLimit}},
	}, nil
}

// Source returns "self".
func (s *Self) Source() string { return SourceSelf }

// Sample reads the agent's memory once. The heap is always read; a procfs
// failure is returned with the heap reading.
func (s *Self) Sample(ctx context.Context) (Sample, error) {
	if err := ctx.Err(); err != nil {
		return Sample{}, err
	}
	t := s.now()
	metrics.Read(s.samples)
	out := Sample{Time: t}
	heap := Reading{Kind: KindHeap}
	if v := s.samples[0].Value; v.Kind() == metrics.KindUint64 {
		heap.Bytes = float64(v.Uint64())
	}
	if v := s.samples[1].Value; v.Kind() == metrics.KindUint64 && v.Uint64() < math.MaxInt64 {
		heap.Limit = float64(v.Uint64())
	}
	out.Readings = append(out.Readings, heap)
	ps, err := readProc(s.fs, s.pid, t)
	if err != nil {
		return out, fmt.Errorf("self: procfs: %w", err)
	}
	rss := ps.Readings[0]
	rss.Limit = cgroupLimit(s.procPath, s.cgroupPath, strconv.Itoa(s.pid))
	out.Readings = append(out.Readings, rss)
	out.StartTime = ps.StartTime
	return out, nil
}
