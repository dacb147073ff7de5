package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// tagsImage is a one-layer image named by its file and its creation time.
func tagsImage(name string, created time.Time) registrytest.Image {
	return registrytest.Image{
		Layers: []registrytest.Layer{{Entries: []reg{{Name: "name", Body: []byte(name + "\n")}}}},
		Config: map[string]any{"created": created.Format(time.RFC3339)},
	}
}

// TestTagsCommand: the table and --json of roots tags, a tag moved since its pull, --pull,
// and the exit codes of a failing spec with and without -N (and ROOTS_DO_NOT_FAIL).
func TestTagsCommand(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	cache := filepath.Join(t.TempDir(), "cache")
	env := []string{"ROOTS_CACHE=" + cache}
	jan := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	old := r.Push(t, "e2e/app", "1", tagsImage("one", jan(1)))
	two := r.Push(t, "e2e/app", "2", tagsImage("two", jan(2)))
	MustPull(t, env, r.Host+"/e2e/app:1", filepath.Join(t.TempDir(), "one"))
	moved := r.Push(t, "e2e/app", "1", tagsImage("one again", jan(3)))
	app := r.Host + "/e2e/app"

	res := Roots(t, env, "tags", app, app+"=3")
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("roots tags: exit %d: %s", res.Code, res.Stderr)
	}
	wantRows := [][]string{
		{"STATE", "DIGEST", "LOCAL", "CREATED", "TAG"},
		{"CHANGED", moved.Digest.String()[:19], old.Digest.String()[:19], "2026-01-03T00:00:00Z", app + ":1"},
		{"ABSENT", two.Digest.String()[:19], "-", "2026-01-02T00:00:00Z", app + ":2"},
		{"NOT-FOUND", "-", "-", "-", app + ":3"},
	}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != len(wantRows) {
		t.Fatalf("table:\n%s\nwant %d lines", res.Stdout, len(wantRows))
	}
	for i, l := range lines {
		if got := strings.Fields(l); strings.Join(got, " ") != strings.Join(wantRows[i], " ") {
			t.Errorf("row %d: %q, want %q", i, got, wantRows[i])
		}
	}

	res = Roots(t, env, "tags", "--json", app+"~/^1$/")
	var objs []map[string]any
	if err := json.Unmarshal([]byte(res.Stdout), &objs); res.Code != 0 || err != nil || len(objs) != 1 {
		t.Fatalf("roots tags --json: exit %d, %v: %s %s", res.Code, err, res.Stdout, res.Stderr)
	}
	want := map[string]any{
		"spec": app + "~/^1$/", "repository": app, "tag": "1", "state": "CHANGED",
		"digest": moved.Digest.String(), "local": old.Digest.String(), "created": "2026-01-03T00:00:00Z",
	}
	for k, v := range want {
		if objs[0][k] != v {
			t.Errorf("--json %q = %v, want %v", k, objs[0][k], v)
		}
	}

	res = Roots(t, env, "tags", "--pull", app+"~/^2$/")
	if res.Code != 0 {
		t.Fatalf("roots tags --pull: exit %d: %s", res.Code, res.Stderr)
	}
	if res = Roots(t, env, "tags", app+"=2"); !strings.HasPrefix(strings.Split(res.Stdout, "\n")[1], "PRESENT") {
		t.Errorf("after --pull:\n%s", res.Stdout)
	}
	var ls struct {
		Images []struct {
			Reference            string
			Layers, CachedLayers int
		}
	}
	res = Roots(t, env, "ls", "--json")
	if err := json.Unmarshal([]byte(res.Stdout), &ls); err != nil {
		t.Fatalf("roots ls --json: %v: %s", err, res.Stdout)
	}
	unpacked := false
	for _, i := range ls.Images {
		unpacked = unpacked || strings.HasPrefix(i.Reference, app+":2") && i.Layers == 1 && i.CachedLayers == 1
	}
	if !unpacked {
		t.Errorf("after --pull, roots ls has no unpacked %s:2: %s", app, res.Stdout)
	}

	missing := r.Host + "/no/such"
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
	}{
		{"Fail", nil, nil, 1},
		{"DoNotFail", nil, []string{"-N"}, 0},
		{"DoNotFailEnv", []string{"ROOTS_DO_NOT_FAIL=true"}, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"tags"}, tt.args...), missing, app+"=2")
			res := Roots(t, append(tt.env, env...), args...)
			if res.Code != tt.code || !strings.Contains(res.Stdout, app+":2") {
				t.Fatalf("exit %d, want %d; stdout:\n%s", res.Code, tt.code, res.Stdout)
			}
			first, _, _ := strings.Cut(res.Stderr, "\n")
			if !strings.Contains(first, missing) || !strings.Contains(first, "unknown") {
				t.Errorf("stderr %q: want one line naming %s and why", res.Stderr, missing)
			}
		})
	}

	for _, bad := range []string{app + ":1", app + "~//", app + "=a,,b"} {
		if res := Roots(t, env, "tags", bad); res.Code != 2 || !strings.Contains(res.Stderr, bad) || strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("roots tags %s: exit %d, %q; want a one-line usage error naming it", bad, res.Code, res.Stderr)
		}
	}
}
