package registrytest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types (OCI ones are in ocispec).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeInToto             = "application/vnd.in-toto+json"
)

// EntryTime is the mtime of entries that set none, and the image's created time.
var EntryTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Entry is one tar entry. Zero values mean a regular file, mode 0644 (0755
// for directories, 0777 for symlinks), owned by root:root, with mtime
// EntryTime, in the format archive/tar picks. Body is the content of a
// regular file.
type Entry struct {
	Name               string
	Type               byte // tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, ...
	Mode               int64
	Uid, Gid           int
	Body               []byte
	Linkname           string
	ModTime            time.Time
	Xattrs             map[string]string
	Devmajor, Devminor int64
	Format             tar.Format
}

// ZeroMode in a header's Mode asks SetDefaults for mode 0000, which a zero Mode does not mean.
const ZeroMode = 1 << 40

// SetDefaults gives h what zero values mean in an Entry: a regular file, mode 0644 (0755 for
// directories, 0777 for symlinks; ZeroMode for 0000), mtime EntryTime.
func SetDefaults(h *tar.Header) {
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
	}
	switch {
	case h.Mode == ZeroMode:
		h.Mode = 0
	case h.Mode == 0 && h.Typeflag == tar.TypeDir:
		h.Mode = 0o755
	case h.Mode == 0 && h.Typeflag == tar.TypeSymlink:
		h.Mode = 0o777
	case h.Mode == 0:
		h.Mode = 0o644
	}
	if h.ModTime.IsZero() {
		h.ModTime = EntryTime
	}
}

// Compression is how a layer blob is compressed.
type Compression string

const (
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
	Uncompressed Compression = "none"
)

// Layer is one layer of an image.
type Layer struct {
	Entries     []Entry
	Compression Compression // default gzip
	// Raw, if set, is used as the uncompressed tar instead of Entries (for
	// hostile or malformed tars).
	Raw []byte
}

// Format is the manifest family an image is pushed as.
type Format int

const (
	OCI    Format = iota // OCI image manifest and index
	Docker               // Docker schema2 manifest and manifest list
)

// Image is an image to build and push.
type Image struct {
	Layers            []Layer // bottom first
	OS, Arch, Variant string  // default runtime.GOOS/runtime.GOARCH
	Format            Format
	Config            map[string]any // extra top-level config fields; override the generated ones
}

// Pushed is what Build made and Push stored: the manifest (or index) and
// every blob it refers to.
type Pushed struct {
	Digest    digest.Digest // of Manifest
	Manifest  []byte
	MediaType string
	Platform  ocispec.Platform // single images only
	Config    []byte
	Layers    []ocispec.Descriptor
	DiffIDs   []digest.Digest
	// Blobs holds every object Manifest refers to, directly or not, by
	// digest: configs and layers, and for an index the child manifests.
	Blobs map[digest.Digest][]byte
	// Manifests are an index's per-image manifests, in the order given.
	Manifests []Pushed
}

