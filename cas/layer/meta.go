//go:build linux

package layer

import (
	"archive/tar"
	"fmt"
	"sort"
	"strings"
)

const (
	paxXattr = "SCHILY.xattr."
	maxID    = 1<<32 - 2 // (uid_t)-1 means "unchanged" to chown
)

// metadata is what an entry sets on the object it creates, beyond its type and content.
type metadata struct {
	perm     uint32 // permission bits with setuid, setgid and sticky
	uid, gid int
	sec      int64 // mtime (also used as atime)
	nsec     int64
	xattrs   []xattr
}

type xattr struct{ name, value string }

// headerMeta reads an entry's metadata. Owner ids must fit a uid_t (a PAX uid of 2^32 must not
// wrap to root). Extended attributes come from the PAX "SCHILY.xattr." records; the overlayfs
// ones (trusted.overlay.*, user.overlay.*) are dropped: in a tree they would turn a plain
// directory into an opaque or redirected one when the tree is used as an overlay lowerdir.
func headerMeta(hdr *tar.Header) (metadata, error) {
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return metadata{}, fmt.Errorf("owner %d:%d: %w", hdr.Uid, hdr.Gid, ErrInvalidHeader)
	}
	m := metadata{
		perm: uint32(hdr.Mode) & 0o7777,
		uid:  hdr.Uid,
		gid:  hdr.Gid,
		sec:  hdr.ModTime.Unix(),
		nsec: int64(hdr.ModTime.Nanosecond()),
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		m.xattrs = append(m.xattrs, xattr{name, v})
	}
	if len(m.xattrs) > 1 {
		sort.Slice(m.xattrs, func(i, j int) bool { return m.xattrs[i].name < m.xattrs[j].name })
	}
	return m, nil
}

// device returns an entry's device numbers, checked to fit the kernel's dev_t halves.
func device(hdr *tar.Header) (major, minor uint32, err error) {
	if hdr.Devmajor < 0 || hdr.Devmajor > 1<<32-1 || hdr.Devminor < 0 || hdr.Devminor > 1<<32-1 {
		return 0, 0, fmt.Errorf("device %d:%d: %w", hdr.Devmajor, hdr.Devminor, ErrInvalidHeader)
	}
	return uint32(hdr.Devmajor), uint32(hdr.Devminor), nil
}
