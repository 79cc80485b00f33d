package health

import (
	"time"

	"github.com/generic-corp/soak-exporter/internal/pool"
)

// Tee returns a pool.Observer that passes every call to each non-nil observer.
func Tee(obs ...pool.Observer) pool.Observer {
	var t tee
	for _, o := range obs {
		if o != nil {
			t = append(t, o)
		}
	}
	return t
}

type tee []pool.Observer

func (t tee) Connection(target string, e pool.ConnEvent, reason string, took time.Duration) {
	for _, o := range t {
		o.Connection(target, e, reason, took)
	}
}

func (t tee) Event(target, probeName, step string, o pool.Outcome, n int, latency time.Duration) {
	for _, ob := range t {
		ob.Event(target, probeName, step, o, n, latency)
	}
}
