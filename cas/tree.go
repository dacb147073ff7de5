package cas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/lock"
)

// Tree is one unpacked layer in the cache.
type Tree struct {
	// Dir is the tree's directory: in trees/ once published; in tmp/ while a tree that
	// StartTree made is not published yet.
	Dir string
	// Record is what the layer's unpacking recorded; empty for a tree that
	// LookupDir returned without it (LoadRecord reads it).
	Record   layer.Record
	Cached   bool // it was in the cache before this call
	Repaired bool // the cached tree had been changed (a write through a hardlinked destination) and was made again

	pending  *pending // a tree StartTree made and Publish has not published yet
	noRecord bool     // Record was not read (LookupDir)
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

// Opener opens a layer blob's stream from its source (the registry).
type Opener func(ctx context.Context) (io.ReadCloser, error)

// Tree returns l's unpacked tree, making it if the cache lacks it: from the
// cached blob if there is one, else from open's stream, which is kept as the
// blob in the same pass. Two callers (goroutines or processes) that need the
// same tree make it once; the second waits and reuses it.
//
// A cached tree that a hardlinked destination may share (see Expose) is
// checked against the fingerprint recorded when it was made (see
// fingerprint): one that was changed since is retired and made again.
func (c *Cache) Tree(ctx context.Context, l Layer, open Opener) (Tree, error) {
	t, err := c.StartTree(ctx, l, open)
	if err != nil {
		return t, err
	}
	err = t.Publish(ctx)
	return t, err
}

// StartTree is Tree, except that a tree it has to make is returned as soon as
// it is unpacked and verified, from tmp/: its fingerprint, record and sync
// (the waits for the disk that publishing costs) go on in the background while
// the caller links or copies its files. Publish must follow, always, once the
// caller is done with Dir as it is: it waits for that work, renames the tree
// into place and releases its lock. (A cached tree needs no Publish; it is
// harmless.)
func (c *Cache) StartTree(ctx context.Context, l Layer, open Opener) (Tree, error) {
	if err := l.check(); err != nil {
		return Tree{}, err
	}
	if t, ok, err := c.cachedTree(ctx, l.DiffID, true); ok || err != nil {
		return t, err
	}
	lk, err := c.locks.Exclusive(ctx, c.path("tmp", l.DiffID.Encoded()+".lock"))
	if err != nil {
		return Tree{}, err
	}
	if t, ok, err := c.cachedTree(ctx, l.DiffID, true); ok || err != nil {
		lk.Release()
		return t, err
	}
	repaired, err := c.retire(l.DiffID)
	if err != nil {
		lk.Release()
		return Tree{}, err
	}
	t, err := c.makeTree(ctx, l, open, lk)
	t.Repaired = repaired
	return t, err
}

// Publish waits until a tree that StartTree made is fingerprinted, recorded
// and synced, renames it into place (Dir changes to its path in trees/) and
// releases its lock. If that fails, or ctx ends first, the tree is removed and
// the error returned. A tree is published once: Publish again (on this Tree
// or a copy of it) returns the first outcome, and Publish of a cached tree
// does nothing.
func (t *Tree) Publish(ctx context.Context) error {
	p := t.pending
	if p == nil {
		return nil
	}
	p.once.Do(func() { p.err = p.publish(ctx) })
	t.pending = nil
	if p.err == nil {
		t.Dir = p.c.treePath(p.l.DiffID)
	}
	return p.err
}

// Abort gives up a tree that StartTree made and nobody will use: its
// background work stops, its tmp/ directory goes and its lock is released.
// After Publish, or a second time, it does nothing.
func (t *Tree) Abort() {
	p := t.pending
	if p == nil {
		return
	}
	p.once.Do(func() {
		p.cancel()
		<-p.synced
		removeAll(p.tmp)
		p.release()
		p.err = errAborted
	})
	t.pending = nil
}

// errAborted is what Publish returns for a tree that was aborted.
var errAborted = errors.New("tree aborted before it was published")

// publish is Publish, once.
func (p *pending) publish(ctx context.Context) error {
	defer p.release()
	defer removeAll(p.tmp)
	var err error
	select {
	case err = <-p.synced:
	case <-ctx.Done():
		p.cancel()
		<-p.synced
		err = ctx.Err()
	}
	p.cancel()
	if err != nil {
		return err
	}
	return p.c.publish(p.tmp, p.blob, p.l)
}

// pending is what Publish needs of a tree that is not published yet.
type pending struct {
	c      *Cache
	l      Layer
	tmp    string // the tree's tmp/ directory: tree/, record.json, and blob when fetched
	blob   string // the fetched blob, in tmp ("": the blob was cached)
	lock   *lock.Lock
	synced chan error         // the fingerprint, record and sync, when done
	cancel context.CancelFunc // stops them

	once sync.Once // Publish or Abort, whichever comes first, on any copy of the Tree
	err  error     // its outcome
}

// release releases the tree's lock (nil: a caller that holds the whole cache).
func (p *pending) release() {
	if p.lock != nil {
		p.lock.Release()
	}
}

// Lookup returns the layer's tree if the cache has it, as Tree does, without
// making it. Lookups wait on the disk, not the CPU: a caller may run many at
// once, and call Tree for the layers they did not find.
func (c *Cache) Lookup(ctx context.Context, l Layer) (Tree, bool, error) {
	if err := l.check(); err != nil {
		return Tree{}, false, err
	}
	return c.cachedTree(ctx, l.DiffID, true)
}

// LookupDir is Lookup for a caller that needs the tree's directory and not
// its record (an overlay whose fix-up is cached): the record is not read
// where its file's format attribute vouches for it and no hardlinked
// destination may have changed the tree. LoadRecord reads it if it is needed
// after all.
func (c *Cache) LookupDir(ctx context.Context, l Layer) (Tree, bool, error) {
	if err := l.check(); err != nil {
		return Tree{}, false, err
	}
	return c.cachedTree(ctx, l.DiffID, false)
}

// LoadRecord reads the record of a tree that LookupDir returned without it;
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
		return Tree{Dir: dir, Cached: true, noRecord: true}, true, nil
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
	return Tree{Dir: dir, Record: rec.Record, Cached: true}, true, nil
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
		err = removeAll(aside)
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

// makeTree unpacks l into tmp/ and returns it, to be published by Publish;
// the caller holds l's lock, which the tree holds from now on. A cached blob
// that fails verification is removed and fetched again.
//
// Publishing costs one sync: the blob (when fetched), the record and the tree
// are written in tmp/, flushed together by one syncfs, and only then renamed
// into place: the record first, then the blob, then the tree, whose existence
// means complete. The fingerprint and the sync run on a goroutine of their own
// while the caller links the tree: linking changes link counts and ctimes,
// which the fingerprint leaves out.
func (c *Cache) makeTree(ctx context.Context, l Layer, open Opener, lk *lock.Lock) (_ Tree, err error) {
	tmp, err := os.MkdirTemp(c.path("tmp"), "tree-"+l.DiffID.Encoded()[:12]+"-")
	if err != nil {
		if lk != nil {
			lk.Release()
		}
		return Tree{}, err
	}
	p := &pending{c: c, l: l, tmp: tmp, lock: lk, synced: make(chan error, 1)}
	defer func() {
		if err != nil {
			removeAll(tmp)
			p.release()
		}
	}()

	dir := tmp + "/tree"
	var rec layer.Record
	unpack := func(tar io.Reader) (err error) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		rec, err = layer.Unpack(ctx, tar, dir)
		return err
	}
	blob := c.blobPath(l.Digest)
	fetched := "" // the blob fetched into tmp (to publish with the tree)
	if f, err := os.Open(blob); err == nil {
		err = Stream(ctx, l, f, nil, unpack)
		f.Close()
		if err == nil {
			touch(blob)
		} else if ctx.Err() != nil {
			return Tree{}, err
		} else {
			// Whatever went wrong, the next try starts from the registry.
			os.Remove(blob)
			if err := removeAll(dir); err != nil {
				return Tree{}, err
			}
			fetched, err = c.fetch(ctx, l, open, tmp, unpack)
		}
		if err != nil {
			return Tree{}, err
		}
	} else if fetched, err = c.fetch(ctx, l, open, tmp, unpack); err != nil {
		return Tree{}, err
	}

	p.blob = fetched
	// The seal outlives this call (ctx may end with it): Publish's ctx stops it.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	go func() { p.synced <- c.seal(sctx, tmp, l, rec) }()
	return Tree{Dir: dir, Record: rec, pending: p}, nil
}

