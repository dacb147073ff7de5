package roots

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/internal/disk"
	"github.com/rootsdev/roots/lock"
)

// Compression is how Commit compresses the layer it writes.
type Compression string

const (
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
	Uncompressed Compression = "none"
)

// CommitOptions say how Commit works.
type CommitOptions struct {
	// Cache is the cache the destination was pulled with (required).
	Cache string
	// Message is the history comment of the new layer.
	Message string
	// Tag, if set, names the new image in the cache (a reference), as a local image that Push
	// and Pull use; otherwise it is named by its digest in the repository it was pulled from.
	Tag string
	// Compression of the new layer; "" is Gzip. A Docker schema2 image takes only Gzip.
	Compression Compression
	// Checksum compares the contents of regular files whose type, mode, owner, size, mtime and
	// xattrs are as the image has them (rsync --checksum); otherwise they are unchanged.
	Checksum bool
	// Registry is used only when the cache lost a tree of the image and its blob (never for an
	// image of the cache's own making).
	Registry fetch.Options
}

// Committed is what Commit wrote.
type Committed struct {
	Dest     string             `json:"dest"`
	Image    string             `json:"image"` // the reference naming the new image in the cache
	Manifest digest.Digest      `json:"manifest"`
	Config   digest.Digest      `json:"config"`
	Layer    ocispec.Descriptor `json:"layer"`
	DiffID   digest.Digest      `json:"diffId"`
	Entries  int                `json:"entries"` // tar entries of the layer (whiteouts included)
	Base     digest.Digest      `json:"base"`    // the manifest the destination held before
	Took     time.Duration      `json:"-"`
}

