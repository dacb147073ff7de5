package main

import (
	"errors"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/auth"
)

// hints name the flag that fixes a failure. The libraries say what failed and why; only the
// command line knows its flags.
var hints = []struct {
	err  error
	hint string
}{
	{roots.ErrOffline, "run it without --offline (and ROOTS_OFFLINE) to fetch it"},
	{assemble.ErrExists, "use --force to replace it"},
	{roots.ErrStateExists, "roots umount DEST removes them (--keep moves them aside), or --force discards them"},
	{roots.ErrOverlayCannotShow, "use --mode hardlink or --mode copy"},
	{roots.ErrOverlayNeedsRoot, "run it as root, or use --mode hardlink"},
	{roots.ErrGitMissing, "install git (apt-get install git, dnf install git or apk add git), or pull without --git"},
	{roots.ErrNoCommand, "name one after --: roots bundle IMAGE DIR -- COMMAND [ARG...]"},
	{cas.ErrUntrusted, "--cache DIR names another cache"},
	{cas.ErrUnwritable, "--cache DIR (or ROOTS_CACHE=DIR) names one you can write, or --cache=no pulls without one"},
	{roots.ErrNotPulled, "--cache DIR names the cache it was pulled with"},
	{fetch.ErrPlainHTTP, "allow it with --insecure"},
	{auth.ErrPlainRealm, "--insecure if the network is trusted"},
	{auth.ErrUnauthorized, "give credentials: --user USER:PASS, --auth FILE, or docker login"},
	{auth.ErrMalformedCredentials, "see --user and --auth in roots pull --help"},
}

// withHint is err's message with the hint of the first sentinel it wraps, if any.
func withHint(err error) string {
	msg := err.Error()
	if full := (*roots.DiskFullError)(nil); errors.As(err, &full) && full.Cache {
		return msg + " (--cache DIR, or --cache=no)"
	}
	for _, h := range hints {
		if errors.Is(err, h.err) {
			return msg + ": " + h.hint
		}
	}
	return msg
}
