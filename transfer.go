package roots

import (
	"context"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// A transfer writes an image (a manifest, or an index and every manifest it lists) into a
// target repository, as Push and CopyImage do. It works in two passes: plan reads every manifest
// (from the cache when it holds it, else from the source repository) and converts it to the
// format asked for, so that an image that cannot be written fails before anything is sent;
// send then writes, children before their index, every blob of a manifest before it, and
// each blob at most once: a HEAD says whether the target has it, a mount links it from a
// repository of the same registry known to hold it, and only then is it uploaded, streamed
// from the cache or from the source through a reader that verifies it.

// BlobAction is what a push did for one blob.
type BlobAction string

// Blob actions.
const (
	// BlobExists: the target repository had the blob; nothing was sent.
	BlobExists BlobAction = "exists"
	// BlobMounted: the registry linked the blob from another of its repositories (BlobResult.From).
	BlobMounted BlobAction = "mounted"
	// BlobUploaded: the blob's bytes were uploaded.
	BlobUploaded BlobAction = "pushed"
)

// BlobResult says what a push or copy did for one blob (a config or a layer).
type BlobResult struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType,omitempty"`
	Size      int64         `json:"size"`
	Action    BlobAction    `json:"action"`
	From      string        `json:"from,omitempty"`   // BlobMounted: the source repository ("registry/repo")
	Cached    bool          `json:"cached,omitempty"` // BlobUploaded: streamed from the cache, not from the source
}

// ManifestResult says what a push or copy did for one manifest or index.
type ManifestResult struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Exists    bool          `json:"exists,omitempty"` // a child the target had already: not sent
}

// Pushed says what Push or CopyImage wrote.
type Pushed struct {
	Reference string           `json:"reference"`           // the target, as written
	Digest    digest.Digest    `json:"digest"`              // of the manifest or index the target's tag names now
	MediaType string           `json:"mediaType,omitempty"` // "" when Unchanged: a HEAD gives the digest only
	Manifests []ManifestResult `json:"manifests"`           // children first, the top manifest last
	Blobs     []BlobResult     `json:"blobs"`               // in the order they were settled
	Unchanged bool             `json:"unchanged,omitempty"` // CopyImage: the target had the digest already; nothing was sent
}

// node is one manifest of a transfer, as it will be written.
type node struct {
	ref      fetch.Reference    // where it goes: by digest for a child, the target's tag at the top
	desc     ocispec.Descriptor // its digest, size and media type as written
	body     []byte
	blobs    []ocispec.Descriptor // a manifest's config and layers
	children []*node              // an index's manifests
}

// transfer is one push or copy under way.
type transfer struct {
	client   *fetch.Client // reads the source (mirrors too) and writes the target
	target   *fetch.Client // the same, asking the target registry itself (never a mirror) what it holds
	cache    *cas.Cache    // nil: none
	src, dst fetch.Reference
	format   Format
	upload   fetch.UploadOptions
	jobs     int
	report   func(BlobResult)
	known    *Holders // nil: none
	// local: the image was made here (roots commit): its source's repository holds only the
	// blobs the cache says it does, so it is no mount source for the others.
	local bool

	mu        sync.Mutex
	settled   map[digest.Digest]*settling
	blobs     []BlobResult
	manifests []ManifestResult
}

// settling is one blob being made present in the target; done closes when err is set.
type settling struct {
	done chan struct{}
	err  error
}

// manifest returns the manifest d of the source: the cache's copy if it holds one that
// hashes to d and says its media type (or mediaType, from the descriptor or record that named
// it, does), else the source registry's.
func (t *transfer) manifest(ctx context.Context, d digest.Digest, mediaType string) ([]byte, string, error) {
	if t.cache != nil {
		if b, ok := t.cache.Blob(d); ok && d.Algorithm().FromBytes(b) == d {
			if mt := mediaTypeOf(b); mt != "" {
				return b, mt, nil
			} else if fetch.IsManifest(mediaType) || fetch.IsIndex(mediaType) {
				return b, mediaType, nil
			}
		}
	}
	b, mt, _, err := t.client.Manifest(ctx, t.src.WithDigest(d))
	return b, mt, err
}

// mediaTypeOf is the mediaType field of a manifest's JSON, "" if it has none.
func mediaTypeOf(body []byte) string {
	var m struct {
		MediaType string `json:"mediaType"`
	}
	json.Unmarshal(body, &m)
	return m.MediaType
}

