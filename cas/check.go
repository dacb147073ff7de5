package cas

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Finding is something Check found wrong, and what it did about it.
type Finding struct {
	Object  Object
	Problem string
	Action  string
}

// CheckReport is what Check looked at and found.
type CheckReport struct {
	Blobs, Trees, Fixups int // objects checked
	Findings             []Finding
}

// KindLease is the Object kind of a stale lease in a Finding (its Name is the destination).
const KindLease = "lease"

// Check verifies the whole cache at root and repairs what it can: every blob
// is hashed against its digest (a bad one is removed), every tree is checked
// against its fingerprint (a changed one is unpacked again from its blob, or
// removed if the blob is not cached), records without their object and
// objects without their record are removed, stale leases are released and
// tmp/ is emptied. Like Purge it waits until no other command uses the cache.
func Check(ctx context.Context, root string) (CheckReport, error) {
	var rep CheckReport
	if _, err := os.Stat(root); err != nil {
		return rep, err
	}
	c, err := openExclusive(ctx, root)
	if err != nil {
		return rep, err
	}
	defer c.Close()
	live, released, err := c.releaseStale()
	if err != nil {
		return rep, err
	}
	for _, l := range released {
		rep.Findings = append(rep.Findings, Finding{Object: Object{Kind: KindLease, Name: l.Dest}, Problem: goneProblem(l), Action: "released"})
	}
	if err := cleanTmp(c.path("tmp"), live); err != nil {
		return rep, err
	}
	objs, err := c.Objects()
	if err != nil {
		return rep, err
	}
	find := func(o Object, problem, action string) {
		rep.Findings = append(rep.Findings, Finding{Object: o, Problem: problem, Action: action})
	}

	// Blobs, hashed in parallel.
	var blobs []Object
	for _, o := range objs {
		if o.Kind == KindBlob {
			blobs = append(blobs, o)
		}
	}
	rep.Blobs = len(blobs)
	bad := make([]error, len(blobs))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				bad[i] = verifyBlob(ctx, c.blobPath(blobs[i].Digest), blobs[i].Digest)
			}
		}()
	}
	for i := range blobs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	goodBlob := map[digest.Digest]bool{}
	for i, o := range blobs {
		if bad[i] == nil {
			goodBlob[o.Digest] = true
			continue
		}
		if err := c.remove(o); err != nil {
			return rep, err
		}
		find(o, bad[i].Error(), "removed")
	}

	// Trees.
	for _, o := range objs {
		if o.Kind != KindTree {
			continue
		}
		rep.Trees++
		dir := c.treePath(o.Digest)
		if !exists(dir) {
			os.Remove(dir + ".json")
			find(o, "a record without its tree", "removed")
			continue
		}
		problem := ""
		rec, err := readTreeRecord(dir + ".json")
		switch {
		case !ownObject(dir):
			problem = "not a directory that this user's roots made (a symlink, or another user's record)"
		case err != nil:
			problem = "no readable record"
		case rec.Format != treeFormat:
			problem = fmt.Sprintf("made by an older roots (format %d, now %d)", rec.Format, treeFormat)
		case rec.Fingerprint == "":
			problem = "no fingerprint to check it against"
		default:
			same, err := fingerprintMatches(ctx, dir, rec.Fingerprint)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			if err != nil {
				problem = err.Error()
			} else if !same {
				problem = "changed since it was unpacked (a write through a hardlinked destination?)"
			}
		}
		if problem == "" {
			continue
		}
		if _, err := c.retire(o.Digest); err != nil {
			return rep, err
		}
		if rec.Blob == nil || !goodBlob[rec.Blob.Digest] {
			find(o, problem, "removed (its blob is not cached; the next pull fetches it)")
			continue
		}
		l := Layer{Digest: rec.Blob.Digest, Size: rec.Blob.Size, MediaType: rec.Blob.MediaType, DiffID: o.Digest}
		noFetch := func(context.Context) (io.ReadCloser, error) {
			return nil, fmt.Errorf("blob %s is not cached", l.Digest)
		}
		t, err := c.makeTree(ctx, l, noFetch, nil, nil) // the cache is ours alone: no tree lock
		if err == nil {
			err = t.Publish(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			find(o, problem, "removed (unpacking it again failed: "+err.Error()+")")
			continue
		}
		find(o, problem, "unpacked again from its blob")
	}
	// Tree records whose tree is gone are not listed as trees (Objects lists directories).
	if err := c.removeOrphanRecords("trees", &rep); err != nil {
		return rep, err
	}
	if stamps, err := os.ReadDir(c.path("linked")); err == nil {
		for _, e := range stamps {
			d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
			if d.Validate() != nil || !exists(c.treePath(d)) {
				os.Remove(c.path("linked", e.Name()))
			}
		}
	}

	// Fix-ups: unchanged, or gone (the next overlay pull makes them again).
	for _, o := range objs {
		if o.Kind != KindFixup {
			continue
		}
		rep.Fixups++
		ok, err := c.cachedFixup(ctx, c.fixupPath(o.Digest), true)
		if err != nil {
			return rep, err
		}
		if ok {
			continue
		}
		if _, err := c.retireDir(c.fixupPath(o.Digest), o.Digest); err != nil {
			return rep, err
		}
		os.Remove(c.fixupPath(o.Digest) + ".json")
		find(o, "no record, or changed since it was made", "removed (the next overlay pull makes it again)")
	}
	if err := c.removeOrphanRecords("fixups", &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// removeOrphanRecords removes the .json records under kind/sha256 whose
// directory is missing (and for trees, their exposure stamps, unreported).
func (c *Cache) removeOrphanRecords(kind string, rep *CheckReport) error {
	dir := c.path(kind, "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || exists(filepath.Join(dir, hex)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, hex)
		rep.Findings = append(rep.Findings, Finding{
			Object:  Object{Kind: strings.TrimSuffix(kind, "s"), Name: d.String(), Digest: d},
			Problem: "a record without its directory", Action: "removed"})
	}
	return nil
}

// verifyBlob hashes the file at path and compares it with d.
func verifyBlob(ctx context.Context, path string, d digest.Digest) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, &ctxReader{ctx: ctx, r: f}); err != nil {
		return err
	}
	if got := digest.NewDigest(digest.SHA256, h); got != d {
		return fmt.Errorf("%w: got %s", ErrDigestMismatch, got)
	}
	return nil
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// goneProblem says why the lease l is stale.
func goneProblem(l Lease) string {
	if l.Overlay() {
		return "its mount is gone"
	}
	return "its destination is gone or was replaced"
}
