package roots

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// Sync is lstags' push without a daemon in between: the tags that repository specs select are
// copied, registry to registry, with the transfer of CopyImage (index and every platform, byte
// for byte, each blob at most once), and a tag the target already names at the source's
// digest costs one HEAD on each side.

// SyncOptions say how Sync works.
type SyncOptions struct {
	// To is the target registry's host: "registry.example.com", "127.0.0.1:5000" (required).
	To string
	// Prefix is lstags' push prefix; see SyncTarget. "" is the source host, dots as slashes.
	Prefix string
	// DryRun lists and compares, and reports SyncWouldCopy for what a sync would copy:
	// only GET (tag lists) and HEAD (manifests) requests are sent.
	DryRun bool
	// DoNotFail tries every tag: a failure is reported (SyncFailed, SyncNotFound) and counted,
	// and Sync goes on. Without it the first failure stops Sync, which returns it. It also
	// lets a named tag the source neither confirms nor denies be tried (TagsOptions.DoNotFail).
	DoNotFail bool
	// Jobs is how many requests are in flight at once per registry while listing and
	// comparing, and how many blobs of a manifest are copied at once; 0 is 4. Tags are copied
	// one after another, in the order of the specs, then of the tags.
	Jobs int
	// Cache, if it names an existing cache, is read for blobs and manifests instead of the
	// source (as CopyOptions.Cache). Sync adds nothing to it but the sources of blobs.
	Cache string
	// Registry says how to reach and log in to both registries. Credentials are per host:
	// a source's are never sent to the target. Without a Transport, Sync makes one whose
	// idle connections it closes when it returns.
	Registry fetch.Options
	// Holders remembers which target repositories hold which blobs, so that a blob uploaded
	// for one repository is mounted into the next; nil: Sync uses one of its own.
	Holders *Holders
	// Report, if set, is told each tag's result (and each failed spec's) once it is settled,
	// in order, from the goroutine that called Sync.
	Report func(SyncResult)
}

// SyncState is what Sync did with a tag.
type SyncState string

// Sync states.
const (
	SyncCopied    SyncState = "COPIED"     // the target did not name the source's digest; it does now
	SyncUpToDate  SyncState = "UP-TO-DATE" // the target named the source's digest already: nothing was sent
	SyncWouldCopy SyncState = "WOULD-COPY" // DryRun: the target does not name the source's digest
	SyncNotFound  SyncState = "NOT-FOUND"  // named with "=", the source does not have it: a failure
	SyncFailed    SyncState = "FAILED"     // a tag, or a whole spec (its listing), failed: see Err
)

// SyncResult is what Sync did with one tag, or with a spec that could not be listed (Source
// and Target are then repositories, without a tag).
type SyncResult struct {
	Spec   string        `json:"spec"`             // canonical (fetch.Spec.String)
	Source string        `json:"source"`           // "docker.io/library/debian:12"
	Target string        `json:"target"`           // "registry.example.com/docker/io/library/debian:12"
	State  SyncState     `json:"state"`            //
	Digest digest.Digest `json:"digest,omitempty"` // the source's, which the target names after a copy
	// What a copy did: blobs uploaded (and their bytes), mounted from another repository of
	// the target registry, found in the target already; manifests and indexes written.
	BlobsUploaded    int    `json:"blobsUploaded,omitempty"`
	BytesUploaded    int64  `json:"bytesUploaded,omitempty"`
	BlobsMounted     int    `json:"blobsMounted,omitempty"`
	BlobsExisting    int    `json:"blobsExisting,omitempty"`
	ManifestsWritten int    `json:"manifestsWritten,omitempty"`
	Err              error  `json:"-"`               // SyncFailed, SyncNotFound
	Error            string `json:"error,omitempty"` // Err's message
}

