package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNotRegular: ReadInRoot found something other than a regular file at the name it was given.
var ErrNotRegular = errors.New("not a regular file")

// ReadInRoot reads the regular file name of the tree at root as a process chrooted there would:
// every symlink on the way, the last component's included, resolves inside root (an absolute
// target starts at root, ".." stops at it: openat2 RESOLVE_IN_ROOT), so that a tree's own
// /etc/passwd, a symlink to /etc/passwd or to ../../../etc/passwd, never reads the host's.
// Anything but a regular file (a device, a fifo) is refused before it is opened for reading,
// and so is a file larger than max bytes. A missing file is an error wrapping fs.ErrNotExist.
func ReadInRoot(root, name string, max int64) ([]byte, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	var pfd int
	for {
		pfd, err = unix.Openat2(rfd, name, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != unix.EINTR && err != unix.EAGAIN {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	if st.Size > max {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", name, st.Size, max)
	}
	// The O_PATH descriptor names the very file checked: open it again for reading through
	// its /proc link (no path is resolved a second time).
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(pfd), os.O_RDONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", name, max)
	}
	return b, nil
}
