package roots

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// TagsOptions say how Tags works.
type TagsOptions struct {
	// Cache is the cache whose image records the registry's tags are compared with; "" is
	// none (every tag the registry has is Absent).
	Cache string
	// Jobs is how many requests are in flight at once per registry; 0 is 4.
	Jobs int
	// DoNotFail: a named tag the registry neither confirms nor denies (HEAD refused with 401
	// or 403, or failing after retries) is Assumed instead of failing its spec.
	DoNotFail bool
	// Pull also pulls every selected tag the registry has and the cache lacks (Absent,
	// Changed, Assumed) into the cache, with no destination, so that later pulls are warm.
	Pull bool
	// NoCreated leaves Created unknown: no manifest or config is read, only tags/list and
	// HEAD requests are sent.
	NoCreated bool
	// Platform chooses the platform of a multi-platform image whose config says Created, and
	// the one Pull pulls; nil is the host's.
	Platform *fetch.Platform
	// Registry says how to reach and log in to registries. Tags sets Local to the cache.
	Registry fetch.Options
}

// TagStatus is how a tag in the registry compares with the cache's record of it.
type TagStatus string

// Tag statuses, as lstags names them.
const (
	Absent    TagStatus = "ABSENT"     // in the registry, not in the cache
	Present   TagStatus = "PRESENT"    // in both, same digest
	Changed   TagStatus = "CHANGED"    // in both, digests differ: the tag moved since the pull
	LocalOnly TagStatus = "LOCAL-ONLY" // in the cache only
	NotFound  TagStatus = "NOT-FOUND"  // named with "=", in neither
	Assumed   TagStatus = "ASSUMED"    // named, neither confirmed nor denied by the registry (DoNotFail)
)

// TagState is one selected tag of a spec.
type TagState struct {
	Spec       string        `json:"spec"`       // canonical (fetch.Spec.String)
	Repository string        `json:"repository"` // "docker.io/library/alpine"
	Tag        string        `json:"tag"`
	State      TagStatus     `json:"state"`
	Digest     digest.Digest `json:"digest,omitempty"` // the registry's (HEAD): an index's for a multi-platform image
	Local      digest.Digest `json:"local,omitempty"`  // what the cache's record says the tag resolved to
	// Created is the image config's "created" (for an index, the config of the platform
	// chosen by TagsOptions.Platform); zero when unknown.
	Created time.Time `json:"created,omitzero"`
	Pulled  bool      `json:"pulled,omitempty"` // TagsOptions.Pull pulled it into the cache
}

// Reference is the tag's image reference: "docker.io/library/alpine:3.20".
func (s TagState) Reference() string { return s.Repository + ":" + s.Tag }

// SpecError is the failure of one spec: Tags goes on with the others.
type SpecError struct {
	Spec string
	Err  error
}

func (e *SpecError) Error() string { return fmt.Sprintf("tags %s: %v", e.Spec, e.Err) }
func (e *SpecError) Unwrap() error { return e.Err }

// Tags lists the tags each spec selects, with their registry digests (HEAD requests), and
// compares them with the cache's image records; see TagStatus. The result is sorted by spec
// (in the order given) then tag. A spec that fails (its repository cannot be listed, a tag's
// HEAD fails) is left out of the result and is one *SpecError in the returned error (joined
// with errors.Join); the other specs are still listed. A failed Pull is its spec's
// *SpecError too, its states kept.
func Tags(ctx context.Context, specs []fetch.Spec, opts TagsOptions) ([]TagState, error) {
	if opts.Jobs == 0 {
		opts.Jobs = defaultJobs
	}
	opts.Registry.Endpoints = nil // tag lists and what they name come from the registry itself, never a mirror
	switch {
	case opts.Jobs < 0:
		return nil, fmt.Errorf("tags: %d jobs: need at least 1", opts.Jobs)
	case opts.Pull && opts.Cache == "":
		return nil, errors.New("tags: Pull needs a cache to pull into")
	}
	if opts.Cache != "" {
		if err := cas.Trusted(opts.Cache); err != nil {
			return nil, fmt.Errorf("tags: %w", err)
		}
		opts.Registry.Local = cas.BlobDir(opts.Cache)
	}
	t := &tagger{opts: opts, client: fetch.New(opts.Registry), slots: map[string]chan struct{}{}, configs: map[string]*configOnce{}}
	defer t.close()
	results := make([][]TagState, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() {
			results[i], errs[i] = t.spec(ctx, s)
			if errs[i] != nil {
				errs[i] = &SpecError{Spec: s.String(), Err: errs[i]}
			}
		})
	}
	wg.Wait()
	var out []TagState
	for i := range specs {
		slices.SortFunc(results[i], func(a, b TagState) int { return cmp.Compare(a.Tag, b.Tag) })
		if opts.Pull && errs[i] == nil {
			errs[i] = t.pull(ctx, specs[i], results[i])
		}
		out = append(out, results[i]...)
	}
	return out, errors.Join(errs...)
}

// tagger is one Tags call under way.
type tagger struct {
	opts   TagsOptions
	client *fetch.Client

	mu      sync.Mutex
	slots   map[string]chan struct{} // per registry API host: Jobs requests in flight
	configs map[string]*configOnce   // per repository and digest: the config, read once
	cache   *cas.Cache               // opened when there is a config to keep
	cacheMu sync.Mutex
}

