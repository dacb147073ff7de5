package testtree

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountinfoLock is the file that MountinfoLock flocks: the test binaries of several packages
// run at once, so the lock must be outside any of them.
const mountinfoLock = "/tmp/roots-tests-mountinfo.lock"

// MountinfoLock orders the tests that mount something whose /proc/self/mountinfo line is
// longer than 64 KiB (exclusive: an overlay of hundreds of long lowerdir paths) against those
// that run a program that cannot read such a line (shared): runc 1.1 fails to start any
// container, "error preparing rootfs: bufio.Scanner: token too long", while such a mount
// exists anywhere on the machine. The lock is held until the test ends; waiting for it longer
// than five minutes fails the test.
func MountinfoLock(t testing.TB, exclusive bool) {
	t.Helper()
	f, err := os.OpenFile(mountinfoLock, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("lock %s: %v", mountinfoLock, err)
		}
	}
	t.Cleanup(func() { f.Close() })
}
