package roots

import (
	"errors"
	"fmt"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/fetch"
)

// Errors that callers tell apart with errors.Is; messages around them name what failed.
var (
	// ErrExists: the destination exists and PullOptions.Force was not given.
	ErrExists = assemble.ErrExists
	// ErrInvalidDest: the destination is a name no pull may fill: "", "/", the current
	// directory or one of its parents, the cache, or a directory inside or holding the cache.
	ErrInvalidDest = errors.New("invalid destination")
	// ErrOverlayNeedsRoot: an Overlay pull by a user who may not mount.
	ErrOverlayNeedsRoot = errors.New("overlay mode needs root")
	// ErrOverlayNeedsCache: an Overlay pull without a cache (its layers are the overlay's).
	ErrOverlayNeedsCache = errors.New("overlay mode needs the cache")
	// ErrOverlayCannotShow: the image holds something an overlay mount cannot show.
	ErrOverlayCannotShow = assemble.ErrOverlayCannotShow
	// ErrDiskFull: a filesystem refused a write (full, out of inodes, read-only); the error is
	// a *DiskFullError that says which.
	ErrDiskFull = errors.New("no room to write")
	// ErrStateExists: an overlay pull found the state directory of an earlier overlay at its
	// destination, holding what was written into it; PullOptions.Force discards it.
	ErrStateExists = errors.New("an earlier overlay's changes are in the way")
	// ErrNotInCache: Push was asked for an image the cache holds no record of.
	ErrNotInCache = errors.New("not in the cache")
	// ErrFormat: an image cannot be written in the format asked for (a zstd layer as Docker).
	ErrFormat = errors.New("cannot convert")
	// ErrNothingToCommit: Commit found the destination as its image has it.
	ErrNothingToCommit = errors.New("nothing to commit")
	// ErrOffline: an offline command (PullOptions.Offline...) needed what the cache does not
	// hold, or holds corrupt: a tag's record, a manifest, a config, a layer. It is
	// fetch.ErrOffline, which a registry client made offline refuses every request with.
	ErrOffline = fetch.ErrOffline
	// ErrNotPulled: Commit (or Push with From) was given a directory that the cache holds no
	// record of: not pulled by roots, pulled with no cache, or replaced since.
	ErrNotPulled = errors.New("not a destination roots pulled")
)

// kindError is a message of its own that matches its kind with errors.Is, so that a message
// reads naturally without the sentinel's text appended.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string   { return e.msg }
func (e *kindError) Is(t error) bool { return t == e.kind }

// kindErrorf formats a message that matches kind with errors.Is.
func kindErrorf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// Errors of git destinations (PullOptions.Git).
var (
	// ErrGitMissing: a git destination was asked for and no git command can be run.
	ErrGitMissing = errors.New("git is not installed")
	// ErrNotGitDest: a directory is not a git destination: no .git, or HEAD is not a layer
	// branch.
	ErrNotGitDest = errors.New("not a git destination of roots")
	// ErrNotTopLayer: a layer can be committed only on the top layer branch.
	ErrNotTopLayer = errors.New("not the top layer branch")
)

// Errors of bundles (Bundle).
var (
	// ErrNoCommand: the image sets neither Entrypoint nor Cmd, and BundleOptions.Args is empty:
	// the bundle would run nothing.
	ErrNoCommand = errors.New("no command to run")
	// ErrUnknownUser: the image's User names a user or group that the image's own /etc/passwd
	// or /etc/group does not have.
	ErrUnknownUser = errors.New("unknown user")
)
