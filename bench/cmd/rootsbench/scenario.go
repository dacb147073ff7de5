//go:build linux

package main

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// Row groups, in table order.
const (
	groupRoots = "roots"
	groupPeer  = "peer"
	groupLimit = "limit"
)

// scenario is one row of the table: something timed on one image.
type scenario struct {
	key   string // stable id, referred to by ref and by the targets
	label string
	group string
	ref   string // key of the row its ratio is taken against ("" for none)
	runs  int    // timed runs; 0 means the -runs flag
	skip  string // why it is not run (shown instead of figures)
	note  string // shown under the table

	setup    func(ctx context.Context) error // once, before the warm-up
	prepare  func(ctx context.Context) error // before every run, untimed, before the cache drop
	run      func(ctx context.Context, m *meter) error
	check    func(ctx context.Context) error // after the warm-up run
	teardown func()
}

// result is what running a scenario gave.
type result struct {
	sc      *scenario
	img     *image
	samples []sample
	err     error
}

// runRows measures every row. Each row is set up, run once to warm up and
// have its output checked; then the timed runs go round-robin over the rows
// (run 1 of every row, then run 2, ...), each after dropping the page
// cache, so that a burst of other work on the machine spreads over all
// rows instead of skewing one. Rows are torn down at the end, or as soon as
// they fail.
func (b *bench) runRows(ctx context.Context, rows []*result) {
	torn := make([]bool, len(rows))
	teardown := func(i int) {
		if !torn[i] && rows[i].sc.teardown != nil && rows[i].sc.skip == "" {
			rows[i].sc.teardown()
		}
		torn[i] = true
	}
	defer func() {
		for i := range rows {
			teardown(i)
		}
	}()
	runs := func(r *result) int {
		if r.sc.runs > 0 {
			return r.sc.runs
		}
		return b.opts.runs
	}
	most := 0
	for i, r := range rows {
		if ctx.Err() != nil {
			return
		}
		if r.sc.skip != "" {
			continue
		}
		b.logf("%s: %s: setup and warm-up", r.img.name, r.sc.label)
		if r.err = b.warmUp(ctx, r.sc); r.err != nil {
			b.logf("  %v", r.err)
			teardown(i)
			continue
		}
		most = max(most, runs(r))
	}
	for run := range most {
		b.logf("timed run %d of %d", run+1, most)
		for i, r := range rows {
			if ctx.Err() != nil {
				return
			}
			if r.sc.skip != "" || r.err != nil || run >= runs(r) {
				continue
			}
			s, err := b.timedRun(ctx, r.sc)
			if err != nil {
				r.err = fmt.Errorf("run %d: %w", run+1, err)
				b.logf("  %s / %s: %v", r.img.name, r.sc.label, r.err)
				teardown(i)
				continue
			}
			r.samples = append(r.samples, s)
			b.logf("  %-8s %-40s %8.3fs  cpu %7.3fs  rss %s", r.img.name, r.sc.label, s.wall.Seconds(), s.cpu.Seconds(), mib(s.maxRSS))
		}
	}
}

// step runs one untimed part of a row within the run timeout.
func (b *bench) step(ctx context.Context, what string, f func(ctx context.Context) error) error {
	if f == nil {
		return nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, b.opts.timeout, fmt.Errorf("timed out after %v", b.opts.timeout))
	defer cancel()
	if err := f(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// warmUp sets the row up, runs it once and checks what it made.
func (b *bench) warmUp(ctx context.Context, sc *scenario) error {
	if err := b.step(ctx, "setup", sc.setup); err != nil {
		return err
	}
	if err := b.step(ctx, "prepare", sc.prepare); err != nil {
		return err
	}
	if err := b.step(ctx, "warm-up", func(ctx context.Context) error { return sc.run(ctx, b.meter()) }); err != nil {
		return err
	}
	return b.step(ctx, "check", sc.check)
}

// timedRun prepares the row, drops the page cache and times one run.
func (b *bench) timedRun(ctx context.Context, sc *scenario) (sample, error) {
	if err := b.step(ctx, "prepare", sc.prepare); err != nil {
		return sample{}, err
	}
	if err := dropCaches(); err != nil {
		return sample{}, err
	}
	if b.quietBudget > 0 {
		b.quietBudget -= waitQuiet(ctx, min(b.quietBudget, 10*time.Second))
	}
	ctx, cancel := context.WithTimeoutCause(ctx, b.opts.timeout, fmt.Errorf("timed out after %v", b.opts.timeout))
	defer cancel()
	m := b.meter()
	before, _ := readCPU()
	start := time.Now()
	err := sc.run(ctx, m)
	s := m.result(time.Since(start))
	if after, err := readCPU(); err == nil && before.total > 0 {
		s.others = max(0, busyCPU(before, after)-s.cpu)
	}
	return s, err
}

// meter measures the children of one run.
func (b *bench) meter() *meter {
	return newMeter(b.env, b.tools.path["time"], b.tmp)
}

// checkTree says whether dir holds the image's rootfs: as many entries as
// the image has distinct paths. It catches a peer run with the wrong flags
// (an empty directory, a tar left unextracted) without being a diff.
func checkTree(dir string, img *image) error {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n != img.entries {
		return fmt.Errorf("%s has %d entries, the image has %d", dir, n, img.entries)
	}
	return nil
}
