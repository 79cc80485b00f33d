package native

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop's reads, writes and epoll_wait calls never block: the
// sockets are non-blocking and epoll_wait is called with a zero timeout.
// They are made as raw system calls, without the runtime's bookkeeping for a
// call that might block (entersyscall/exitsyscall), which wakes the
// runtime's monitor thread (sysmon) from its idle sleep on a call made after
// the process was idle: at 1,000 events a second, most of the loop's calls.
// A perf profile of 1,000 clients at 1,000 events a second had a fifth of
// the agent's samples in those wake-ups and the monitor's sleeps after them;
// docs/benchmarks.md has the before and after. Blocking calls (poll in
// awaitClose, the handshake's net.Conn) keep the ordinary path.

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) { return rawIO(unix.SYS_READ, fd, p) }

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO makes read(2) or write(2) (trap) on fd with p.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawEpollPoll is epoll_pwait(2) with a zero timeout and no signal mask: the
// events ready now, without waiting.
func rawEpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
