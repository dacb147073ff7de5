package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/fetch"
)

// PullCmd pulls an image into a directory.
type PullCmd struct {
	Image string `arg:"" help:"Image reference: debian, debian:12, ghcr.io/o/r:tag, host:5000/repo@sha256:..."`
	Dest  string `arg:"" help:"Directory to create with the image's root filesystem."`
	Force bool   `short:"f" help:"Replace DEST if it exists (atomically)."`
	Jobs  int    `short:"j" default:"4" help:"Layers to download and unpack at once."`
	Quiet bool   `short:"q" help:"Print nothing but errors, even on a terminal."`
	Mode  string `enum:"hardlink,copy,overlay" default:"hardlink" help:"How DEST is made from the cached layers: hardlink (fast, shares inodes with the cache), copy (shares nothing; reflinks where the filesystem can), overlay (root: an overlayfs mount, instant; end it with roots umount)."`
	cacheFlags
	registryFlags
	platformFlags
}

// Help shows examples under `roots pull --help`.
func (PullCmd) Help() string {
	return `Examples:
  roots pull debian ./debian                      # docker.io/library/debian:latest
  sudo systemd-nspawn -D ./debian /bin/bash
  roots pull --force alpine:3.20 ./alpine         # replace ./alpine atomically
  roots pull --platform linux/arm64 debian ./deb  # another platform of a multi-platform image
  roots pull --cache=no 127.0.0.1:5000/app ./app  # no cache: layers stream into DEST (CI)
  roots pull --mode copy debian ./deb             # DEST shares no inode with the cache
  sudo roots pull --mode overlay debian /srv/c1   # an overlayfs mount, in milliseconds when cached
  sudo roots umount /srv/c1                       # ... unmounted, its changes discarded
  roots pull --user bob:secret registry.example.com/team/app:1.2 ./app`
}

// Run pulls.
func (p *PullCmd) Run(ctx context.Context, e *env) error {
	start := time.Now()
	ref, err := fetch.ParseReference(p.Image)
	if err != nil {
		return usageError{err}
	}
	want, err := p.platform()
	if err != nil {
		return err
	}
	if p.Jobs < 1 {
		return usagef("--jobs %d: need at least 1", p.Jobs)
	}
	cacheDir, err := p.cacheDir(e)
	if err != nil {
		return err
	}
	if p.Mode == modeOverlay && cacheDir == "" {
		return usagef("--mode overlay needs the cache (its layers are the overlay's): drop --cache=no")
	}
	if p.Mode == modeOverlay && os.Geteuid() != 0 {
		return fmt.Errorf("--mode overlay needs root (it mounts overlayfs): run it as root, or use --mode hardlink")
	}
	dest, err := checkDest(p.Dest, cacheDir)
	if err != nil {
		return err
	}
	var local fetch.LocalSource
	if cacheDir != "" {
		local = cas.BlobDir(cacheDir) // what a digest names needs no round trip when cached
	}
	client, err := p.clientWith(e, local)
	if err != nil {
		return err
	}
	if p.Mode == modeOverlay {
		return p.overlay(ctx, e, start, ref, want, cacheDir, dest, client)
	}

	stage, err := assemble.Stage(dest, p.Force)
	if err != nil {
		return err
	}
	defer stage.Abort()
	assemble.RemoveStale(dest)

	img, err := client.Resolve(ctx, ref, want)
	if err != nil {
		return err
	}
	prog := newProgress(e, !p.Quiet && e.terminal, img.Layers)
	defer prog.stop()

	var unapplied []layer.Unapplied
	if cacheDir == "" {
		unapplied, err = p.stream(ctx, client, img, stage.Dir, prog)
	} else {
		unapplied, err = p.assemble(ctx, e, cacheDir, client, img, stage.Dir, prog)
	}
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, diskFull(err, cacheDir, dest, img))
	}
	if p.Force {
		// An overlay destination is unmounted (its changes discarded) to be replaced.
		if err := replaceOverlay(dest); err != nil {
			return fmt.Errorf("replace %s: %w", dest, err)
		}
	}
	if err := stage.Commit(); err != nil {
		return err
	}
	prog.stop()
	if len(unapplied) > 0 {
		why := "the filesystem refused them"
		if os.Geteuid() != 0 {
			why = "run as root to apply them"
		}
		fmt.Fprintf(e.stderr, "roots: warning: %d owners, devices or attributes of the image were not applied (%s; first: %s: %s)\n",
			len(unapplied), why, unapplied[0].Path, unapplied[0].What)
	}
	p.summary(e, start, ref, img)
	return nil
}

// Assembly modes.
const (
	modeHardlink = "hardlink"
	modeCopy     = "copy"
	modeOverlay  = "overlay"
)

// summary tells a terminal what was pulled.
func (p *PullCmd) summary(e *env, start time.Time, ref fetch.Reference, img *fetch.Image) {
	if p.Quiet || !e.terminal {
		return
	}
	var size int64
	for _, l := range img.Layers {
		size += l.Size
	}
	fmt.Fprintf(e.stderr, "pulled %s@%s into %s (%s): %d layers, %s, %.1fs\n",
		ref, img.Digest, quote(p.Dest), p.Mode, len(img.Layers), humanBytes(size), time.Since(start).Seconds())
}

