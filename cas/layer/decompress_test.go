package layer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func gz(t *testing.T, parts ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, p := range parts { // one gzip member per part
		zw := gzip.NewWriter(&out)
		zw.Write(p)
		must(t, zw.Close())
	}
	return out.Bytes()
}

func zst(t *testing.T, parts ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, p := range parts { // one zstd frame per part
		zw, err := zstd.NewWriter(&out)
		must(t, err)
		zw.Write(p)
		must(t, zw.Close())
	}
	return out.Bytes()
}

func TestDecompress(t *testing.T) {
	layer := tarOf(t, "", []ent{reg("a", "aaaa"), reg("b", "bbbb")})
	half := len(layer) / 2
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4}, zst(t, layer)...)
	tests := []struct {
		name      string
		mediaType string
		blob      []byte
		err       error
	}{
		{"OCITar", "application/vnd.oci.image.layer.v1.tar", layer, nil},
		{"OCIGzip", "application/vnd.oci.image.layer.v1.tar+gzip", gz(t, layer), nil},
		{"OCIZstd", "application/vnd.oci.image.layer.v1.tar+zstd", zst(t, layer), nil},
		{"DockerGzip", "application/vnd.docker.image.rootfs.diff.tar.gzip", gz(t, layer), nil},
		{"DockerForeignGzip", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", gz(t, layer), nil},
		{"NondistributableGzip", "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", gz(t, layer), nil},
		{"GzipMultiMember", "application/vnd.oci.image.layer.v1.tar+gzip", gz(t, layer[:half], layer[half:]), nil},
		{"ZstdMultiFrame", "application/vnd.oci.image.layer.v1.tar+zstd", zst(t, layer[:half], layer[half:]), nil},
		{"ZstdSkippableFrameFirst", "application/vnd.oci.image.layer.v1.tar+zstd", skippable, nil},
		{"EmptyTar", "application/vnd.oci.image.layer.v1.tar", nil, nil},
		{"GzipTypePlainBytes", "application/vnd.oci.image.layer.v1.tar+gzip", layer, ErrCompressionMismatch},
		{"GzipTypeZstdBytes", "application/vnd.docker.image.rootfs.diff.tar.gzip", zst(t, layer), ErrCompressionMismatch},
		{"ZstdTypeGzipBytes", "application/vnd.oci.image.layer.v1.tar+zstd", gz(t, layer), ErrCompressionMismatch},
		{"TarTypeGzipBytes", "application/vnd.oci.image.layer.v1.tar", gz(t, layer), ErrCompressionMismatch},
		{"GzipTypeEmpty", "application/vnd.oci.image.layer.v1.tar+gzip", nil, ErrCompressionMismatch},
		{"UnknownType", "application/vnd.oci.image.layer.v1.tar+bzip2", layer, ErrUnsupportedMediaType},
		{"EncryptedType", "application/vnd.oci.image.layer.v1.tar+gzip+encrypted", gz(t, layer), ErrUnsupportedMediaType},
		{"ConfigType", "application/vnd.oci.image.config.v1+json", layer, ErrUnsupportedMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := Decompress(tc.mediaType, bytes.NewReader(tc.blob))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			want := layer
			if tc.blob == nil {
				want = nil
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got %d bytes, want the %d bytes of the tar", len(got), len(want))
			}
		})
	}
}

func TestDecompressCorruptGzipFails(t *testing.T) {
	blob := gz(t, tarOf(t, "", []ent{reg("a", "aaaa")}))
	blob[len(blob)-6] ^= 0xff // the CRC
	rc, err := Decompress("application/vnd.oci.image.layer.v1.tar+gzip", bytes.NewReader(blob))
	must(t, err)
	defer rc.Close()
	if _, err := io.ReadAll(rc); err == nil {
		t.Error("a gzip layer with a bad CRC decompressed without error")
	}
}
