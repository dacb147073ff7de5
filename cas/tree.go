package cas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/cas/layer"
)

// Tree is one unpacked layer in the cache.
type Tree struct {
	DiffID digest.Digest // the layer's diff id, which names the tree
	// Dir is the tree's directory: in trees/ once published; in tmp/ while a tree that
	// StartTree made is not published yet.
	Dir string
	// Record is what the layer's unpacking recorded; empty for a tree that
	// Lookup returned without it (DirOnly; LoadRecord reads it).
	Record   layer.Record
	Cached   bool // it was in the cache before this call
	Repaired bool // the cached tree had been changed (a write through a hardlinked destination) and was made again

	pending  *pending // a tree StartTree made and Publish has not published yet
	noRecord bool     // Record was not read (a DirOnly lookup)
}

// treeFormat is the version of what a tree and its record mean (layer.Record's
// contract). A tree made under another version is made again, never reused.
const treeFormat = 3

// formatAttr is an extended attribute of a tree's record file that holds the
// record's format, so that a lookup which needs only the tree's directory (an
// overlay's lower layer) can trust the tree on the record's inode alone: with
// a cold cache, reading every record costs a disk read per layer. A record
// without it (a filesystem without user xattrs) is read as before.
const formatAttr = "user.roots.format"

// treeRecord is a tree's .json: the layer's Record, plus what the cache needs to
// trust the tree (its fingerprint) and to make it again (its blob).
type treeRecord struct {
	Format int `json:"format"`
	layer.Record
	Fingerprint string   `json:"fingerprint,omitempty"`
	Blob        *blobRef `json:"blob,omitempty"`
}

// blobRef names the blob a tree was unpacked from.
type blobRef struct {
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
}

// Want says what Lookup reads of a tree.
type Want int

const (
	// WithRecord: the tree's directory and its record (what assembly needs).
	WithRecord Want = iota
	// DirOnly: the tree's directory (an overlay's lower layer, whose fix-up is cached); the
	// record is read only where its file's format attribute does not vouch for it or a
	// hardlinked destination may have changed the tree. LoadRecord reads it if it is needed
	// after all.
	DirOnly
)

// Lookup returns the layer's tree if the cache has it, as Tree does, without
// making it. Lookups wait on the disk, not the CPU: a caller may run many at
// once, and call Tree (or StartTree) for the layers they did not find.
func (c *Cache) Lookup(ctx context.Context, l Layer, want Want) (Tree, bool, error) {
	if err := l.check(); err != nil {
		return Tree{}, false, err
	}
	return c.cachedTree(ctx, l.DiffID, want == WithRecord)
}

// LoadRecord reads the record of a tree that Lookup returned without it (DirOnly);
// it is a no-op for any other tree.
func (t *Tree) LoadRecord() error {
	if !t.noRecord {
		return nil
	}
	rec, err := readTreeRecord(t.Dir + ".json")
	if err == nil && rec.Format != treeFormat {
		err = fmt.Errorf("record %s.json: format %d, want %d", t.Dir, rec.Format, treeFormat)
	}
	if err != nil {
		return fmt.Errorf("tree %s: %w", filepath.Base(t.Dir), err)
	}
	t.Record, t.noRecord = rec.Record, false
	return nil
}

// cachedTree returns the published tree d, if there is one and it matches its
// fingerprint, and marks it used. A tree without its record, or one that was
// changed, is reported missing. Without withRecord, the record is read only
// if its format attribute is missing or the tree must be checked.
func (c *Cache) cachedTree(ctx context.Context, d digest.Digest, withRecord bool) (Tree, bool, error) {
	dir := c.treePath(d)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return Tree{}, false, nil
	} else if err != nil {
		return Tree{}, false, fmt.Errorf("tree %s: %w", d, err)
	}
	if !ownObject(dir) {
		return Tree{}, false, nil // a symlink or another user's: made again, in every mode
	}
	// Only a tree that a hardlinked destination may share can have changed
	// (see Expose): the others are trusted without a walk.
	linked := exists(c.linkedPath(d))
	marked := !withRecord && formatMarked(dir+".json")
	if marked && !linked {
		touch(dir + ".json")
		return Tree{DiffID: d, Dir: dir, Cached: true, noRecord: true}, true, nil
	}
	rec, err := readTreeRecord(dir + ".json")
	if err != nil || rec.Format != treeFormat {
		return Tree{}, false, nil // an orphan, a torn purge, or an older format: made again
	}
	if !withRecord && !marked {
		markFormat(dir + ".json") // a record from before the attribute: read once more, not always
	}
	if rec.Fingerprint != "" && linked {
		ok, err := c.checkExposed(ctx, d, dir, rec.Fingerprint)
		if err != nil || !ok {
			return Tree{}, false, err
		}
	}
	touch(dir + ".json")
	return Tree{DiffID: d, Dir: dir, Record: rec.Record, Cached: true}, true, nil
}

// formatMarked reports whether the record file at path carries this
// version's format attribute.
func formatMarked(path string) bool {
	var b [8]byte
	n, err := unix.Lgetxattr(path, formatAttr, b[:])
	return err == nil && string(b[:n]) == strconv.Itoa(treeFormat)
}

// markFormat sets the format attribute of the record file at path. It is
// best effort: a record without it is read on every lookup.
func markFormat(path string) {
	unix.Lsetxattr(path, formatAttr, []byte(strconv.Itoa(treeFormat)), 0)
}

func readTreeRecord(path string) (treeRecord, error) {
	var rec treeRecord
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("record %s: %w", path, err)
	}
	return rec, nil
}

// retire moves a tree that failed its check (and its record) out of the way,
// into tmp/, and removes it unless a live lease still mounts it: an overlay
// keeps what it has until it is unmounted. It reports whether there was a tree.
// The caller holds the tree's lock.
func (c *Cache) retire(d digest.Digest) (bool, error) {
	had, err := c.retireDir(c.treePath(d), d)
	// The tree made in its place shares nothing yet.
	if rerr := os.Remove(c.linkedPath(d)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	return had, err
}

// retireDir is retire for the tree or fix-up d at dir.
func (c *Cache) retireDir(dir string, d digest.Digest) (bool, error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		os.Remove(dir + ".json")
		return false, nil
	}
	aside, err := os.MkdirTemp(c.path("tmp"), retiredPrefix+d.Encoded()+"-")
	if err != nil {
		return true, err
	}
	if err := os.Rename(dir, filepath.Join(aside, "dir")); err != nil {
		os.Remove(aside)
		return true, fmt.Errorf("retire %s: %w", d, err)
	}
	os.Remove(dir + ".json")
	live, err := c.Leases()
	if err == nil && !leased(live, d) {
		err = disk.RemoveAll(aside)
	}
	return true, err
}

const retiredPrefix = "retired-"

// retiredDigest is the digest of a tree retired into tmp/ under name.
func retiredDigest(name string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(name, retiredPrefix)
	if !ok || len(rest) < 64 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, rest[:64])
	return d, d.Validate() == nil
}

// HasTree reports whether the tree d is in the cache (without checking it).
func (c *Cache) HasTree(d digest.Digest) bool {
	if checkDigest(d) != nil {
		return false
	}
	return exists(c.treePath(d))
}
