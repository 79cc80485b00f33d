package ktimer

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestLoopWaitsWithoutSpinning: a wait that did not go through the poller
// (a descriptor the poller refused) would retry the read in a loop and burn
// the whole wait in CPU time.
func TestLoopWaitsWithoutSpinning(t *testing.T) {
	const wait = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var before, after syscall.Rusage
	n := 0
	_ = Loop(ctx, func() time.Duration {
		n++
		switch n {
		case 1:
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			return wait
		default:
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cancel()
			return 0
		}
	})
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	if cpu > wait/2 {
		t.Errorf("the process used %v of CPU during a %v wait: the wait spins", cpu, wait)
	}
}

// TestLoopClosesItsDescriptor: each Loop's timerfd is closed when it returns.
func TestLoopClosesItsDescriptor(t *testing.T) {
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("no /proc/self/fd: %v", err)
		}
		return len(ents)
	}
	before := count()
	for range 50 {
		ctx, cancel := context.WithCancel(t.Context())
		_ = Loop(ctx, func() time.Duration { cancel(); return 0 })
	}
	if after := count(); after > before {
		t.Errorf("%d descriptors open after 50 loops, %d before", after, before)
	}
}

// TestNewTimerFDUsesThePoller: the descriptor takes a deadline, which only
// a file in the runtime's poller does.
func TestNewTimerFDUsesThePoller(t *testing.T) {
	tf, err := newTimerFD()
	if err != nil {
		t.Fatal(err)
	}
	defer tf.close()
	if err := tf.f.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
}
