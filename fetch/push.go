package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// The write side of the registry protocol: blob HEAD, cross-repository mount,
// blob upload (upload.go) and manifest PUT. They go through the same stack as
// pulls (auth over retry over scheme over the watchdog), with a client per
// target repository whose tokens carry "pull,push" on it, and for a mount
// "pull" on the source as well. Retries of what the retry transport does not
// resend (POST, PATCH, PUT) happen here, a whole upload session at a time.

// pushClient is the client for pushing to ref's repository; with from, it
// may also read from that repository of the same registry (a mount source).
func (c *Client) pushClient(ref Reference, from ...string) *http.Client {
	scopes := []string{"repository:" + ref.Path + ":pull,push"}
	for _, f := range from {
		scopes = append(scopes, "repository:"+f+":pull")
	}
	return c.scopedClient(ref, scopes...)
}

// BlobExists reports whether the repository of repo (its tag and digest are
// ignored) holds the blob d: HEAD /v2/<name>/blobs/<d>, 200 or 404. It asks
// for the push rights the push it precedes needs, so that one token serves
// both.
func (c *Client) BlobExists(ctx context.Context, repo Reference, d digest.Digest) (bool, error) {
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("check blob %s in %s: %w", d, repo.Name(), err)
	}
	if err := checkRepoDigest(repo, d); err != nil {
		return fail(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, endpoint(repo, "blobs", d.String()), nil)
	if err != nil {
		return fail(err)
	}
	resp, err := c.send(c.pushClient(repo), req)
	if err != nil {
		return fail(err)
	}
	defer drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return fail(pushStatusError(resp, repo))
}

// MountBlob asks the registry to link the blob d, which its repository from
// (a path on target's registry: "library/debian") holds, into target's
// repository without an upload: POST
// /v2/<name>/blobs/uploads/?mount=<d>&from=<from>. It reports true when the
// registry answers 201 Created (with a Docker-Content-Digest of d if it sends
// one). Its token asks for pull,push on target and pull on from, each its own
// scope.
//
// A registry that cannot mount (the source lacks the blob, the token has no
// pull on it, or it does not do mounts) answers 202 Accepted with a new upload
// session. MountBlob cancels that session (DELETE at its Location, best
// effort) and reports false; the caller then uploads with PushBlob, which
// opens its own session. Reusing the session would save one request, but
// would tie the mount to one upload's options and leave a session open when
// the caller decides not to upload.
func (c *Client) MountBlob(ctx context.Context, target Reference, d digest.Digest, from string) (bool, error) {
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("mount blob %s from %s into %s: %w", d, from, target.Name(), err)
	}
	if err := checkRepoDigest(target, d); err != nil {
		return fail(err)
	}
	if src, err := ParseReference(target.Domain + "/" + from); err != nil || src.Path != from {
		return fail(errorf(ErrInvalidReference, "invalid repository %q", from))
	}
	hc := c.pushClient(target, from)
	q := url.Values{"mount": {d.String()}, "from": {from}}
	start := endpoint(target, "blobs", "uploads/") + "?" + q.Encode()
	var mounted bool
	err := c.retrying(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, start, nil)
		if err != nil {
			return err
		}
		resp, err := c.send(hc, req)
		if err != nil {
			return againIfTransient(err)
		}
		defer drain(resp.Body)
		switch resp.StatusCode {
		case http.StatusCreated:
			mounted = true
			return checkStoredDigest(resp, d)
		case http.StatusAccepted:
			c.cancelUpload(ctx, hc, target, resp)
			return nil
		}
		return pushStatusError(resp, target)
	})
	if err != nil {
		return fail(err)
	}
	return mounted, nil
}

// cancelUpload ends the upload session a 202 opened, so that none is left
// open on the registry. It is best effort: a registry purges forgotten
// sessions on its own.
func (c *Client) cancelUpload(ctx context.Context, hc *http.Client, repo Reference, resp *http.Response) {
	loc, err := c.location(resp)
	if err != nil {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc.String(), nil)
	if err != nil {
		return
	}
	if resp, err := c.send(hc, req); err == nil {
		drain(resp.Body)
	}
}

// PushManifest stores body, byte for byte, as a manifest of mediaType (its
// Content-Type) under ref's digest if it has one, else under its tag: PUT
// /v2/<name>/manifests/<ref>. It returns the manifest's digest: ref's digest
// (which must be body's), or body's sha256. When the registry answers with
// Docker-Content-Digest, that must be body's digest too. A PUT that fails in
// a way that may pass (a cut connection, a 5xx) is sent again, at most
// Options.Retries times. Children go before the index that lists them, and
// blobs before the manifest: the registry refuses a manifest whose blobs it
// lacks.
func (c *Client) PushManifest(ctx context.Context, ref Reference, mediaType string, body []byte) (digest.Digest, error) {
	fail := func(err error) (digest.Digest, error) {
		return "", fmt.Errorf("push manifest %s: %w", ref, err)
	}
	if err := ref.check(); err != nil {
		return fail(err)
	}
	if mediaType == "" {
		return fail(errorf(ErrInvalidManifest, "no media type"))
	}
	d := digest.FromBytes(body)
	if ref.Digest != "" {
		if got := ref.Digest.Algorithm().FromBytes(body); got != ref.Digest {
			return fail(errorf(ErrDigestMismatch, "digest mismatch: the manifest's bytes are %s", got))
		}
		d = ref.Digest
	}
	hc := c.pushClient(ref)
	target := endpoint(ref, "manifests", ref.manifestRef())
	err := c.retrying(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", mediaType)
		resp, err := c.send(hc, req)
		if err != nil {
			return againIfTransient(err)
		}
		defer drain(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return pushStatusError(resp, ref)
		}
		return checkStoredDigest(resp, d)
	})
	if err != nil {
		return fail(err)
	}
	return d, nil
}

