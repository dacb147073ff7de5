package fetch

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// distributionParse is ParseReference as distribution/reference answers it:
// ParseNormalizedNamed, latest when neither tag nor digest is given, then
// checkDigest. ok is false when either refuses s.
func distributionParse(s string) (r Reference, ok bool) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, false
	}
	n = reference.TagNameOnly(n)
	r = Reference{Domain: reference.Domain(n), Path: reference.Path(n)}
	if t, ok := n.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := n.(reference.Digested); ok {
		r.Digest = d.Digest()
		if checkDigest(r.Digest) != nil {
			return Reference{}, false
		}
	}
	return r, true
}

// TestParseLikeDistribution holds ParseReference to distribution/reference's
// answer on hand-picked references and on 300,000 made of the grammar's
// pieces. One difference is meant: where the first component is taken for a
// registry but is no host name ("a_b.io/x"), that library parses the whole
// as a repository with no registry; roots refuses it.
func TestParseLikeDistribution(t *testing.T) {
	picked := []string{
		"debian", "debian:12", "docker.io/debian", "index.docker.io/library/debian", "user/app",
		"ghcr.io/owner/app:v1.2", "host:5000/repo:tag", "127.0.0.1:5000/a/b/c", "localhost",
		"localhost/foo", "localhost:5000/foo", "localhost:5000", "[::1]:5000/foo", "[::1]/foo",
		"[::1]:5000", "[]:5000/foo", "[::g]/foo", "repo@" + sha, "repo:tag@" + sha, "quay.io/x/y@" + sha512,
		"Debian", "host:5000/Foo/bar", "Host:5000/foo", "HOST/foo", "a//b", ":tag", "debian:", "debian 12",
		hex64, hex64 + ":tag", "x/" + hex64, "repo@sha256:abc", "repo@md5:" + hex64[:32],
		"repo@sha384:" + hex64 + hex64[:32], "repo@sha256:../../etc/passwd", "repo@SHA256:" + hex64,
		"repo@sha256:" + strings.ToUpper(hex64), "repo@sha256+b64:" + hex64, "repo@@" + sha, "repo@" + sha + "@x",
		"repo:" + strings.Repeat("a", 128), "repo:" + strings.Repeat("a", 129), "repo:-x", "repo:.x", "repo:_x",
		"a__b/c", "a___b/c", "a--------b/c", "a._b/c", "a.b.c/d", "-a/b", "a-/b", "a/b-", "a/-b", "a/b_",
		"a/.b", "x.io/a..b", "x.io/a.b", "host-/x", "-host.io/x", "ho-st.io/x", "host.io:/x", "host.io:5x/x",
		"host.io:50:00/x", "a_b.io/x", "foo:tag/bar", "/foo", "foo/", "docker.io", "docker.io/", "index.docker.io/x",
		"localhost:5000/" + strings.Repeat("a", 255), "localhost:5000/" + strings.Repeat("a", 256),
		strings.Repeat("a", 247), strings.Repeat("a", 248), "docker.io/" + strings.Repeat("a/", 127) + "a",
	}
	pieces := []string{
		"a", "b", "z9", "0", "Ab", "X", "localhost", "docker.io", "index.docker.io", "ghcr.io", "127.0.0.1",
		"[::1]", "[", "]", "::", ":", ":5000", "/", "/", "/", ".", "_", "__", "-", "--", "@", "@" + sha, "@sha256:",
		hex64[:32], hex64, ":latest", ":v1.2", "+", " ", "é", "\x00", "%2e", "..",
	}
	rnd := rand.New(rand.NewPCG(14, 2026))
	cases := picked
	for range 300_000 {
		var b strings.Builder
		for range 1 + rnd.IntN(7) {
			b.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		cases = append(cases, b.String())
	}
	agree, refused := 0, 0
	for _, s := range cases {
		want, wantOK := distributionParse(s)
		got, err := ParseReference(s)
		switch {
		case wantOK && want.Domain == "":
			if err == nil {
				t.Errorf("%q: parsed as %#v; want an error (no registry)", s, got)
			}
		case wantOK != (err == nil):
			t.Errorf("%q: error %v; distribution/reference: %#v, ok %v", s, err, want, wantOK)
		case wantOK && got != want:
			t.Errorf("%q: %#v; distribution/reference: %#v", s, got, want)
		case wantOK:
			agree++
		default:
			refused++
		}
	}
	t.Logf("%d alike, %d refused", agree, refused)
	if agree < 10_000 || refused < 10_000 {
		t.Errorf("the cases test little: %d parsed alike, %d refused by both", agree, refused)
	}
}
