package roots

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/fetch"
)

// TestConvertManifest: a conversion changes media types only, keeps a manifest of the format
// asked for byte for byte, and refuses what the format has no media type for.
func TestConvertManifest(t *testing.T) {
	layer := func(mt string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(mt), Size: 10}
	}
	manifest := func(mt, config string, layers ...string) []byte {
		m := ocispec.Manifest{MediaType: mt, Config: ocispec.Descriptor{MediaType: config, Digest: digest.FromString("c"), Size: 2}}
		m.SchemaVersion = 2
		for _, l := range layers {
			m.Layers = append(m.Layers, layer(l))
		}
		b, _ := json.Marshal(m)
		return b
	}
	oci := manifest(ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip)
	docker := manifest(fetch.MediaTypeDockerManifest, fetch.MediaTypeDockerConfig, fetch.MediaTypeDockerLayer)
	tests := []struct {
		name    string
		body    []byte
		mt      string
		to      Format
		wantMT  string
		layerMT string // of the first layer after conversion
		err     error
	}{
		{"OCIToDocker", oci, ocispec.MediaTypeImageManifest, FormatDocker, fetch.MediaTypeDockerManifest, fetch.MediaTypeDockerLayer, nil},
		{"DockerToOCI", docker, fetch.MediaTypeDockerManifest, FormatOCI, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip, nil},
		{"SameFormat", oci, ocispec.MediaTypeImageManifest, FormatOCI, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip, nil},
		{"AsItIs", docker, fetch.MediaTypeDockerManifest, "", fetch.MediaTypeDockerManifest, fetch.MediaTypeDockerLayer, nil},
		{"ZstdToDocker", manifest(ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd), ocispec.MediaTypeImageManifest, FormatDocker, "", "", ErrFormat},
		{"UncompressedToDocker", manifest(ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayer), ocispec.MediaTypeImageManifest, FormatDocker, "", "", ErrFormat},
		{"AttestationToDocker", manifest(ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, "application/vnd.in-toto+json"), ocispec.MediaTypeImageManifest, FormatDocker, "", "", ErrFormat},
		{"ArtifactConfigToDocker", manifest(ocispec.MediaTypeImageManifest, "application/vnd.example+json", ocispec.MediaTypeImageLayerGzip), ocispec.MediaTypeImageManifest, FormatDocker, "", "", ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, mt, err := convertManifest(tt.body, tt.mt, tt.to)
			if !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if mt != tt.wantMT {
				t.Errorf("media type %s, want %s", mt, tt.wantMT)
			}
			if tt.wantMT == tt.mt && !bytes.Equal(got, tt.body) {
				t.Error("a manifest of the format asked for was rewritten")
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatal(err)
			}
			var orig ocispec.Manifest
			json.Unmarshal(tt.body, &orig)
			if m.MediaType != mt || m.Layers[0].MediaType != tt.layerMT || m.Layers[0].Digest != orig.Layers[0].Digest || m.Config.Digest != orig.Config.Digest {
				t.Errorf("converted %s", got)
			}
		})
	}
}
