package health

import (
	"math"
	"time"
)

// The latency sketch uses the exponential bucket schema of Prometheus native
// histograms with schema 3: bucket i holds (2^((i-1)/8), 2^(i/8)] seconds, a
// growth factor of 2^(1/8) ≈ 1.09. Reporting the bucket's geometric middle
// bounds the relative error by 2^(1/16)-1 ≈ 4.4 %.
const (
	sketchSchema = 8                  // buckets per power of two
	sketchMinIdx = -14 * sketchSchema // 2^-14 s ≈ 61 µs
	sketchMaxIdx = 7 * sketchSchema   // 2^7 s = 128 s
	sketchLen    = sketchMaxIdx - sketchMinIdx + 1
)

// sketch counts latencies in log buckets; values at or below 2^-14 s go to the
// first bucket, values above 128 s to the last.
type sketch [sketchLen]uint32

func sketchIndex(d time.Duration) int {
	s := d.Seconds()
	if s <= 0 {
		return 0
	}
	i := int(math.Ceil(math.Log2(s)*sketchSchema)) - sketchMinIdx
	if i < 0 {
		return 0
	}
	if i >= sketchLen {
		return sketchLen - 1
	}
	return i
}

func (s *sketch) add(d time.Duration, n uint32) { s[sketchIndex(d)] += n }

func (s *sketch) merge(o *sketch) {
	for i, c := range o {
		s[i] += c
	}
}

func (s *sketch) count() uint64 {
	var n uint64
	for _, c := range s {
		n += uint64(c)
	}
	return n
}

// quantile returns the q-quantile in seconds (NaN without data): the
// geometric middle of the bucket holding the rank.
func (s *sketch) quantile(q float64) float64 {
	total := s.count()
	if total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i, c := range s {
		cum += uint64(c)
		if cum >= rank {
			upper := float64(i+sketchMinIdx) / sketchSchema
			return math.Exp2(upper - 0.5/sketchSchema)
		}
	}
	return math.NaN()
}
