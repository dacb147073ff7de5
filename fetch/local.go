package fetch

import (
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LocalImage is the image whose manifest is d, read from src alone, with no request: what
// Resolve would return for ref at that digest (Ref is ref). The manifest and its config are
// checked as downloads are (digest, size, kind); one that src lacks is an error wrapping
// ErrNotFound.
func LocalImage(src LocalSource, ref Reference, d digest.Digest) (*Image, error) {
	body, mediaType, err := localManifest(src, d)
	if err != nil {
		return nil, err
	}
	if !IsManifest(mediaType) {
		return nil, errorf(ErrUnsupportedManifest, "manifest %s: %s is not an image manifest", d, mediaType)
	}
	m, err := parseImageManifest(body)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	img := &Image{Ref: ref, Digest: d, MediaType: mediaType, Manifest: body, ConfigDesc: m.Config, Layers: m.Layers}
	if img.Layers == nil {
		img.Layers = []ocispec.Descriptor{}
	}
	cfg, ok := src.Blob(m.Config.Digest)
	switch {
	case !ok:
		return nil, errorf(ErrNotFound, "config %s of %s: not in the cache", m.Config.Digest, d)
	case int64(len(cfg)) != m.Config.Size || m.Config.Digest.Algorithm().FromBytes(cfg) != m.Config.Digest:
		return nil, errorf(ErrDigestMismatch, "config %s of %s: the cached content is not what the manifest says", m.Config.Digest, d)
	}
	img.Config = cfg
	if img.Platform, img.DiffIDs, err = parseConfig(cfg); err != nil {
		return nil, fmt.Errorf("config %s of %s: %w", m.Config.Digest, d, err)
	}
	if len(img.DiffIDs) != len(img.Layers) {
		return nil, errorf(ErrInvalidManifest, "image %s: %d layers but the config lists %d diff_ids", d, len(img.Layers), len(img.DiffIDs))
	}
	return img, nil
}

// localManifest reads the manifest or index d from src, checked against d, with its media type.
func localManifest(src LocalSource, d digest.Digest) ([]byte, string, error) {
	body, ok := src.Blob(d)
	if !ok {
		return nil, "", errorf(ErrNotFound, "manifest %s: not in the cache", d)
	}
	if got := d.Algorithm().FromBytes(body); got != d {
		return nil, "", errorf(ErrDigestMismatch, "manifest %s: content has digest %s", d, got)
	}
	mediaType, err := manifestMediaType("", body)
	if err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", d, err)
	}
	return body, mediaType, nil
}

// LocalResolve is Resolve read from src alone, with no request, for a reference whose
// digest d is known (a digest reference, or the index or manifest a cache's record of a tag
// names): d is an index, whose entry for want (nil: the host's platform) src must hold, or an
// image manifest, which want (when not nil) must match. Every manifest, index and config read
// is checked as downloads are; one that src lacks is an error wrapping ErrNotFound.
func LocalResolve(src LocalSource, ref Reference, d digest.Digest, want *Platform) (*Image, error) {
	body, mediaType, err := localManifest(src, d)
	if err != nil {
		return nil, err
	}
	if !IsIndex(mediaType) {
		img, err := LocalImage(src, ref, d)
		if err == nil && want != nil && !want.Match(img.Platform) {
			err = errorf(ErrNoMatchingPlatform, "no %s image in %s; it is %s", want, ref.WithDigest(d), img.Platform)
		}
		return img, err
	}
	idx, err := parseIndex(body)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", d, err)
	}
	p := HostPlatform()
	if want != nil {
		p = *want
	}
	desc, ok := choosePlatform(idx.Manifests, p)
	if !ok {
		return nil, errorf(ErrNoMatchingPlatform, "no %s image in index %s; it has %s", p, d, available(idx.Manifests))
	}
	img, err := LocalImage(src, ref, desc.Digest)
	if err != nil {
		return nil, err
	}
	if int64(len(img.Manifest)) != desc.Size {
		return nil, errorf(ErrInvalidManifest, "manifest %s: %d bytes, index %s says %d", desc.Digest, len(img.Manifest), d, desc.Size)
	}
	img.Index, img.IndexDigest, img.IndexType = body, d, mediaType
	return img, nil
}
