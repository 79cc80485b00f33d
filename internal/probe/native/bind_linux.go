package native

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socketControl returns the dialer's Control: it caps the socket's send
// buffer (see sendBufferBytes) and, with noPort, sets
// IP_BIND_ADDRESS_NO_PORT on a socket bound to a chosen source address, so
// that the kernel picks its port at connect time, unique per destination,
// instead of at bind time, unique per source address: each source address
// then gives the full ephemeral range toward every server address, not once
// over all of them. Both are best effort: without them the dial still works.
func socketControl(noPort bool) func(_, _ string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, sendBufferBytes)
			if noPort {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			}
		})
	}
}
