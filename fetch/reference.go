package fetch

import (
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/fetch/auth"
)

// Reference is a parsed image reference with Docker's normalisation.
type Reference struct {
	Domain string        // "docker.io", "ghcr.io", "127.0.0.1:5000"
	Path   string        // "library/debian"
	Tag    string        // "latest" when neither tag nor digest was given; kept when both are
	Digest digest.Digest // "" unless @sha256:...
}

// ParseReference parses an image reference the way Docker does: "debian" is
// docker.io/library/debian:latest, "host:5000/a/b@sha256:..." names a
// manifest by digest. Errors wrap ErrInvalidReference.
func ParseReference(s string) (Reference, error) {
	n, err := parseNamed(s)
	if err != nil {
		return Reference{}, errorf(ErrInvalidReference, "invalid image reference %q: %s", s, err)
	}
	r := Reference{Domain: n.domain, Path: n.path, Tag: n.tag, Digest: n.digest}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// Errors of parseNamed, worded for a user.
var (
	errReferenceFormat = errors.New("invalid reference format")
	errUppercase       = errors.New("repository name must be lowercase")
	errImageID         = errors.New("a 64-character hex string is an image ID, not a reference")
	errNameTooLong     = errors.New("repository name must not be more than 255 characters")
)

// named is an image reference taken apart: tag and digest are "" when not given.
type named struct {
	domain, path, tag string
	digest            digest.Digest
}

// parseNamed parses s as distribution/reference's ParseNormalizedNamed does, grammar,
// Docker Hub defaults ("debian" is docker.io/library/debian, index.docker.io is docker.io)
// and all (TestParseLikeDistribution holds the two to the same answers), followed by
// checkDigest. It is a loop over the bytes because that library compiles its regexps
// when the program starts: 3,600 allocations and 400 KB on every start of roots, a tenth
// of a warm overlay pull's page faults.
func parseNamed(s string) (named, error) {
	if s == "" {
		return named{}, errors.New("empty")
	}
	if len(s) == 64 && strings.Trim(s, "0123456789abcdef") == "" {
		return named{}, errImageID
	}
	var n named
	if at := strings.IndexByte(s, '@'); at >= 0 {
		s, n.digest = s[:at], digest.Digest(s[at+1:])
		if !digestSyntax(string(n.digest)) {
			return named{}, fmt.Errorf("%w: digest %q: want ALGORITHM:HEX, as sha256: and 64 hex digits", errReferenceFormat, n.digest)
		}
	}
	if c := strings.LastIndexByte(s, ':'); c > strings.LastIndexByte(s, '/') {
		s, n.tag = s[:c], s[c+1:]
		if !validTag(n.tag) {
			return named{}, fmt.Errorf("%w: tag %q: a tag is up to 128 letters, digits, _ . and -, not starting with . or -", errReferenceFormat, n.tag)
		}
	}
	n.domain, n.path = splitDomain(s)
	if strings.ToLower(n.path) != n.path {
		return named{}, errUppercase
	}
	if !domainSyntax(n.domain) {
		return named{}, fmt.Errorf("%w: registry %q: want a host name or [IPv6 address], and :PORT if any", errReferenceFormat, n.domain)
	}
	if !pathSyntax(n.path) {
		return named{}, fmt.Errorf("%w: repository %q: want lower-case letters and digits, in components joined by /, and within one by . _ __ or -", errReferenceFormat, n.path)
	}
	if len(n.path) > 255 {
		return named{}, errNameTooLong
	}
	if n.digest != "" {
		if err := checkDigest(n.digest); err != nil {
			return named{}, err
		}
	}
	return n, nil
}

// splitDomain splits a name into its registry and repository the way Docker
// does: the first component is the registry when it is localhost or holds a
// "." or ":" or an upper-case letter; otherwise the registry is Docker Hub,
// where a one-component name is an official image (library/NAME).
func splitDomain(name string) (domain, path string) {
	first, rest, ok := strings.Cut(name, "/")
	switch {
	case !ok:
		domain, path = "docker.io", name
	case first == "index.docker.io":
		domain, path = "docker.io", rest
	case first == "localhost", strings.ContainsAny(first, ".:"), strings.ToLower(first) != first:
		domain, path = first, rest
	default:
		domain, path = "docker.io", name
	}
	if domain == "docker.io" && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	return domain, path
}

// domainSyntax reports whether d is host[:port], the host a DNS name
// (components of letters, digits and inner dashes, joined by dots) or an IPv6
// address in brackets.
func domainSyntax(d string) bool {
	host, port := d, ""
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return false
		}
		host, port = d[:end+1], d[end+1:]
		if len(host) == 2 || strings.Trim(host[1:end], "0123456789abcdefABCDEF:") != "" {
			return false
		}
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
			if port == "" {
				return false
			}
		}
	} else {
		var hasPort bool
		host, port, hasPort = strings.Cut(d, ":")
		if hasPort && port == "" {
			return false
		}
		for _, c := range strings.Split(host, ".") {
			if c == "" || c[0] == '-' || c[len(c)-1] == '-' || strings.Trim(c, alnum+"ABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
				return false
			}
		}
	}
	return strings.Trim(port, "0123456789") == ""
}

