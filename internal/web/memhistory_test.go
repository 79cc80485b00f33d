package web

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestMemoryHistory(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	bytes := 100.0
	src := func() []MemorySeries {
		mu.Lock()
		defer mu.Unlock()
		return []MemorySeries{{Source: "s", Kind: "heap", Bytes: bytes}, {Source: "s", Kind: "rss"}}
	}
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tick := make(chan time.Time)
	h := NewMemoryHistory(src, time.Minute, 3, clock, tick)
	for i := 0; i < 4; i++ {
		h.Sample()
		mu.Lock()
		now = now.Add(time.Minute)
		bytes += 10
		mu.Unlock()
	}
	// The fifth sample through Run: Run finishes the tick's sample before it
	// looks at ctx again, so it is recorded when Run returns.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	tick <- time.Time{}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := h.Series()
	tests := []struct {
		name  string
		index int
		want  []float64
	}{
		{"heap keeps the last 3", 0, []float64{120, 130, 140}},
		{"rss without samples has no points", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b []float64
			for _, p := range got[tt.index].Points {
				b = append(b, p.Bytes)
			}
			if len(b) != len(tt.want) {
				t.Fatalf("points %v, want %v", b, tt.want)
			}
			for i := range b {
				if b[i] != tt.want[i] {
					t.Fatalf("points %v, want %v", b, tt.want)
				}
			}
		})
	}
}