// Commit writes what changed in dest, a destination pulled with the cache, against the image it
// holds, as one new layer and a new image in the cache, and makes dest's record point at it (see
// cas.Lease): the layer blob and its tree (a later pull of the new image is warm), a config with
// the new diff id and a history entry, and a manifest in the base image's format. What changed:
// an overlay's upper directory, the first time; later, dest against a read-only overlay of the
// image last committed, at the paths its upper and the committed layers hold (the merged tree
// is never walked). Otherwise dest against a hardlink assembly of its image made in the cache, where a hardlink destination's
// file that is still the tree's inode is unchanged without being opened (the tree's fingerprint
// vouches for its content). A destination with no change is an error wrapping
// ErrNothingToCommit, and one the cache has no record of wraps ErrNotPulled; neither writes
// anything. Nothing is recorded unless everything was written: dest's record is written last,
// and a commit that fails before it takes back what it added (see cas.Additions): the cache,
// the record and a git destination's branches and HEAD are as they were.
func Commit(ctx context.Context, dest string, opts CommitOptions) (_ *Committed, err error) {
	start := time.Now()
	abs, err := filepath.Abs(dest)
	if err != nil {
		return nil, err
	}
	if dest, err = assemble.Canonical(abs); err != nil {
		return nil, err
	}
	fail := func(err error) (*Committed, error) { return nil, fmt.Errorf("commit %s: %w", dest, err) }
	if opts.Compression == "" {
		opts.Compression = Gzip
	}
	if opts.Compression != Gzip && opts.Compression != Zstd && opts.Compression != Uncompressed {
		return fail(fmt.Errorf("unknown compression %q: want gzip, zstd or none", opts.Compression))
	}
	if opts.Cache == "" {
		return fail(kindErrorf(ErrNotPulled, "no cache given: a destination pulled with --cache=no has no record to commit against"))
	}
	var tag fetch.Reference
	if opts.Tag != "" {
		if tag, err = fetch.ParseReference(opts.Tag); err != nil {
			return fail(err)
		}
		if tag.Digest != "" {
			return fail(fmt.Errorf("--tag %s: name a tag, not a digest (the digest is the commit's)", opts.Tag))
		}
	}
	c, err := cas.Open(ctx, opts.Cache)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	notPulled := "pull it with roots pull, then commit"
	rec, held, err := destLease(ctx, c, dest, notPulled)
	if err != nil {
		return fail(err)
	}
	defer func() { held.Release() }()
	ref, err := fetch.ParseReference(rec.Image)
	if err != nil {
		return fail(fmt.Errorf("the record's image %q: %w", rec.Image, err))
	}
	base, err := fetch.LocalImage(cas.BlobDir(opts.Cache), ref, rec.Digest)
	if err != nil {
		return fail(fmt.Errorf("its image: %w", err))
	}
	mediaType, err := layerMediaType(base.MediaType, opts.Compression)
	if err != nil {
		return fail(err)
	}
	var head gitLayer
	if rec.Git {
		var top bool
		if head, top, err = gitHead(ctx, dest); err != nil {
			return fail(err)
		} else if !top {
			return fail(fmt.Errorf("HEAD is %s: %w (check the top layer branch out before committing)", head.branch(), ErrNotTopLayer))
		}
	}

	changes, err := commitChanges(ctx, c, dest, &rec, base, opts)
	if err != nil {
		return fail(err)
	}
	if len(changes) == 0 {
		return fail(ErrNothingToCommit)
	}
	blob, written, err := writeLayer(ctx, c, dest, changes, opts.Compression)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(blob.path)
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: blob.digest, Size: blob.size}
	cfg, err := commitConfig(base.Config, blob.diffID, opts.Message, start)
	if err != nil {
		return fail(err)
	}
	cfgDesc := ocispec.Descriptor{MediaType: base.ConfigDesc.MediaType, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	man, err := commitManifest(base.Manifest, cfgDesc, desc)
	if err != nil {
		return fail(err)
	}
	md := digest.FromBytes(man)
	name := ref
	if opts.Tag != "" {
		name = tag
	}
	name = name.WithDigest(md)
	if opts.Tag != "" {
		name.Digest = "" // named by its tag
	} else {
		name.Tag = ""
	}
	size := blob.size
	for _, d := range base.Layers {
		size += d.Size
	}
	irec := cas.ImageRecord{
		Reference: name.String(), Digest: md, MediaType: base.MediaType, Platform: base.Platform.String(),
		Size: size, Layers: append(append([]digest.Digest{}, base.DiffIDs...), blob.diffID), Resolved: time.Now().UTC(), Local: true,
	}
	iname := cas.ImageName(name.Domain, name.Path, name.Tag, md)

	// The record says a commit is under way before anything is added: a commit killed from
	// here on is finished or taken back by the next command on dest (finishPending). DEST's lock
	// is held from here on (taken only now, so that a commit that writes nothing touches
	// nothing); a record that moved meanwhile means that another commit ran.
	if held == nil {
		if held, err = c.LockDest(ctx, dest); err != nil {
			return fail(err)
		}
		now, ok, err := c.LeaseOf(dest)
		if err != nil {
			return fail(err)
		}
		if !ok || now.Pending != nil || now.Digest != rec.Digest || !slices.Equal(now.Trees, rec.Trees) {
			return fail(fmt.Errorf("its record changed while it was being committed (another commit or pull of it?): commit again"))
		}
	}
	pending := rec
	pending.Pending = &cas.PendingCommit{Image: name.String(), Record: iname, Platform: irec.Platform, Digest: md, DiffID: blob.diffID}
	if rec.Git {
		pending.Pending.Head, pending.Pending.Branch = head.branch(), gitLayer{N: head.N + 1, Blob: blob.digest}.branch()
	}
	if err := c.Lease(&pending); err != nil {
		return fail(err)
	}
	if err := commitStep("pending"); err != nil {
		return fail(err)
	}
	// From here on, what the commit adds is taken back if it fails, and the record restored.
	added := c.Track()
	var uncommit func(context.Context) error
	defer func() {
		if err == nil || errors.Is(err, errKilled) {
			return
		}
		ctx := context.WithoutCancel(ctx)
		if uncommit != nil {
			if uerr := uncommit(ctx); uerr != nil {
				err = fmt.Errorf("%w (and undoing the git commit: %v)", err, uerr)
			}
		}
		if uerr := added.Undo(); uerr != nil {
			err = fmt.Errorf("%w (and what it wrote stays in the cache: %v)", err, uerr)
		}
		if uerr := c.Lease(&rec); uerr != nil {
			err = fmt.Errorf("%w (and the record of DEST says a commit is under way, which the next commit takes back: %v)", err, uerr)
		}
	}()
	added.Blob(blob.digest)
	added.Tree(blob.diffID)
	l := cas.Layer{Digest: blob.digest, Size: blob.size, MediaType: mediaType, DiffID: blob.diffID}
	if _, err := c.Tree(ctx, l, func(context.Context) (io.ReadCloser, error) { return os.Open(blob.path) }); err != nil {
		return fail(fmt.Errorf("the new layer's tree: %w", err))
	}
	if err := commitStep("tree"); err != nil {
		return fail(err)
	}
	added.Blob(cfgDesc.Digest)
	if err := c.PutBlob(cfgDesc.Digest, cfg); err != nil {
		return fail(err)
	}
	added.Blob(md)
	if err := c.PutBlob(md, man); err != nil {
		return fail(err)
	}
	if rec.Git {
		if uncommit, err = gitCommitLayer(ctx, dest, blob.digest, opts.Message); err != nil {
			return fail(err)
		}
	}
	if err := commitStep("git"); err != nil {
		return fail(err)
	}
	// The image record is the commit's point of no return for a killed commit (finishPending).
	if err := added.Image(iname, irec.Platform); err != nil {
		return fail(err)
	}
	if err := c.RecordImage(iname, irec); err != nil {
		return fail(err)
	}
	if err := commitStep("record"); err != nil {
		return fail(err)
	}
	done := rec
	before := rec.Digest
	moveLease(&done, name.String(), md, blob.diffID)
	if err := c.Lease(&done); err != nil {
		return fail(err)
	}
	return &Committed{
		Dest: dest, Image: name.String(), Manifest: md, Config: cfgDesc.Digest, Layer: desc, DiffID: blob.diffID,
		Entries: written.Entries, Base: before, Took: time.Since(start),
	}, nil
}

