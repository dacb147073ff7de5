// Package roots pulls registry images into root filesystems that chroot, runc, crun, LXC and
// systemd-nspawn can use, without a daemon. It is what the roots command does, as a library:
//
//	pulled, err := roots.Pull(ctx, "debian:12", "/srv/debian", roots.PullOptions{Cache: "/var/cache/roots"})
//
// Layers download in parallel into a digest-keyed cache (package cas), are unpacked once into
// per-layer trees, and are assembled into the destination by hardlinks, by copies, or as an
// overlayfs mount (package assemble). Unmount ends an overlay destination; Purge, Check and List
// are the cache's commands. ARCHITECTURE.md at the module root describes the design.
//
// roots runs on Linux only.
package roots

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/fetch"
)

// Mode is how a destination is made from the cached layers.
type Mode string

// Modes.
const (
	// Hardlink links every file of the layers into the destination: fast, and the files share
	// their inodes with the cache (regular files under etc/ are copied). The default.
	Hardlink Mode = "hardlink"
	// Copy copies every file (reflinks where the filesystem can): the destination shares
	// nothing with the cache.
	Copy Mode = "copy"
	// Overlay mounts an overlayfs at the destination whose lower layers are the cached trees:
	// instant when they are cached. It needs root; Unmount ends it.
	Overlay Mode = "overlay"
)

// PullOptions say how Pull works. The zero value pulls the host's platform into a hardlinked
// destination with no cache (every layer streams straight into the destination).
type PullOptions struct {
	// Cache is the cache directory; "" pulls with none (Overlay needs one).
	Cache string
	// Mode is how the destination is made; "" is Hardlink. Without a cache every mode writes
	// the layers' files into the destination, sharing nothing.
	Mode Mode
	// Jobs is how many layers download and unpack at once; 0 is 4.
	Jobs int
	// Platform chooses one platform of a multi-platform image; nil is the host's.
	Platform *fetch.Platform
	// Force replaces an existing destination (atomically: the old one stays until the new one
	// is complete); without it an existing destination is an error wrapping ErrExists.
	Force bool
	// Registry says how to reach and log in to registries. Pull sets Local to the cache.
	Registry fetch.Options
	// Git also makes the destination a git repository with one branch per layer (see git.go):
	// it needs the git command and the cache, and excludes Overlay.
	Git bool
	// Offline pulls from the cache alone and opens no network connection (it sets
	// Registry.Offline, which does too): a tag resolves through the cache's record of it for
	// the platform, a digest through the cached manifest. What the cache lacks, or holds
	// corrupt, is an error wrapping ErrOffline. It needs the cache.
	Offline bool
	// Progress, if set, is told what happens as it happens. It is called from several
	// goroutines at once and must not block.
	Progress func(Event)
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// Resolved: the image was resolved; Event.Image says what will be pulled.
	Resolved EventKind = iota
	// Read: Event.Bytes more bytes of layer Event.Layer came from the registry.
	Read
	// LayerDone: layer Event.Layer was downloaded and unpacked.
	LayerDone
	// LayerCached: layer Event.Layer was in the cache already.
	LayerCached
	// Warning: something the user should know that does not stop the pull (Event.Message).
	Warning
)

// Event is one step of a pull, for PullOptions.Progress.
type Event struct {
	Kind    EventKind
	Image   *fetch.Image // Resolved
	Layer   int          // Read, LayerDone, LayerCached: the index in Image.Layers
	Bytes   int64        // Read
	Message string       // Warning
	// Recorded (Resolved, offline): when the cache's record of the tag that resolved the
	// image was made; zero for a digest.
	Recorded time.Time
}

// Pulled says what Pull pulled.
type Pulled struct {
	Reference fetch.Reference
	Dest      string        // absolute, with its parent's symlinks resolved
	Mode      Mode          // as made: Copy when a hardlink pull had no cache to link from
	Digest    digest.Digest // the platform's manifest
	Index     digest.Digest // the index the manifest was chosen from; "" for a single-platform image
	Platform  fetch.Platform
	Layers    []ocispec.Descriptor // bottom first
	DiffIDs   []digest.Digest      // bottom first
	Size      int64                // of the compressed layers
	// Unapplied lists the owners, devices and attributes of the image that the destination's
	// filesystem or the caller's privileges did not allow (an unprivileged pull's chown).
	Unapplied []layer.Unapplied
	Took      time.Duration
}

// defaultJobs is PullOptions.Jobs when it is 0.
const defaultJobs = 4

// Pull pulls the image ref names into dest, creating it, and says what it pulled. A failed pull
// leaves dest as it was (absent, or the old destination under Force) and the cache sound.
func Pull(ctx context.Context, ref, dest string, opts PullOptions) (*Pulled, error) {
	r, err := fetch.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	return pullWith(ctx, r, dest, opts, nil)
}

// stager is told of a pull's steps that a caller building on the pull (Bundle) takes part in;
// an error from either fails the pull, and DEST stays as it was.
type stager interface {
	// resolved: the image is known; nothing is fetched yet.
	resolved(img *fetch.Image) error
	// staged: the new tree is complete at rootfs (a staging directory, or a read-only view of
	// an overlay's layers) and about to take DEST's place.
	staged(ctx context.Context, img *fetch.Image, rootfs string) error
}

