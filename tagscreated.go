package roots

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// configOnce is one digest's image config, read once however many tags name it.
type configOnce struct {
	once    sync.Once
	created time.Time
}

// localCreated is the creation time of the image the tag's records name with d (an index's
// digest or a manifest's), read from the cache with no request; zero when the cache does not
// have it.
func (t *tagger) localCreated(ref fetch.Reference, d digest.Digest, recs []cas.ImageRecord) time.Time {
	if t.opts.Cache == "" || d == "" {
		return time.Time{}
	}
	var manifests []digest.Digest
	for _, r := range recs {
		if r.Index != d && r.Digest != d {
			continue
		}
		if p, err := fetch.ParsePlatform(r.Platform); err == nil && t.platform().Match(p) {
			manifests = append([]digest.Digest{r.Digest}, manifests...) // the platform chosen first
		} else {
			manifests = append(manifests, r.Digest)
		}
	}
	manifests = append(manifests, d) // a manifest the cache holds from an earlier run
	for _, m := range manifests {
		if img, err := fetch.LocalImage(cas.BlobDir(t.opts.Cache), ref, m); err == nil {
			return created(img.Config)
		}
	}
	return time.Time{}
}

// platform is the platform whose config says when a multi-platform image was made.
func (t *tagger) platform() *fetch.Platform {
	if t.opts.Platform != nil {
		return t.opts.Platform
	}
	p := fetch.HostPlatform()
	return &p
}

// remoteCreated reads the config of ref at d from the registry, once per repository and
// digest, for the platform the cache would pull, and keeps the manifests and the config in
// the cache (if there is one) so that the next run reads them there; zero when it cannot.
func (t *tagger) remoteCreated(ctx context.Context, ref fetch.Reference, d digest.Digest) time.Time {
	key := ref.Name() + "@" + d.String()
	t.mu.Lock()
	c, ok := t.configs[key]
	if !ok {
		c = &configOnce{}
		t.configs[key] = c
	}
	t.mu.Unlock()
	c.once.Do(func() {
		release, err := t.slot(ctx, ref.APIHost())
		if err != nil {
			return
		}
		img, err := t.client.Resolve(ctx, ref.WithDigest(d), t.opts.Platform)
		release()
		if err != nil {
			return
		}
		c.created = created(img.Config)
		t.keep(ctx, img)
	})
	return c.created
}

// keep stores img's manifests and config in the cache, opened on first use; a cache that
// cannot take them costs only the next run's requests.
func (t *tagger) keep(ctx context.Context, img *fetch.Image) {
	if t.opts.Cache == "" {
		return
	}
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	if t.cache == nil {
		c, err := cas.Open(ctx, t.opts.Cache)
		if err != nil {
			return
		}
		t.cache = c
	}
	t.cache.PutBlob(img.ConfigDesc.Digest, img.Config)
	t.cache.PutBlob(img.Digest, img.Manifest)
	if img.IndexDigest != "" {
		t.cache.PutBlob(img.IndexDigest, img.Index)
	}
}

// close closes the cache if keep opened it, and the client's idle connections (Tags runs in a
// sync daemon's every pass).
func (t *tagger) close() {
	if t.cache != nil {
		t.cache.Close()
	}
	t.client.CloseIdleConnections()
}

// created reads "created" from an image config; zero when absent or malformed.
func created(config []byte) time.Time {
	var c struct {
		Created *time.Time `json:"created"`
	}
	if json.Unmarshal(config, &c) != nil || c.Created == nil {
		return time.Time{}
	}
	return c.Created.UTC()
}

// pullToCache makes every layer's tree of ref in the cache and records the image, with no
// destination: what `roots tags --pull` leaves so that a later pull of it is warm.
func pullToCache(ctx context.Context, ref fetch.Reference, opts PullOptions) (*fetch.Image, error) {
	opts.Registry.Local = cas.BlobDir(opts.Cache)
	p := &puller{opts: opts, client: fetch.New(opts.Registry), ref: ref}
	img, err := p.resolve(ctx)
	if err != nil {
		return nil, err
	}
	c, err := cas.Open(ctx, opts.Cache)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := p.trees(ctx, c, cas.WithRecord, img, nil, nil); err != nil {
		return nil, diskFull(err, opts.Cache, "", img)
	}
	return img, nil
}
