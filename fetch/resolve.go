package fetch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is what Resolve found for one platform.
type Image struct {
	Ref         Reference
	Digest      digest.Digest        // digest of the platform's manifest
	IndexDigest digest.Digest        // digest of the index/manifest list, "" for a single-platform image
	MediaType   string               // of the manifest
	Manifest    []byte               // raw bytes exactly as served
	Index       []byte               // raw index bytes or nil
	IndexType   string               // media type of Index, "" for a single-platform image
	Config      []byte               // raw config bytes
	ConfigDesc  ocispec.Descriptor   // the manifest's config descriptor
	Layers      []ocispec.Descriptor // in order, bottom first
	DiffIDs     []digest.Digest      // from config rootfs.diff_ids, same length as Layers
	Platform    Platform             // from the config
}

// Resolve finds the image ref names for one platform: it reads the manifest,
// chooses the platform's entry when that is an index (want nil = the host
// platform), and reads the config. For a single-platform manifest, want nil
// accepts whatever platform it is built for; an explicit want that the
// config contradicts is an error wrapping ErrNoMatchingPlatform.
func (c *Client) Resolve(ctx context.Context, ref Reference, want *Platform) (*Image, error) {
	body, mediaType, dgst, err := c.Manifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	img := &Image{Ref: ref, Digest: dgst, MediaType: mediaType, Manifest: body}
	if IsIndex(mediaType) {
		desc, err := c.choose(ref, body, want)
		if err != nil {
			return nil, err
		}
		img.Index, img.IndexDigest, img.IndexType = body, dgst, mediaType
		child := ref.WithDigest(desc.Digest)
		if !c.localManifest(img, desc) {
			if img.Manifest, img.MediaType, img.Digest, err = c.Manifest(ctx, child); err != nil {
				return nil, err
			}
		}
		if !IsManifest(img.MediaType) {
			return nil, errorf(ErrUnsupportedManifest, "manifest %s: an index entry is itself an index (%s)", child, img.MediaType)
		}
		if int64(len(img.Manifest)) != desc.Size {
			return nil, errorf(ErrInvalidManifest, "manifest %s: %d bytes, index says %d", child, len(img.Manifest), desc.Size)
		}
	}
	m, err := parseImageManifest(img.Manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", ref.WithDigest(img.Digest), err)
	}
	img.ConfigDesc, img.Layers = m.Config, m.Layers
	if img.Layers == nil {
		img.Layers = []ocispec.Descriptor{}
	}
	if img.Config, err = c.config(ctx, ref, m.Config); err != nil {
		return nil, err
	}
	if img.Platform, img.DiffIDs, err = parseConfig(img.Config); err != nil {
		return nil, fmt.Errorf("config %s of %s: %w", m.Config.Digest, ref, err)
	}
	if len(img.DiffIDs) != len(img.Layers) {
		return nil, errorf(ErrInvalidManifest, "image %s: %d layers but the config lists %d diff_ids", ref, len(img.Layers), len(img.DiffIDs))
	}
	if img.Index == nil && want != nil && !want.Match(img.Platform) {
		return nil, errorf(ErrNoMatchingPlatform, "no %s image in %s; it is %s", want, ref, img.Platform)
	}
	return img, nil
}

// Digest returns the digest ref resolves to now. Without want it is the
// digest of whatever ref names (index or manifest), from a HEAD request's
// Docker-Content-Digest, falling back to GET and hashing. With want it is
// the digest of that platform's manifest, which needs the index (and, for a
// single-platform image, its config to check the platform).
func (c *Client) Digest(ctx context.Context, ref Reference, want *Platform) (digest.Digest, error) {
	if want == nil {
		if d, ok, err := c.headDigest(ctx, ref); err != nil || ok {
			return d, err
		}
		_, _, d, err := c.Manifest(ctx, ref)
		return d, err
	}
	body, mediaType, dgst, err := c.Manifest(ctx, ref)
	if err != nil {
		return "", err
	}
	if IsIndex(mediaType) {
		desc, err := c.choose(ref, body, want)
		if err != nil {
			return "", err
		}
		return desc.Digest, nil
	}
	m, err := parseImageManifest(body)
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w", ref, err)
	}
	config, err := c.config(ctx, ref, m.Config)
	if err != nil {
		return "", err
	}
	have, _, err := parseConfig(config)
	if err != nil {
		return "", fmt.Errorf("config %s of %s: %w", m.Config.Digest, ref, err)
	}
	if !want.Match(have) {
		return "", errorf(ErrNoMatchingPlatform, "no %s image in %s; it is %s", want, ref, have)
	}
	return dgst, nil
}

// headDigest asks for the digest with HEAD. ok is false when the registry
// did not say (no header, or HEAD not answered), so the caller falls back
// to GET.
func (c *Client) headDigest(ctx context.Context, ref Reference) (d digest.Digest, ok bool, err error) {
	if err := ref.check(); err != nil {
		return "", false, err
	}
	what := "manifest " + ref.String()
	err = c.eachEndpoint(ctx, ref, need(ref), what, func(ctx context.Context, e Endpoint) error {
		var err error
		if d, ok, err = c.headDigestAt(ctx, ref, e, what); err == nil && ok {
			c.served("manifest", ref.String(), e)
		}
		return err
	})
	return d, ok, err
}