// TarBytes encodes entries as an uncompressed tar. It panics if an entry
// cannot be encoded (a body on a non-regular file, say): a bug in the test.
func TarBytes(entries []Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(e.Header()); err != nil {
			panic(fmt.Sprintf("registrytest: tar entry %q: %v", e.Name, err))
		}
		if len(e.Body) > 0 {
			if _, err := tw.Write(e.Body); err != nil {
				panic(fmt.Sprintf("registrytest: tar entry %q: %v", e.Name, err))
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(fmt.Sprintf("registrytest: tar: %v", err))
	}
	return buf.Bytes()
}

// Header is e's tar header, zero values made defaults (SetDefaults).
func (e Entry) Header() *tar.Header {
	h := &tar.Header{
		Typeflag: e.Type,
		Name:     e.Name,
		Linkname: e.Linkname,
		Mode:     e.Mode,
		Uid:      e.Uid,
		Gid:      e.Gid,
		ModTime:  e.ModTime,
		Devmajor: e.Devmajor,
		Devminor: e.Devminor,
		Size:     int64(len(e.Body)),
		Format:   e.Format,
	}
	SetDefaults(h)
	if len(e.Xattrs) > 0 {
		h.PAXRecords = map[string]string{}
		for k, v := range e.Xattrs {
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	return h
}

// Compress compresses data as c ("" means gzip). Output is deterministic.
func Compress(data []byte, c Compression) ([]byte, error) {
	switch c {
	case Gzip, "":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(data); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	case Zstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer enc.Close()
		return enc.EncodeAll(data, nil), nil
	case Uncompressed:
		return bytes.Clone(data), nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

// layerMediaType is the media type of a layer blob. Docker has no zstd
// type; its images use the OCI one.
func layerMediaType(f Format, c Compression) string {
	switch {
	case c == Zstd:
		return ocispec.MediaTypeImageLayerZstd
	case f == Docker && c == Uncompressed:
		return MediaTypeDockerLayer
	case f == Docker:
		return MediaTypeDockerLayerGzip
	case c == Uncompressed:
		return ocispec.MediaTypeImageLayer
	}
	return ocispec.MediaTypeImageLayerGzip
}

// Build makes img's layers, config and manifest in memory, without pushing.
func Build(t testing.TB, img Image) Pushed {
	t.Helper()
	p, err := build(img)
	if err != nil {
		t.Fatalf("registrytest: build image: %v", err)
	}
	return p
}

func build(img Image) (Pushed, error) {
	p := Pushed{
		Blobs: map[digest.Digest][]byte{},
		Platform: ocispec.Platform{
			OS:           orDefault(img.OS, runtime.GOOS),
			Architecture: orDefault(img.Arch, runtime.GOARCH),
			Variant:      img.Variant,
		},
	}
	for i, l := range img.Layers {
		raw := l.Raw
		if raw == nil {
			raw = TarBytes(l.Entries)
		}
		blob, err := Compress(raw, l.Compression)
		if err != nil {
			return Pushed{}, fmt.Errorf("layer %d: %w", i, err)
		}
		d := digest.FromBytes(blob)
		p.Blobs[d] = blob
		p.DiffIDs = append(p.DiffIDs, digest.FromBytes(raw))
		p.Layers = append(p.Layers, ocispec.Descriptor{
			MediaType: layerMediaType(img.Format, l.Compression),
			Digest:    d,
			Size:      int64(len(blob)),
		})
	}
	config, err := imageConfig(p.Platform, p.DiffIDs, img.Config)
	if err != nil {
		return Pushed{}, err
	}
	configType, manifestType := ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	if img.Format == Docker {
		configType, manifestType = MediaTypeDockerConfig, MediaTypeDockerManifest
	}
	p.Config = config
	p.Blobs[digest.FromBytes(config)] = config
	p.MediaType = manifestType
	p.Manifest, err = json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: manifestType,
		Config:    ocispec.Descriptor{MediaType: configType, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:    nonNil(p.Layers),
	})
	if err != nil {
		return Pushed{}, fmt.Errorf("manifest: %w", err)
	}
	p.Digest = digest.FromBytes(p.Manifest)
	return p, nil
}

// imageConfig is the config JSON: platform, rootfs.diff_ids, a history
// line per layer, then the extra fields on top.
func imageConfig(pl ocispec.Platform, diffIDs []digest.Digest, extra map[string]any) ([]byte, error) {
	history := make([]map[string]any, len(diffIDs))
	for i := range diffIDs {
		history[i] = map[string]any{"created": EntryTime, "created_by": fmt.Sprintf("registrytest layer %d", i)}
	}
	cfg := map[string]any{
		"architecture": pl.Architecture,
		"os":           pl.OS,
		"created":      EntryTime,
		"config":       map[string]any{},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": nonNil(diffIDs)},
		"history":      history,
	}
	if pl.Variant != "" {
		cfg["variant"] = pl.Variant
	}
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}

// buildIndex builds each image as format and the index (OCI) or manifest
// list (Docker) over them. An OCI index also gets an attestation manifest
// per image, with platform unknown/unknown, as BuildKit makes them.
func buildIndex(format Format, imgs []Image) (Pushed, []Pushed, error) {
	idx := Pushed{Blobs: map[digest.Digest][]byte{}}
	var descs []ocispec.Descriptor
	var attestations []Pushed
	for i, img := range imgs {
		img.Format = format
		p, err := build(img)
		if err != nil {
			return Pushed{}, nil, fmt.Errorf("image %d: %w", i, err)
		}
		idx.Manifests = append(idx.Manifests, p)
		pl := p.Platform
		descs = append(descs, ocispec.Descriptor{MediaType: p.MediaType, Digest: p.Digest, Size: int64(len(p.Manifest)), Platform: &pl})
		if format == OCI {
			a, desc, err := attestation(p)
			if err != nil {
				return Pushed{}, nil, err
			}
			attestations = append(attestations, a)
			descs = append(descs, desc)
		}
	}
	for _, p := range append(append([]Pushed(nil), idx.Manifests...), attestations...) {
		idx.Blobs[p.Digest] = p.Manifest
		for d, b := range p.Blobs {
			idx.Blobs[d] = b
		}
	}
	idx.MediaType = ocispec.MediaTypeImageIndex
	if format == Docker {
		idx.MediaType = MediaTypeDockerManifestList
	}
	var err error
	idx.Manifest, err = json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: idx.MediaType,
		Manifests: nonNil(descs),
	})
	if err != nil {
		return Pushed{}, nil, fmt.Errorf("index: %w", err)
	}
	idx.Digest = digest.FromBytes(idx.Manifest)
	return idx, attestations, nil
}

// attestation makes an in-toto attestation manifest for subject and its
// index descriptor.
func attestation(subject Pushed) (Pushed, ocispec.Descriptor, error) {
	statement, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://spdx.dev/Document",
		"subject":       []any{map[string]any{"name": "registrytest", "digest": map[string]string{"sha256": subject.Digest.Encoded()}}},
		"predicate":     map[string]any{},
	})
	if err != nil {
		return Pushed{}, ocispec.Descriptor{}, fmt.Errorf("attestation: %w", err)
	}
	pl := ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	sd := digest.FromBytes(statement)
	config, err := imageConfig(pl, []digest.Digest{sd}, nil)
	if err != nil {
		return Pushed{}, ocispec.Descriptor{}, err
	}
	layer := ocispec.Descriptor{
		MediaType:   MediaTypeInToto,
		Digest:      sd,
		Size:        int64(len(statement)),
		Annotations: map[string]string{"in-toto.io/predicate-type": "https://spdx.dev/Document"},
	}
	p := Pushed{
		MediaType: ocispec.MediaTypeImageManifest,
		Platform:  pl,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
		DiffIDs:   []digest.Digest{sd},
		Blobs:     map[digest.Digest][]byte{sd: statement, digest.FromBytes(config): config},
	}
	p.Manifest, err = json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:    p.Layers,
	})
	if err != nil {
		return Pushed{}, ocispec.Descriptor{}, fmt.Errorf("attestation manifest: %w", err)
	}
	p.Digest = digest.FromBytes(p.Manifest)
	desc := ocispec.Descriptor{
		MediaType: p.MediaType,
		Digest:    p.Digest,
		Size:      int64(len(p.Manifest)),
		Platform:  &pl,
		Annotations: map[string]string{
			"vnd.docker.reference.digest": subject.Digest.String(),
			"vnd.docker.reference.type":   "attestation-manifest",
		},
	}
	return p, desc, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
