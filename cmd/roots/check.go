package main

import (
	"context"
	"fmt"

	"github.com/rootsdev/roots"
)

// CheckCmd verifies the cache and repairs it.
type CheckCmd struct {
	cacheFlags
}

// Help shows examples under `roots check --help`.
func (CheckCmd) Help() string {
	return `Waits until no other roots command uses the cache, then hashes every blob
against its digest and checks every unpacked layer against the fingerprint
taken when it was unpacked (a write through a hardlinked destination changes
it). A bad blob is removed; a changed layer is unpacked again from its blob, or
removed when the blob is not cached (the next pull fetches it). Prints one line
per repair and a summary; exits 0 once the cache is sound.

Examples:
  roots check
  roots check --cache /tmp/cache`
}

// Run checks.
func (c *CheckCmd) Run(ctx context.Context, e *env) error {
	dir, err := c.cacheDir(e)
	if err != nil {
		return err
	}
	if dir == "" {
		return usagef("--cache=no: there is no cache to check")
	}
	rep, err := roots.Check(ctx, dir)
	for _, f := range rep.Findings {
		fmt.Fprintf(e.stdout, "%s %s: %s: %s\n", f.Object.Kind, f.Object.Name, f.Problem, f.Action)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "checked %d blobs, %d trees, %d fix-ups: %d repaired\n", rep.Blobs, rep.Trees, rep.Fixups, len(rep.Findings))
	return nil
}
