package assemble

// Overlay assembly: the trees themselves become the read-only layers of an overlayfs mount,
// under the image's fix-up layer (overlay_fixup_linux.go), so an image of any size is
// assembled in one mount.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

var (
	// ErrOverlay reports an overlay mount the kernel refused; the message carries the kernel's words.
	ErrOverlay = errors.New("overlay mount refused")
	// ErrOverlayCannotShow reports an image that no overlay mount can show as Hardlink assembles
	// it (a real 0:0 character device is a whiteout to overlayfs).
	ErrOverlayCannotShow = errors.New("overlayfs cannot show this image")
)

// uniqueLowers drops every layer of lowers (top first) that is listed higher up too: the kernel
// refuses a layer twice, and a layer's lower copy adds nothing to a mount that has the layer
// above it (every path the copy has, the higher one has too and shows instead).
func uniqueLowers(lowers []string) []string {
	seen := make(map[string]bool, len(lowers))
	out := make([]string, 0, len(lowers))
	for _, l := range lowers {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// MountOverlay mounts at dest an overlay of lowers (read-only layers, top first) under a
// writable upper layer of its own: state/upper and state/work, which it makes (state must
// exist, on a filesystem that can hold an overlay's upper layer). The upper's root takes the
// owner, mode, times and xattrs of lowers[0]'s root, because a mount's root shows its upper's:
// pass OverlayFixup's directory first. dest must not exist: it is made as the mount point at
// the last moment, once the mount is ready, and removed if attaching fails. Lower paths of any
// length and any number of layers (up to the kernel's 500) work: layers are handed to the
// kernel one by one as descriptors (fsconfig "lowerdir+"), or, on kernels older than 6.8, as
// short relative links in state/l.
func MountOverlay(dest, state string, lowers []string) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mount overlay %s: no layers", dest)
	}
	lowers = uniqueLowers(lowers)
	upper, work := filepath.Join(state, "upper"), filepath.Join(state, "work")
	if err := os.Mkdir(upper, 0o755); err != nil {
		return fmt.Errorf("mount overlay %s: %w", dest, err)
	}
	if err := ovlCopyRootMeta(lowers[0], upper); err != nil {
		return fmt.Errorf("mount overlay %s: upper layer: %w", dest, err)
	}
	if err := os.Mkdir(work, 0o700); err != nil {
		return fmt.Errorf("mount overlay %s: %w", dest, err)
	}
	mfd, err := ovlMountDetached(lowers, upper, work)
	if errors.Is(err, errOvlNoMountAPI) {
		if err := os.Mkdir(dest, 0o755); err != nil {
			return fmt.Errorf("mount overlay %s: %w", dest, err)
		}
		if err := ovlMountLegacy(dest, filepath.Join(state, "l"), lowers, upper, work); err != nil {
			os.Remove(dest)
			return fmt.Errorf("mount overlay %s: %w", dest, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("mount overlay %s: %w", dest, err)
	}
	defer unix.Close(mfd)
	if err := os.Mkdir(dest, 0o755); err != nil {
		return fmt.Errorf("mount overlay %s: %w", dest, err)
	}
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, dest, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		os.Remove(dest)
		return fmt.Errorf("mount overlay %s: %w", dest, pathErr("move_mount", dest, err))
	}
	return nil
}

// UnmountOverlay unmounts the overlay at dest. A mount still in use fails with EBUSY.
func UnmountOverlay(dest string) error {
	if err := unix.Unmount(dest, unix.UMOUNT_NOFOLLOW); err != nil {
		return fmt.Errorf("unmount %s: %w", dest, err)
	}
	return nil
}

// errOvlNoMountAPI means the kernel lacks fsopen(2) or overlayfs's "lowerdir+" (before 6.8).
var errOvlNoMountAPI = errors.New("no overlay lowerdir+ mount API")

// ovlMountDetached makes an overlay mount that is attached nowhere and returns its descriptor.
// Without upper it is read-only.
func ovlMountDetached(lowers []string, upper, work string) (int, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) && os.Geteuid() == 0 {
		return -1, errOvlNoMountAPI
	}
	if err != nil {
		return -1, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for i, l := range lowers {
		if err := ovlSetLayer(fsfd, "lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) && strings.Contains(ovlFsLog(fsfd), "lowerdir+") {
				return -1, errOvlNoMountAPI
			}
			return -1, ovlFsError(fsfd, fmt.Sprintf("layer %d (%s)", i, l), err)
		}
	}
	if upper != "" {
		if err := ovlSetLayer(fsfd, "upperdir", upper); err != nil {
			return -1, ovlFsError(fsfd, "upper "+upper, err)
		}
		if err := ovlSetLayer(fsfd, "workdir", work); err != nil {
			return -1, ovlFsError(fsfd, "work "+work, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, ovlFsError(fsfd, "create", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return -1, ovlFsError(fsfd, "fsmount", err)
	}
	return mfd, nil
}

// ovlSetLayer hands the directory path to the overlay being configured: as a descriptor (kernel
// 6.13 and later), else as /proc/self/fd/N, a name of any directory that fits fsconfig's
// 256-byte string limit however long the real path is.
func ovlSetLayer(fsfd int, key, path string) error {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathErr("open", path, err)
	}
	defer unix.Close(pfd)
	err = unix.FsconfigSetFd(fsfd, key, pfd)
	if errors.Is(err, unix.EINVAL) {
		ovlFsLog(fsfd) // drop the refusal of the descriptor form
		err = unix.FsconfigSetString(fsfd, key, "/proc/self/fd/"+strconv.Itoa(pfd))
	}
	return err
}

// ovlFsLog drains the messages the kernel left on a filesystem context.
func ovlFsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			return strings.Join(msgs, "; ")
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
}

// ovlFsError wraps a mount API error with what was being set and the kernel's explanation.
func ovlFsError(fsfd int, what string, err error) error {
	if log := ovlFsLog(fsfd); log != "" {
		return fmt.Errorf("%w: %s: %w (%s)", ErrOverlay, what, err, log)
	}
	return fmt.Errorf("%w: %s: %w", ErrOverlay, what, err)
}

// ovlMountLegacy mounts with mount(2), whose options must fit one page: each lower gets a short
// symlink in links (made here) and the mount runs with links as its working directory, on a
// thread of its own so that the change of directory affects nothing else.
func ovlMountLegacy(dest, links string, lowers []string, upper, work string) error {
	if err := os.MkdirAll(links, 0o700); err != nil {
		return err
	}
	names := make([]string, len(lowers))
	for i, l := range lowers {
		names[i] = strconv.Itoa(i)
		abs, err := filepath.Abs(l)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(links, names[i])); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	opts := "lowerdir=" + strings.Join(names, ":")
	if upper != "" {
		rel := func(p string) string {
			if r, err := filepath.Rel(links, p); err == nil {
				return r
			}
			return p
		}
		opts += ",upperdir=" + rel(upper) + ",workdir=" + rel(work)
	}
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("%w: %d layers do not fit the mount options", ErrOverlay, len(lowers))
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, whose working directory changes, ends with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Chdir(links); err != nil {
			errc <- pathErr("chdir", links, err)
			return
		}
		if err := unix.Mount("overlay", dest, "overlay", 0, opts); err != nil {
			errc <- fmt.Errorf("%w: mount %s: %w", ErrOverlay, dest, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// ovlCopyRootMeta gives the directory dst the owner, mode, xattrs and times of the directory src.
func ovlCopyRootMeta(src, dst string) error {
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathErr("open", src, err)
	}
	defer unix.Close(sfd)
	dfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathErr("open", dst, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return pathErr("stat", src, err)
	}
	return ovlSetMeta(sfd, dfd, &st)
}

// ovlSetMeta gives the open file dfd the owner, mode, xattrs and times that sfd has (st).
func ovlSetMeta(sfd, dfd int, st *unix.Stat_t) error {
	if err := unix.Fchown(dfd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(dfd, st.Mode&07777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	xs, err := ovlXattrs(sfd)
	if err != nil {
		return err
	}
	for name, v := range xs {
		if err := unix.Fsetxattr(dfd, name, []byte(v), 0); err != nil {
			return fmt.Errorf("setxattr %s: %w", name, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dfd, "", ts, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("utimes: %w", err)
	}
	return nil
}

// ovlXattrs reads the xattrs of an open file, but for overlayfs's own.
func ovlXattrs(fd int) (map[string]string, error) {
	xs, err := readXattrs(xattrIO{
		list: func(d []byte) (int, error) { return unix.Flistxattr(fd, d) },
		get:  func(n string, d []byte) (int, error) { return unix.Fgetxattr(fd, n, d) },
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(xs))
	for _, x := range xs {
		m[x.name] = string(x.value)
	}
	return m, nil
}
