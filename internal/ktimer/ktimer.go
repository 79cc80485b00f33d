// Package ktimer runs a periodic step on a timer that, on Linux, is a
// timerfd waited for in the Go runtime's network poller rather than a
// runtime timer.
//
// Why: at a few hundred ticks a second in an otherwise idle process (the
// pool's send schedule at 1,000 events a second on a 5 ms tick), each wait
// on a runtime timer adds the timer to the runtime's heap, which breaks the
// thread sleeping in the poller out of its epoll_wait (netpollBreak) so that
// it sleeps again with the earlier deadline: one or two context switches a
// tick for no work. A timerfd is one more descriptor in the poller's epoll
// set: the sleeping thread wakes when it fires, as it does for a socket, and
// arming it wakes nobody. docs/benchmarks.md has the measurement.
//
// Loop is for real time only: synctest's fake clock moves runtime timers,
// not the kernel's, so tests on fake time use RuntimeLoop.
package ktimer

import (
	"context"
	"time"
)

// RuntimeLoop is Loop on a runtime timer (time.Timer), the portable form
// and the one that follows synctest's fake clock.
func RuntimeLoop(ctx context.Context, step func() time.Duration) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return ctx.Err() // both were ready: ctx's end wins
		}
		timer.Reset(step())
	}
}
