package native

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on a socket bound to a chosen
// source address, so that the kernel picks its port at connect time, unique
// per destination, instead of at bind time, unique per source address:
// each source address then gives the full ephemeral range toward every
// server address, not once over all of them.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	// Best effort: without the option the dial still works, with the port
	// chosen at bind time.
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
}
