package fetch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/internal/verify"
)

// Sentinel errors. Callers tell failures apart with errors.Is; the messages
// around them name the reference, digest or platform involved.
var (
	// ErrInvalidReference: the image reference does not parse.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrInvalidPlatform: the platform string does not parse.
	ErrInvalidPlatform = errors.New("invalid platform")
	// ErrNotFound: the registry has no such manifest or blob (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrUnsupportedManifest: a manifest kind roots does not handle
	// (schema1, an unknown media type, an index inside an index, ...).
	ErrUnsupportedManifest = errors.New("unsupported manifest")
	// ErrInvalidManifest: a manifest, index or config that is malformed or
	// contradicts itself (mediaType against Content-Type, bad descriptors,
	// diff_ids that do not match the layers).
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrNoMatchingPlatform: the image has no manifest for the platform asked for.
	ErrNoMatchingPlatform = errors.New("no matching platform")
	// ErrDigestMismatch: content does not hash to the digest it was asked by. It is
	// cas.ErrDigestMismatch: one error wherever the content came from.
	ErrDigestMismatch = verify.ErrDigestMismatch
	// ErrSizeMismatch: content's length differs from its descriptor's size (an upload's
	// stream, or what the registry received). It is cas.ErrSizeMismatch.
	ErrSizeMismatch = verify.ErrSizeMismatch
	// ErrTooLarge: a manifest, config or blob is larger than allowed or announced.
	ErrTooLarge = errors.New("too large")
	// ErrPlainHTTP: a registry answered plain HTTP where HTTPS was asked for, and plain HTTP is
	// not allowed for it (not loopback, not Options.Insecure).
	ErrPlainHTTP = errors.New("registry speaks plain HTTP")
	// ErrOffline: a Client made with Options.Offline was asked for something only a registry
	// has; no connection was opened.
	ErrOffline = errors.New("offline")
	// ErrUnauthorized is auth.ErrUnauthorized: the registry refused the
	// credentials, or asked for some and none were given.
	ErrUnauthorized = auth.ErrUnauthorized
)

// detailedError carries a message of its own while still matching its
// sentinel (and an optional cause) with errors.Is, so that a message can read
// naturally ("no linux/s390x image in ...") without a trailing sentinel text.
type detailedError struct {
	msg   string
	kind  error
	cause error
}

func (e *detailedError) Error() string { return e.msg }

func (e *detailedError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// errorf formats a message that matches kind with errors.Is. A %w in format
// is honoured as the cause.
func errorf(kind error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &detailedError{msg: err.Error(), kind: kind, cause: errors.Unwrap(err)}
}

// responseError turns an unexpected registry response into an error that
// names what was asked for (what, e.g. "manifest 127.0.0.1:5000/foo:bar")
// and carries the registry's own message when it sent one.
func responseError(resp *http.Response, what string) error {
	msg := registryMessage(resp)
	switch resp.StatusCode {
	case http.StatusNotFound:
		// "manifest unknown: 127.0.0.1:5000/foo:bar not found"
		return fmt.Errorf("%s unknown: %s %w", kindOf(what), nameOf(what), ErrNotFound)
	case http.StatusUnauthorized, http.StatusForbidden:
		if msg != "" {
			return fmt.Errorf("%s: %s (%s): %w", what, resp.Status, msg, ErrUnauthorized)
		}
		return fmt.Errorf("%s: %s: %w", what, resp.Status, ErrUnauthorized)
	}
	if msg != "" {
		return fmt.Errorf("%s: registry answered %s: %s", what, resp.Status, msg)
	}
	return fmt.Errorf("%s: registry answered %s", what, resp.Status)
}

// kindOf and nameOf split "manifest host/repo:tag" into its two words.
func kindOf(what string) string {
	k, _, _ := strings.Cut(what, " ")
	return k
}

func nameOf(what string) string {
	_, n, ok := strings.Cut(what, " ")
	if !ok {
		return what
	}
	return n
}

// registryMessage reads the registry's error body ({"errors":[{"code":
// "MANIFEST_UNKNOWN","message":"..."}]}) and returns its first message, or
// "" when there is none. It reads at most 64 KiB.
func registryMessage(resp *http.Response) string {
	_, msg := registryError(resp)
	return msg
}

// registryError is registryMessage with the error's code ("DIGEST_INVALID").
func registryError(resp *http.Response) (code, msg string) {
	if resp.Body == nil || resp.Request != nil && resp.Request.Method == http.MethodHead {
		return "", ""
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return "", ""
	}
	first := e.Errors[0]
	switch {
	case first.Message != "":
		return first.Code, first.Message
	default:
		return first.Code, strings.ToLower(strings.ReplaceAll(first.Code, "_", " "))
	}
}
