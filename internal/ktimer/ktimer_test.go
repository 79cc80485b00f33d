package ktimer

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loops are the two forms; on other systems Loop is RuntimeLoop.
var loops = []struct {
	name string
	run  func(context.Context, func() time.Duration) error
}{
	{"kernel", Loop},
	{"runtime", RuntimeLoop},
}

// These tests wait on real time (the subject is a real timer) but only for
// a few milliseconds, and assert lower bounds and counts, never how fast.

func TestLoopKeepsTheDelays(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
		calls int
	}{
		{"2ms", 2 * time.Millisecond, 5},
		{"zero", 0, 200},
		{"negative", -time.Second, 200},
	}
	for _, l := range loops {
		for _, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				var calls []time.Time
				start := time.Now()
				err := l.run(ctx, func() time.Duration {
					calls = append(calls, time.Now())
					if len(calls) == tt.calls {
						cancel()
					}
					return tt.delay
				})
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
				if len(calls) != tt.calls {
					t.Fatalf("%d calls after the cancel's, want %d", len(calls), tt.calls)
				}
				if calls[0].Sub(start) > time.Second {
					t.Errorf("first call %v after the start, want at once", calls[0].Sub(start))
				}
				for i := 1; i < len(calls); i++ {
					if gap := calls[i].Sub(calls[i-1]); gap < tt.delay {
						t.Errorf("call %d came %v after the one before, want at least %v", i, gap, tt.delay)
					}
				}
			})
		}
	}
}

func TestLoopEndsWithItsContext(t *testing.T) {
	for _, l := range loops {
		t.Run(l.name+"/while waiting", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			called := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- l.run(ctx, func() time.Duration {
					close(called)
					return time.Hour
				})
			}()
			<-called
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		})
		t.Run(l.name+"/before the start", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			err := l.run(ctx, func() time.Duration {
				t.Error("step called on an ended context")
				return 0
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		})
	}
}