// headDigestAt asks one endpoint for ref's digest with HEAD.
func (c *Client) headDigestAt(ctx context.Context, ref Reference, e Endpoint, what string) (d digest.Digest, ok bool, err error) {
	header := http.Header{"Accept": {manifestAccept}}
	resp, err := c.doAt(ctx, e, http.MethodHead, e.url("manifests", ref.manifestRef()), header)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
		return "", false, responseError(resp, what)
	default:
		return "", false, nil
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	if isSchema1(strings.TrimSpace(ct)) {
		return "", false, fmt.Errorf("%s: %w", what, errorf(ErrUnsupportedManifest, "%s", schema1Message))
	}
	d = digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	if d == "" || checkDigest(d) != nil {
		return "", false, nil
	}
	if ref.Digest != "" && d != ref.Digest {
		if d.Algorithm() == ref.Digest.Algorithm() {
			return "", false, fmt.Errorf("%s: %w", what, errorf(ErrDigestMismatch, "registry says %s, expected %s", d, ref.Digest))
		}
		return ref.Digest, true, nil
	}
	return d, true, nil
}

// choose picks the entry of an index for want (nil = the host platform).
func (c *Client) choose(ref Reference, body []byte, want *Platform) (ocispec.Descriptor, error) {
	idx, err := parseIndex(body)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("index %s: %w", ref, err)
	}
	p := HostPlatform()
	if want != nil {
		p = *want
	}
	desc, ok := choosePlatform(idx.Manifests, p)
	if !ok {
		return ocispec.Descriptor{}, errorf(ErrNoMatchingPlatform, "no %s image in %s; it has %s", p, ref, available(idx.Manifests))
	}
	return desc, nil
}

// choosePlatform returns the index entry for want: the first entry with the
// best-ranked variant among those that run on want. Entries without a
// platform, and attestations (unknown/unknown), are never chosen.
func choosePlatform(entries []ocispec.Descriptor, want Platform) (ocispec.Descriptor, bool) {
	best, bestRank := ocispec.Descriptor{}, -1
	for _, e := range entries {
		have, ok := entryPlatform(e)
		if !ok {
			continue
		}
		if r := want.rank(have); r >= 0 && (bestRank < 0 || r < bestRank) {
			best, bestRank = e, r
		}
	}
	return best, bestRank >= 0
}

// entryPlatform is an index entry's platform, ok false for entries that are
// not images for a platform.
func entryPlatform(e ocispec.Descriptor) (Platform, bool) {
	if e.Platform == nil || e.Platform.OS == "" || e.Platform.Architecture == "" ||
		e.Platform.OS == "unknown" || e.Platform.Architecture == "unknown" {
		return Platform{}, false
	}
	return Platform{OS: e.Platform.OS, Architecture: e.Platform.Architecture, Variant: e.Platform.Variant}, true
}

// available lists an index's platforms for an error message.
func available(entries []ocispec.Descriptor) string {
	var names []string
	seen := map[string]bool{}
	for _, e := range entries {
		if p, ok := entryPlatform(e); ok && !seen[p.String()] {
			seen[p.String()] = true
			names = append(names, p.String())
		}
	}
	if len(names) == 0 {
		return "no platform images"
	}
	return strings.Join(names, ", ")
}

// config fetches an image config blob, at most 8 MiB, and checks its size
// and digest.
func (c *Client) config(ctx context.Context, ref Reference, d ocispec.Descriptor) ([]byte, error) {
	if d.Size > maxConfigSize {
		return nil, errorf(ErrTooLarge, "config %s of %s: %d bytes is more than the %d allowed", d.Digest, ref, d.Size, maxConfigSize)
	}
	if body, ok := c.local(d, maxConfigSize); ok {
		return body, nil
	}
	rc, err := c.OpenBlob(ctx, ref, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if int64(len(body)) != d.Size {
		return nil, errorf(ErrInvalidManifest, "config %s of %s: %d bytes, manifest says %d", d.Digest, ref, len(body), d.Size)
	}
	if got := d.Digest.Algorithm().FromBytes(body); got != d.Digest {
		return nil, errorf(ErrDigestMismatch, "config of %s: content has digest %s, expected %s", ref, got, d.Digest)
	}
	return body, nil
}

// parseConfig reads the platform and the layers' diff ids from an image config.
func parseConfig(body []byte) (Platform, []digest.Digest, error) {
	var cfg ocispec.Image
	if err := json.Unmarshal(body, &cfg); err != nil {
		return Platform{}, nil, errorf(ErrInvalidManifest, "config is not valid JSON: %v", err)
	}
	for i, d := range cfg.RootFS.DiffIDs {
		if err := checkDigest(d); err != nil {
			return Platform{}, nil, errorf(ErrInvalidManifest, "diff_id %d: %w", i, err)
		}
	}
	p := Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	diffIDs := cfg.RootFS.DiffIDs
	if diffIDs == nil {
		diffIDs = []digest.Digest{}
	}
	return p, diffIDs, nil
}

// local returns d's content from Options.Local if it has it, at most limit
// bytes, with d's size and digest.
func (c *Client) local(d ocispec.Descriptor, limit int64) ([]byte, bool) {
	if c.opts.Local == nil || checkDescriptor(d) != nil || d.Size > limit {
		return nil, false
	}
	body, ok := c.opts.Local.Blob(d.Digest)
	if !ok || int64(len(body)) != d.Size || d.Digest.Algorithm().FromBytes(body) != d.Digest {
		return nil, false
	}
	return body, true
}

// localManifest fills img's manifest from Options.Local for the index entry
// desc, if it has it and it is an image manifest of the kind desc says.
func (c *Client) localManifest(img *Image, desc ocispec.Descriptor) bool {
	body, ok := c.local(desc, maxManifestSize)
	if !ok {
		return false
	}
	mediaType, err := manifestMediaType(desc.MediaType, body)
	if err != nil || !IsManifest(mediaType) {
		return false
	}
	img.Manifest, img.MediaType, img.Digest = body, mediaType, desc.Digest
	return true
}
