package roots

// Offline (PullOptions.Offline, InspectOptions.Offline, DigestOptions.Offline): the image is
// resolved from the cache alone and the registry client refuses every request (see
// fetch.Options.Offline), so that a path missed here fails loudly instead of connecting. A tag
// resolves through the cache's record of it (images/), a digest through the cached manifest;
// the manifest, index and config are checked as they are read (fetch.LocalResolve), the layers
// through their trees' fingerprints as in any warm pull (a changed tree is unpacked again from
// its cached blob, which is verified then). Whatever is missing or does not verify is an error
// wrapping ErrOffline that names the image and the digest.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// offlineError is a failure of an offline command: its own message, matching ErrOffline and
// what caused it (fetch.ErrNotFound, ErrDigestMismatch...) with errors.Is.
type offlineError struct {
	msg   string
	cause error
}

func (e *offlineError) Error() string   { return e.msg }
func (e *offlineError) Is(t error) bool { return t == ErrOffline }
func (e *offlineError) Unwrap() error   { return e.cause }

// offlinef formats an offline failure ("offline: " and the message); a %w is its cause.
func offlinef(format string, args ...any) error {
	err := fmt.Errorf("offline: "+format, args...)
	return &offlineError{msg: err.Error(), cause: errors.Unwrap(err)}
}

// offlineImage resolves r for want (nil: the host's platform, or whatever platform a
// single-platform image is) from the cache at root, with no request. For a tag it also
// returns when the record it used was made (zero for a digest).
func offlineImage(root string, r fetch.Reference, want *fetch.Platform) (*fetch.Image, time.Time, error) {
	if err := cas.Trusted(root); err != nil {
		return nil, time.Time{}, err // the cache is all there is: another user's is no source
	}
	blobs := cas.BlobDir(root)
	if r.Digest != "" {
		img, err := fetch.LocalResolve(blobs, r, r.Digest, want)
		if err != nil {
			return nil, time.Time{}, offlinef("%w", err)
		}
		return img, time.Time{}, nil
	}
	recs := cas.TaggedImages(root, r.Domain+"/"+r.Path)[r.Tag]
	if len(recs) == 0 {
		return nil, time.Time{}, offlinef("the cache has no record of %s", r)
	}
	// The newest record first: records of several platforms may have been made at
	// different times, when the tag named different images.
	slices.SortFunc(recs, func(a, b cas.ImageRecord) int { return b.Resolved.Compare(a.Resolved) })
	if rec, ok := chooseRecord(recs, want); ok {
		img, err := recordedImage(blobs, r, rec)
		return img, rec.Resolved, err
	}
	// No record of this platform: the index a record of the tag names may list it, and the
	// cache may hold its manifest (pulled by digest, or by another tag).
	p := fetch.HostPlatform()
	if want != nil {
		p = *want
	}
	var why error
	for _, rec := range recs {
		if rec.Index == "" {
			continue
		}
		img, err := fetch.LocalResolve(blobs, r, rec.Index, &p)
		if err == nil {
			return img, rec.Resolved, nil
		}
		if why == nil {
			why = err
		}
	}
	have := make([]string, len(recs))
	for i, rec := range recs {
		have[i] = rec.Platform
	}
	if why != nil {
		return nil, time.Time{}, offlinef("the cache has no %s image of %s (records of %s; %w)", p, r, strings.Join(have, ", "), why)
	}
	return nil, time.Time{}, offlinef("the cache has no %s image of %s (records of %s)", p, r, strings.Join(have, ", "))
}

// chooseRecord picks among a tag's records (newest first) the one of want's platform, or the
// host's; with no platform asked for, a single-platform image's record of any platform will do,
// as a pull of it would take whatever platform it is.
func chooseRecord(recs []cas.ImageRecord, want *fetch.Platform) (cas.ImageRecord, bool) {
	p := fetch.HostPlatform()
	if want != nil {
		p = *want
	}
	for _, rec := range recs {
		if have, err := fetch.ParsePlatform(rec.Platform); err == nil && p.Match(have) {
			return rec, true
		}
	}
	if want == nil {
		for _, rec := range recs {
			if rec.Index == "" {
				return rec, true
			}
		}
	}
	return cas.ImageRecord{}, false
}

// recordedImage reads the image rec names from the cache's blobs, checked: its manifest and
// config, and the index the record says the tag named, if the cache still has it (a record
// from before the cache kept indexes names it alone).
func recordedImage(blobs cas.BlobDir, r fetch.Reference, rec cas.ImageRecord) (*fetch.Image, error) {
	img, err := fetch.LocalImage(blobs, r, rec.Digest)
	if err != nil {
		return nil, offlinef("%w", err)
	}
	if rec.Index == "" {
		return img, nil
	}
	img.IndexDigest, img.IndexType = rec.Index, rec.IndexType
	if b, ok := blobs.Blob(rec.Index); ok {
		if got := rec.Index.Algorithm().FromBytes(b); got != rec.Index {
			return nil, offlinef("index %s of %s: %w", rec.Index, rec.Digest, kindErrorf(fetch.ErrDigestMismatch, "the cached content has digest %s", got))
		}
		img.Index = b
	}
	return img, nil
}

// offlineDigest is what the tag or digest r resolves to, from the cache: the index's digest
// for a multi-platform image and the manifest's for another, or with want the digest of
// want's manifest. The blob it names is read and checked.
func offlineDigest(root string, r fetch.Reference, want *fetch.Platform) (digest.Digest, time.Time, error) {
	if want != nil || r.Digest != "" {
		img, at, err := offlineImage(root, r, want)
		if err != nil {
			return "", time.Time{}, err
		}
		if want == nil && img.IndexDigest != "" {
			return img.IndexDigest, at, nil
		}
		return img.Digest, at, nil
	}
	if err := cas.Trusted(root); err != nil {
		return "", time.Time{}, err
	}
	// A tag with no platform asked for: what the tag named when it was recorded, the host's
	// record first, else the newest of any platform (all name the same index).
	recs := cas.TaggedImages(root, r.Domain+"/"+r.Path)[r.Tag]
	if len(recs) == 0 {
		return "", time.Time{}, offlinef("the cache has no record of %s", r)
	}
	slices.SortFunc(recs, func(a, b cas.ImageRecord) int { return b.Resolved.Compare(a.Resolved) })
	rec, ok := chooseRecord(recs, nil)
	if !ok {
		rec = recs[0]
	}
	d := rec.Digest
	if rec.Index != "" {
		d = rec.Index
	}
	b, ok := cas.BlobDir(root).Blob(d)
	switch {
	case !ok:
		return "", time.Time{}, offlinef("manifest %s of %s: not in the cache", d, r)
	case d.Algorithm().FromBytes(b) != d:
		return "", time.Time{}, offlinef("manifest %s of %s: %w", d, r, kindErrorf(fetch.ErrDigestMismatch, "the cached content has digest %s", d.Algorithm().FromBytes(b)))
	}
	return d, rec.Resolved, nil
}
