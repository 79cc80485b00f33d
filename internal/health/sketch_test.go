package health

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestSketchRelativeError(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"constant 400ms", func(*rand.Rand) time.Duration { return 400 * time.Millisecond }},
		{"constant 2.34ms", func(*rand.Rand) time.Duration { return 2340 * time.Microsecond }},
		{"uniform 1-500ms", func(r *rand.Rand) time.Duration {
			return time.Millisecond + time.Duration(r.Int64N(int64(499*time.Millisecond)))
		}},
		{"lognormal", func(r *rand.Rand) time.Duration {
			return time.Duration(math.Exp(r.NormFloat64()) * float64(10*time.Millisecond))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var s sketch
			vals := make([]float64, 20000)
			for i := range vals {
				d := tt.gen(r)
				vals[i] = d.Seconds()
				s.add(d, 1)
			}
			sort.Float64s(vals)
			for _, q := range []float64{0.5, 0.95, 0.99} {
				exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
				got := s.quantile(q)
				if rel := math.Abs(got-exact) / exact; rel > 0.045 {
					t.Errorf("q%v: got %v, exact %v, relative error %.3f > 0.045", q, got, exact, rel)
				}
			}
		})
	}
	var empty sketch
	if !math.IsNaN(empty.quantile(0.5)) {
		t.Error("empty sketch: want NaN")
	}
}
