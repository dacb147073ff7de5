package fetch

import (
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestManifestMediaType(t *testing.T) {
	const (
		ociIndex    = ocispec.MediaTypeImageIndex
		ociManifest = ocispec.MediaTypeImageManifest
	)
	tests := []struct {
		name        string
		contentType string
		body        string
		want        string
		err         error
	}{
		{"OCIManifest", ociManifest, `{"schemaVersion":2,"mediaType":"` + ociManifest + `","config":{}}`, ociManifest, nil},
		{"OCIManifestWithoutMediaType", ociManifest, `{"schemaVersion":2,"config":{}}`, ociManifest, nil},
		{"OCIIndex", ociIndex, `{"schemaVersion":2,"mediaType":"` + ociIndex + `","manifests":[]}`, ociIndex, nil},
		{"DockerManifest", MediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `"}`, MediaTypeDockerManifest, nil},
		{"DockerList", MediaTypeDockerManifestList + "; charset=utf-8", `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifestList + `"}`, MediaTypeDockerManifestList, nil},
		{"GenericContentTypeTrustsBody", "application/json", `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `"}`, MediaTypeDockerManifest, nil},
		{"NoContentTypeGuessesIndex", "", `{"schemaVersion":2,"manifests":[{}]}`, ociIndex, nil},
		{"NoContentTypeGuessesManifest", "", `{"schemaVersion":2,"config":{}}`, ociManifest, nil},
		{"Schema1ContentType", MediaTypeDockerSchema1Signed, `{"schemaVersion":1}`, "", ErrUnsupportedManifest},
		{"Schema1Body", "application/json", `{"schemaVersion":1,"name":"x","fsLayers":[]}`, "", ErrUnsupportedManifest},
		{"Schema1BodyUnderSchema2Type", MediaTypeDockerManifest, `{"schemaVersion":1}`, "", ErrUnsupportedManifest},
		{"MediaTypeContradictsContentType", ociManifest, `{"schemaVersion":2,"mediaType":"` + ociIndex + `"}`, "", ErrInvalidManifest},
		{"DockerBodyUnderOCIType", ociManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `"}`, "", ErrInvalidManifest},
		{"ArtifactType", "application/vnd.oci.artifact.manifest.v1+json", `{"schemaVersion":2}`, "", ErrUnsupportedManifest},
		{"SchemaVersion3", ociManifest, `{"schemaVersion":3}`, "", ErrUnsupportedManifest},
		{"NotJSON", ociManifest, `<html>`, "", ErrInvalidManifest},
		{"Unguessable", "", `{"schemaVersion":2}`, "", ErrUnsupportedManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := manifestMediaType(tt.contentType, []byte(tt.body))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %q, %v; want an error wrapping %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSchema1Message(t *testing.T) {
	_, err := manifestMediaType(MediaTypeDockerSchema1, []byte(`{"schemaVersion":1}`))
	if err == nil || !strings.Contains(err.Error(), "schema1 manifests are deprecated and not supported: push the image again") {
		t.Errorf("schema1 error = %v", err)
	}
}

func TestManifestDigest(t *testing.T) {
	body := []byte(`{"schemaVersion":2}`)
	d256 := digest.SHA256.FromBytes(body)
	d512 := digest.SHA512.FromBytes(body)
	other := digest.SHA256.FromString("other")
	tests := []struct {
		name   string
		ref    digest.Digest
		header string
		want   digest.Digest
		err    error
	}{
		{"ByTag", "", "", d256, nil},
		{"ByTagHeaderAgrees", "", d256.String(), d256, nil},
		{"ByTagHeaderDisagrees", "", other.String(), "", ErrDigestMismatch},
		{"ByTagMalformedHeaderIgnored", "", "sha256:nope", d256, nil},
		{"ByDigest", d256, d256.String(), d256, nil},
		{"BySha512", d512, d256.String(), d512, nil},
		{"ByWrongDigest", other, "", "", ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := Reference{Domain: "127.0.0.1:5000", Path: "x", Tag: "latest", Digest: tt.ref}
			got, err := manifestDigest(ref, body, tt.header)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %s, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	_, err := manifestDigest(Reference{Digest: other}, body, "")
	if err == nil || !strings.Contains(err.Error(), d256.String()) || !strings.Contains(err.Error(), other.String()) {
		t.Errorf("mismatch error %v does not name both digests", err)
	}
}

func TestParseImageManifestChecksDescriptors(t *testing.T) {
	good := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + sha + `","size":10}`
	tests := []struct {
		name, body string
		err        error
	}{
		{"Good", `{"schemaVersion":2,"config":` + good + `,"layers":[` + good + `]}`, nil},
		{"ConfigDigestTraversal", `{"schemaVersion":2,"config":{"digest":"sha256:../../x","size":1}}`, ErrInvalidManifest},
		{"LayerDigestMissing", `{"schemaVersion":2,"config":` + good + `,"layers":[{"size":1}]}`, ErrInvalidManifest},
		{"LayerNegativeSize", `{"schemaVersion":2,"config":` + good + `,"layers":[{"digest":"` + sha + `","size":-1}]}`, ErrInvalidManifest},
		{"Helm", `{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"` + sha + `","size":1}}`, ErrUnsupportedManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseImageManifest([]byte(tt.body))
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	p, ids, err := parseConfig([]byte(`{"os":"linux","architecture":"arm","variant":"v7","rootfs":{"type":"layers","diff_ids":["` + sha + `"]}}`))
	if err != nil || p != (Platform{"linux", "arm", "v7"}) || len(ids) != 1 || ids[0] != sha {
		t.Errorf("got %v %v %v", p, ids, err)
	}
	if _, _, err := parseConfig([]byte(`{"rootfs":{"diff_ids":["sha256:x"]}}`)); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("bad diff_id: got %v", err)
	}
}

func FuzzManifestMediaType(f *testing.F) {
	f.Add(ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":{}}`)
	f.Add("", `{"schemaVersion":2,"manifests":[]}`)
	f.Add(MediaTypeDockerSchema1, `{"schemaVersion":1}`)
	f.Add("application/json; charset=utf-8", `{"schemaVersion":2,"mediaType":"x"}`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		mt, err := manifestMediaType(contentType, []byte(body))
		if err != nil {
			return
		}
		if !IsIndex(mt) && !IsManifest(mt) {
			t.Fatalf("accepted media type %q", mt)
		}
		if IsIndex(mt) {
			if idx, err := parseIndex([]byte(body)); err == nil {
				for _, d := range idx.Manifests {
					if checkDigest(d.Digest) != nil {
						t.Fatalf("index kept a bad digest %q", d.Digest)
					}
				}
			}
		} else if m, err := parseImageManifest([]byte(body)); err == nil {
			for _, d := range append(m.Layers, m.Config) {
				if checkDigest(d.Digest) != nil || d.Size < 0 {
					t.Fatalf("manifest kept a bad descriptor %+v", d)
				}
			}
		}
	})
}
