//go:build !linux

package registrytest

import "syscall"

// procAttr has nothing to add outside Linux: the registry is stopped by
// the test's cleanup only.
func procAttr() *syscall.SysProcAttr { return nil }
