package cas

// Making a tree: StartTree fetches (or reads the cached blob), verifies and unpacks a layer in
// tmp/, hands the tree out at once, and Publish renames it into place once its fingerprint,
// record and sync are done; Abort gives it up.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"io"
	"os"
	"sync"

	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/lock"
)

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
	t, err := c.StartTree(ctx, l, open, nil)
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
// harmless.) A tree it makes is unpacked under the eyes of obs (nil: nobody),
// which is told every change (layer.Observer); a tree it finds tells obs nothing.
func (c *Cache) StartTree(ctx context.Context, l Layer, open Opener, obs layer.Observer) (Tree, error) {
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
	t, err := c.makeTree(ctx, l, open, lk, obs)
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
		disk.RemoveAll(p.tmp)
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
	defer disk.RemoveAll(p.tmp)
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
func (c *Cache) makeTree(ctx context.Context, l Layer, open Opener, lk *lock.Lock, obs layer.Observer) (_ Tree, err error) {
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
			disk.RemoveAll(tmp)
			p.release()
		}
	}()

	dir := tmp + "/tree"
	var rec layer.Record
	fo := &fpObserver{next: obs}
	unpack := func(tar io.Reader) (err error) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		rec, err = layer.UnpackObserved(ctx, tar, dir, fo)
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
			if err := disk.RemoveAll(dir); err != nil {
				return Tree{}, err
			}
			fo.Reset()
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
	fp := fo.fingerprint(rec)
	go func() { p.synced <- c.seal(sctx, tmp, l, rec, fp) }()
	return Tree{DiffID: l.DiffID, Dir: dir, Record: rec, pending: p}, nil
}

// seal writes the record of the tree unpacked in tmp beside it, with its fingerprint fp (""
// walks the tree for it), and syncs the filesystem: what publishing needs before the renames.
func (c *Cache) seal(ctx context.Context, tmp string, l Layer, rec layer.Record, fp string) error {
	dir := tmp + "/tree"
	full := treeRecord{Format: treeFormat, Record: rec, Blob: &blobRef{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}, Fingerprint: fp}
	if fp == "" {
		w, err := walkFingerprint(ctx, dir, "")
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			full.Fingerprint = w.fp()
		} // else a tree this process cannot walk is not checked
	}
	b, err := json.Marshal(full)
	if err != nil {
		return err
	}
	if err := os.WriteFile(tmp+"/record.json", b, 0o600); err != nil {
		return fmt.Errorf("tree %s: %w", l.DiffID, err)
	}
	markFormat(tmp + "/record.json")
	if err := disk.Syncfs(dir); err != nil {
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

// writeBehind is how many bytes of a blob being fetched are written before their writeback
// starts (see disk.WriteBehind): publishing syncs the filesystem, which then has little left
// to write.
const writeBehind = 8 << 20

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
	err = Stream(ctx, l, rc, &disk.WriteBehind{F: f, Every: writeBehind}, use)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return path, nil
}