// plan reads the manifest or index body (of mediaType) and what it lists, converted into the
// transfer's format, to be written at ref.
func (t *transfer) plan(ctx context.Context, ref fetch.Reference, body []byte, mediaType string) (*node, error) {
	n := &node{ref: ref}
	switch {
	case fetch.IsIndex(mediaType):
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); err != nil {
			return nil, fmt.Errorf("index %s: %w: %v", digest.FromBytes(body), fetch.ErrInvalidManifest, err)
		}
		converted := map[string]ocispec.Descriptor{}
		for _, e := range idx.Manifests {
			if _, ok := converted[e.Digest.String()]; ok {
				continue
			}
			cb, cmt, err := t.manifest(ctx, e.Digest, e.MediaType)
			if err != nil {
				return nil, err
			}
			if fetch.IsIndex(cmt) {
				return nil, fmt.Errorf("index entry %s: %w (an index in an index)", e.Digest, fetch.ErrUnsupportedManifest)
			}
			child, err := t.plan(ctx, t.dst, cb, cmt)
			if err != nil {
				return nil, err
			}
			child.ref = t.dst.WithDigest(child.desc.Digest)
			n.children = append(n.children, child)
			converted[e.Digest.String()] = child.desc
		}
		b, mt, err := convertIndex(body, mediaType, t.format, converted)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", digest.FromBytes(body), err)
		}
		body, mediaType = b, mt
	case fetch.IsManifest(mediaType):
		b, mt, err := convertManifest(body, mediaType, t.format)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", digest.FromBytes(body), err)
		}
		body, mediaType = b, mt
		var m ocispec.Manifest
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w: %v", digest.FromBytes(body), fetch.ErrInvalidManifest, err)
		}
		n.blobs = append([]ocispec.Descriptor{m.Config}, m.Layers...)
	default:
		return nil, fmt.Errorf("%w: %s", fetch.ErrUnsupportedManifest, mediaType)
	}
	n.body = body
	n.desc = ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(body), Size: int64(len(body))}
	return n, nil
}

// send writes n into the target: its children, its blobs, then itself.
func (t *transfer) send(ctx context.Context, n *node, top bool) error {
	if !top {
		// A child the target holds has its blobs: one HEAD instead of one per blob.
		if d, err := t.target.Digest(ctx, n.ref, nil); err == nil && d == n.desc.Digest {
			t.addManifest(ManifestResult{Digest: n.desc.Digest, MediaType: n.desc.MediaType, Size: n.desc.Size, Exists: true})
			return nil
		}
	}
	for _, c := range n.children {
		if err := t.send(ctx, c, false); err != nil {
			return err
		}
	}
	if err := parallel(ctx, t.jobs, len(n.blobs), func(ctx context.Context, i int) error {
		return t.blob(ctx, n.blobs[i])
	}); err != nil {
		return err
	}
	if _, err := t.client.PushManifest(ctx, n.ref, n.desc.MediaType, n.body); err != nil {
		return err
	}
	t.addManifest(ManifestResult{Digest: n.desc.Digest, MediaType: n.desc.MediaType, Size: n.desc.Size})
	return nil
}

func (t *transfer) addManifest(m ManifestResult) {
	t.mu.Lock()
	t.manifests = append(t.manifests, m)
	t.mu.Unlock()
}

