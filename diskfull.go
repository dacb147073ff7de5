package roots

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// DiskFullError is a pull's failure to write (ENOSPC, EDQUOT, EROFS), with which filesystem
// refused: the cache's or the destination's, told apart by how full or read-only each is.
type DiskFullError struct {
	Err   error  // as the write failed
	Cache bool   // the cache's filesystem refused (it may be the destination's too)
	msg   string // what happened, where, and how much room there is
}

func (e *DiskFullError) Error() string        { return e.msg }
func (e *DiskFullError) Unwrap() error        { return e.Err }
func (e *DiskFullError) Is(target error) bool { return target == ErrDiskFull }

// diskFull makes err a *DiskFullError when a filesystem refused a write: which filesystem it
// was, how much room it has, and what the image needs. Any other error is returned as it is.
func diskFull(err error, cacheDir, dest string, img *fetch.Image) error {
	if !cas.IsDiskFull(err) {
		return err
	}
	type fsys struct {
		what, path string
		st         unix.Statfs_t
	}
	var all []fsys
	for _, f := range []fsys{{what: "the cache", path: cacheDir}, {what: "DEST", path: filepath.Dir(dest)}} {
		if f.path != "" && unix.Statfs(f.path, &f.st) == nil {
			all = append(all, f)
		}
	}
	var pick *fsys
	for i := range all {
		f := &all[i]
		switch {
		case errors.Is(err, unix.EROFS):
			if f.st.Flags&unix.ST_RDONLY != 0 {
				pick = f
			}
		case pick == nil || free(f.st) < free(pick.st) || f.st.Ffree == 0:
			pick = f
		}
	}
	need := ""
	if size := compressedSize(img); size > 0 {
		need = fmt.Sprintf("; the image is %s compressed, more unpacked", HumanBytes(size))
	}
	if pick == nil {
		return &DiskFullError{Err: err, msg: fmt.Sprintf("%v%s", err, need)}
	}
	if len(all) == 2 && all[0].st.Fsid == all[1].st.Fsid {
		pick.what = "the cache and DEST"
	}
	cache := pick.what == "the cache"
	state := fmt.Sprintf("%s free of %s", HumanBytes(free(pick.st)), HumanBytes(int64(pick.st.Blocks)*pick.st.Bsize))
	if pick.st.Flags&unix.ST_RDONLY != 0 {
		state = "read-only"
	} else if pick.st.Ffree == 0 && pick.st.Files > 0 {
		state = "no inodes left"
	}
	fix := "free space there, or pull elsewhere"
	if cache {
		fix = "free space there, or put the cache elsewhere"
	}
	return &DiskFullError{Err: err, Cache: cache, msg: fmt.Sprintf("%v: %s is on a full or read-only filesystem (%s: %s)%s: %s",
		err, pick.what, assemble.Quote(pick.path), state, need, fix)}
}

// free is the room a filesystem has for an unprivileged writer, in bytes.
func free(st unix.Statfs_t) int64 { return int64(st.Bavail) * st.Bsize }

// HumanBytes formats n as B, kB, MB, GB (powers of 1000, as docker does).
func HumanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
