package roots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/internal/disk"
)

// assemble makes every layer's tree in the cache, in parallel, and hardlinks
// (or copies) them into dir, each as soon as it and the layers below it are
// ready: the bottom of the image is assembled while its top still unpacks.
func (p *puller) assemble(ctx context.Context, img *fetch.Image, dir string) ([]layer.Unapplied, error) {
	c, err := cas.Open(ctx, p.opts.Cache)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var asm *assemble.Assembly
	var x *cas.Exposure
	var first layer.Observer // links the bottom layer into dir while it unpacks
	if p.opts.Mode == Copy {
		asm, err = assemble.NewCopy(dir)
	} else {
		// dir will share the trees' inodes: from now on their reuse checks them. The bottom
		// tree is exposed now, as the stream links it before it is made.
		if x, err = c.Expose(ctx, img.DiffIDs[:min(1, len(img.DiffIDs))]); err != nil {
			return nil, err
		}
		if asm, err = assemble.NewHardlink(dir); err == nil {
			if st := asm.Stream(); st != nil {
				first = st
			}
		}
	}
	if err != nil {
		if x != nil {
			x.Release()
		}
		return nil, err
	}
	defer asm.Close()
	trees, err := p.trees(ctx, c, cas.WithRecord, img, first, func(i int, t cas.Tree) error {
		if x != nil {
			if t, err = x.Take(ctx, t); err != nil {
				return err
			}
		}
		return asm.Add(ctx, assemble.Tree{Dir: t.Dir, Record: t.Record})
	})
	if err == nil {
		err = asm.Finish(ctx)
	}
	if err == nil {
		p.layerTrees = trees
	}
	if x == nil {
		return unapplied(trees), err
	}
	if err != nil {
		if disk.RemoveAll(dir) == nil {
			x.Undo(context.WithoutCancel(ctx)) // nothing of this pull shares the trees
		} else {
			x.Release()
		}
		return nil, err
	}
	if p.scratch {
		p.exposed = x // the caller undoes it once dir is removed
	} else {
		x.Release()
	}
	return unapplied(trees), nil
}

// lookupJobs is how many cached trees are looked up at once: a lookup waits
// on the disk (a record to read), not on the CPU or the network.
const lookupJobs = 16