// slot waits for a free request slot of host's registry and returns its release.
func (t *tagger) slot(ctx context.Context, host string) (func(), error) {
	t.mu.Lock()
	ch, ok := t.slots[host]
	if !ok {
		ch = make(chan struct{}, t.opts.Jobs)
		t.slots[host] = ch
	}
	t.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// spec lists and compares one spec's tags.
func (t *tagger) spec(ctx context.Context, s fetch.Spec) ([]TagState, error) {
	repo := s.Repo
	host := repo.APIHost()
	var records map[string][]cas.ImageRecord
	if t.opts.Cache != "" {
		records = cas.TaggedImages(t.opts.Cache, repo.Domain+"/"+repo.Path)
	}
	named := map[string]bool{}
	for _, n := range s.Named {
		named[n] = true
	}
	listed := map[string]bool{}
	if s.Lists() {
		release, err := t.slot(ctx, host)
		if err != nil {
			return nil, err
		}
		tags, err := t.client.ListTags(ctx, repo)
		release()
		if err != nil {
			return nil, err
		}
		for _, tag := range tags {
			if s.Selects(tag) {
				listed[tag] = true
			}
		}
	}
	// What to HEAD: the selected listed tags and every named one (the listing may hide it).
	var check []string
	for tag := range listed {
		check = append(check, tag)
	}
	for _, n := range s.Named {
		if !listed[n] {
			check = append(check, n)
		}
	}
	states := make([]TagState, len(check))
	errs := make([]error, len(check))
	var wg sync.WaitGroup
	for i, tag := range check {
		wg.Go(func() { states[i], errs[i] = t.tag(ctx, s, tag, named[tag], records[tag]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Cached tags the spec selects that the listing does not have.
	if s.Lists() {
		for tag, recs := range records {
			if !listed[tag] && !named[tag] && s.Selects(tag) {
				st := TagState{Spec: s.String(), Repository: repo.Name(), Tag: tag, State: LocalOnly, Local: localDigest(recs, "")}
				st.Created = t.localCreated(s.Tag(tag), st.Local, recs)
				states = append(states, st)
			}
		}
	}
	return states, nil
}

// tag finds one tag's state: its registry digest by HEAD, compared with recs.
func (t *tagger) tag(ctx context.Context, s fetch.Spec, tag string, named bool, recs []cas.ImageRecord) (TagState, error) {
	ref := s.Tag(tag)
	st := TagState{Spec: s.String(), Repository: ref.Name(), Tag: tag}
	release, err := t.slot(ctx, ref.APIHost())
	if err != nil {
		return st, err
	}
	d, err := t.client.Digest(ctx, ref, nil)
	release()
	switch {
	case errors.Is(err, fetch.ErrNotFound) && len(recs) > 0:
		st.State, st.Local = LocalOnly, localDigest(recs, "")
	case errors.Is(err, fetch.ErrNotFound):
		st.State = NotFound
	case err != nil && named && t.opts.DoNotFail && ctx.Err() == nil:
		st.State, st.Local = Assumed, localDigest(recs, "")
	case err != nil:
		return st, err
	case len(recs) == 0:
		st.State, st.Digest = Absent, d
	default:
		st.Digest, st.Local = d, localDigest(recs, d)
		st.State = Changed
		if st.Local == d {
			st.State = Present
		}
	}
	if !t.opts.NoCreated {
		if st.Created = t.localCreated(ref, cmp.Or(st.Digest, st.Local), recs); st.Created.IsZero() && st.Digest != "" {
			st.Created = t.remoteCreated(ctx, ref, st.Digest)
		}
	}
	return st, nil
}

// localDigest is the digest the cache's records say the tag resolved to (an index's for a
// multi-platform image): want if one of them says so, else the newest record's.
func localDigest(recs []cas.ImageRecord, want digest.Digest) digest.Digest {
	var newest cas.ImageRecord
	for _, r := range recs {
		d := cmp.Or(r.Index, r.Digest)
		if want != "" && d == want {
			return d
		}
		if r.Resolved.After(newest.Resolved) || newest.Digest == "" {
			newest = r
		}
	}
	return cmp.Or(newest.Index, newest.Digest)
}

// pull pulls the spec's tags the cache lacks into the cache, one at a time (each with Jobs
// layers at once), and marks them Pulled.
func (t *tagger) pull(ctx context.Context, s fetch.Spec, states []TagState) error {
	for i, st := range states {
		if st.State != Absent && st.State != Changed && st.State != Assumed {
			continue
		}
		ref := s.Tag(st.Tag)
		if st.Digest != "" {
			ref = ref.WithDigest(st.Digest) // what HEAD saw, even if the tag moves meanwhile
		}
		img, err := pullToCache(ctx, ref, PullOptions{Cache: t.opts.Cache, Jobs: t.opts.Jobs, Platform: t.opts.Platform, Registry: t.opts.Registry})
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		states[i].Pulled, states[i].Local = true, cmp.Or(img.IndexDigest, img.Digest)
	}
	return nil
}
