//go:build linux

package layer

import "errors"

var (
	// ErrUnsupportedMediaType: the layer's media type is not one roots can unpack.
	ErrUnsupportedMediaType = errors.New("unsupported layer media type")
	// ErrCompressionMismatch: the layer's bytes are not in the compression its media type says.
	ErrCompressionMismatch = errors.New("layer compression does not match its media type")
	// ErrUnsupportedEntry: a tar entry of a type roots does not unpack (GNU volume headers, ...).
	ErrUnsupportedEntry = errors.New("unsupported tar entry type")
	// ErrInvalidWhiteout: a malformed whiteout (".wh." alone, ".wh..", a ".wh." directory, ...).
	ErrInvalidWhiteout = errors.New("invalid whiteout")
	// ErrLinkTargetMissing: a hardlink names a target that does not exist (or that this layer deleted).
	ErrLinkTargetMissing = errors.New("hardlink target does not exist")
	// ErrInvalidLink: a hardlink to a directory, to the root, or to itself.
	ErrInvalidLink = errors.New("invalid hardlink")
	// ErrNameTooLong: a path component longer than 255 bytes (the kernel's NAME_MAX).
	ErrNameTooLong = errors.New("path component longer than 255 bytes")
	// ErrInvalidHeader: numeric header fields out of range (owner ids, device numbers).
	ErrInvalidHeader = errors.New("invalid tar header field")
	// ErrFinished: Apply or Finish called on an Applier that has already finished.
	ErrFinished = errors.New("applier already finished")
	// ErrInvalidChange: Export was given a Change it cannot write (a path that is not relative
	// and clean or names a whiteout, a Delete of the root, the same path twice).
	ErrInvalidChange = errors.New("invalid change")
	// ErrSourceChanged: a file changed while Export read it (its size, type or inode).
	ErrSourceChanged = errors.New("source changed while exported")
)
