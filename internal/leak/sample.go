package leak

import (
	"context"
	"time"
)

// Kind is the kind of memory a reading measures, the value of the kind label.
type Kind string

// Kinds of memory.
const (
	// KindHeap is the managed heap in use (V8's used heap, Go's heap objects).
	KindHeap Kind = "heap"
	// KindRSS is the resident set size of the process.
	KindRSS Kind = "rss"
)

// Reading is one value of one kind of memory.
type Reading struct {
	Kind  Kind
	Bytes float64
	// Limit is a limit the source itself discovered (cgroup memory limit,
	// GOMEMLIMIT), in bytes; 0 when unknown.
	Limit float64
}

// Sample is what one source read at one time.
type Sample struct {
	Time     time.Time
	Readings []Reading
	// StartTime is the process start time in Unix seconds, 0 when unknown.
	StartTime float64
}

// Sampler reads the memory of one source. Sample may return readings
// together with an error when only part of what it reads failed (a missing
// metric); the readings are used and the error is counted.
type Sampler interface {
	// Source is the source label: scrape, procfs or self.
	Source() string
	// Sample reads once, bounded by ctx.
	Sample(ctx context.Context) (Sample, error)
}
