package oneshot

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// defaultReservoir is how many raw values a recorder keeps: percentiles are
// exact up to this many observations, and estimated from a uniform sample
// of this size beyond (8 MB of float64s).
const defaultReservoir = 1_000_000

// recorder keeps raw observations for exact percentiles, with bounded
// memory: up to capacity values are kept as they come; beyond, reservoir
// sampling (Vitter's algorithm R) keeps a uniform sample of all of them.
// Count, sum, minimum and maximum are always exact. It is a
// prometheus.Observer, safe for concurrent use, and records only while
// enabled.
type recorder struct {
	enabled atomic.Bool

	mu       sync.Mutex
	capacity int
	vals     []float64
	n        uint64
	sum      float64
	min, max float64
	rnd      *rand.Rand
}

func newRecorder(capacity int, seed uint64) *recorder {
	return &recorder{
		capacity: max(capacity, 1),
		min:      math.Inf(1),
		max:      math.Inf(-1),
		rnd:      rand.New(rand.NewPCG(seed, seed^0x5bd1e995)),
	}
}

// Observe records v if the recorder is enabled.
func (r *recorder) Observe(v float64) {
	if !r.enabled.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.sum += v
	r.min = min(r.min, v)
	r.max = max(r.max, v)
	if len(r.vals) < r.capacity {
		r.vals = append(r.vals, v)
		return
	}
	if j := r.rnd.Uint64N(r.n); j < uint64(r.capacity) {
		r.vals[j] = v
	}
}

// Count is the number of observations recorded.
func (r *recorder) Count() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// summary computes the distribution's figures. Percentiles use the
// nearest-rank definition (the smallest value with at least p of the values
// at or below it).
func (r *recorder) summary() Summary {
	r.mu.Lock()
	vals := slices.Clone(r.vals)
	s := Summary{Count: r.n}
	if r.n > 0 {
		s.Sum = r.sum
		s.Min, s.Max = r.min, r.max
	}
	r.mu.Unlock()
	s.Sampled = uint64(len(vals)) < s.Count
	if len(vals) == 0 {
		s.Avg, s.P50, s.P95, s.P99, s.Min, s.Max = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return s
	}
	slices.Sort(vals)
	s.Avg = s.Sum / float64(s.Count)
	s.P50 = nearestRank(vals, 0.50)
	s.P95 = nearestRank(vals, 0.95)
	s.P99 = nearestRank(vals, 0.99)
	return s
}

// nearestRank is the p-quantile of sorted values by the nearest-rank rule.
func nearestRank(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Summary describes a distribution of durations (seconds) or sizes.
type Summary struct {
	// Count is the number of observations; Sum their total.
	Count uint64
	Sum   float64
	// Avg, P50, P95, P99, Min and Max are NaN when Count is 0.
	Avg, P50, P95, P99, Min, Max float64
	// Sampled is true when the percentiles come from a uniform reservoir
	// sample rather than every value (more observations than the cap).
	Sampled bool
}

// HistBin is one bin of a distribution: the values in (previous Upper,
// Upper], in seconds.
type HistBin struct {
	Upper Float  `json:"le_seconds"`
	Count uint64 `json:"count"`
}

// histogram bins the kept values on a 1-2-5 scale (1 ms, 2 ms, 5 ms, 10 ms,
// ...), from the bin of the smallest value to that of the largest. When the
// recorder holds a sample (more values than it keeps), the counts are of
// the sample.
func (r *recorder) histogram() []HistBin {
	r.mu.Lock()
	vals := slices.Clone(r.vals)
	r.mu.Unlock()
	return histogramOf(vals)
}

// histEdges are the bins' upper bounds, in seconds: 1-2-5 from 100 µs to
// 500 s, and +Inf.
func histEdges() []float64 {
	var out []float64
	for e := 1e-4; e < 1e3; e *= 10 {
		out = append(out, roundTo(e, 6), roundTo(2*e, 6), roundTo(5*e, 6))
	}
	return append(out, math.Inf(1))
}

func histogramOf(vals []float64) []HistBin {
	if len(vals) == 0 {
		return []HistBin{}
	}
	edges := histEdges()
	counts := make([]uint64, len(edges))
	lo, hi := len(edges), -1
	for _, v := range vals {
		i, _ := slices.BinarySearch(edges, v) // first edge >= v
		i = min(i, len(edges)-1)
		counts[i]++
		lo, hi = min(lo, i), max(hi, i)
	}
	out := make([]HistBin, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		out = append(out, HistBin{Upper: Float(edges[i]), Count: counts[i]})
	}
	return out
}