// blob makes the blob d present in the target, once per transfer however many manifests
// list it.
func (t *transfer) blob(ctx context.Context, d ocispec.Descriptor) error {
	t.mu.Lock()
	s, ok := t.settled[d.Digest]
	if !ok {
		s = &settling{done: make(chan struct{})}
		t.settled[d.Digest] = s
	}
	t.mu.Unlock()
	if ok {
		select {
		case <-s.done:
			return s.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r, err := t.settle(ctx, d)
	s.err = err
	close(s.done)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.blobs = append(t.blobs, r)
	t.mu.Unlock()
	if t.cache != nil {
		t.cache.AddSource(t.dst.Name(), d.Digest) // a hint: losing it costs an upload, not correctness
	}
	t.known.add(d.Digest, t.dst)
	if t.report != nil {
		t.report(r)
	}
	return nil
}

// settle HEADs, mounts or uploads one blob.
func (t *transfer) settle(ctx context.Context, d ocispec.Descriptor) (BlobResult, error) {
	r := BlobResult{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size}
	ok, err := t.client.BlobExists(ctx, t.dst, d.Digest)
	if err != nil {
		return r, err
	}
	if ok {
		r.Action = BlobExists
		return r, nil
	}
	for _, from := range t.mountSources(d.Digest) {
		ok, err := t.client.MountBlob(ctx, t.dst, d.Digest, from)
		if err != nil && ctx.Err() != nil {
			return r, err
		} // another failed mount (no pull right on its source, say) leaves the upload
		if ok {
			r.Action, r.From = BlobMounted, t.dst.Domain+"/"+from
			return r, nil
		}
	}
	r.Action = BlobUploaded
	err = t.client.PushBlob(ctx, t.dst, d, func(ctx context.Context) (io.ReadCloser, error) {
		if t.cache != nil {
			if f, err := t.cache.OpenBlob(d.Digest); err == nil {
				r.Cached = true
				return verifying(f, d), nil
			}
		}
		r.Cached = false
		rc, err := t.client.OpenBlob(ctx, t.src, d)
		if err != nil {
			return nil, err
		}
		return verifying(rc, d), nil
	}, t.upload)
	return r, err
}

// maxMounts bounds the mounts tried for one blob before it is uploaded.
const maxMounts = 3

// mountSources are the repositories of the target's registry (paths) that may hold d: the
// source's, then those the cache remembers.
func (t *transfer) mountSources(d digest.Digest) []string {
	var repos []string
	add := func(name string) {
		if r, err := fetch.ParseReference(name); err == nil && r.Domain == t.dst.Domain && r.Path != t.dst.Path && !slices.Contains(repos, r.Path) {
			repos = append(repos, r.Path)
		}
	}
	if !t.local {
		add(t.src.Name())
	}
	for _, s := range t.known.sources(d) {
		add(s)
	}
	if t.cache != nil {
		for _, s := range t.cache.Sources(d) {
			add(s)
		}
	}
	return repos[:min(len(repos), maxMounts)]
}

// Holders remembers, through many copies (a sync), which repositories hold which blobs after
// a copy wrote them, so that a blob one copy uploaded is mounted by the next copy into another
// repository of the same registry, with or without a cache. Its zero value is ready; a nil
// Holders remembers nothing. It is safe for concurrent use.
type Holders struct {
	mu sync.Mutex
	m  map[digest.Digest][]string // "registry/repository", most recent first
}

// maxHolders bounds the repositories remembered per blob.
const maxHolders = 4

func (h *Holders) add(d digest.Digest, repo fetch.Reference) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[digest.Digest][]string{}
	}
	name := repo.Name()
	list := slices.DeleteFunc(h.m[d], func(s string) bool { return s == name })
	h.m[d] = append([]string{name}, list[:min(len(list), maxHolders-1)]...)
}

func (h *Holders) sources(d digest.Digest) []string {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.m[d])
}

// verifying passes rc's bytes through and fails its last Read with ErrSizeMismatch or
// ErrDigestMismatch when they are not the blob d describes.
func verifying(rc io.ReadCloser, d ocispec.Descriptor) io.ReadCloser {
	return &verifyingReader{rc: rc, desc: d, h: d.Digest.Algorithm().Hash()}
}

type verifyingReader struct {
	rc   io.ReadCloser
	desc ocispec.Descriptor
	h    hash.Hash
	n    int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.desc.Size {
		return n, fmt.Errorf("blob %s: %w: more than %d bytes", v.desc.Digest, cas.ErrSizeMismatch, v.desc.Size)
	}
	if err == io.EOF {
		if v.n != v.desc.Size {
			return n, fmt.Errorf("blob %s: %w: %d bytes, want %d", v.desc.Digest, cas.ErrSizeMismatch, v.n, v.desc.Size)
		}
		if got := digest.NewDigest(v.desc.Digest.Algorithm(), v.h); got != v.desc.Digest {
			return n, fmt.Errorf("blob %s: %w: got %s", v.desc.Digest, cas.ErrDigestMismatch, got)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

// result is what t wrote, the top manifest last.
func (t *transfer) result(top *node) *Pushed {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &Pushed{
		Reference: t.dst.String(), Digest: top.desc.Digest, MediaType: top.desc.MediaType,
		Manifests: append([]ManifestResult{}, t.manifests...), Blobs: append([]BlobResult{}, t.blobs...),
	}
}

// newTransfer is a transfer from src to dst with cache (nil: none).
func newTransfer(client *fetch.Client, cache *cas.Cache, src, dst fetch.Reference, format Format, chunk int64, jobs int, report func(BlobResult)) *transfer {
	if jobs <= 0 {
		jobs = defaultJobs
	}
	return &transfer{
		client: client, target: client.ServerOnly(), cache: cache, src: src, dst: dst, format: format,
		upload: fetch.UploadOptions{ChunkSize: chunk}, jobs: jobs, report: report,
		settled: map[digest.Digest]*settling{},
	}
}
