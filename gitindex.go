package roots

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// A git index (DIRC version 2) for a git destination's top layer, written from what the layer
// walk already knows (each path's mode and blob id) and DEST's own stat data. git read-tree
// would leave the stat data empty, and git update-index --refresh would then read and hash
// every file of DEST once to fill it in: for an image of 100 MB that is most of the work after
// fast-import. The index is checked with git write-tree against the top commit's tree.

// gitBlobID is the object id git gives content of that size: sha1("blob <size>\0" content).
type gitBlobID = [sha1.Size]byte

// writeGitIndex writes dir/.git/index with an entry for every path of files, its blob id in
// ids and the stat data of dir/path. Entries are sorted by name as bytes, as git sorts them.
func writeGitIndex(dir string, files map[string]gitFile, ids map[string]gitBlobID) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	be := binary.BigEndian
	buf := be.AppendUint32(be.AppendUint32([]byte("DIRC"), 2), uint32(len(paths)))
	for _, p := range paths {
		id, ok := ids[p]
		if !ok {
			return fmt.Errorf("git index: no blob id for %s", p)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &st); err != nil {
			return fmt.Errorf("git index: %w", err)
		}
		start := len(buf)
		for _, v := range []uint32{
			uint32(st.Ctim.Sec), uint32(st.Ctim.Nsec), uint32(st.Mtim.Sec), uint32(st.Mtim.Nsec),
			uint32(st.Dev), uint32(st.Ino), files[p].mode, st.Uid, st.Gid, uint32(st.Size),
		} {
			buf = be.AppendUint32(buf, v)
		}
		buf = append(buf, id[:]...)
		buf = be.AppendUint16(buf, uint16(min(len(p), 0xfff))) // stage 0, no flags
		buf = append(buf, p...)
		buf = append(buf, make([]byte, 8-(len(buf)-start)%8)...) // 1 to 8 NULs: a multiple of 8
	}
	sum := sha1.Sum(buf)
	buf = append(buf, sum[:]...)
	index := filepath.Join(dir, ".git", "index")
	if err := os.WriteFile(index+".lock", buf, 0o644); err != nil {
		return fmt.Errorf("git index: %w", err)
	}
	if err := os.Rename(index+".lock", index); err != nil {
		os.Remove(index + ".lock")
		return fmt.Errorf("git index: %w", err)
	}
	return nil
}
