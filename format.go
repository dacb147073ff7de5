package roots

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/fetch"
)

// Format is the manifest family a push writes: the image's own (""), OCI or Docker schema2.
type Format string

// Formats.
const (
	// FormatOCI writes OCI image manifests and indexes.
	FormatOCI Format = "oci"
	// FormatDocker writes Docker schema2 manifests and manifest lists.
	FormatDocker Format = "docker"
)

// layerTypes maps a layer media type to its equivalent in each format. A layer with no
// entry for a format (zstd or an uncompressed tar in Docker, an attestation's in-toto
// statement) cannot be written in it.
var layerTypes = map[string]map[Format]string{
	ocispec.MediaTypeImageLayerGzip:                                {FormatOCI: ocispec.MediaTypeImageLayerGzip, FormatDocker: fetch.MediaTypeDockerLayer},
	fetch.MediaTypeDockerLayer:                                     {FormatOCI: ocispec.MediaTypeImageLayerGzip, FormatDocker: fetch.MediaTypeDockerLayer},
	ocispec.MediaTypeImageLayerNonDistributableGzip:                {FormatOCI: ocispec.MediaTypeImageLayerNonDistributableGzip, FormatDocker: fetch.MediaTypeDockerForeignLayer},
	fetch.MediaTypeDockerForeignLayer:                              {FormatOCI: ocispec.MediaTypeImageLayerNonDistributableGzip, FormatDocker: fetch.MediaTypeDockerForeignLayer},
	ocispec.MediaTypeImageLayerZstd:                                {FormatOCI: ocispec.MediaTypeImageLayerZstd},
	fetch.MediaTypeDockerLayerZstd:                                 {FormatOCI: ocispec.MediaTypeImageLayerZstd},
	ocispec.MediaTypeImageLayer:                                    {FormatOCI: ocispec.MediaTypeImageLayer},
	ocispec.MediaTypeImageLayerNonDistributable:                    {FormatOCI: ocispec.MediaTypeImageLayerNonDistributable},
	"application/vnd.docker.image.rootfs.diff.tar":                 {FormatOCI: ocispec.MediaTypeImageLayer},
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": {FormatOCI: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"},
}

// formatOf is the family of a manifest or index media type.
func formatOf(mediaType string) Format {
	switch mediaType {
	case fetch.MediaTypeDockerManifest, fetch.MediaTypeDockerManifestList:
		return FormatDocker
	}
	return FormatOCI
}

// convertManifest rewrites the media types of an image manifest (its own, its config's and its
// layers') into format f: only media types change, so blobs keep their digests. It returns
// body itself when the manifest is of f already.
func convertManifest(body []byte, mediaType string, f Format) ([]byte, string, error) {
	if f == "" || formatOf(mediaType) == f {
		return body, mediaType, nil
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", fmt.Errorf("%w: %v", fetch.ErrInvalidManifest, err)
	}
	m.MediaType = ocispec.MediaTypeImageManifest
	config := ocispec.MediaTypeImageConfig
	if f == FormatDocker {
		m.MediaType, config = fetch.MediaTypeDockerManifest, fetch.MediaTypeDockerConfig
		if m.Subject != nil || m.ArtifactType != "" {
			return nil, "", fmt.Errorf("%w: an OCI artifact (subject, artifactType) cannot become Docker", ErrFormat)
		}
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, fetch.MediaTypeDockerConfig:
		m.Config.MediaType = config
	default:
		return nil, "", fmt.Errorf("%w: config of media type %s is no image's and has no %s equivalent", ErrFormat, m.Config.MediaType, f)
	}
	for i, l := range m.Layers {
		t, ok := layerTypes[l.MediaType][f]
		if !ok {
			return nil, "", fmt.Errorf("%w: layer %d (%s) is %s, which has no %s equivalent", ErrFormat, i, l.Digest, l.MediaType, f)
		}
		m.Layers[i].MediaType = t
	}
	b, err := json.Marshal(m)
	return b, m.MediaType, err
}

// convertIndex rewrites an index into format f, with children, the descriptors of its
// manifests as converted (children maps each old digest to its new descriptor).
func convertIndex(body []byte, mediaType string, f Format, children map[string]ocispec.Descriptor) ([]byte, string, error) {
	if f == "" || formatOf(mediaType) == f {
		return body, mediaType, nil
	}
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, "", fmt.Errorf("%w: %v", fetch.ErrInvalidManifest, err)
	}
	idx.MediaType = ocispec.MediaTypeImageIndex
	if f == FormatDocker {
		idx.MediaType = fetch.MediaTypeDockerManifestList
		if idx.Subject != nil || idx.ArtifactType != "" {
			return nil, "", fmt.Errorf("%w: an OCI artifact index cannot become Docker", ErrFormat)
		}
	}
	for i, d := range idx.Manifests {
		n, ok := children[d.Digest.String()]
		if !ok {
			return nil, "", fmt.Errorf("%w: index entry %s was not converted", fetch.ErrInvalidManifest, d.Digest)
		}
		idx.Manifests[i].Digest, idx.Manifests[i].Size, idx.Manifests[i].MediaType = n.Digest, n.Size, n.MediaType
	}
	b, err := json.Marshal(idx)
	return b, idx.MediaType, err
}