// trees makes (or checks and reuses, reading what want says) every layer's tree in the
// cache, in parallel, and records the image. When use is not nil it gets each
// tree, in layer order, as soon as that tree and the ones below it are ready;
// its error stops the pull. first, if not nil, observes the making of the
// bottom layer's tree (see assemble.Stream).
func (p *puller) trees(ctx context.Context, c *cas.Cache, want cas.Want, img *fetch.Image, first layer.Observer, use func(int, cas.Tree) error) ([]cas.Tree, error) {
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
	firstAt := make(map[digest.Digest]int, n)
	for i, l := range layers {
		o, ok := firstAt[l.DiffID]
		if !ok {
			o = i
			firstAt[l.DiffID] = i
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
	changed := make(chan struct{}, 1) // a tree became ready
	go func() {
		err := p.makeTrees(ctx, c, want, img, first, layers, owner, trees, ready, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
		if err != nil {
			cancel(err)
		}
		made <- err
	}()

	// A tree just made comes unpublished (see cas.StartTree), holding its lock:
	// it is published once use is done with it, or as soon as it is ready when
	// it has to wait for the trees below it (or nothing uses it: an overlay),
	// or on the way out, whatever happened. A made tree is never held while
	// this pull waits for another: the other may be made by a process that
	// waits for this one.
	var wg sync.WaitGroup
	published := make([]bool, n)
	pubDone := make([]chan struct{}, n)
	pubErrs := make([]error, n)
	publish := func(o int) {
		published[o] = true
		pubDone[o] = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(pubDone[o])
			pubErrs[o] = trees[o].Publish(outer)
		}()
	}
	isReady := func(i int) bool {
		select {
		case <-ready[i]:
			return true
		default:
			return false
		}
	}
	publishWaiting := func() {
		for o := range last {
			if !published[o] && isReady(o) {
				publish(o)
			}
		}
	}
	var useErr error
	madeErr, gotMade := error(nil), false
consume:
	for i := 0; use == nil || i < n; {
		if use == nil || !isReady(i) {
			publishWaiting()
			select {
			case <-changed:
			case madeErr = <-made:
				gotMade = true
				if use == nil {
					break consume
				}
			case <-ctx.Done():
				break consume
			}
			continue
		}
		o := owner[i]
		if published[o] {
			<-pubDone[o] // Dir is its place in the cache now
			if useErr = pubErrs[o]; useErr != nil {
				cancel(useErr)
				break
			}
		}
		if useErr = use(i, trees[o]); useErr != nil {
			cancel(useErr)
			break
		}
		if last[o] == i && !published[o] {
			publish(o)
		}
		i++
	}
	if !gotMade {
		madeErr = <-made
	}
	publishWaiting()
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
	if !p.noRecord {
		if err := recordImage(c, img, p.recorded); err != nil {
			return nil, err
		}
	}
	return trees, nil
}

// makeTrees fills trees: first the cached ones, looked up many at once, then
// the others, fetched and unpacked Jobs at once (and left unpublished, see
// cas.StartTree). It closes ready[i] once trees[i] is set, and calls notify.
func (p *puller) makeTrees(ctx context.Context, c *cas.Cache, want cas.Want, img *fetch.Image, first layer.Observer, layers []cas.Layer, owner []int, trees []cas.Tree, ready []chan struct{}, notify func()) error {
	places := make(map[int][]int, len(layers)) // owner → every position of its layer
	for i, o := range owner {
		places[o] = append(places[o], i)
	}
	// set makes tree t ready at o, the owner, and at every position that repeats o's layer.
	set := func(o int, t cas.Tree, cached bool) {
		trees[o] = t
		for _, i := range places[o] {
			if cached {
				p.rep.send(Event{Kind: LayerCached, Layer: i})
			} else {
				p.rep.send(Event{Kind: LayerDone, Layer: i})
			}
			close(ready[i])
		}
		notify()
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
		t, ok, err := c.Lookup(ctx, layers[i], want)
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
	return parallel(ctx, p.opts.Jobs, len(missing), func(ctx context.Context, k int) error {
		i := missing[k]
		d := img.Layers[i]
		var obs layer.Observer
		if i == 0 {
			obs = first
		}
		t, err := c.StartTree(ctx, layers[i], func(ctx context.Context) (io.ReadCloser, error) {
			if p.opts.Offline {
				return nil, offlinef("layer %s of %s (diff id %s): the cache has no sound tree of it, and no blob of it that verifies", d.Digest, img.Digest, img.DiffIDs[i])
			}
			rc, err := p.client.OpenBlob(ctx, img.Ref, d)
			if err != nil {
				return nil, err
			}
			return p.rep.reader(i, rc), nil
		}, obs)
		if err != nil {
			return err
		}
		if t.Repaired {
			p.rep.send(Event{Kind: Warning, Message: fmt.Sprintf("cached layer %s was not as roots left it (written through a hardlinked destination, or replaced): unpacked it again", img.DiffIDs[i])})
		}
		set(i, t, t.Cached)
		return nil
	})
}

// unapplied collects what the trees' unpacking could not apply.
func unapplied(trees []cas.Tree) []layer.Unapplied {
	var u []layer.Unapplied
	for _, t := range trees {
		u = append(u, t.Record.Unapplied...)
	}
	return u
}

// stream applies the layers in order straight onto dir, with no cache.
func (p *puller) stream(ctx context.Context, img *fetch.Image, dir string) ([]layer.Unapplied, error) {
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
			rc, err := p.client.OpenBlob(ctx, img.Ref, d)
			if err != nil {
				return nil, err
			}
			src = p.rep.reader(i, rc)
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
		p.rep.send(Event{Kind: LayerDone, Layer: i})
	}
	rec, err := a.Finish()
	return rec.Unapplied, err
}

// keepRepeated is the largest blob that a pull with no cache keeps in memory for
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

// reporter sends a pull's events to PullOptions.Progress, if there is one.
type reporter struct{ f func(Event) }

func (r reporter) send(e Event) {
	if r.f != nil {
		r.f(e)
	}
}

// reader reports what is read through rc as layer i's bytes.
func (r reporter) reader(i int, rc io.ReadCloser) io.ReadCloser {
	if r.f == nil {
		return rc
	}
	return &countingReader{ReadCloser: rc, report: r.f, layer: i}
}

type countingReader struct {
	io.ReadCloser
	report func(Event)
	layer  int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	if n > 0 {
		c.report(Event{Kind: Read, Layer: c.layer, Bytes: int64(n)})
	}
	return n, err
}
