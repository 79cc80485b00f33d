//go:build unix && !linux

package testfixture

import "syscall"

// sysProcAttr puts the fixture in its own process group, so that signals
// reach it whole.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
