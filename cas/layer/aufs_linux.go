package layer

import (
	"archive/tar"
	"context"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Layers written by Docker's aufs storage driver (still on registries) carry AUFS metadata at
// their root: ".wh..wh.aufs", ".wh..wh.orph/" and ".wh..wh.plnk/", whose regular files are the
// targets of the layer's hardlinks to files of other AUFS branches. As Docker's own applier
// does, none of it reaches the tree or rootfs: a regular file under .wh..wh.plnk/ is kept in a
// private directory of that name for the rest of the layer, serves as the target of the
// hardlinks that name it (by its base name, as Docker keys them), and is removed at the end of
// the layer, so that only the hardlinks' names hold it.

const (
	aufsPlnk = ".wh..wh.plnk"
)

// isAUFSMeta reports whether the confined name rel is AUFS metadata: its first component is a
// ".wh..wh." name other than the root's opaque marker.
func isAUFSMeta(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	return strings.HasPrefix(first, whiteoutMeta) && rel != opaqueMarker
}

// aufsEntry handles an AUFS metadata entry: a regular file below .wh..wh.plnk/ is kept for the
// layer's hardlinks; everything else is dropped.
func (w *writer) aufsEntry(ctx context.Context, rel string, hdr *tar.Header, tr *tar.Reader) error {
	if !strings.HasPrefix(rel, aufsPlnk+"/") || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeCont) {
		return nil
	}
	name := path.Base(rel)
	if len(name) > nameMax {
		return fmt.Errorf("%d bytes in %.32q...: %w", len(name), name, ErrNameTooLong)
	}
	m, err := headerMeta(hdr)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(w.root, aufsPlnk, 0o700)
	if err != nil && err != unix.EEXIST {
		return err
	}
	fd, err := unix.Openat(w.root, aufsPlnk, dirFlags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	w.rec.Size += hdr.Size
	return w.file(ctx, fd, aufsPlnk+"/"+name, name, tr, hdr, &m)
}

// aufsTarget returns the directory descriptor and name that hold the hardlink target rel, a
// name below .wh..wh.plnk/, and whether rel is one; the caller closes the descriptor.
func (w *writer) aufsTarget(rel string) (fd int, name string, ok bool, err error) {
	if !strings.HasPrefix(rel, aufsPlnk+"/") {
		return -1, "", false, nil
	}
	fd, err = unix.Openat(w.root, aufsPlnk, dirFlags, 0)
	if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
		return -1, "", true, fmt.Errorf("%s: %w", display(rel), ErrLinkTargetMissing)
	}
	return fd, path.Base(rel), true, err
}

// endAUFS removes the layer's kept .wh..wh.plnk/ files: only the hardlinks that named them stay.
func (w *writer) endAUFS() error {
	return disk.RemoveAt(w.root, aufsPlnk, unix.DT_UNKNOWN, make([]byte, disk.BufSize))
}
