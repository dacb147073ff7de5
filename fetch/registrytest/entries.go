package registrytest

import (
	"archive/tar"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File, Dir, Symlink and Hardlink are the entries tables write most (a whiteout is a File
// with no body).
func File(name, body string) Entry { return Entry{Name: name, Body: []byte(body)} }

func Dir(name string, mode int64) Entry { return Entry{Name: name, Type: tar.TypeDir, Mode: mode} }

func Symlink(name, to string) Entry { return Entry{Name: name, Type: tar.TypeSymlink, Linkname: to} }

func Hardlink(name, to string) Entry { return Entry{Name: name, Type: tar.TypeLink, Linkname: to} }

// GzipLayer is a gzip layer of entries; RawGzipLayer one of a tar made by hand.
func GzipLayer(entries ...Entry) Layer { return Layer{Entries: entries, Compression: Gzip} }

func RawGzipLayer(raw []byte) Layer { return Layer{Raw: raw, Compression: Gzip} }

// Blob is a layer blob as pushed, for images Image cannot describe (media types that lie,
// multi-member gzip, ...).
type Blob struct {
	MediaType string
	Blob      []byte
	DiffID    digest.Digest
	Size      int64 // in the manifest; 0 = len(Blob)
}

// CompressBlob compresses raw as c, as Build does, and describes it as an OCI layer.
func CompressBlob(t testing.TB, raw []byte, c Compression) Blob {
	t.Helper()
	blob, err := Compress(raw, c)
	if err != nil {
		t.Fatal(err)
	}
	return Blob{MediaType: layerMediaType(OCI, c), Blob: blob, DiffID: digest.FromBytes(raw)}
}

// PushBlobs pushes an OCI image of layers to r (blobs, config, manifest) and returns it. The
// config names diffIDs, or each layer's DiffID when diffIDs is nil.
func (r *Registry) PushBlobs(t testing.TB, repo, tag string, layers []Blob, diffIDs []digest.Digest) Pushed {
	t.Helper()
	p := Pushed{Blobs: map[digest.Digest][]byte{}}
	for i, l := range layers {
		d := r.PushBlob(t, repo, l.Blob)
		size := l.Size
		if size == 0 {
			size = int64(len(l.Blob))
		}
		p.Layers = append(p.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: d, Size: size})
		p.Blobs[d] = l.Blob
		if diffIDs == nil {
			p.DiffIDs = append(p.DiffIDs, l.DiffID)
		} else {
			p.DiffIDs = append(p.DiffIDs, diffIDs[i])
		}
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "created": EntryTime, "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": p.DiffIDs},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Config = cfg
	cd := r.PushBlob(t, repo, cfg)
	p.MediaType = ocispec.MediaTypeImageManifest
	p.Manifest, err = json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: p.MediaType,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers:    p.Layers,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Digest = r.PushRaw(t, repo, tag, p.MediaType, p.Manifest)
	return p
}
