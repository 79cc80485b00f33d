package rawsys

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCalls: each call on a non-blocking pipe and epoll set, ready and not.
func TestCalls(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, p[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p[0])}); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	buf := make([]byte, 16)

	if n, err := EpollPoll(ep, events); n != 0 || err != nil {
		t.Fatalf("EpollPoll on an empty pipe = %d, %v; want 0, nil", n, err)
	}
	if _, err := Read(p[0], buf); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("Read on an empty pipe: %v, want EAGAIN", err)
	}
	if n, err := Write(p[1], []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v; want 5, nil", n, err)
	}
	if n, err := EpollPoll(ep, events); n != 1 || err != nil || events[0].Fd != int32(p[0]) {
		t.Fatalf("EpollPoll after a write = %d, %v, fd %d; want 1, nil, %d", n, err, events[0].Fd, p[0])
	}
	if n, err := Read(p[0], buf); err != nil || !bytes.Equal(buf[:n], []byte("hello")) {
		t.Fatalf("Read = %q, %v; want hello", buf[:n], err)
	}
	if n, err := Read(p[0], nil); n != 0 || err != nil {
		t.Fatalf("Read of nothing = %d, %v; want 0, nil", n, err)
	}
	if _, err := Write(-1, []byte("x")); !errors.Is(err, unix.EBADF) {
		t.Fatalf("Write on a bad descriptor: %v, want EBADF", err)
	}
	if err := TimerfdSettime(-1, &unix.ItimerSpec{}); !errors.Is(err, unix.EBADF) {
		t.Fatalf("TimerfdSettime on a bad descriptor: %v, want EBADF", err)
	}
}
