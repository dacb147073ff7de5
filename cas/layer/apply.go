//go:build linux

package layer

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
)

// Applier applies layers, bottom to top, directly onto one rootfs directory (no cache). The
// result equals unpacking every layer as a tree and assembling the trees.
//
// An Applier is not safe for concurrent use; layers must be applied in order.
type Applier struct {
	w   *writer
	err error // sticky: after a failure or Finish the Applier is done
}

// NewApplier returns an Applier writing into dir, an existing (normally empty) directory.
// dir gets mode 0755, an image root's metadata when no layer has an entry for "./"; the topmost
// such entry's metadata replaces it at Finish.
func NewApplier(dir string) (*Applier, error) {
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	w, err := newWriter(dir, false)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	return &Applier{w: w}, nil
}

// Apply applies one layer, the uncompressed tar stream r, onto the rootfs: entries replace what
// is at their paths, whiteouts delete what the lower layers have (a whiteout of a path this
// layer already has leaves a non-directory alone and makes a directory opaque), and opaque
// directories lose their lower contents but keep this layer's entries whatever their order in
// the tar. Directory metadata, the root's included, waits for Finish.
// Apply reads r to EOF. After an error the Applier is unusable and the rootfs partial.
func (a *Applier) Apply(ctx context.Context, r io.Reader) error {
	if a.err != nil {
		return a.err
	}
	w := a.w
	w.written = newPathSet()
	w.opaque = w.opaque[:0]
	err := w.layer(ctx, r)
	if err == nil {
		err = a.endLayer()
	}
	w.written = nil
	if err != nil {
		a.fail(fmt.Errorf("apply: %w", err))
		return a.err
	}
	return nil
}

// endLayer empties the layer's opaque directories (markers, and whiteouts of the layer's own
// directories) of everything the layer did not write. A lower directory below one that the layer
// only walked through (a parent of its entries or hardlinks) becomes a new directory, 0755
// root:root: inside an opaque directory nothing of the lower layers shows, metadata included.
func (a *Applier) endLayer() error {
	w := a.w
	sort.Strings(w.opaque)
	for i, dir := range w.opaque {
		if i > 0 && dir == w.opaque[i-1] {
			continue
		}
		fd, owned, err := w.look.dir(dir)
		if err != nil {
			// No longer a directory (a later entry replaced it): nothing below to hide.
			continue
		}
		err = w.prune(fd, dir)
		if owned {
			closeFd(fd)
		}
		if err != nil {
			return fmt.Errorf("opaque %s: %w", recordPath(dir), err)
		}
	}
	w.walk.reset()
	w.look.reset()
	return nil
}

// Finish sets the directory metadata of all layers (the topmost explicit directory entry wins;
// an implicit parent never overrides it) and returns what could not be applied. Only
// Record.Unapplied, Size and Files are meaningful. The Applier is done afterwards.
func (a *Applier) Finish() (Record, error) {
	if a.err != nil {
		return Record{}, a.err
	}
	if err := a.w.applyDirs(); err != nil {
		a.fail(fmt.Errorf("apply: directory metadata: %w", err))
		return Record{}, a.err
	}
	rec := Record{Unapplied: a.w.rec.Unapplied, Size: a.w.rec.Size, Files: a.w.rec.Files}
	a.fail(ErrFinished)
	return rec, nil
}

func (a *Applier) fail(err error) {
	a.err = err
	a.w.close()
}

// Close releases the Applier's descriptors without finishing (directory metadata is not set).
// It is safe to call after Finish or a failed Apply.
func (a *Applier) Close() error {
	if a.err == nil {
		a.fail(ErrFinished)
	}
	return nil
}
