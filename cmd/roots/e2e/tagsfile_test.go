package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestTagsFile: roots tags -f FILE lists what the same specs as arguments list, under either
// root key; the file's do-not-fail holds unless a flag says otherwise; specs in both the file
// and the arguments, and a bad file, are one-line usage errors (exit 2).
func TestTagsFile(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	cache := filepath.Join(t.TempDir(), "cache")
	env := []string{"ROOTS_CACHE=" + cache}
	jan := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	r.Push(t, "e2e/app", "1", tagsImage("one", jan(1)))
	r.Push(t, "e2e/app", "2", tagsImage("two", jan(2)))
	r.Push(t, "e2e/base", "v1.0", tagsImage("base", jan(3)))
	app, base := r.Host+"/e2e/app", r.Host+"/e2e/base"
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	args := Roots(t, env, "tags", app, base+"~/^v1/", app+"=3")
	if args.Code != 0 || strings.Count(args.Stdout, "\n") != 5 {
		t.Fatalf("roots tags SPEC...: exit %d:\n%s%s", args.Code, args.Stdout, args.Stderr)
	}
	for _, tt := range []struct{ name, body string }{
		{"Roots", "roots:\n  repositories:\n    - " + app + "\n    - " + base + "~/^v1/\n    - " + app + "=3\n  jobs: 2\n  push-registry: ignored.example.com\n  interval: 5m\n"},
		{"Lstags", "other: [kept, for, other, tools]\nlstags:\n  repositories:\n    - " + app + "\n    - " + base + "~/^v1/\n    - " + app + ":3\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := Roots(t, env, "tags", "-f", write(tt.name+".yaml", tt.body))
			if file.Code != 0 || file.Stdout != args.Stdout || file.Stderr != "" {
				t.Errorf("roots tags -f: exit %d:\n%s%s\nwant as with arguments:\n%s", file.Code, file.Stdout, file.Stderr, args.Stdout)
			}
		})
	}

	missing := r.Host + "/no/such"
	lenient := write("lenient.yaml", "roots:\n  repositories:\n    - "+missing+"\n    - "+app+"=2\n  do-not-fail: true\n")
	if res := Roots(t, env, "tags", "-f", lenient); res.Code != 0 || !strings.Contains(res.Stdout, app+":2") || !strings.Contains(res.Stderr, missing) {
		t.Errorf("do-not-fail: true in the file: exit %d, want 0 with %s:2 listed and %s reported:\n%s%s", res.Code, app, missing, res.Stdout, res.Stderr)
	}
	strict := write("strict.yaml", "roots:\n  repositories:\n    - "+missing+"\n    - "+app+"=2\n")
	if res := Roots(t, env, "tags", "-f", strict); res.Code != 1 || !strings.Contains(res.Stdout, app+":2") {
		t.Errorf("no do-not-fail: exit %d, want 1 with %s:2 listed:\n%s%s", res.Code, app, res.Stdout, res.Stderr)
	}
	if res := Roots(t, env, "tags", "-N", "-f", strict); res.Code != 0 {
		t.Errorf("-N over the file: exit %d, want 0:\n%s", res.Code, res.Stderr)
	}

	good := write("good.yaml", "roots:\n  repositories: ["+app+"]\n")
	badKey := write("badkey.yaml", "roots:\n  repositories:\n    - "+app+"\n  pushregistry: x\n")
	badSpec := write("badspec.yaml", "roots:\n  repositories:\n    - "+app+"\n    - "+app+":1\n")
	for _, tt := range []struct {
		name string
		args []string
		want string // in the one line of stderr
	}{
		{"Both", []string{"-f", good, app}, "-f " + good + " and SPEC arguments"},
		{"Neither", nil, "no SPEC"},
		{"UnknownKey", []string{"-f", badKey}, badKey + `:4: unknown key "pushregistry" under roots:`},
		{"BadSpec", []string{"-f", badSpec}, badSpec + `:4: repositories[1]: repository spec "` + app + `:1"`},
		{"MissingFile", []string{"-f", filepath.Join(dir, "none.yaml")}, "none.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := Roots(t, env, append([]string{"tags"}, tt.args...)...)
			if res.Code != 2 || res.Stdout != "" || strings.Count(res.Stderr, "\n") != 1 || !strings.Contains(res.Stderr, tt.want) {
				t.Errorf("exit %d, stderr %q: want exit 2 and one line containing %q", res.Code, res.Stderr, tt.want)
			}
		})
	}
}
