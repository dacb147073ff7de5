package main

import (
	"context"
	"fmt"
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

// TestModelOfOneCommand: a command line that starts with a command's name is parsed with a
// model of that command alone (model), and every answer, right or wrong, is the one the whole
// CLI gives.
func TestModelOfOneCommand(t *testing.T) {
	tests := []struct {
		args []string
		one  bool // parsed with the one command's model
	}{
		{[]string{"pull"}, true},
		{[]string{"pull", "a"}, true},
		{[]string{"pull", "a", "b", "c"}, true},
		{[]string{"pull", "--typo", "a", "b"}, true},
		{[]string{"pull", "--mode", "bogus", "a", "b"}, true},
		{[]string{"pull", "--jobs", "0", "a", "b"}, true},
		{[]string{"pull", "--platform"}, true},
		{[]string{"pull", "--version"}, true},
		{[]string{"pull", "--help"}, false},
		{[]string{"pull", "-h"}, false},
		{[]string{"bundle", "--mode", "x", "a", "b"}, true},
		{[]string{"push"}, true},
		{[]string{"copy", "a"}, true},
		{[]string{"commit"}, true},
		{[]string{"umount"}, true},
		{[]string{"digest"}, true},
		{[]string{"inspect", "--bogus", "a"}, true},
		{[]string{"tags", "--bogus"}, true},
		{[]string{"ls", "extra", "args"}, true},
		{[]string{"purge", "--bogus"}, true},
		{[]string{"check", "--bogus"}, true},
		{[]string{"version"}, true},
		{[]string{"version", "extra"}, true},
		{[]string{"completion", "bash"}, false},
		{[]string{"completion", "tcsh"}, false},
		{[]string{"man"}, false},
		{[]string{"pul", "a", "b"}, false},
		{[]string{"--version"}, false},
		{[]string{"--version", "pull"}, false},
		{[]string{}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			m := model(tt.args)
			if _, whole := m.(*CLI); whole == tt.one {
				t.Fatalf("model(%q) is %T", tt.args, m)
			}
			answer := func(cli any) string {
				var stdout, stderr strings.Builder
				e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
				code := runModel(context.Background(), tt.args, e, cli)
				return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			if got, want := answer(m), answer(&CLI{}); got != want {
				t.Errorf("with %T:\n%s\nwith the whole CLI:\n%s", m, got, want)
			}
		})
	}
}
