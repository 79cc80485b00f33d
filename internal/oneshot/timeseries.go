package oneshot

import (
	"math"
	"sync"
	"time"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

// Latency sketch of one interval: a histogram with sketchPerDecade
// log-spaced bins per decade from sketchMin seconds, sketchBins bins in all
// (100 µs to 100 s); values outside fall in the first or last bin. A
// quantile read from it is the geometric middle of its bin, within ±6 % of
// the true value, which is enough for a chart (the report's own
// percentiles are exact).
const (
	sketchMin       = 1e-4
	sketchPerDecade = 20
	sketchBins      = 6 * sketchPerDecade
	// maxIntervals bounds the intervals kept: past it, neighbours are
	// merged two by two and the width doubles, so a run of any length
	// keeps between maxIntervals/2 and maxIntervals of them.
	maxIntervals = 600
)

// interval holds what happened during one interval of a run.
type interval struct {
	sent, acked, lost uint64
	latMax            float64
	hist              [sketchBins]uint32
}

func (iv *interval) merge(o *interval) {
	iv.sent += o.sent
	iv.acked += o.acked
	iv.lost += o.lost
	iv.latMax = max(iv.latMax, o.latMax)
	for i := range iv.hist {
		iv.hist[i] += o.hist[i]
	}
}

func sketchBin(v float64) int {
	if !(v > sketchMin) {
		return 0
	}
	i := int(math.Log10(v/sketchMin) * sketchPerDecade)
	return min(max(i, 0), sketchBins-1)
}

// quantile is the p-quantile of the interval's latencies read from the
// sketch (NaN without values), never above the exact maximum.
func (iv *interval) quantile(p float64) float64 {
	var n uint64
	for _, c := range iv.hist {
		n += uint64(c)
	}
	if n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(p * float64(n)))
	var cum uint64
	for i, c := range iv.hist {
		cum += uint64(c)
		if cum >= max(rank, 1) {
			mid := sketchMin * math.Pow(10, (float64(i)+0.5)/sketchPerDecade)
			return min(mid, iv.latMax)
		}
	}
	return iv.latMax
}

// timeSeries records a run's events per interval of time (one second at
// first) for the charts of the HTML report, in bounded memory. It is fed by
// the tally and safe for concurrent use.
type timeSeries struct {
	now func() time.Time

	mu      sync.Mutex
	start   time.Time
	width   time.Duration
	buckets []interval
}

func newTimeSeries(now func() time.Time) *timeSeries {
	return &timeSeries{now: now, width: time.Second}
}

// begin sets the time of the first interval; events before it are ignored.
func (s *timeSeries) begin(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start = t
}

// event records n requests with outcome o (latency for answered ones).
func (s *timeSeries) event(o pool.Outcome, n int, latency time.Duration) {
	switch o {
	case pool.OutcomeSent, pool.OutcomeAnswered, pool.OutcomeRejected, pool.OutcomeLost:
	default:
		return
	}
	t := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start.IsZero() || t.Before(s.start) {
		return
	}
	idx := int(t.Sub(s.start) / s.width)
	for idx >= maxIntervals {
		s.halve()
		idx = int(t.Sub(s.start) / s.width)
	}
	for len(s.buckets) <= idx {
		s.buckets = append(s.buckets, interval{})
	}
	iv := &s.buckets[idx]
	k := uint64(max(n, 0))
	switch o {
	case pool.OutcomeSent:
		iv.sent += k
	case pool.OutcomeAnswered:
		iv.acked += k
		v := latency.Seconds()
		iv.hist[sketchBin(v)] += uint32(k)
		iv.latMax = max(iv.latMax, v)
	case pool.OutcomeRejected, pool.OutcomeLost:
		iv.lost += k
	}
}

// halve merges neighbouring intervals and doubles the width.
func (s *timeSeries) halve() {
	out := s.buckets[:0]
	for i := 0; i < len(s.buckets); i += 2 {
		iv := s.buckets[i]
		if i+1 < len(s.buckets) {
			iv.merge(&s.buckets[i+1])
		}
		out = append(out, iv)
	}
	clear(s.buckets[len(out):])
	s.buckets = out
	s.width *= 2
}

// IntervalPoint is one interval of a run's timeline: T is its start in
// seconds since the run started; counts are events sent, acked (answered
// in time) and lost (no answer in time, or refused) during it, by the time
// they happened; latencies are of the acks that arrived during it, read
// from a histogram (±6 %), except Max which is exact.
type IntervalPoint struct {
	T      float64 `json:"t_seconds"`
	Sent   uint64  `json:"sent"`
	Acked  uint64  `json:"acked"`
	Lost   uint64  `json:"lost"`
	P50    Float   `json:"latency_p50_seconds"`
	P95    Float   `json:"latency_p95_seconds"`
	MaxLat Float   `json:"latency_max_seconds"`
}

// Intervals is a run's timeline of events.
type Intervals struct {
	// Width is the interval in seconds (1 s, doubled as often as needed
	// to keep at most 600 intervals).
	Width float64 `json:"width_seconds"`
	// MeasuredFrom is when the measured phase began, in seconds since the
	// run started (the warmup before it).
	MeasuredFrom float64         `json:"measured_from_seconds"`
	Points       []IntervalPoint `json:"points"`
}

// intervals returns the timeline so far; measured is when the measured
// phase began.
func (s *timeSeries) intervals(measured time.Time) Intervals {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Intervals{Width: s.width.Seconds(), Points: make([]IntervalPoint, 0, len(s.buckets))}
	if !s.start.IsZero() && !measured.IsZero() {
		out.MeasuredFrom = roundTo(measured.Sub(s.start).Seconds(), 3)
	}
	for i := range s.buckets {
		iv := &s.buckets[i]
		p := IntervalPoint{
			T: roundTo(float64(i)*s.width.Seconds(), 3), Sent: iv.sent, Acked: iv.acked, Lost: iv.lost,
			P50: Float(iv.quantile(0.50)), P95: Float(iv.quantile(0.95)), MaxLat: Float(math.NaN()),
		}
		if iv.acked > 0 {
			p.MaxLat = Float(iv.latMax)
		}
		out.Points = append(out.Points, p)
	}
	return out
}