// assemble makes every layer's tree in the cache, in parallel, and hardlinks
// (or copies) them into dir, each as soon as it and the layers below it are
// ready: the bottom of the image is assembled while its top still unpacks.
func (p *PullCmd) assemble(ctx context.Context, e *env, cacheDir string, client *fetch.Client, img *fetch.Image, dir string, prog *progress) ([]layer.Unapplied, error) {
	c, err := cas.Open(ctx, cacheDir)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var asm *assemble.Assembly
	var x *cas.Exposure
	if p.Mode == modeCopy {
		asm, err = assemble.NewCopy(ctx, dir)
	} else {
		// dir will share the trees' inodes: from now on their reuse checks them.
		if x, err = c.Expose(ctx, nil); err != nil {
			return nil, err
		}
		asm, err = assemble.NewHardlink(ctx, dir)
	}
	if err != nil {
		return nil, err
	}
	defer asm.Close()
	trees, err := p.trees(ctx, e, c, c.Lookup, client, img, prog, func(i int, t cas.Tree) error {
		if x != nil {
			if err := x.Add(ctx, img.DiffIDs[i]); err != nil {
				return err
			}
		}
		return asm.Add(assembleTree(t))
	})
	if err == nil {
		err = asm.Finish()
	}
	if x == nil {
		return unapplied(trees), err
	}
	if err != nil {
		if assemble.RemoveAll(dir) == nil {
			x.Undo(context.WithoutCancel(ctx)) // nothing of this pull shares the trees
		} else {
			x.Release()
		}
		return nil, err
	}
	x.Release()
	return unapplied(trees), nil
}

// lookupJobs is how many cached trees are looked up at once: a lookup waits
// on the disk (a record to read), not on the CPU or the network.
const lookupJobs = 16

// lookup finds a cached tree: cas.Cache.Lookup, or LookupDir for a caller
// that needs the trees' directories only.
type lookup func(context.Context, cas.Layer) (cas.Tree, bool, error)

// trees makes (or checks and reuses, with find) every layer's tree in the
// cache, in parallel, and records the image. When use is not nil it gets each
// tree, in layer order, as soon as that tree and the ones below it are ready;
// its error stops the pull.
func (p *PullCmd) trees(ctx context.Context, e *env, c *cas.Cache, find lookup, client *fetch.Client, img *fetch.Image, prog *progress, use func(int, cas.Tree) error) ([]cas.Tree, error) {
	if err := c.PutBlob(img.ConfigDesc.Digest, img.Config); err != nil {
		return nil, err
	}
	if err := c.PutBlob(img.Digest, img.Manifest); err != nil {
		return nil, err
	}
	n := len(img.Layers)
	layers := make([]cas.Layer, n)
	for i, d := range img.Layers {
		layers[i] = cas.Layer{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType, DiffID: img.DiffIDs[i]}
	}
	// A layer listed more than once (old images repeat the empty layer) is made
	// once, by its first position (its owner), and used at every position; it
	// is published after its last use, so that no position waits on the lock
	// that another position of the same pull holds.
	owner := make([]int, n)
	last := make(map[int]int, n)
	first := make(map[digest.Digest]int, n)
	for i, l := range layers {
		o, ok := first[l.DiffID]
		if !ok {
			o = i
			first[l.DiffID] = i
		}
		owner[i], last[o] = o, i
	}
	trees := make([]cas.Tree, n)
	ready := make([]chan struct{}, n)
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	outer := ctx // what publishing stops for: the pull's end, not a failed layer
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	made := make(chan error, 1)
	go func() {
		err := p.makeTrees(ctx, e, c, find, client, img, layers, owner, trees, ready, prog)
		if err != nil {
			cancel(err)
		}
		made <- err
	}()

	// A tree just made comes unpublished (see cas.StartTree): it is
	// published once use is done with it, or on the way out, whatever
	// happened, so that its lock and tmp/ directory are let go.
	var wg sync.WaitGroup
	published := make([]bool, n)
	pubErrs := make([]error, n)
	publish := func(i int) {
		published[i] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			pubErrs[i] = trees[i].Publish(outer)
		}()
	}
	var useErr error
	if use != nil {
	consume:
		for i := range n {
			select {
			case <-ready[i]:
			case <-ctx.Done():
				break consume
			}
			if useErr = use(i, trees[owner[i]]); useErr != nil {
				cancel(useErr)
				break
			}
			if last[owner[i]] == i {
				publish(owner[i])
			}
		}
	}
	madeErr := <-made
	for o := range last {
		select {
		case <-ready[o]:
			if !published[o] {
				publish(o)
			}
		default:
		}
	}
	wg.Wait()
	for i := range n {
		trees[i] = trees[owner[i]] // published: Dir is the tree's place in the cache
	}
	if useErr != nil {
		return nil, useErr
	}
	if madeErr != nil {
		return nil, madeErr
	}
	if err := errors.Join(pubErrs...); err != nil {
		return nil, err
	}
	var size int64
	for _, l := range img.Layers {
		size += l.Size
	}
	rec := cas.ImageRecord{Reference: img.Ref.String(), Digest: img.Digest, Platform: img.Platform.String(), Size: size, Layers: img.DiffIDs}
	if err := c.RecordImage(cas.ImageName(img.Ref.Domain, img.Ref.Path, img.Ref.Tag, img.Ref.Digest), rec); err != nil {
		return nil, err
	}
	return trees, nil
}

