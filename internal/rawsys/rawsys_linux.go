// Package rawsys makes the Linux system calls that never block (on
// non-blocking descriptors, with a zero timeout) as raw system calls:
// without the runtime's bookkeeping for a call that might block
// (entersyscall/exitsyscall), which wakes the runtime's monitor thread
// (sysmon) from its idle sleep when the call comes after the process was
// idle. At 1,000 events a second most calls of the agent's event loop and
// send tick come after such a moment: a perf profile of 1,000 clients at
// 1,000 events a second had a fifth of the agent's samples in those
// wake-ups and the monitor's sleeps after them (docs/benchmarks.md has the
// before and after). A call that may block must keep the ordinary path.
package rawsys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on a non-blocking descriptor.
func Read(fd int, p []byte) (int, error) { return readWrite(unix.SYS_READ, fd, p) }

// Write is write(2) on a non-blocking descriptor.
func Write(fd int, p []byte) (int, error) { return readWrite(unix.SYS_WRITE, fd, p) }

// readWrite makes read(2) or write(2) (trap) on fd with p.
func readWrite(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// EpollPoll is epoll_pwait(2) with a zero timeout and no signal mask: the
// events ready now, without waiting.
func EpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// TimerfdSettime is timerfd_settime(2), relative, without the old value.
func TimerfdSettime(fd int, spec *unix.ItimerSpec) error {
	_, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(fd), 0, uintptr(unsafe.Pointer(spec)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
