package cas

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Policy says what Purge removes. The zero Policy removes everything that no
// lease uses.
type Policy struct {
	// OlderThan > 0 removes every object not used for that long.
	OlderThan time.Duration
	// MaxSize >= 0 then evicts the least recently used objects until the cache
	// holds at most MaxSize bytes; NoLimit (< 0) evicts nothing by size.
	MaxSize int64
	// DryRun reports what would go and removes nothing.
	DryRun bool
	// Now is the time ages are measured from (zero: time.Now()).
	Now time.Time
}

// NoLimit is a Policy.MaxSize that evicts nothing by size.
const NoLimit = -1

// Report is what Purge removed (or, with DryRun, would remove).
type Report struct {
	Removed []Object
	Freed   int64 // bytes of the removed objects
	Left    int64 // bytes of those that stay
}

// Purge removes from the cache at root what p selects, never an object that a
// live lease uses. It waits for every command using the cache to finish (it
// takes the cache lock exclusively), so nothing a running command uses goes
// either. Leases whose mount is gone are released first. An image record goes
// with its manifest. Each object is first renamed into tmp/, so that a crash
// mid-purge never leaves a half-deleted object at its final path.
func Purge(ctx context.Context, root string, p Policy) (Report, error) {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return Report{}, nil
	}
	c, err := openExclusive(ctx, root)
	if err != nil {
		return Report{}, err
	}
	defer c.Close()
	var live []Lease
	if p.DryRun {
		live, err = c.liveLeases()
	} else {
		live, _, err = c.releaseStale()
	}
	if err != nil {
		return Report{}, err
	}
	objs, err := c.Objects()
	if err != nil {
		return Report{}, err
	}
	rep := choose(objs, live, c.needed(live, objs), p)
	if p.DryRun {
		return rep, nil
	}
	for _, o := range rep.Removed {
		if err := c.remove(o); err != nil {
			return rep, fmt.Errorf("purge %s: %w", root, err)
		}
	}
	if err := cleanTmp(c.path("tmp"), live); err != nil {
		return rep, fmt.Errorf("purge %s: %w", root, err)
	}
	return rep, nil
}

