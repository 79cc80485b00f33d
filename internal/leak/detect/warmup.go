package detect

import (
	"math"
	"time"

	"github.com/generic-corp/soak-exporter/internal/leak/stats"
)

// segFigures are the floor's slopes over the thirds of the segment so far
// (by time) and their standard errors, for the warm-up test.
type segFigures struct {
	ok     bool
	age    float64 // seconds of segment the figures cover
	thirds [3]float64
	se     [3]float64
}

// segPointsPerThird bounds the floors fitted per third of the segment:
// longer segments merge consecutive ring buckets (their minimum), so that
// the cost of the test does not grow with the segment.
const segPointsPerThird = 48

// segmentFigures returns the segment's figures as of age, from the ring of
// bucket floors, or nil when the ring does not hold the whole segment or a
// third has fewer than three floors. They are cached per complete bucket.
func (d *Detector) segmentFigures(age time.Duration) *segFigures {
	r := d.day
	if r == nil {
		return nil
	}
	c := int64(age.Seconds() / r.widthS)
	if d.segCacheSeg == d.segment && d.segCacheC == c {
		return d.segCached()
	}
	d.segCacheSeg, d.segCacheC = d.segment, c
	d.seg = segFigures{}
	if c < 9 || c >= int64(len(r.idx)) {
		return nil
	}
	g := max((c+3*segPointsPerThird-1)/(3*segPointsPerThird), 1)
	xs, ys := d.xs[:0], d.ys[:0]
	for k := int64(0); k < c; k += g {
		end := min(k+g, c)
		y, ok := r.floor(float64(k)*r.widthS, float64(end)*r.widthS)
		if ok {
			xs = append(xs, (float64(k)+float64(end))/2*r.widthS)
			ys = append(ys, y)
		}
	}
	d.xs, d.ys = xs, ys
	noise := diffNoise(ys, &d.tmp)
	if math.IsNaN(noise) {
		return nil
	}
	xEnd := float64(c) * r.widthS
	start := 0
	for j := range 3 {
		end := start
		for end < len(xs) && min(int(3*xs[end]/xEnd), 2) <= j {
			end++
		}
		if end-start < 3 {
			return nil
		}
		s, _, buf, ok := stats.TheilSen(xs[start:end], ys[start:end], d.buf)
		d.buf = buf
		if !ok {
			return nil
		}
		var m stats.Moments
		for i := start; i < end; i++ {
			m.Add(xs[i], 0)
		}
		d.seg.thirds[j], d.seg.se[j] = s, noise/math.Sqrt(m.SXX)
		start = end
	}
	d.seg.ok, d.seg.age = true, xEnd
	return &d.seg
}

func (d *Detector) segCached() *segFigures {
	if !d.seg.ok {
		return nil
	}
	return &d.seg
}
