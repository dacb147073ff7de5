package layer

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// readUmask reads the process umask from /proc/self/status (it cannot be read without
// changing it, which would race with other goroutines).
func readUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if u, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(u)
				}
			}
		}
	}
	return 0o777
}

// createdExact reports whether an object created with perm&0777 already has mode perm.
func (w *writer) createdExact(perm uint32) bool {
	return perm&0o7000 == 0 && perm&w.umask == 0
}

// probeFresh reports whether the target (root, O_PATH) is a fresh target in which new objects get exactly the owner,
// mode and xattrs the process asks for: empty (no setgid directory or default ACL below it),
// not setgid itself, and without a default ACL (which would replace the umask and be inherited).
func probeFresh(root int) bool {
	fd, err := unix.Openat(root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_ISGID != 0 {
		return false
	}
	if _, err := unix.Fgetxattr(fd, "system.posix_acl_default", nil); err != unix.ENODATA && err != unix.ENOTSUP {
		return false
	}
	names, err := readNames(fd)
	return err == nil && len(names) == 0
}

var aclNames = []string{"system.posix_acl_access", "system.posix_acl_default"}

// dropInheritedACL removes the ACLs an object created in a non-fresh target may have inherited.
func (w *writer) dropInheritedACL(o object) error {
	if !w.stripACL {
		return nil
	}
	for _, name := range aclNames {
		var err error
		if o.fd >= 0 {
			err = unix.Fremovexattr(o.fd, name)
		} else {
			err = unix.Lremovexattr("/proc/self/fd/"+strconv.Itoa(o.dirfd)+"/"+o.name, name)
		}
		if err != nil && err != unix.ENODATA && err != unix.ENOTSUP && err != unix.EPERM {
			return fmt.Errorf("remove inherited ACL: %w", err)
		}
	}
	return nil
}

// dropInheritedDirACL is dropInheritedACL for the directory name just made in dirfd.
func (w *writer) dropInheritedDirACL(dirfd int, name string) error {
	if !w.stripACL {
		return nil
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return w.dropInheritedACL(object{fd: fd})
}
