package cas

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Kinds of Object.
const (
	KindBlob  = "blob"  // a layer, manifest or config as the registry sent it
	KindTree  = "tree"  // an unpacked layer
	KindFixup = "fixup" // an image's overlay fix-up layer
	KindImage = "image" // an image record: a reference and what it resolved to
)

// Object is one thing the cache holds, as purge, check and ls see it.
type Object struct {
	Kind    string
	Name    string        // the digest, or an image record's name (registry/repository/tag)
	Digest  digest.Digest // the object's digest; for an image record, its manifest's
	Size    int64         // bytes: a blob's length, a tree's file contents, a record's length
	LastUse time.Time
	Image   *ImageRecord // for KindImage
}

// Objects lists the blobs, trees, fix-ups and image records in the cache.
// Objects being made (in tmp/) are not listed.
func (c *Cache) Objects() ([]Object, error) {
	var objs []Object
	add := func(kind, dir string, withRecord bool) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range ents {
			name := e.Name()
			// A tree or fix-up is a directory; a symlink in its place is listed too, so that
			// check and purge take it away (lookups never use it, see ownObject).
			dirLike := e.IsDir() || withRecord && e.Type()&fs.ModeSymlink != 0
			if withRecord != dirLike || strings.HasSuffix(name, ".json") {
				continue
			}
			d := digest.NewDigestFromEncoded(digest.SHA256, name)
			if d.Validate() != nil {
				continue
			}
			o := Object{Kind: kind, Name: d.String(), Digest: d}
			stamp := filepath.Join(dir, name)
			if withRecord {
				stamp += ".json"
			}
			fi, err := os.Stat(stamp)
			if err != nil {
				fi, err = e.Info() // an orphan without its record: listed, so purge can take it
				if err != nil {
					continue
				}
			}
			o.LastUse = fi.ModTime()
			switch kind {
			case KindBlob:
				o.Size = fi.Size()
			case KindTree:
				if rec, err := readTreeRecord(filepath.Join(dir, name+".json")); err == nil {
					o.Size = rec.Size
				} else {
					o.Size = du(filepath.Join(dir, name))
				}
			case KindFixup:
				o.Size = du(filepath.Join(dir, name))
			}
			objs = append(objs, o)
		}
		return nil
	}
	if err := add(KindBlob, c.path("blobs", "sha256"), false); err != nil {
		return nil, err
	}
	if err := add(KindTree, c.path("trees", "sha256"), true); err != nil {
		return nil, err
	}
	if err := add(KindFixup, c.path("fixups", "sha256"), true); err != nil {
		return nil, err
	}
	images, err := c.Images()
	if err != nil {
		return nil, err
	}
	return append(objs, images...), nil
}

// Images lists the image records, most recently used first.
func (c *Cache) Images() ([]Object, error) {
	top := c.path("images")
	var objs []Object
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(top, p)
		o := Object{Kind: KindImage, Name: filepath.ToSlash(rel), Size: fi.Size(), LastUse: fi.ModTime()}
		var r ImageRecord
		if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &r) == nil {
			o.Digest, o.Image = r.Digest, &r
		}
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", top, err)
	}
	slices.SortStableFunc(objs, func(a, b Object) int { return b.LastUse.Compare(a.LastUse) })
	return objs, nil
}