// choose picks the objects p removes: first by age, then least recently used
// first until the rest fits MaxSize; image records go with their manifests
// (and all of them when MaxSize is 0).
func choose(objs []Object, live []Lease, keep map[digest.Digest]bool, p Policy) Report {
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	var rep Report
	gone := map[string]bool{} // kind/name
	var total int64
	var candidates []Object
	for _, o := range objs {
		total += o.Size
		if o.Kind == KindImage {
			continue
		}
		if (o.Kind == KindTree || o.Kind == KindFixup) && leased(live, o.Digest) || keep[o.Digest] {
			continue
		}
		candidates = append(candidates, o)
	}
	slices.SortStableFunc(candidates, func(a, b Object) int { return a.LastUse.Compare(b.LastUse) })
	take := func(o Object) {
		rep.Removed = append(rep.Removed, o)
		rep.Freed += o.Size
		total -= o.Size
		gone[o.Kind+"/"+o.Digest.String()] = true
	}
	for _, o := range candidates {
		if p.OlderThan > 0 && now.Sub(o.LastUse) >= p.OlderThan {
			take(o)
		}
	}
	if p.MaxSize >= 0 {
		for _, o := range candidates {
			if total <= p.MaxSize {
				break
			}
			if !gone[o.Kind+"/"+o.Digest.String()] {
				take(o)
			}
		}
	}
	for _, o := range objs {
		if o.Kind != KindImage || o.Image != nil && (o.Image.Local || keep[o.Image.Digest]) {
			continue
		}
		old := p.OlderThan > 0 && now.Sub(o.LastUse) >= p.OlderThan
		if old || p.MaxSize == 0 || gone[KindBlob+"/"+o.Digest.String()] {
			take(o)
		}
	}
	rep.Left = total
	slices.SortStableFunc(rep.Removed, func(a, b Object) int {
		return cmp.Or(a.LastUse.Compare(b.LastUse), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return rep
}

// needed is what purge keeps besides the trees of live overlays: the blobs of the image each
// live destination holds (what a commit and a push of it read; its trees can be made again
// from them), and the blobs and trees of every image made by a commit and not pushed since.
func (c *Cache) needed(live []Lease, objs []Object) map[digest.Digest]bool {
	keep := map[digest.Digest]bool{}
	image := func(manifest digest.Digest, trees bool) {
		keep[manifest] = true
		b, ok := c.Blob(manifest)
		if !ok {
			return
		}
		var m struct {
			Config ocispec.Descriptor   `json:"config"`
			Layers []ocispec.Descriptor `json:"layers"`
		}
		if json.Unmarshal(b, &m) != nil {
			return
		}
		keep[m.Config.Digest] = true
		for _, l := range m.Layers {
			keep[l.Digest] = true
		}
		if !trees {
			return
		}
		if cfg, ok := c.Blob(m.Config.Digest); ok {
			var img ocispec.Image
			if json.Unmarshal(cfg, &img) == nil {
				for _, d := range img.RootFS.DiffIDs {
					keep[d] = true
				}
			}
		}
	}
	for _, l := range live {
		if l.Digest != "" {
			image(l.Digest, false)
		}
		if l.Base != "" {
			image(l.Base, false)
		}
		if l.Index != "" {
			keep[l.Index] = true
		}
	}
	for _, o := range objs {
		if o.Kind == KindImage && o.Image != nil && o.Image.Local {
			image(o.Image.Digest, true)
		}
	}
	return keep
}

// liveLeases returns the leases whose mount is there, releasing nothing.
func (c *Cache) liveLeases() ([]Lease, error) {
	all, err := c.Leases()
	if err != nil || len(all) == 0 {
		return nil, err
	}
	var live []Lease
	for _, l := range all {
		if ok, err := l.Live(); ok || err != nil { // a mount it cannot tell is kept as live
			live = append(live, l)
		}
	}
	return live, nil
}

// remove takes o out of the cache: renamed into tmp/ (its record last, so that
// a crash leaves at most an orphan record, which is ignored), then deleted.
// The caller holds the exclusive lock.
func (c *Cache) remove(o Object) error {
	if o.Kind == KindImage {
		if err := os.Remove(c.path("images", filepath.FromSlash(o.Name))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removeEmptyParents(c.path("images"), filepath.Dir(c.path("images", filepath.FromSlash(o.Name))))
		return nil
	}
	var path string
	switch o.Kind {
	case KindBlob:
		path = c.blobPath(o.Digest)
	case KindTree:
		path = c.treePath(o.Digest)
	case KindFixup:
		path = c.fixupPath(o.Digest)
	default:
		return fmt.Errorf("remove %s %s: unknown kind", o.Kind, o.Name)
	}
	doomed, err := os.MkdirTemp(c.path("tmp"), "purge-")
	if err != nil {
		return err
	}
	if err := os.Rename(path, filepath.Join(doomed, "x")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s %s: %w", o.Kind, o.Digest, err)
	}
	if o.Kind == KindBlob {
		if err := os.Remove(c.sourcesPath(o.Digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	} else {
		if err := os.Remove(path + ".json"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if o.Kind == KindTree {
		if err := os.Remove(c.linkedPath(o.Digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return disk.RemoveAll(doomed)
}

// removeEmptyParents removes dir and its parents up to (not including) top
// while they are empty.
func removeEmptyParents(top, dir string) {
	for dir != top && len(dir) > len(top) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// du adds up the sizes of the regular files under dir; a file with several
// links counts once.
func du(dir string) int64 {
	var n int64
	seen := map[uint64]bool{}
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if ino, ok := inode(fi); ok {
				if seen[ino] {
					return nil
				}
				seen[ino] = true
			}
			n += fi.Size()
		}
		return nil
	})
	return n
}
