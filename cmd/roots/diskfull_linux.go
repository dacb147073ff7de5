package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// diskFull adds to a pull's error, when a filesystem refused a write (ENOSPC, EDQUOT, EROFS),
// which filesystem it was (the cache's or DEST's, told apart by how full or read-only each is),
// how much room it has, and what the image needs. Any other error is returned as it is.
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
	var size int64
	if img != nil {
		for _, l := range img.Layers {
			size += l.Size
		}
	}
	need := ""
	if size > 0 {
		need = fmt.Sprintf("; the image is %s compressed, more unpacked", humanBytes(size))
	}
	if pick == nil {
		return fmt.Errorf("%w%s", err, need)
	}
	if len(all) == 2 && all[0].st.Fsid == all[1].st.Fsid {
		pick.what = "the cache and DEST"
	}
	state := fmt.Sprintf("%s free of %s", humanBytes(free(pick.st)), humanBytes(int64(pick.st.Blocks)*pick.st.Bsize))
	if pick.st.Flags&unix.ST_RDONLY != 0 {
		state = "read-only"
	} else if pick.st.Ffree == 0 && pick.st.Files > 0 {
		state = "no inodes left"
	}
	fix := "free space there"
	if pick.what == "the cache" {
		fix += ", or put the cache elsewhere (--cache DIR, or --cache=no)"
	} else {
		fix += ", or pull elsewhere"
	}
	return fmt.Errorf("%w: %s is on a full or read-only filesystem (%s: %s)%s: %s", err, pick.what, quote(pick.path), state, need, fix)
}

// free is the room a filesystem has for an unprivileged writer, in bytes.
func free(st unix.Statfs_t) int64 { return int64(st.Bavail) * st.Bsize }
