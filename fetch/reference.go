package fetch

import (
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"
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
	if s == "" {
		return Reference{}, errorf(ErrInvalidReference, "invalid image reference %q: empty", s)
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, errorf(ErrInvalidReference, "invalid image reference %q: %s", s, referenceCause(err))
	}
	named = reference.TagNameOnly(named)
	r := Reference{Domain: reference.Domain(named), Path: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest()
		if err := checkDigest(r.Digest); err != nil {
			return Reference{}, errorf(ErrInvalidReference, "invalid image reference %q: %s", s, err)
		}
	}
	return r, nil
}

// referenceCause shortens the distribution/reference messages to what a
// user needs to read.
func referenceCause(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, reference.ErrNameContainsUppercase), strings.Contains(msg, "must be lowercase"):
		return reference.ErrNameContainsUppercase.Error()
	case strings.Contains(msg, "64-byte hexadecimal"):
		return "a 64-character hex string is an image ID, not a reference"
	}
	return msg
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