// pullWith is Pull of the parsed reference r, with st (if not nil) told of its steps.
func pullWith(ctx context.Context, r fetch.Reference, dest string, opts PullOptions, st stager) (*Pulled, error) {
	start := time.Now()
	var err error
	if opts.Mode == "" {
		opts.Mode = Hardlink
	}
	if opts.Jobs == 0 {
		opts.Jobs = defaultJobs
	}
	switch {
	case opts.Mode != Hardlink && opts.Mode != Copy && opts.Mode != Overlay:
		return nil, fmt.Errorf("pull %s: unknown mode %q: want hardlink, copy or overlay", r, opts.Mode)
	case opts.Jobs < 0:
		return nil, fmt.Errorf("pull %s: %d jobs: need at least 1", r, opts.Jobs)
	case opts.Mode == Overlay && opts.Cache == "":
		return nil, fmt.Errorf("pull %s: %w (its layers are the overlay's)", r, ErrOverlayNeedsCache)
	case opts.Mode == Overlay && os.Geteuid() != 0:
		return nil, fmt.Errorf("pull %s: %w (it mounts overlayfs)", r, ErrOverlayNeedsRoot)
	case (opts.Offline || opts.Registry.Offline) && opts.Cache == "":
		return nil, fmt.Errorf("pull %s: %w with no cache: there is nothing to pull from", r, ErrOffline)
	}
	opts.Offline = opts.Offline || opts.Registry.Offline
	opts.Registry.Offline = opts.Offline
	if opts.Git {
		if err := checkGitPull(opts); err != nil {
			return nil, fmt.Errorf("pull %s: %w", r, err)
		}
	}
	dest, err = CheckDest(dest, opts.Cache)
	if err != nil {
		return nil, err
	}
	if opts.Cache != "" {
		opts.Registry.Local = cas.BlobDir(opts.Cache) // what a digest names needs no round trip when cached
	}
	p := &puller{opts: opts, client: fetch.New(opts.Registry), rep: reporter{opts.Progress}, ref: r, dest: dest, stager: st}
	var img *fetch.Image
	var unapplied []layer.Unapplied
	if opts.Mode == Overlay {
		img, err = p.overlay(ctx)
	} else {
		img, unapplied, err = p.pull(ctx)
	}
	if err != nil {
		return nil, err
	}
	mode := opts.Mode
	if opts.Cache == "" {
		mode = Copy
	}
	return &Pulled{
		Reference: r, Dest: dest, Mode: mode, Digest: img.Digest, Index: img.IndexDigest,
		Platform: img.Platform, Layers: img.Layers, DiffIDs: img.DiffIDs, Size: compressedSize(img),
		Unapplied: unapplied, Took: time.Since(start),
	}, nil
}

// puller is one pull under way.
type puller struct {
	opts   PullOptions
	client *fetch.Client
	rep    reporter
	ref    fetch.Reference
	dest   string // canonical
	// noRecord: the image is the cache's already (a commit assembling its base to compare);
	// its image record is left as it is.
	noRecord bool
	// scratch: the caller removes what assemble makes once done with it (a commit's compare),
	// and then undoes exposed, so that the trees keep no exposure stamp for a directory that
	// is gone (see cas.Exposure.Undo).
	scratch bool
	exposed *cas.Exposure
	// recorded: offline, when the cache's record that resolved the tag was made (it is
	// written again with that time, not now: the tag was not asked again).
	recorded time.Time
	// layerTrees are the cached trees a hardlink or copy pull assembled DEST from, bottom
	// first (a git destination's scratch rootfs is made from them).
	layerTrees []cas.Tree
	// stager, if not nil, is told when the image is resolved and when DEST is ready to take
	// its place (Bundle).
	stager stager
}

// resolvedImage resolves the image, reports it and tells the stager.
func (p *puller) resolvedImage(ctx context.Context) (*fetch.Image, error) {
	img, err := p.resolve(ctx)
	if err != nil {
		return nil, err
	}
	p.rep.send(Event{Kind: Resolved, Image: img, Recorded: p.recorded})
	if p.stager != nil {
		if err := p.stager.resolved(img); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// pull makes a hardlink or copy destination (or, with no cache, streams the layers into it).
func (p *puller) pull(ctx context.Context) (*fetch.Image, []layer.Unapplied, error) {
	stage, err := assemble.Stage(p.dest, p.opts.Force)
	if err != nil {
		return nil, nil, err
	}
	defer stage.Abort()
	assemble.RemoveStale(p.dest)

	img, err := p.resolvedImage(ctx)
	if err != nil {
		return nil, nil, err
	}
	var unapplied []layer.Unapplied
	if p.opts.Cache == "" {
		unapplied, err = p.stream(ctx, img, stage.Dir)
	} else {
		unapplied, err = p.assemble(ctx, img, stage.Dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pull %s: %w", p.ref, diskFull(err, p.opts.Cache, p.dest, img))
	}
	if p.opts.Git {
		if err := p.gitLayers(ctx, img, stage.Dir); err != nil {
			return nil, nil, fmt.Errorf("pull %s: %w", p.ref, err)
		}
	}
	if p.stager != nil {
		if err := p.stager.staged(ctx, img, stage.Dir); err != nil {
			return nil, nil, err
		}
	}
	if p.opts.Force {
		// An overlay destination is unmounted (its changes discarded) to be replaced.
		if err := replaceOverlay(ctx, p.dest); err != nil {
			return nil, nil, fmt.Errorf("replace %s: %w", p.dest, err)
		}
	}
	if err := stage.Commit(); err != nil {
		return nil, nil, err
	}
	if p.opts.Cache != "" {
		if err := p.recordDest(ctx, img); err != nil {
			p.rep.send(Event{Kind: Warning, Message: fmt.Sprintf("%s is in place, but the cache has no record of it (roots commit and push --from will not know it): %v", p.dest, err)})
		}
	}
	return img, unapplied, nil
}

// compressedSize is the sum of img's layer sizes.
func compressedSize(img *fetch.Image) int64 {
	var size int64
	for _, l := range img.Layers {
		size += l.Size
	}
	return size
}
