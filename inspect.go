package roots

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// InspectOptions say where Inspect looks.
type InspectOptions struct {
	// Cache, if set, is read first: an image it has a record of (for the platform) is
	// described from its blobs, with no request.
	Cache string
	// Platform chooses among a multi-platform image's manifests; nil is the host's.
	Platform *fetch.Platform
	// Registry says how to reach and log in to the registry.
	Registry fetch.Options
	// Offline describes the image from the cache alone, as PullOptions.Offline pulls it: no
	// request, and what the cache lacks or holds corrupt is an error wrapping ErrOffline.
	Offline bool
}

// Inspected describes an image as skopeo inspect does: what its reference resolves to, its
// platform's layers and what its config says a container runs.
type Inspected struct {
	Reference    string            `json:"reference"`
	Digest       digest.Digest     `json:"digest"`   // what the reference resolves to: an index's for a multi-platform image, as roots digest prints
	Manifest     digest.Digest     `json:"manifest"` // the platform's manifest
	MediaType    string            `json:"mediaType"`
	Platform     string            `json:"platform"`
	Created      *time.Time        `json:"created,omitempty"`
	Author       string            `json:"author,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	User         string            `json:"user,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	Layers       []InspectedLayer  `json:"layers"`
	Size         int64             `json:"size"`   // of the compressed layers
	Source       string            `json:"source"` // "cache" or "registry"
	// Recorded: offline, when the cache's record of the tag was made (zero for a digest).
	Recorded time.Time `json:"-"`

	RawManifest []byte `json:"-"` // the platform's manifest, byte for byte
	RawIndex    []byte `json:"-"` // the index it was chosen from, byte for byte (nil: none)
	RawConfig   []byte `json:"-"` // its config, byte for byte
}

// InspectedLayer is one layer of an inspected image.
type InspectedLayer struct {
	Digest    digest.Digest `json:"digest"`
	DiffID    digest.Digest `json:"diffId"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
}

// Inspect describes the image ref names for one platform: from the cache when it has a record
// of ref (or holds the manifest a digest names), with no request; else from the registry (the
// manifest, and the config, which a cache is not filled with).
func Inspect(ctx context.Context, ref string, opts InspectOptions) (*Inspected, error) {
	r, err := fetch.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Inspected, error) { return nil, fmt.Errorf("inspect %s: %w", r, err) }
	opts.Registry.Offline = opts.Offline || opts.Registry.Offline
	var recorded time.Time
	img, source := (*fetch.Image)(nil), "cache"
	switch {
	case opts.Registry.Offline:
		if opts.Cache == "" {
			return fail(fmt.Errorf("%w with no cache: there is nothing to describe it from", ErrOffline))
		}
		if img, recorded, err = offlineImage(opts.Cache, r, opts.Platform); err != nil {
			return fail(err)
		}
		if img.IndexDigest != "" && img.Index == nil {
			return fail(offlinef("index %s of %s: not in the cache", img.IndexDigest, img.Digest))
		}
	default:
		img = cachedImage(r, opts)
	}
	if img == nil {
		if opts.Cache != "" {
			if _, err := os.Stat(opts.Cache); err == nil {
				opts.Registry.Local = cas.BlobDir(opts.Cache)
			}
		}
		if img, err = fetch.New(opts.Registry).Resolve(ctx, r, opts.Platform); err != nil {
			return fail(err)
		}
		source = "registry"
	}
	out := &Inspected{
		Reference: r.String(), Digest: img.Digest, Manifest: img.Digest, MediaType: img.MediaType,
		Platform: img.Platform.String(), Layers: []InspectedLayer{}, Source: source, Recorded: recorded,
		RawManifest: img.Manifest, RawIndex: img.Index, RawConfig: img.Config,
	}
	if img.IndexDigest != "" {
		out.Digest = img.IndexDigest
	}
	for i, l := range img.Layers {
		il := InspectedLayer{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size}
		if i < len(img.DiffIDs) {
			il.DiffID = img.DiffIDs[i]
		}
		out.Layers = append(out.Layers, il)
		out.Size += l.Size
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		return fail(fmt.Errorf("config %s: %w", img.ConfigDesc.Digest, err))
	}
	c := cfg.Config
	out.Created, out.Author, out.Labels = cfg.Created, cfg.Author, c.Labels
	out.Entrypoint, out.Cmd, out.Env, out.User, out.WorkingDir, out.StopSignal = c.Entrypoint, c.Cmd, c.Env, c.User, c.WorkingDir, c.StopSignal
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	slices.Sort(out.ExposedPorts)
	return out, nil
}

// cachedImage is the image r names for the platform, from the cache's record of it and its
// blobs, or nil when the cache has no whole record of it.
func cachedImage(r fetch.Reference, opts InspectOptions) *fetch.Image {
	if opts.Cache == "" {
		return nil
	}
	want := fetch.HostPlatform()
	if opts.Platform != nil {
		want = *opts.Platform
	}
	blobs := cas.BlobDir(opts.Cache)
	if r.Digest != "" {
		// A digest names the same bytes wherever they are: the cache's copy of a manifest will do.
		if img, err := fetch.LocalImage(blobs, r, r.Digest); err == nil && (opts.Platform == nil || want.Match(img.Platform)) {
			return img
		}
		return nil
	}
	for _, rec := range cas.TaggedImages(opts.Cache, r.Domain+"/"+r.Path)[r.Tag] {
		plat, err := fetch.ParsePlatform(rec.Platform)
		if err != nil || !want.Match(plat) {
			continue
		}
		img, err := fetch.LocalImage(blobs, r, rec.Digest)
		if err != nil {
			continue
		}
		if rec.Index != "" {
			b, ok := blobs.Blob(rec.Index)
			if !ok {
				continue // a record from before the cache kept indexes: ask the registry
			}
			img.IndexDigest, img.Index = rec.Index, b
		}
		return img
	}
	return nil
}
