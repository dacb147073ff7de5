package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/auth"
)

// TestHints: the command line, not the libraries, names the flag that fixes a failure.
func TestHints(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("/x %w", assemble.ErrExists), "/x exists: use --force to replace it"},
		{fmt.Errorf("%w: /c is writable by others", cas.ErrUntrusted), ": --cache DIR names another cache"},
		{fmt.Errorf("manifest h/r:t: EOF (h: %w)", fetch.ErrPlainHTTP), ": allow it with --insecure"},
		{fmt.Errorf("token for h: %w", auth.ErrPlainRealm), ": --insecure if the network is trusted"},
		{fmt.Errorf("pull access denied: %w", auth.ErrUnauthorized), ": give credentials: --user USER:PASS, --auth FILE, or docker login"},
		{fmt.Errorf("--mode overlay: %w", roots.ErrOverlayNeedsRoot), ": run it as root, or use --mode hardlink"},
		{fmt.Errorf("pull r: %w", roots.ErrOverlayCannotShow), ": use --mode hardlink or --mode copy"},
		{&roots.DiskFullError{Err: errors.New("no space left on device"), Cache: true}, " (--cache DIR, or --cache=no)"},
		{fmt.Errorf("pull r: create cache /c: %w", fmt.Errorf("mkdir /c: permission denied: %w", cas.ErrUnwritable)), ": --cache DIR (or ROOTS_CACHE=DIR) names one you can write, or --cache=no pulls without one"},
		{fmt.Errorf("pull h/r:t: offline: manifest sha256:ab: not in the cache: %w", fetch.ErrOffline), ": run it without --offline (and ROOTS_OFFLINE) to fetch it"},
		{fmt.Errorf("plain failure"), "plain failure"},
	}
	for _, tt := range tests {
		if got := withHint(tt.err); !strings.HasSuffix(got, tt.want) || strings.Count(got, "--") > 3 {
			t.Errorf("withHint(%q) = %q, want it to end in %q", tt.err, got, tt.want)
		}
	}
}
