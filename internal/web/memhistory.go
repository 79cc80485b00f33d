package web

import (
	"context"
	"time"
)

// MemoryHistory is a MemoryView that adds the chart's points to the series of
// another view: Run samples the latest bytes of every series once a tick and
// keeps the last Keep samples per series (a bounded ring).
type MemoryHistory struct {
	src  func() []MemorySeries
	now  func() time.Time
	tick func() (<-chan time.Time, func())
	keep int

	mu  chan struct{} // a one-slot lock usable from Run and Series
	pts map[[2]string][]MemoryPoint
}

// NewMemoryHistory samples src every interval (or on tick, for tests, when
// not nil) and keeps keep points per series; now is the clock (time.Now when
// nil).
func NewMemoryHistory(src func() []MemorySeries, interval time.Duration, keep int, now func() time.Time, tick <-chan time.Time) *MemoryHistory {
	if now == nil {
		now = time.Now
	}
	h := &MemoryHistory{src: src, now: now, keep: max(2, keep), mu: make(chan struct{}, 1), pts: map[[2]string][]MemoryPoint{}}
	h.tick = func() (<-chan time.Time, func()) {
		if tick != nil {
			return tick, func() {}
		}
		t := time.NewTicker(interval)
		return t.C, t.Stop
	}
	return h
}

// Run samples once a tick until ctx ends.
func (h *MemoryHistory) Run(ctx context.Context) error {
	c, stop := h.tick()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c:
			h.Sample()
		}
	}
}

// Sample records the latest bytes of every series now.
func (h *MemoryHistory) Sample() {
	now := h.now()
	series := h.src()
	h.mu <- struct{}{}
	defer func() { <-h.mu }()
	for _, s := range series {
		if s.Bytes <= 0 {
			continue
		}
		k := [2]string{s.Source, s.Kind}
		p := append(h.pts[k], MemoryPoint{Time: now, Bytes: s.Bytes})
		if len(p) > h.keep {
			p = append(p[:0:0], p[len(p)-h.keep:]...)
		}
		h.pts[k] = p
	}
}

// Series implements MemoryView.
func (h *MemoryHistory) Series() []MemorySeries {
	series := h.src()
	h.mu <- struct{}{}
	defer func() { <-h.mu }()
	for i := range series {
		if len(series[i].Points) == 0 {
			series[i].Points = append([]MemoryPoint(nil), h.pts[[2]string{series[i].Source, series[i].Kind}]...)
		}
	}
	return series
}
