package registrytest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var twoLayers = []Layer{
	{Entries: []Entry{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/sh", Mode: 0o755, Body: []byte("#!/bin/true\n")},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	}},
	{Entries: []Entry{
		{Name: "bin/bash", Type: tar.TypeSymlink, Linkname: "sh"},
		{Name: "bin/.wh.sh"},
		{Name: "etc/passwd", Uid: 0, Gid: 0, Body: []byte("root:x:0:0::/root:/bin/sh\n")},
	}},
}

func TestPushSingleImage(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{Auth: Token})
	tests := []struct {
		name        string
		format      Format
		compression Compression
		manifest    string
		config      string
		layer       string
	}{
		{"OCIGzip", OCI, Gzip, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip},
		{"OCIZstd", OCI, Zstd, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerZstd},
		{"OCIUncompressed", OCI, Uncompressed, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayer},
		{"DockerGzip", Docker, Gzip, MediaTypeDockerManifest, MediaTypeDockerConfig, MediaTypeDockerLayerGzip},
		{"DockerZstd", Docker, Zstd, MediaTypeDockerManifest, MediaTypeDockerConfig, ocispec.MediaTypeImageLayerZstd},
		{"DockerUncompressed", Docker, Uncompressed, MediaTypeDockerManifest, MediaTypeDockerConfig, MediaTypeDockerLayer},
		{"DefaultIsOCIGzip", OCI, "", ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := Image{Format: tt.format, Config: map[string]any{"config": map[string]any{"Env": []string{"A=b"}}}}
			for _, l := range twoLayers {
				l.Compression = tt.compression
				img.Layers = append(img.Layers, l)
			}
			repo := "img/" + strings.ToLower(tt.name) // repository names are lower case
			p := r.Push(t, repo, "latest", img)
			c := newClient(t, r)

			resp, body := c.get("/v2/"+repo+"/manifests/latest", http.Header{"Accept": {tt.manifest}})
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, p.Manifest) {
				t.Fatalf("GET manifest: %s, %s", resp.Status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.manifest || p.MediaType != tt.manifest {
				t.Fatalf("manifest Content-Type %q, Pushed.MediaType %q, want %q", ct, p.MediaType, tt.manifest)
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tt.manifest || m.Config.MediaType != tt.config || !reflect.DeepEqual(m.Layers, p.Layers) {
				t.Fatalf("manifest %s", body)
			}

			config := c.blob(t, repo, m.Config.Digest)
			var cfg struct {
				OS, Architecture string
				RootFS           struct {
					DiffIDs []digest.Digest `json:"diff_ids"`
				} `json:"rootfs"`
				Config struct{ Env []string }
			}
			if err := json.Unmarshal(config, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.OS != runtime.GOOS || cfg.Architecture != runtime.GOARCH || !reflect.DeepEqual(cfg.RootFS.DiffIDs, p.DiffIDs) || len(cfg.Config.Env) != 1 {
				t.Fatalf("config %s", config)
			}

			for i, l := range m.Layers {
				if l.MediaType != tt.layer {
					t.Errorf("layer %d media type %s, want %s", i, l.MediaType, tt.layer)
				}
				tarBytes := decompress(t, l.MediaType, c.blob(t, repo, l.Digest))
				if digest.FromBytes(tarBytes) != p.DiffIDs[i] {
					t.Errorf("layer %d diff id %s, pushed %s", i, digest.FromBytes(tarBytes), p.DiffIDs[i])
				}
				if got, want := tarNames(t, tarBytes), entryNames(twoLayers[i].Entries); !reflect.DeepEqual(got, want) {
					t.Errorf("layer %d entries %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestPushIndex(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{Auth: Basic, TLS: true})
	platforms := []Image{
		{Layers: twoLayers[:1], Arch: "amd64"},
		{Layers: twoLayers, Arch: "arm64", Variant: "v8"},
	}
	tests := []struct {
		format    Format
		mediaType string
		entries   int // manifests listed: images, plus attestations for OCI
	}{
		{OCI, ocispec.MediaTypeImageIndex, 4},
		{Docker, MediaTypeDockerManifestList, 2},
	}
	for _, tt := range tests {
		p := r.PushIndex(t, "multi", "f"+[]string{"oci", "docker"}[tt.format], tt.format, platforms...)
		c := newClient(t, r)
		resp, body := c.get("/v2/multi/manifests/f"+[]string{"oci", "docker"}[tt.format], acceptAll)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, p.Manifest) || p.MediaType != tt.mediaType {
			t.Fatalf("GET index: %s %s", resp.Status, body)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); err != nil {
			t.Fatal(err)
		}
		if idx.MediaType != tt.mediaType || len(idx.Manifests) != tt.entries || len(p.Manifests) != 2 {
			t.Fatalf("index %s", body)
		}
		images := 0
		for _, d := range idx.Manifests {
			resp, body := c.get("/v2/multi/manifests/"+d.Digest.String(), acceptAll)
			if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != d.Digest || !bytes.Equal(body, p.Blobs[d.Digest]) {
				t.Fatalf("GET child %s: %s", d.Digest, resp.Status)
			}
			if d.Platform.OS == "unknown" {
				if tt.format != OCI || d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" ||
					d.Annotations["vnd.docker.reference.digest"] != p.Manifests[images-1].Digest.String() {
					t.Fatalf("attestation entry %+v", d)
				}
				continue
			}
			want := p.Manifests[images]
			if d.Digest != want.Digest || d.Platform.Architecture != platforms[images].Arch || d.Platform.Variant != platforms[images].Variant {
				t.Fatalf("entry %d: %+v, want %s %s/%s", images, d, want.Digest, platforms[images].Arch, platforms[images].Variant)
			}
			images++
		}
		if images != 2 {
			t.Fatalf("%d image entries, want 2", images)
		}
	}
}

func TestPushBlobAndRaw(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{})
	data := []byte("just some bytes")
	d := r.PushBlob(t, "raw", data)
	if again := r.PushBlob(t, "raw", data); again != d || d != digest.FromBytes(data) {
		t.Fatalf("PushBlob digests %s, %s", d, again)
	}
	c := newClient(t, r)
	if got := c.blob(t, "raw", d); !bytes.Equal(got, data) {
		t.Fatalf("blob %q", got)
	}

	cfg := r.PushBlob(t, "raw", []byte("{}"))
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfg.String() + `","size":2},` +
		`"layers":[],"annotations":{"why":"hand written"}}`)
	md := r.PushRaw(t, "raw", "hand", ocispec.MediaTypeImageManifest, manifest)
	resp, body := c.get("/v2/raw/manifests/hand", acceptAll)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, manifest) || md != digest.FromBytes(manifest) {
		t.Fatalf("GET raw manifest: %s %s", resp.Status, body)
	}
}

func TestTarBytesKeepsEveryEntryType(t *testing.T) {
	t.Parallel()
	entries := []Entry{
		{Name: "d/", Type: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000},
		{Name: "d/f", Body: []byte("x"), Xattrs: map[string]string{"user.k": "v"}},
		{Name: "d/l", Type: tar.TypeSymlink, Linkname: "f"},
		{Name: "d/h", Type: tar.TypeLink, Linkname: "d/f"},
		{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "fifo", Type: tar.TypeFifo},
	}
	tr := tar.NewReader(bytes.NewReader(TarBytes(entries)))
	for i, e := range entries {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := e.Header()
		if h.Name != want.Name || h.Typeflag != want.Typeflag || h.Mode != want.Mode || h.Uid != e.Uid ||
			h.Linkname != e.Linkname || !h.ModTime.Equal(EntryTime) || h.Devmajor != e.Devmajor || h.Devminor != e.Devminor {
			t.Errorf("entry %d: %+v, want %+v", i, h, want)
		}
		for k, v := range e.Xattrs {
			if h.PAXRecords["SCHILY.xattr."+k] != v {
				t.Errorf("entry %d: xattr %s missing: %v", i, k, h.PAXRecords)
			}
		}
		body, _ := io.ReadAll(tr)
		if !bytes.Equal(body, e.Body) {
			t.Errorf("entry %d body %q", i, body)
		}
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after last entry: %v", err)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	t.Parallel()
	for _, c := range []Compression{Gzip, Zstd, Uncompressed} {
		img := Image{Layers: []Layer{{Entries: twoLayers[1].Entries, Compression: c}}}
		if a, b := Build(t, img), Build(t, img); a.Digest != b.Digest {
			t.Fatalf("%s: two builds differ: %s, %s", c, a.Digest, b.Digest)
		}
	}
}

func (c *client) blob(t *testing.T, repo string, d digest.Digest) []byte {
	t.Helper()
	resp, body := c.get("/v2/"+repo+"/blobs/"+d.String(), nil)
	if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != d {
		t.Fatalf("GET blob %s: %s, digest %s", d, resp.Status, digest.FromBytes(body))
	}
	return body
}

func decompress(t *testing.T, mediaType string, blob []byte) []byte {
	t.Helper()
	var rd io.Reader
	switch mediaType {
	case ocispec.MediaTypeImageLayerGzip, MediaTypeDockerLayerGzip:
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		rd = zr
	case ocispec.MediaTypeImageLayerZstd:
		zr, err := zstd.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		rd = zr
	default:
		rd = bytes.NewReader(blob)
	}
	out, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("decompress %s: %v", mediaType, err)
	}
	return out
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func entryNames(es []Entry) []string {
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
	}
	return names
}