// commitHook, set by tests alone, runs after each step of Commit that writes: "pending" (the
// record says a commit is under way), "tree" (the layer's blob and tree), "git" (the layer
// branch, or nothing without git), "record" (the image record). Its error fails the commit
// there; errKilled stops it dead, as if the process were killed: nothing is undone.
var commitHook func(step string) error

var errKilled = errors.New("killed (a test)")

func commitStep(step string) error {
	if commitHook == nil {
		return nil
	}
	return commitHook(step)
}

// moveLease makes the record l of a destination say that it holds the image (named ref, manifest
// md) that a commit of it made, with the new layer diffID on top.
func moveLease(l *cas.Lease, ref string, md, diffID digest.Digest) {
	if l.Base == "" {
		l.Base, l.Pulled = l.Digest, l.Image
	}
	l.Image, l.Digest, l.Index = ref, md, ""
	l.Trees = append(slices.Clone(l.Trees), diffID)
	l.Pending = nil
}

// destLease reads the record of dest, which must be a live destination of c (else an error
// wrapping ErrNotPulled, with the hint notPulled). A commit of it killed half-way is ended first
// (finishPending) under dest's lock, which it returns held; otherwise no lock is taken (nil).
func destLease(ctx context.Context, c *cas.Cache, dest, notPulled string) (cas.Lease, *lock.Lock, error) {
	var held *lock.Lock
	for {
		rec, ok, err := c.LeaseOf(dest)
		if err == nil && ok {
			ok, err = rec.Live()
		}
		if err == nil && !ok {
			err = kindErrorf(ErrNotPulled, "%s is not a destination pulled with this cache (or it was replaced since): %s", assemble.Quote(dest), notPulled)
		}
		if err != nil {
			held.Release()
			return rec, nil, err
		}
		if rec.Pending == nil {
			return rec, held, nil
		}
		if held != nil {
			if err := finishPending(ctx, c, &rec); err != nil {
				held.Release()
				return rec, nil, err
			}
			return rec, held, nil
		}
		if held, err = c.LockDest(ctx, dest); err != nil {
			return rec, nil, err
		}
		// Read again under the lock: the commit may have been under way, and ended since.
	}
}

// finishPending ends the commit of l's destination that was killed half-way (l.Pending, see
// cas.PendingCommit): done if its image record is there (l moves to that image, as the commit
// would have moved it), else taken back (its git branch deleted, HEAD and the index back on the
// branch they named). Then it writes l. The caller holds the destination's lock.
func finishPending(ctx context.Context, c *cas.Cache, l *cas.Lease) error {
	p := l.Pending
	if p == nil {
		return nil
	}
	if r, ok := c.ImageRecordOf(p.Record, p.Platform); ok && r.Digest == p.Digest {
		moveLease(l, p.Image, p.Digest, p.DiffID)
	} else {
		l.Pending = nil
		head, ok1 := parseLayerBranch(p.Head)
		next, ok2 := parseLayerBranch(p.Branch)
		if l.Git && ok1 && ok2 {
			if err := gitTakeBack(ctx, l.Dest, head, next); err != nil {
				return fmt.Errorf("take back the unfinished commit of %s: %w", p.Image, err)
			}
		}
	}
	if err := c.Lease(l); err != nil {
		return fmt.Errorf("finish the unfinished commit of %s: %w", p.Image, err)
	}
	return nil
}