// SyncSummary counts what one Sync did.
type SyncSummary struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"` // Duration
	// Tags counts the results: every tag, and every spec that could not be listed.
	Tags             int   `json:"tags"`
	Copied           int   `json:"copied"`
	UpToDate         int   `json:"upToDate"`
	WouldCopy        int   `json:"wouldCopy"`
	Failed           int   `json:"failed"` // SyncFailed and SyncNotFound
	BlobsUploaded    int   `json:"blobsUploaded"`
	BytesUploaded    int64 `json:"bytesUploaded"`
	BlobsMounted     int   `json:"blobsMounted"`
	BlobsExisting    int   `json:"blobsExisting"`
	ManifestsWritten int   `json:"manifestsWritten"`
}

// Sync copies every tag that specs select to opts.To, each to SyncTarget(opts.To,
// opts.Prefix, its repository) with the same tag. Per spec: the tags are listed with their
// source digests (HEAD, as Tags does with NoCreated), the target's tags are HEADed (Jobs at
// once), and each tag whose target digest differs is copied as CopyImage copies (the
// source's manifests read by digest, so that a tag moving meanwhile does not mix two
// images; each manifest written after all its blobs). Invalid options or targets are an
// error before any request. The summary counts what was done, also when an error stops Sync
// (the first failure without DoNotFail, or ctx).
func Sync(ctx context.Context, specs []fetch.Spec, opts SyncOptions) (*SyncSummary, error) {
	sum := &SyncSummary{Started: time.Now()}
	defer func() { sum.Duration = time.Since(sum.Started); sum.Seconds = sum.Duration.Seconds() }()
	if opts.Jobs == 0 {
		opts.Jobs = defaultJobs
	}
	if opts.Jobs < 0 {
		return sum, fmt.Errorf("sync: %d jobs: need at least 1", opts.Jobs)
	}
	targets := make([]fetch.Reference, len(specs))
	for i, s := range specs {
		t, err := SyncTarget(opts.To, opts.Prefix, s.Repo)
		if err != nil {
			return sum, fmt.Errorf("sync %s: %w", s, err)
		}
		targets[i] = t
	}
	if opts.Holders == nil {
		opts.Holders = &Holders{}
	}
	if opts.Registry.Transport == nil {
		// One connection pool for the listing and the copies, closed at the end: a daemon's
		// passes leave no idle connections behind.
		base := http.DefaultTransport.(*http.Transport).Clone()
		defer base.CloseIdleConnections()
		opts.Registry.Transport = base
	}
	s := &syncer{opts: opts, sum: sum}
	if _, err := os.Stat(opts.Cache); opts.Cache != "" && err == nil { // a sync makes no cache
		c, err := cas.Open(ctx, opts.Cache)
		if err != nil {
			return sum, fmt.Errorf("sync: %w", err)
		}
		defer c.Close()
		s.cache = c
		s.opts.Registry.Local = cas.BlobDir(opts.Cache)
	}
	s.client = fetch.New(s.opts.Registry)
	defer s.client.CloseIdleConnections() // the per-host transports fetch made from the base
	s.target = s.client.ServerOnly()      // the target is asked itself, never a mirror of it
	for i, spec := range specs {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		if err := s.spec(ctx, spec, targets[i]); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// syncer is one Sync under way.
type syncer struct {
	opts   SyncOptions
	client *fetch.Client
	target *fetch.Client // client, for the target registry itself (no mirrors)
	cache  *cas.Cache    // nil: none
	sum    *SyncSummary
}

// spec lists one spec's tags, compares them with the target's and copies those that differ.
func (s *syncer) spec(ctx context.Context, spec fetch.Spec, target fetch.Reference) error {
	states, err := Tags(ctx, []fetch.Spec{spec}, TagsOptions{
		Jobs: s.opts.Jobs, DoNotFail: s.opts.DoNotFail, NoCreated: true, Registry: s.opts.Registry,
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var se *SpecError
		if errors.As(err, &se) {
			err = se.Err
		}
		r := SyncResult{Spec: spec.String(), Source: spec.Repo.Name(), Target: target.Name()}
		return s.fail(r, SyncFailed, fmt.Errorf("sync %s: %w", spec, err))
	}
	dsts := make([]fetch.Reference, len(states))
	have := make([]digest.Digest, len(states))
	headErrs := make([]error, len(states))
	parallel(ctx, s.opts.Jobs, len(states), func(ctx context.Context, i int) error {
		dsts[i] = target
		dsts[i].Tag = states[i].Tag
		if states[i].State == Absent { // a HEAD of the target for each tag the source has
			have[i], headErrs[i] = s.target.Digest(ctx, dsts[i], nil)
		}
		return nil
	})
	for i, st := range states {
		if err := ctx.Err(); err != nil {
			return err
		}
		src, dst := spec.Tag(st.Tag), dsts[i]
		r := SyncResult{Spec: spec.String(), Source: src.String(), Target: dst.String(), Digest: st.Digest}
		switch {
		case st.State == NotFound:
			if err := s.fail(r, SyncNotFound, fmt.Errorf("sync %s: the tag is named, and the source has none: %w", src, fetch.ErrNotFound)); err != nil {
				return err
			}
		case st.State == Assumed: // a named tag the source did not confirm: try it
			if err := s.copy(ctx, r, src, dst, ""); err != nil {
				return err
			}
		case st.Digest != "" && headErrs[i] == nil && have[i] == st.Digest:
			s.report(r, SyncUpToDate)
		case s.opts.DryRun && headErrs[i] != nil && !errors.Is(headErrs[i], fetch.ErrNotFound):
			if err := s.fail(r, SyncFailed, fmt.Errorf("sync %s to %s: %w", src, dst, headErrs[i])); err != nil {
				return err
			}
		case s.opts.DryRun:
			s.report(r, SyncWouldCopy)
		default:
			if err := s.copy(ctx, r, src, dst, st.Digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// copy copies src to dst: the source's manifest want (by digest), or with want "" (an
// Assumed tag) what a HEAD of src says, unless dst names it already.
func (s *syncer) copy(ctx context.Context, r SyncResult, src, dst fetch.Reference, want digest.Digest) error {
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.fail(r, SyncFailed, fmt.Errorf("sync %s to %s: %w", src, dst, err))
	}
	if want == "" {
		d, err := s.client.Digest(ctx, src, nil)
		if err != nil {
			return fail(err)
		}
		r.Digest, want = d, d
		if have, err := s.target.Digest(ctx, dst, nil); err == nil && have == want {
			s.report(r, SyncUpToDate)
			return nil
		}
		if s.opts.DryRun {
			s.report(r, SyncWouldCopy)
			return nil
		}
	}
	t := newTransfer(s.client, s.cache, src, dst, "", 0, s.opts.Jobs, nil)
	t.known = s.opts.Holders
	pushed, err := t.run(ctx, want, "")
	if err != nil {
		return fail(err)
	}
	for _, b := range pushed.Blobs {
		switch b.Action {
		case BlobUploaded:
			r.BlobsUploaded++
			r.BytesUploaded += b.Size
		case BlobMounted:
			r.BlobsMounted++
		case BlobExists:
			r.BlobsExisting++
		}
	}
	for _, m := range pushed.Manifests {
		if !m.Exists {
			r.ManifestsWritten++
		}
	}
	s.report(r, SyncCopied)
	return nil
}

// fail reports r as failed with err and returns err unless DoNotFail.
func (s *syncer) fail(r SyncResult, state SyncState, err error) error {
	r.Err, r.Error = err, err.Error()
	s.report(r, state)
	if s.opts.DoNotFail {
		return nil
	}
	return err
}

// report counts r, in state, and tells Report.
func (s *syncer) report(r SyncResult, state SyncState) {
	r.State = state
	sum := s.sum
	sum.Tags++
	switch state {
	case SyncCopied:
		sum.Copied++
	case SyncUpToDate:
		sum.UpToDate++
	case SyncWouldCopy:
		sum.WouldCopy++
	default:
		sum.Failed++
	}
	sum.BlobsUploaded += r.BlobsUploaded
	sum.BytesUploaded += r.BytesUploaded
	sum.BlobsMounted += r.BlobsMounted
	sum.BlobsExisting += r.BlobsExisting
	sum.ManifestsWritten += r.ManifestsWritten
	if s.opts.Report != nil {
		s.opts.Report(r)
	}
}