// makeTrees fills trees: first the cached ones, looked up many at once, then
// the others, fetched and unpacked --jobs at once (and left unpublished, see
// cas.StartTree). It closes ready[i] once trees[i] is set.
func (p *PullCmd) makeTrees(ctx context.Context, e *env, c *cas.Cache, find lookup, client *fetch.Client, img *fetch.Image, layers []cas.Layer, owner []int, trees []cas.Tree, ready []chan struct{}, prog *progress) error {
	places := make(map[int][]int, len(layers)) // owner → every position of its layer
	for i, o := range owner {
		places[o] = append(places[o], i)
	}
	// set makes tree t ready at o, the owner, and at every position that repeats o's layer.
	set := func(o int, t cas.Tree, cached bool) {
		trees[o] = t
		for _, i := range places[o] {
			if cached {
				prog.cached(i)
			} else {
				prog.done(i)
			}
			close(ready[i])
		}
	}
	var owners []int
	for i, o := range owner {
		if o == i {
			owners = append(owners, i)
		}
	}
	found := make([]bool, len(layers))
	err := parallel(ctx, lookupJobs, len(owners), func(ctx context.Context, k int) error {
		i := owners[k]
		t, ok, err := find(ctx, layers[i])
		if ok {
			found[i] = true
			set(i, t, true)
		}
		return err
	})
	if err != nil {
		return err
	}
	var missing []int
	for _, i := range owners {
		if !found[i] {
			missing = append(missing, i)
		}
	}
	return parallel(ctx, p.Jobs, len(missing), func(ctx context.Context, k int) error {
		i := missing[k]
		d := img.Layers[i]
		t, err := c.StartTree(ctx, layers[i], func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := client.OpenBlob(ctx, img.Ref, d)
			if err != nil {
				return nil, err
			}
			return prog.reader(i, rc), nil
		})
		if err != nil {
			return err
		}
		if t.Repaired {
			prog.warn(e, fmt.Sprintf("roots: warning: cached layer %s was not as roots left it (written through a hardlinked destination, or replaced): unpacked it again", img.DiffIDs[i]))
		}
		set(i, t, t.Cached)
		return nil
	})
}

// assembleTree is a cached tree as assemble takes it: its directory and its record.
func assembleTree(t cas.Tree) assemble.Tree { return assemble.Tree{Dir: t.Dir, Record: t.Record} }

// unapplied collects what the trees' unpacking could not apply.
func unapplied(trees []cas.Tree) []layer.Unapplied {
	var u []layer.Unapplied
	for _, t := range trees {
		u = append(u, t.Record.Unapplied...)
	}
	return u
}

// stream applies the layers in order straight onto dir, with no cache.
func (p *PullCmd) stream(ctx context.Context, client *fetch.Client, img *fetch.Image, dir string, prog *progress) ([]layer.Unapplied, error) {
	a, err := layer.NewApplier(dir)
	if err != nil {
		return nil, err
	}
	// A small blob listed more than once (old images repeat the empty layer)
	// is fetched once and kept in memory for its other places; a large one is
	// fetched again, as nothing may be written beside DEST.
	count := make(map[digest.Digest]int, len(img.Layers))
	for _, d := range img.Layers {
		count[d.Digest]++
	}
	kept := make(map[digest.Digest][]byte)
	for i, d := range img.Layers {
		l := cas.Layer{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType, DiffID: img.DiffIDs[i]}
		var src io.ReadCloser
		var keep *bytes.Buffer
		var w io.Writer
		if b, ok := kept[d.Digest]; ok {
			src = io.NopCloser(bytes.NewReader(b))
		} else {
			rc, err := client.OpenBlob(ctx, img.Ref, d)
			if err != nil {
				return nil, err
			}
			src = prog.reader(i, rc)
			if count[d.Digest] > 1 && d.Size <= keepRepeated {
				keep = new(bytes.Buffer)
				w = keep
			}
		}
		err := cas.Stream(ctx, l, src, w, func(tar io.Reader) error { return a.Apply(ctx, tar) })
		src.Close()
		if err != nil {
			return nil, err
		}
		if keep != nil {
			kept[d.Digest] = keep.Bytes()
		}
		prog.done(i)
	}
	rec, err := a.Finish()
	return rec.Unapplied, err
}

// keepRepeated is the largest blob that a --cache=no pull keeps in memory for
// the other places of a manifest that lists it more than once.
const keepRepeated = 1 << 20

// parallel runs f(0..n-1) with at most jobs at once (errgroup). The first error cancels the
// others and is returned.
func parallel(ctx context.Context, jobs, n int, f func(context.Context, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i := 0; i < n && gctx.Err() == nil; i++ {
		g.Go(func() error { return f(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