// checkStoredDigest compares the Docker-Content-Digest of a 201 with want,
// when the registry sent one.
func checkStoredDigest(resp *http.Response, want digest.Digest) error {
	v := resp.Header.Get("Docker-Content-Digest")
	if v == "" || v == want.String() {
		return nil
	}
	return errorf(ErrDigestMismatch, "digest mismatch: the registry stored %s", v)
}

// checkRepoDigest validates a repository (the tag and digest of repo do not
// matter) and a blob digest before they go into a URL.
func checkRepoDigest(repo Reference, d digest.Digest) error {
	if repo.Domain == "" || repo.Path == "" {
		return errorf(ErrInvalidReference, "invalid repository %q: incomplete", repo.Name())
	}
	if r, err := ParseReference(repo.Name()); err != nil {
		return err
	} else if r.Domain != repo.Domain || r.Path != repo.Path {
		return errorf(ErrInvalidReference, "invalid repository %q: not in canonical form", repo.Name())
	}
	if err := checkDigest(d); err != nil {
		return errorf(ErrInvalidReference, "invalid blob digest: %w", err)
	}
	return nil
}

// againError marks a failure that another attempt may not meet: a cut or
// stalled connection, a 5xx, 408 or 429, a range or session the registry
// lost track of. wait, if set, is the registry's Retry-After.
type againError struct {
	err  error
	wait time.Duration
}

func (e *againError) Error() string { return e.err.Error() }
func (e *againError) Unwrap() error { return e.err }

// againIfTransient marks a transport error worth another attempt.
func againIfTransient(err error) error {
	if transientError(err) || errors.Is(err, ErrStalled) {
		return &againError{err: err}
	}
	return err
}

// retrying runs try until it succeeds, fails with an error not marked with
// againError, the context ends, or it has run Options.Retries times; between
// attempts it waits as the retry transport does.
func (c *Client) retrying(ctx context.Context, try func() error) error {
	for attempt := 1; ; attempt++ {
		err := try()
		var again *againError
		if err == nil || !errors.As(err, &again) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		if attempt >= c.opts.Retries {
			return fmt.Errorf("%d attempts failed, the last: %w", attempt, err)
		}
		wait := again.wait
		if wait == 0 {
			wait = backoffDelay(c.opts.Backoff, attempt)
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// pushStatusError is the error for an unexpected answer to a push request,
// marked with againError when another attempt may do better. It reads the
// registry's error body.
func pushStatusError(resp *http.Response, repo Reference) error {
	code, msg := registryError(resp)
	detail := resp.Status
	if msg != "" {
		detail += ": " + msg
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("push access denied for %s: registry answered %s: %w", repo.Name(), detail, ErrUnauthorized)
	case code == "DIGEST_INVALID":
		return errorf(ErrDigestMismatch, "digest mismatch: the registry computed another digest for the uploaded bytes (%s)", detail)
	case code == "SIZE_INVALID":
		return errorf(ErrSizeMismatch, "size mismatch: the registry received another length than the descriptor's (%s)", detail)
	}
	err := fmt.Errorf("registry answered %s", detail)
	if retryable(resp, nil) || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable || code == "BLOB_UPLOAD_UNKNOWN" {
		wait, _ := retryAfter(resp.Header.Get("Retry-After"))
		return &againError{err: err, wait: wait}
	}
	return err
}

// location resolves the Location of an upload answer against the request
// that got it (it may be relative, and may name another host, such as an
// object store: the auth transport sends no credential there). A plain HTTP
// location is refused where plain HTTP is not allowed.
func (c *Client) location(resp *http.Response) (*url.URL, error) {
	v := resp.Header.Get("Location")
	if v == "" {
		return nil, fmt.Errorf("registry answered %s without a Location", resp.Status)
	}
	u, err := resp.Request.URL.Parse(v)
	if err != nil {
		return nil, fmt.Errorf("registry answered %s with a malformed Location %q", resp.Status, v)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("registry answered %s with a Location of scheme %q", resp.Status, u.Scheme)
	case u.Scheme == "http" && !c.opts.Insecure && !loopbackHost(u.Host):
		return nil, errorf(ErrPlainHTTP, "upload location %s is plain HTTP, which is not allowed for this host", u.Redacted())
	}
	return u, nil
}
