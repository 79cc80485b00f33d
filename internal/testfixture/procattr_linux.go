package testfixture

import "syscall"

// sysProcAttr puts the fixture in its own process group, so that signals
// reach it whole, and kills it if the test binary dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
