//go:build !linux

package native

import "syscall"

// bindNoPort does nothing where IP_BIND_ADDRESS_NO_PORT does not exist: the
// port is then chosen at bind time.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
