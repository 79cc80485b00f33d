//go:build !linux

package native

import "syscall"

// socketControl leaves sockets as the system makes them where the Linux
// options do not exist.
func socketControl(bool) func(_, _ string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error { return nil }
}
