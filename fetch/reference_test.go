package fetch

import (
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sha    = "sha256:" + hex64
	sha512 = "sha512:" + hex64 + hex64
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		in       string
		want     Reference
		str      string
		apiHost  string
		loopback bool
	}{
		{"debian", Reference{"docker.io", "library/debian", "latest", ""}, "docker.io/library/debian:latest", "registry-1.docker.io", false},
		{"debian:12", Reference{"docker.io", "library/debian", "12", ""}, "docker.io/library/debian:12", "registry-1.docker.io", false},
		{"docker.io/debian", Reference{"docker.io", "library/debian", "latest", ""}, "docker.io/library/debian:latest", "registry-1.docker.io", false},
		{"index.docker.io/library/debian", Reference{"docker.io", "library/debian", "latest", ""}, "docker.io/library/debian:latest", "registry-1.docker.io", false},
		{"user/app", Reference{"docker.io", "user/app", "latest", ""}, "docker.io/user/app:latest", "registry-1.docker.io", false},
		{"ghcr.io/owner/app:v1.2", Reference{"ghcr.io", "owner/app", "v1.2", ""}, "ghcr.io/owner/app:v1.2", "ghcr.io", false},
		{"host:5000/repo:tag", Reference{"host:5000", "repo", "tag", ""}, "host:5000/repo:tag", "host:5000", false},
		{"127.0.0.1:5000/a/b/c", Reference{"127.0.0.1:5000", "a/b/c", "latest", ""}, "127.0.0.1:5000/a/b/c:latest", "127.0.0.1:5000", true},
		{"localhost/foo", Reference{"localhost", "foo", "latest", ""}, "localhost/foo:latest", "localhost", true},
		{"localhost:5000/foo", Reference{"localhost:5000", "foo", "latest", ""}, "localhost:5000/foo:latest", "localhost:5000", true},
		{"[::1]:5000/foo", Reference{"[::1]:5000", "foo", "latest", ""}, "[::1]:5000/foo:latest", "[::1]:5000", true},
		{"127.1.2.3/foo", Reference{"127.1.2.3", "foo", "latest", ""}, "127.1.2.3/foo:latest", "127.1.2.3", true},
		{"repo@" + sha, Reference{"docker.io", "library/repo", "", sha}, "docker.io/library/repo@" + sha, "registry-1.docker.io", false},
		{"host:5000/a/b@" + sha, Reference{"host:5000", "a/b", "", sha}, "host:5000/a/b@" + sha, "host:5000", false},
		{"repo:tag@" + sha, Reference{"docker.io", "library/repo", "tag", sha}, "docker.io/library/repo:tag@" + sha, "registry-1.docker.io", false},
		{"quay.io/x/y@" + sha512, Reference{"quay.io", "x/y", "", sha512}, "quay.io/x/y@" + sha512, "quay.io", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseReference(tt.in)
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
			if h := got.APIHost(); h != tt.apiHost {
				t.Errorf("APIHost() = %q, want %q", h, tt.apiHost)
			}
			if l := got.Loopback(); l != tt.loopback {
				t.Errorf("Loopback() = %v, want %v", l, tt.loopback)
			}
			again, err := ParseReference(got.String())
			if err != nil || again != got {
				t.Errorf("String() does not parse back: %#v, %v", again, err)
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	tests := []struct {
		name, in, msg string
	}{
		{"Uppercase", "Debian", `invalid image reference "Debian": repository name must be lowercase`},
		{"UppercaseWithHost", "host:5000/Foo/bar", "must be lowercase"},
		{"Empty", "", `invalid image reference ""`},
		{"DoubleSlash", "a//b", "invalid reference format"},
		{"OnlyTag", ":tag", "invalid reference format"},
		{"TrailingColon", "debian:", "invalid reference format"},
		{"Space", "debian 12", "invalid reference format"},
		{"ImageID", hex64, "image ID"},
		{"ShortDigest", "repo@sha256:abc", "invalid"},
		{"UppercaseDigest", "repo@sha256:" + strings.ToUpper(hex64), "invalid"},
		{"UnknownAlgorithm", "repo@md5:" + hex64[:32], "invalid"},
		{"Sha384NotAllowed", "repo@sha384:" + hex64 + hex64[:32], "sha256 or sha512"},
		{"DigestPathTraversal", "repo@sha256:../../etc/passwd", "invalid reference format"},
		{"TagTooLong", "repo:" + strings.Repeat("a", 129), "invalid"},
		{"BadTagNamed", "repo:-x", `tag "-x": a tag is up to 128 letters`},
		{"BadRegistryNamed", "a_b.io/x", `registry "a_b.io": want a host name`},
		{"BadRepositoryNamed", "x.io/a..b", `repository "a..b": want lower-case letters`},
		{"BadDigestNamed", "repo@sha256:xyz", `digest "sha256:xyz": want ALGORITHM:HEX`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReference(tt.in)
			if err == nil {
				t.Fatalf("ParseReference(%q) = %#v, want an error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalidReference) {
				t.Errorf("error %q does not wrap ErrInvalidReference", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestReferenceWithDigestKeepsTag(t *testing.T) {
	r, err := ParseReference("127.0.0.1:5000/x:v1")
	if err != nil {
		t.Fatal(err)
	}
	pinned := r.WithDigest(digest.Digest(sha))
	if got, want := pinned.String(), "127.0.0.1:5000/x:v1@"+sha; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := pinned.manifestRef(); got != sha {
		t.Errorf("manifestRef() = %q, want the digest", got)
	}
	if r.Digest != "" {
		t.Error("WithDigest changed its receiver")
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"debian", "host:5000/repo:tag", "repo@" + sha, "repo:tag@" + sha, "localhost/foo",
		"Debian", "a//b", ":tag", "", "[::1]:5000/x", "x@sha512:" + hex64 + hex64,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("error %q does not wrap ErrInvalidReference", err)
			}
			return
		}
		if r.Domain == "" || r.Path == "" || (r.Tag == "" && r.Digest == "") {
			t.Fatalf("incomplete reference %#v from %q", r, s)
		}
		if r.Digest != "" {
			if err := checkDigest(r.Digest); err != nil {
				t.Fatalf("accepted bad digest %q: %v", r.Digest, err)
			}
		}
		for _, part := range []string{r.Path, r.manifestRef()} {
			if strings.Contains(part, "..") || strings.ContainsAny(part, "?#% \\") {
				t.Fatalf("unsafe URL part %q from %q", part, s)
			}
		}
		again, err := ParseReference(r.String())
		if err != nil || again != r {
			t.Fatalf("%q → %q → %#v, %v", s, r.String(), again, err)
		}
	})
}