// seal fingerprints the tree unpacked in tmp, writes its record beside it and
// syncs the filesystem: what publishing needs before the renames.
func (c *Cache) seal(ctx context.Context, tmp string, l Layer, rec layer.Record) error {
	dir := tmp + "/tree"
	full := treeRecord{Format: treeFormat, Record: rec, Blob: &blobRef{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}}
	var err error
	if full.Fingerprint, err = fingerprint(ctx, dir); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		full.Fingerprint = "" // a tree this process cannot walk is not checked
	}
	b, err := json.Marshal(full)
	if err != nil {
		return err
	}
	if err := os.WriteFile(tmp+"/record.json", b, 0o600); err != nil {
		return fmt.Errorf("tree %s: %w", l.DiffID, err)
	}
	markFormat(tmp + "/record.json")
	if err := syncfs(dir); err != nil {
		return fmt.Errorf("tree %s: sync: %w", l.DiffID, err)
	}
	return nil
}

// publish renames a sealed tree (and its record, and its blob when fetched)
// from tmp into place.
func (c *Cache) publish(tmp, fetched string, l Layer) error {
	final := c.treePath(l.DiffID)
	if err := os.Rename(tmp+"/record.json", final+".json"); err != nil {
		return fmt.Errorf("tree %s: %w", l.DiffID, err)
	}
	if fetched != "" {
		if err := os.Rename(fetched, c.blobPath(l.Digest)); err != nil {
			return fmt.Errorf("blob %s: %w", l.Digest, err)
		}
	}
	if err := os.Rename(tmp+"/tree", final); err != nil {
		return fmt.Errorf("tree %s: %w", l.DiffID, err)
	}
	return nil
}

// fetch streams l from open into use, and keeps the blob as the file it
// returns, in dir: verified, not yet synced.
func (c *Cache) fetch(ctx context.Context, l Layer, open Opener, dir string, use func(io.Reader) error) (string, error) {
	rc, err := open(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	path := dir + "/blob"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	err = Stream(ctx, l, rc, f, use)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return path, nil
}

func touch(path string) {
	now := time.Now()
	os.Chtimes(path, now, now)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeFile writes b to path through a synced file in tmp/ and a rename.
func (c *Cache) writeFile(path string, b []byte) error {
	f, err := os.CreateTemp(c.path("tmp"), "file-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// syncfs flushes the filesystem that holds path: one call for a whole tree
// instead of an fsync per file.
func syncfs(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}
