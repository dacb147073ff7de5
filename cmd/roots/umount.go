package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/assemble"
)

// UmountCmd ends an overlay destination.
type UmountCmd struct {
	Dest string `arg:"" help:"The destination that roots pull --mode overlay mounted."`
	Keep bool   `help:"Keep DEST's changes (the overlay's upper layer) at DEST.upper instead of deleting them."`
}

// Help shows examples under `roots umount --help`.
func (UmountCmd) Help() string {
	return `Unmounts an overlay destination, deletes its upper layer (what was written
into DEST) unless --keep, removes the empty DEST, and releases its lease on the
cache so that purge may remove its layers again.

Examples:
  sudo roots umount /srv/c1
  sudo roots umount --keep /srv/c1   # DEST's changes are kept in /srv/c1.upper`
}

// Run unmounts.
func (u *UmountCmd) Run(ctx context.Context, e *env) error {
	kept, err := roots.Unmount(ctx, u.Dest, u.Keep)
	if err != nil {
		return err
	}
	if kept != "" {
		fmt.Fprintf(e.stdout, "kept the changes made in %s (its overlay upper layer) at %s\n", strings.TrimSuffix(kept, ".upper"), kept)
	}
	return nil
}

// quote is assemble.Quote: paths in messages stay one readable line.
func quote(p string) string { return assemble.Quote(p) }