const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"

// pathSyntax reports whether p is components of lower-case letters and
// digits joined by "/", each component's runs of letters and digits
// separated by one ".", one or two "_", or any number of "-".
func pathSyntax(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == "" {
			return false
		}
		for i := 0; i < len(c); {
			j := i
			for j < len(c) && strings.IndexByte(alnum, c[j]) >= 0 {
				j++
			}
			if j == i { // a component starts, and a separator ends, with a letter or digit
				return false
			}
			if j == len(c) {
				break
			}
			k := j
			for k < len(c) && strings.IndexByte(alnum, c[k]) < 0 {
				k++
			}
			if sep := c[j:k]; sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
				return false
			}
			if k == len(c) {
				return false
			}
			i = k
		}
	}
	return true
}

// digestSyntax reports whether d is algorithm:hex as a reference may hold it:
// the algorithm's components start with a letter, hold letters and digits,
// and are joined by one of "-_+."; then come at least 32 hex digits.
func digestSyntax(d string) bool {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 32 || strings.Trim(hex, "0123456789abcdefABCDEF") != "" {
		return false
	}
	start := true // a component starts here: a letter must come
	for _, c := range []byte(algo) {
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			start = false
		case '0' <= c && c <= '9' && !start:
		case strings.IndexByte("-_+.", c) >= 0 && !start:
			start = true
		default:
			return false
		}
	}
	return !start
}

// checkDigest accepts only sha256 and sha512 digests with an encoded part of
// the right length and alphabet, so that a digest is safe to use in a URL or
// a file name.
func checkDigest(d digest.Digest) error {
	algo, _, ok := strings.Cut(string(d), ":")
	if !ok {
		return fmt.Errorf("digest %q: not algorithm:hex", d)
	}
	switch digest.Algorithm(algo) {
	case digest.SHA256, digest.SHA512:
	default:
		return fmt.Errorf("digest %q: algorithm must be sha256 or sha512", d)
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d, err)
	}
	return nil
}

// String is the canonical form: "docker.io/library/debian:latest",
// "host:5000/a/b@sha256:...", "host/repo:tag@sha256:...".
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Name is the repository without tag or digest: "docker.io/library/debian".
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// APIHost is the host that serves the registry API: registry-1.docker.io
// for Docker Hub, the domain itself otherwise.
func (r Reference) APIHost() string {
	if r.Domain == "docker.io" {
		return "registry-1.docker.io"
	}
	return r.Domain
}

// Loopback reports whether the registry is on this machine (localhost,
// 127.0.0.0/8, ::1), where plain HTTP is allowed.
func (r Reference) Loopback() bool { return loopbackHost(r.Domain) }

// loopbackHost reports whether host (with or without a port) is a loopback name.
func loopbackHost(hostport string) bool { return auth.Loopback(hostport) }

// check validates a Reference that may not come from ParseReference before
// any part of it goes into a URL.
func (r Reference) check() error {
	if r.Domain == "" || r.Path == "" || (r.Tag == "" && r.Digest == "") {
		return errorf(ErrInvalidReference, "invalid image reference %q: incomplete", r.String())
	}
	if r.Digest != "" {
		if err := checkDigest(r.Digest); err != nil {
			return errorf(ErrInvalidReference, "invalid image reference %q: %w", r.String(), err)
		}
	}
	if _, err := ParseReference(r.String()); err != nil {
		return err
	}
	return nil
}

// manifestRef is what goes after /manifests/: the digest when there is one
// (it is what was asked for, exactly), else the tag.
func (r Reference) manifestRef() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// WithDigest returns the same repository pinned to d, keeping the tag for
// messages.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.Digest = d
	return r
}
