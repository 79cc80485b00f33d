package ktimer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/generic-corp/soak-exporter/internal/rawsys"
)

// Loop calls step at once and then each time the delay it returned has
// passed (at once when the delay is not positive), until ctx ends; it
// returns ctx's error. The timer is a timerfd in the runtime's poller; if
// the kernel will not give one (out of descriptors), Loop runs on a runtime
// timer instead, which costs more CPU but keeps the schedule.
func Loop(ctx context.Context, step func() time.Duration) error {
	t, err := newTimerFD()
	if err != nil {
		return RuntimeLoop(ctx, step)
	}
	defer t.close()
	// A deadline in the past ends the wait in progress and every later one.
	stop := context.AfterFunc(ctx, func() { _ = t.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		err := t.wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			// Not expected from a valid timerfd; carry on on the runtime's
			// timers rather than stop the schedule.
			return RuntimeLoop(ctx, step)
		}
		if err := t.arm(step()); err != nil {
			return RuntimeLoop(ctx, step)
		}
	}
}

// timerFD is a non-blocking timerfd registered with the runtime's poller.
type timerFD struct {
	f  *os.File
	rc syscall.RawConn
	fd int
}

// newTimerFD returns a timerfd armed to fire a nanosecond after its
// creation, so that Loop's first wait returns at once.
func newTimerFD() (*timerFD, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	// os.NewFile registers a non-blocking descriptor with the poller; a
	// file the poller refused would not take a deadline, and a wait on it
	// would spin.
	f := os.NewFile(uintptr(fd), "timerfd")
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("timerfd not pollable: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	t := &timerFD{f: f, rc: rc, fd: fd}
	if err := t.arm(0); err != nil {
		_ = f.Close()
		return nil, err
	}
	return t, nil
}

// arm sets the timer to fire once, d from now; a zero it_value would
// disarm it, so a delay below a nanosecond is a nanosecond. The call never
// blocks and is made raw (package rawsys).
func (t *timerFD) arm(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(max(d, time.Nanosecond)))}
	if err := rawsys.TimerfdSettime(t.fd, &spec); err != nil {
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	return nil
}

// wait blocks until the timer has fired, reading its expiry count.
func (t *timerFD) wait() error {
	var buf [8]byte
	var rerr error
	err := t.rc.Read(func(fd uintptr) bool {
		for {
			_, err := rawsys.Read(int(fd), buf[:])
			switch {
			case err == nil:
				return true
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN):
				return false // not fired yet: wait for the poller
			default:
				rerr = err
				return true
			}
		}
	})
	if err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("timerfd read: %w", rerr)
	}
	return nil
}

func (t *timerFD) close() { _ = t.f.Close() }
