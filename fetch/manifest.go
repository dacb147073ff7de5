package fetch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types that image-spec does not define.
const (
	MediaTypeDockerManifest            = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList        = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig              = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerSchema1             = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed       = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeDockerLayer               = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer        = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerLayerZstd           = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerPluginConfig        = "application/vnd.docker.plugin.v1+json"
	maxManifestSize              int64 = 4 << 20
	maxConfigSize                int64 = 8 << 20
)

// manifestAccept is the Accept header for manifest requests: the four kinds
// roots reads.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
}, ", ")

const schema1Message = "schema1 manifests are deprecated and not supported: push the image again with a current Docker or use skopeo to convert it"

// IsIndex reports whether mediaType is an OCI index or a Docker manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether mediaType is an OCI or Docker schema2 image manifest.
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// Manifest GETs the manifest (or index) that ref names, exactly as served,
// and checks it: a kind roots reads, a body that agrees with its
// Content-Type, at most 4 MiB, and the digest ref asks for if it has one.
// dgst is the digest of body.
func (c *Client) Manifest(ctx context.Context, ref Reference) (body []byte, mediaType string, dgst digest.Digest, err error) {
	if err := ref.check(); err != nil {
		return nil, "", "", err
	}
	what := "manifest " + ref.String()
	err = c.eachEndpoint(ctx, ref, need(ref), what, func(ctx context.Context, e Endpoint) error {
		var err error
		if body, mediaType, dgst, err = c.manifestAt(ctx, ref, e, what); err == nil {
			c.served("manifest", ref.String(), e)
		}
		return err
	})
	if err != nil {
		return nil, "", "", err
	}
	return body, mediaType, dgst, nil
}

// need is what a manifest request for ref needs of a host: resolve for a
// tag, pull for a digest.
func need(ref Reference) capability {
	if ref.Digest == "" {
		return canResolve
	}
	return canPull
}

// manifestAt GETs ref's manifest from one endpoint and checks it.
func (c *Client) manifestAt(ctx context.Context, ref Reference, e Endpoint, what string) (body []byte, mediaType string, dgst digest.Digest, err error) {
	header := http.Header{"Accept": {manifestAccept}}
	resp, err := c.doAt(ctx, e, http.MethodGet, e.url("manifests", ref.manifestRef()), header)
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", "", responseError(resp, what)
	}
	body, err = readAllLimited(resp.Body, resp.ContentLength, maxManifestSize)
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", what, err)
	}
	mediaType, err = manifestMediaType(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", what, err)
	}
	dgst, err = manifestDigest(ref, body, resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", what, err)
	}
	return body, mediaType, dgst, nil
}

// manifestDigest hashes body with the algorithm ref's digest uses (sha256
// otherwise) and checks it against ref's digest and against the registry's
// Docker-Content-Digest header when that is well formed.
func manifestDigest(ref Reference, body []byte, header string) (digest.Digest, error) {
	algo := digest.SHA256
	if ref.Digest != "" {
		algo = ref.Digest.Algorithm()
	}
	got := algo.FromBytes(body)
	if ref.Digest != "" && got != ref.Digest {
		return "", errorf(ErrDigestMismatch, "content has digest %s, expected %s", got, ref.Digest)
	}
	if said := digest.Digest(header); header != "" && checkDigest(said) == nil {
		if actual := said.Algorithm().FromBytes(body); actual != said {
			return "", errorf(ErrDigestMismatch, "content has digest %s, registry says %s", actual, said)
		}
	}
	return got, nil
}

// manifestMediaType decides what kind of manifest body is, from the
// Content-Type the registry sent and the body's own schemaVersion and
// mediaType fields, which must agree. Schema1 is refused.
func manifestMediaType(contentType string, body []byte) (string, error) {
	ct, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		ct = ""
	}
	if isSchema1(ct) {
		return "", errorf(ErrUnsupportedManifest, "%s", schema1Message)
	}
	var head struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return "", errorf(ErrInvalidManifest, "manifest is not valid JSON: %v", err)
	}
	if head.SchemaVersion == 1 || isSchema1(head.MediaType) {
		return "", errorf(ErrUnsupportedManifest, "%s", schema1Message)
	}
	if head.SchemaVersion != 2 {
		return "", errorf(ErrUnsupportedManifest, "manifest schemaVersion %d is not supported", head.SchemaVersion)
	}
	switch {
	case IsIndex(ct) || IsManifest(ct):
		if head.MediaType != "" && head.MediaType != ct {
			return "", errorf(ErrInvalidManifest, "registry sent Content-Type %s but the manifest says mediaType %s", ct, head.MediaType)
		}
		return ct, nil
	case ct != "" && ct != "application/json" && ct != "text/plain" && ct != "application/octet-stream":
		return "", errorf(ErrUnsupportedManifest, "media type %s is not an image manifest or index", ct)
	}
	// A registry that does not know manifest media types: trust the body.
	switch {
	case IsIndex(head.MediaType) || IsManifest(head.MediaType):
		return head.MediaType, nil
	case head.MediaType != "":
		return "", errorf(ErrUnsupportedManifest, "media type %s is not an image manifest or index", head.MediaType)
	case len(head.Manifests) > 0:
		return ocispec.MediaTypeImageIndex, nil
	case len(head.Config) > 0:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", errorf(ErrUnsupportedManifest, "cannot tell what kind of manifest this is (Content-Type %q)", contentType)
}

func isSchema1(mediaType string) bool {
	return mediaType == MediaTypeDockerSchema1 || mediaType == MediaTypeDockerSchema1Signed
}

// parseIndex reads an index or manifest list and checks its descriptors.
func parseIndex(body []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return idx, errorf(ErrInvalidManifest, "index is not valid JSON: %v", err)
	}
	for i, d := range idx.Manifests {
		if err := checkDescriptor(d); err != nil {
			return idx, errorf(ErrInvalidManifest, "index entry %d: %w", i, err)
		}
	}
	return idx, nil
}

// parseImageManifest reads an image manifest and checks its descriptors.
func parseImageManifest(body []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return m, errorf(ErrInvalidManifest, "manifest is not valid JSON: %v", err)
	}
	if err := checkDescriptor(m.Config); err != nil {
		return m, errorf(ErrInvalidManifest, "config: %w", err)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, MediaTypeDockerConfig, "":
	default:
		return m, errorf(ErrUnsupportedManifest, "not a container image: config media type is %s", m.Config.MediaType)
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(l); err != nil {
			return m, errorf(ErrInvalidManifest, "layer %d: %w", i, err)
		}
	}
	return m, nil
}

// checkDescriptor checks what roots uses of a descriptor before using it:
// a well-formed sha256/sha512 digest and a size that is not negative.
func checkDescriptor(d ocispec.Descriptor) error {
	if err := checkDigest(d.Digest); err != nil {
		return err
	}
	if d.Size < 0 {
		return fmt.Errorf("digest %s: negative size %d", d.Digest, d.Size)
	}
	return nil
}

// readAllLimited reads r whole, refusing more than limit bytes (and a
// Content-Length above it before reading anything).
func readAllLimited(r io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength > limit {
		return nil, errorf(ErrTooLarge, "%d bytes is more than the %d allowed", contentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, errorf(ErrTooLarge, "more than the %d bytes allowed", limit)
	}
	return body, nil
}
