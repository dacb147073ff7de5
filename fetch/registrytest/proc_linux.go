package registrytest

import "syscall"

// procAttr makes the kernel kill the registry if the test binary dies
// without running its cleanups (a panic, a timeout, SIGKILL).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
