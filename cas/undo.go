package cas

// Taking back a job that failed half-way: a command that adds several objects to the cache
// (roots commit: a layer blob and its tree, a config, a manifest, an image record) notes each
// one just before it adds it, and if a later step fails, Undo takes back what it added and only
// that. An object that was there before is kept (the same layer committed twice), and an image
// record that was replaced is put back as it was.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
)

// Additions is what a command added to the cache, newest last, until it calls Undo or forgets
// them (a job that succeeded simply drops its Additions).
type Additions struct {
	c     *Cache
	steps []addition
}

// addition is one object noted: a blob or tree the cache did not hold, or an image record's
// path under images/ with what was there before (nil: nothing).
type addition struct {
	obj   Object
	old   []byte
	mtime time.Time
}

// Track starts a list of additions to c.
func (c *Cache) Track() *Additions { return &Additions{c: c} }

// Blob notes that the blob d is about to be added (PutBlob, or Tree keeping a layer's blob),
// unless the cache holds it already.
func (a *Additions) Blob(d digest.Digest) {
	if checkDigest(d) == nil && !exists(a.c.blobPath(d)) {
		a.steps = append(a.steps, addition{obj: Object{Kind: KindBlob, Name: d.String(), Digest: d}})
	}
}

// Tree notes that the tree d is about to be made (Tree), unless the cache holds it already.
func (a *Additions) Tree(d digest.Digest) {
	if checkDigest(d) == nil && !exists(a.c.treePath(d)) {
		a.steps = append(a.steps, addition{obj: Object{Kind: KindTree, Name: d.String(), Digest: d}})
	}
}

// Image notes that RecordImage(name, r) with r.Platform platform is about to write its record,
// keeping what it would replace (the record of an earlier commit of the same tag, or the record
// without a platform that it removes).
func (a *Additions) Image(name, platform string) error {
	if err := checkName(name); err != nil {
		return err
	}
	names := []string{name}
	if platform != "" {
		names = append(names, platformName(name, platform))
	}
	for _, n := range names {
		s := addition{obj: Object{Kind: KindImage, Name: n}}
		path := a.c.path("images", filepath.FromSlash(n))
		if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
			if s.old, err = os.ReadFile(path); err != nil {
				return fmt.Errorf("image record %s: %w", n, err)
			}
			s.mtime = fi.ModTime()
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("image record %s: %w", n, err)
		} else if err == nil {
			continue // not a record: RecordImage will fail on it
		}
		a.steps = append(a.steps, s)
	}
	return nil
}

// Undo takes back what was noted, newest first, so that image records go before the manifests
// they name and trees before their blobs: a record it had replaced is written again (with its
// mtime, its last use), anything else is removed as purge removes it (renamed into tmp/, then
// deleted). It goes on past a failure and returns every error. The objects are the caller's
// own: no other command knows their digests until the record naming them is written (but for
// one that makes the very same layer at the very same time, which may find it gone).
func (a *Additions) Undo() error {
	var errs []error
	for i := len(a.steps) - 1; i >= 0; i-- {
		s := a.steps[i]
		var err error
		if s.old != nil {
			path := a.c.path("images", filepath.FromSlash(s.obj.Name))
			if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
				err = a.c.writeFile(path, s.old)
			}
			if err == nil {
				err = os.Chtimes(path, s.mtime, s.mtime)
			}
		} else if a.present(s.obj) {
			err = a.c.remove(s.obj)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("take back %s %s: %w", s.obj.Kind, s.obj.Name, err))
		}
	}
	a.steps = nil
	return errors.Join(errs...)
}

// present reports whether some part of o is in the cache: a step that failed may have written
// part of what it noted (a tree's record, not the tree), or nothing.
func (a *Additions) present(o Object) bool {
	switch o.Kind {
	case KindBlob:
		return exists(a.c.blobPath(o.Digest))
	case KindTree:
		p := a.c.treePath(o.Digest)
		return exists(p) || exists(p+".json") || exists(a.c.linkedPath(o.Digest))
	}
	return exists(a.c.path("images", filepath.FromSlash(o.Name)))
}
