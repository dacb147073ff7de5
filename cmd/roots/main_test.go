package main

import (
	"context"
	"strings"
	"testing"
)

// TestRunUsage: what a user who mistypes gets: one line on stderr that names the mistake and a
// help command that can be pasted as it is, and exit 2; --version and version print the
// version.
func TestRunUsage(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string // the whole of it
	}{
		{[]string{"--version"}, 0, "roots dev\n", ""},
		{[]string{"version"}, 0, "roots dev\n", ""},
		{[]string{"comit"}, 2, "", "roots: unexpected argument comit, did you mean \"commit\"? (see roots --help)\n"},
		{[]string{"pull"}, 2, "", "roots: expected \"<image> <dest>\" (see roots pull --help)\n"},
		{[]string{"pull", "--mode", "bogus", "a", "b"}, 2, "", "roots: --mode must be one of \"hardlink\",\"copy\",\"overlay\" but got \"bogus\" (see roots pull --help)\n"},
		{[]string{"pull", "--jobs", "0", "a", "b"}, 2, "", "roots: --jobs 0: need at least 1 (see roots pull --help)\n"},
		{[]string{"pull", "--cache", "No", "a", "b"}, 2, "", "roots: --cache No (or ROOTS_CACHE=No): for no cache write \"no\" (lower case); for a directory of that name write ./No (see roots pull --help)\n"},
		{[]string{"ls", "--cache", "OFF"}, 2, "", "roots: --cache OFF (or ROOTS_CACHE=OFF): for no cache write \"no\" (lower case); for a directory of that name write ./OFF (see roots ls --help)\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
			code := run(context.Background(), tt.args, e)
			if code != tt.code || stdout.String() != tt.stdout || stderr.String() != tt.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestLooksLikeNo: settings that read like "no" but are not are refused; "no" itself and
// real names are not.
func TestLooksLikeNo(t *testing.T) {
	for v, want := range map[string]bool{
		"no": false, "No": true, "NO": true, "none": true, "Off": true, "false": true, "no-cache": true,
		"./No": false, "/var/cache/roots": false, "nope": false, "cache": false,
	} {
		if got := looksLikeNo(v); got != want {
			t.Errorf("looksLikeNo(%q) = %v, want %v", v, got, want)
		}
	}
}
