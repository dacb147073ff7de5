package roots

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rootsdev/roots/fetch"
)

// SyncEvery is lstags' daemon mode: it runs Sync, waits interval after each pass ends, and
// runs it again, until ctx is done. DoNotFail is implied, so that a registry down for a pass
// is reported (its tags or specs SyncFailed) and tried again on the next one; one Holders
// serves every pass, and each pass has its own client and (unless opts.Registry.Transport is
// set) connections, closed when it ends, so that nothing accumulates from pass to pass but
// Holders' entries, one per blob copied. pass, if set, is told each pass's summary and
// the error that ended it early (ctx's, for a pass that a cancellation cut short: a copy cut
// short writes no manifest without its blobs). SyncEvery returns nil when ctx ends it, and an
// error before the first pass if the options or a target are invalid.
func SyncEvery(ctx context.Context, specs []fetch.Spec, interval time.Duration, opts SyncOptions, pass func(*SyncSummary, error)) error {
	if interval <= 0 {
		return fmt.Errorf("sync every %v: the interval must be positive", interval)
	}
	if opts.Jobs < 0 {
		return fmt.Errorf("sync: %d jobs: need at least 1", opts.Jobs)
	}
	for _, s := range specs {
		if _, err := SyncTarget(opts.To, opts.Prefix, s.Repo); err != nil {
			return fmt.Errorf("sync %s: %w", s, err)
		}
	}
	if len(specs) == 0 {
		return errors.New("sync: no repository spec")
	}
	opts.DoNotFail = true
	if opts.Holders == nil {
		opts.Holders = &Holders{}
	}
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		sum, err := Sync(ctx, specs, opts)
		if pass != nil {
			pass(sum, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		wait.Reset(interval)
		select {
		case <-ctx.Done():
			return nil
		case <-wait.C:
		}
	}
}