// layerMediaType is the media type of a layer compressed so in a manifest of manifestType.
func layerMediaType(manifestType string, comp Compression) (string, error) {
	if manifestType == fetch.MediaTypeDockerManifest {
		if comp != Gzip {
			return "", kindErrorf(ErrFormat, "--compression %s: the image is Docker schema2, whose layers are gzip (push it as OCI first: roots push --format oci, pull that, then commit)", comp)
		}
		return fetch.MediaTypeDockerLayer, nil
	}
	switch comp {
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd, nil
	case Uncompressed:
		return ocispec.MediaTypeImageLayer, nil
	}
	return ocispec.MediaTypeImageLayerGzip, nil
}

// commitChanges finds what changed in dest against the image rec says it holds.
func commitChanges(ctx context.Context, c *cas.Cache, dest string, rec *cas.Lease, base *fetch.Image, opts CommitOptions) ([]layer.Change, error) {
	if rec.Overlay() && rec.Base == "" {
		// Nothing committed yet: the upper directory is exactly what changed. Its root is
		// always there (the merged root shows its metadata); alone, it is no change.
		changes, err := assemble.OverlayChanges(ctx, filepath.Join(rec.State, "upper"))
		if len(changes) == 1 && changes[0].Path == "." {
			changes = nil
		}
		return changes, err
	}
	if rec.Overlay() {
		changes, err := overlayChangesSince(ctx, c, dest, rec, base, opts)
		if len(changes) == 1 && changes[0].Path == "." {
			changes = nil
		}
		return changes, err
	}
	scratch, err := c.TempDir("commit-")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(scratch, "base")
	p := &puller{
		opts:     PullOptions{Cache: opts.Cache, Mode: Hardlink, Jobs: defaultJobs, Registry: opts.Registry},
		client:   fetch.New(withLocal(opts.Registry, opts.Cache)),
		ref:      base.Ref,
		dest:     dir,
		noRecord: true,
		scratch:  true,
	}
	defer func() {
		// The trees this compare alone linked keep no exposure stamp (it would have their
		// later reuses walk them): nothing shares their inodes once scratch is gone.
		if disk.RemoveAll(scratch) == nil && p.exposed != nil {
			p.exposed.Undo(context.WithoutCancel(ctx))
		} else if p.exposed != nil {
			p.exposed.Release()
		}
	}()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := p.assemble(ctx, base, dir); err != nil {
		return nil, fmt.Errorf("assemble its image to compare: %w", err)
	}
	var exclude []string
	if rec.Git {
		exclude = []string{".git"}
	}
	changes, err := assemble.Changes(ctx, dest, dir, assemble.ChangeOptions{Hardlinked: rec.Mode == string(Hardlink), Checksum: opts.Checksum, Exclude: exclude})
	if err == nil && len(changes) == 1 && changes[0].Path == "." && sameRoot(dest, dir) {
		changes = nil // only the root's mtime: a directory made by the pull (or this compare) has its own
	}
	return changes, err
}

// overlayChangesSince finds what changed in the overlay destination dest since its last commit,
// whose image is base: dest against a read-only overlay of base's trees (under the pulled
// image's fix-up, as dest's own lower layers are), at the paths that dest's upper directory
// and the committed layers' trees hold (see assemble.OverlayChangesSince).
func overlayChangesSince(ctx context.Context, c *cas.Cache, dest string, rec *cas.Lease, base *fetch.Image, opts CommitOptions) ([]layer.Change, error) {
	pulled := -1 // how many of base's layers were pulled: the ones dest's fix-up is of
	for k := len(base.DiffIDs); k > 0; k-- {
		if cas.FixupKey(base.DiffIDs[:k]) == rec.Fixup {
			pulled = k
			break
		}
	}
	if pulled < 0 {
		return nil, fmt.Errorf("the record's fix-up %s is of none of its image's layer stacks", rec.Fixup)
	}
	p := &puller{
		opts:     PullOptions{Cache: opts.Cache, Mode: Overlay, Jobs: defaultJobs, Registry: opts.Registry},
		client:   fetch.New(withLocal(opts.Registry, opts.Cache)),
		ref:      base.Ref,
		noRecord: true,
	}
	trees, err := p.trees(ctx, c, cas.DirOnly, base, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("its image's trees: %w", err)
	}
	lowers, err := overlayLowers(ctx, c, base.DiffIDs[:pulled], trees[:pulled])
	if err != nil {
		return nil, fmt.Errorf("its image's fix-up: %w", err)
	}
	var committed []string
	for i := len(trees) - 1; i >= pulled; i-- {
		committed = append(committed, trees[i].Dir)
	}
	return assemble.OverlayChangesSince(ctx, dest, filepath.Join(rec.State, "upper"), append(committed, lowers...), committed)
}

// sameRoot reports whether the directories a and b have the same mode and owner: an image
// whose layers never name "./" leaves its root's mtime to whoever made the directory.
func sameRoot(a, b string) bool {
	var x, y unix.Stat_t
	if unix.Lstat(a, &x) != nil || unix.Lstat(b, &y) != nil {
		return false
	}
	return x.Mode == y.Mode && x.Uid == y.Uid && x.Gid == y.Gid
}

// withLocal is o reading what digests name from the cache first.
func withLocal(o fetch.Options, cache string) fetch.Options {
	o.Local = cas.BlobDir(cache)
	return o
}

// newBlob is a layer blob written into the cache's tmp/.
type newBlob struct {
	path   string
	digest digest.Digest
	diffID digest.Digest
	size   int64
}

// writeLayer writes changes of dest as a layer tar, compressed so, into a file of the cache's
// tmp/, hashing the tar (the diff id) and the blob as it goes.
func writeLayer(ctx context.Context, c *cas.Cache, dest string, changes []layer.Change, comp Compression) (newBlob, layer.Exported, error) {
	f, err := c.TempFile("commit-*.blob")
	if err != nil {
		return newBlob{}, layer.Exported{}, err
	}
	b := newBlob{path: f.Name()}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(b.path)
		}
	}()
	blobHash := digest.Canonical.Digester()
	counted := &countWriter{w: io.MultiWriter(f, blobHash.Hash())}
	buf := bufio.NewWriterSize(counted, 1<<20)
	var zw io.WriteCloser
	switch comp {
	case Gzip:
		gz, err := pgzip.NewWriterLevel(buf, pgzip.DefaultCompression)
		if err != nil {
			return b, layer.Exported{}, err
		}
		zw = gz
	case Zstd:
		zs, err := zstd.NewWriter(buf)
		if err != nil {
			return b, layer.Exported{}, err
		}
		zw = zs
	default:
		zw = nopCloser{buf}
	}
	diffHash := digest.Canonical.Digester()
	written, err := layer.Export(ctx, io.MultiWriter(zw, diffHash.Hash()), dest, changes)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = buf.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return b, written, fmt.Errorf("write the layer: %w", err)
	}
	done = true
	b.digest, b.diffID, b.size = blobHash.Digest(), diffHash.Digest(), counted.n
	return b, written, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// commitConfig is the base config with the new layer's diff id and a history entry, every
// other field as it was.
func commitConfig(base []byte, diffID digest.Digest, msg string, now time.Time) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(base, &top); err != nil {
		return nil, fmt.Errorf("the image config: %w", err)
	}
	var rootfs ocispec.RootFS
	if err := json.Unmarshal(top["rootfs"], &rootfs); err != nil {
		return nil, fmt.Errorf("the image config's rootfs: %w", err)
	}
	rootfs.DiffIDs = append(rootfs.DiffIDs, diffID)
	var history []ocispec.History
	if h, ok := top["history"]; ok {
		if err := json.Unmarshal(h, &history); err != nil {
			return nil, fmt.Errorf("the image config's history: %w", err)
		}
	}
	created := now.UTC()
	history = append(history, ocispec.History{Created: &created, CreatedBy: "roots commit", Comment: msg})
	var err error
	set := func(k string, v any) {
		if err == nil {
			top[k], err = json.Marshal(v)
		}
	}
	set("rootfs", rootfs)
	set("history", history)
	set("created", created)
	if err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// commitManifest is the base manifest with cfg as its config and l added on top, every other
// field as it was.
func commitManifest(base []byte, cfg, l ocispec.Descriptor) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(base, &top); err != nil {
		return nil, fmt.Errorf("the manifest: %w", err)
	}
	var layers []json.RawMessage
	if err := json.Unmarshal(top["layers"], &layers); err != nil {
		return nil, fmt.Errorf("the manifest's layers: %w", err)
	}
	nl, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	layers = append(layers, nl)
	if top["layers"], err = json.Marshal(layers); err != nil {
		return nil, err
	}
	if top["config"], err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}
