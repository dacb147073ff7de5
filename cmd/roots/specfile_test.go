package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch"
)

// lstagsReadme is the YAML example of lstags' README, byte for byte.
const lstagsReadme = `lstags:
  repositories:
    - busybox
    - nginx:stable
    - mesosphere/marathon-lb~/^v1/
    - quay.io/coreos/awscli=master,latest,edge
    - gcr.io/google-containers/hyperkube~/^v1\.(9|10)\./
`

// TestSpecFile: what a -f FILE may say, and the file, line and key of every mistake.
func TestSpecFile(t *testing.T) {
	str := func(s string) *string { return &s }
	yes, no := true, false
	five, eight := 5*time.Minute, 8
	tests := []struct {
		name  string
		yaml  string
		specs []string // canonical (fetch.Spec.String)
		want  specFile // the settings; Name, Root, Specs are checked apart
		root  string
		err   string // the whole message; "" for none
	}{
		{
			name:  "RootsEveryKey",
			root:  rootRoots,
			yaml:  "roots:\n  repositories:\n    - alpine\n    - quay.io/a/b~/^v1/=edge\n  push-registry: registry.example.com:5000\n  push-prefix: /mirror/x\n  do-not-fail: true\n  interval: 5m\n  jobs: 8\n",
			specs: []string{"docker.io/library/alpine", "quay.io/a/b~/^v1/=edge"},
			want:  specFile{PushRegistry: str("registry.example.com:5000"), PushPrefix: str("/mirror/x"), DoNotFail: &yes, Interval: &five, Jobs: &eight},
		},
		{
			name:  "RepositoriesOnly",
			root:  rootRoots,
			yaml:  "roots:\n  repositories: [alpine]\n",
			specs: []string{"docker.io/library/alpine"},
		},
		{
			name:  "LstagsRoot",
			root:  rootLstags,
			yaml:  "lstags:\n  repositories:\n    - alpine=3.20\n  do-not-fail: false\n",
			specs: []string{"docker.io/library/alpine=3.20"},
			want:  specFile{DoNotFail: &no},
		},
		{
			name:  "LstagsReadmeUnchanged", // nginx:stable is lstags' REPOSITORY:TAG
			root:  rootLstags,
			yaml:  lstagsReadme,
			specs: []string{"docker.io/library/busybox", "docker.io/library/nginx=stable", `docker.io/mesosphere/marathon-lb~/^v1/`, "quay.io/coreos/awscli=master,latest,edge", `gcr.io/google-containers/hyperkube~/^v1\.(9|10)\./`},
		},
		{
			name:  "LstagsPortIsNoTag",
			root:  rootLstags,
			yaml:  "lstags:\n  repositories:\n    - localhost:5000/app\n    - localhost:5000/app:1\n",
			specs: []string{"localhost:5000/app", "localhost:5000/app=1"},
		},
		{
			name:  "OtherTopKeysIgnored",
			root:  rootRoots,
			yaml:  "deploy:\n  replicas: 3\nroots:\n  repositories:\n    - alpine\nlist: [1, 2]\n",
			specs: []string{"docker.io/library/alpine"},
		},
		{
			name:  "Anchors",
			root:  rootRoots,
			yaml:  "common: &repos\n  - alpine\nroots:\n  repositories: *repos\n",
			specs: []string{"docker.io/library/alpine"},
		},
		{
			name:  "PushPrefixSlash",
			root:  rootRoots,
			yaml:  "roots:\n  repositories: [alpine]\n  push-prefix: /\n",
			specs: []string{"docker.io/library/alpine"},
			want:  specFile{PushPrefix: str("/")},
		},

		{name: "UnknownKey", yaml: "roots:\n  repositories: [alpine]\n\n  pushregistry: r\n",
			err: `t.yaml:4: unknown key "pushregistry" under roots: (known: repositories, push-registry, push-prefix, do-not-fail, interval, jobs)`},
		{name: "UnknownKeyLstags", yaml: "lstags:\n  repositories: [alpine]\n  daemon: true\n",
			err: `t.yaml:3: unknown key "daemon" under lstags: (known: repositories, push-registry, push-prefix, do-not-fail, interval, jobs)`},
		{name: "NoRootKey", yaml: "repositories:\n  - alpine\n",
			err: "t.yaml: no roots: key at the top level (nor lstags:, as lstags files have): put repositories: and the settings under it"},
		{name: "BothRootKeys", yaml: "roots:\n  repositories: [alpine]\nlstags:\n  repositories: [alpine]\n",
			err: "t.yaml:3: lstags: and roots: (line 1) both at the top level: keep one"},
		{name: "Empty", yaml: "", err: "t.yaml: empty: want roots: (or lstags:) with repositories:"},
		{name: "CommentsOnly", yaml: "# nothing\n", err: "t.yaml: empty: want roots: (or lstags:) with repositories:"},
		{name: "TopIsList", yaml: "- alpine\n", err: `t.yaml:1: the top level is a list: want a mapping with a roots: (or lstags:) key`},
		{name: "RootIsEmpty", yaml: "roots:\n", err: "t.yaml:1: roots: nothing: want a mapping with repositories: and the settings"},
		{name: "RootIsList", yaml: "roots:\n  - alpine\n", err: "t.yaml:2: roots: a list: want a mapping with repositories: and the settings"},
		{name: "NoRepositories", yaml: "roots:\n  jobs: 2\n", err: "t.yaml:1: roots: no repositories: list the repository specs under it"},
		{name: "RepositoriesNull", yaml: "roots:\n  repositories:\n", err: "t.yaml:2: repositories: empty: list at least one repository spec"},
		{name: "RepositoriesEmptyList", yaml: "roots:\n  repositories: []\n", err: "t.yaml:2: repositories: empty: list at least one repository spec"},
		{name: "RepositoriesString", yaml: "roots:\n  repositories: alpine\n", err: `t.yaml:2: repositories: "alpine": want a list of repository specs (- SPEC on each line)`},
		{name: "RepositoryMapping", yaml: "roots:\n  repositories:\n    - alpine\n    - name: x\n", err: "t.yaml:4: repositories[1]: a mapping: want a repository spec"},
		{name: "RepositoryNull", yaml: "roots:\n  repositories:\n    - alpine\n    -\n", err: "t.yaml:4: repositories[1]: nothing: want a repository spec"},
		{name: "BadSpecTag", yaml: "roots:\n  repositories:\n    - busybox\n    - debian~/^12/\n    - alpine:3\n",
			err: `t.yaml:5: repositories[2]: repository spec "alpine:3": a tag in the repository part: write alpine=3 to name it`},
		{name: "BadSpecRegex", yaml: "lstags:\n  repositories:\n    - alpine~/(/\n", err: `t.yaml:3: repositories[0]: repository spec "alpine~/(/": bad regex "(": missing closing )`},
		{name: "DuplicateKey", yaml: "roots:\n  jobs: 2\n  repositories: [alpine]\n  jobs: 3\n", err: "t.yaml:4: jobs: given twice (first at line 2)"},
		{name: "JobsZero", yaml: "roots:\n  repositories: [alpine]\n  jobs: 0\n", err: "t.yaml:3: jobs: 0: need at least 1"},
		{name: "JobsNegative", yaml: "roots:\n  repositories: [alpine]\n  jobs: -2\n", err: "t.yaml:3: jobs: -2: need at least 1"},
		{name: "JobsString", yaml: "roots:\n  repositories: [alpine]\n  jobs: four\n", err: `t.yaml:3: jobs: "four": want a whole number, 1 or more`},
		{name: "JobsFloat", yaml: "roots:\n  repositories: [alpine]\n  jobs: 2.5\n", err: `t.yaml:3: jobs: "2.5": want a whole number, 1 or more`},
		{name: "JobsQuoted", yaml: "roots:\n  repositories: [alpine]\n  jobs: \"2\"\n", err: `t.yaml:3: jobs: "2": want a whole number, 1 or more`},
		{name: "DoNotFailString", yaml: "roots:\n  repositories: [alpine]\n  do-not-fail: yes\n", err: `t.yaml:3: do-not-fail: "yes": want true or false`},
		{name: "DoNotFailList", yaml: "roots:\n  repositories: [alpine]\n  do-not-fail: [true]\n", err: `t.yaml:3: do-not-fail: a list: want true or false`},
		{name: "IntervalNoUnit", yaml: "roots:\n  repositories: [alpine]\n  interval: 5\n", err: `t.yaml:3: interval: "5": want a positive duration such as 30s, 5m or 1h30m`},
		{name: "IntervalWords", yaml: "roots:\n  repositories: [alpine]\n  interval: 5 minutes\n", err: `t.yaml:3: interval: "5 minutes": want a positive duration such as 30s, 5m or 1h30m`},
		{name: "IntervalZero", yaml: "roots:\n  repositories: [alpine]\n  interval: 0s\n", err: `t.yaml:3: interval: "0s": want a positive duration such as 30s, 5m or 1h30m`},
		{name: "IntervalEmpty", yaml: "roots:\n  repositories: [alpine]\n  interval:\n", err: `t.yaml:3: interval: nothing: want a duration such as 30s, 5m or 1h30m`},
		{name: "PushRegistryList", yaml: "roots:\n  repositories: [alpine]\n  push-registry: [a, b]\n", err: `t.yaml:3: push-registry: a list: want a string`},
		{name: "PushPrefixEmpty", yaml: "roots:\n  repositories: [alpine]\n  push-prefix:\n", err: `t.yaml:3: push-prefix: nothing: want a string`},
		{name: "Syntax", yaml: "roots:\n  repositories:\n    - alpine\n  jobs 2\n", err: "t.yaml:4: not YAML: could not find expected ':'"},
		{name: "Tabs", yaml: "roots:\n\trepositories: [alpine]\n", err: "t.yaml:2: not YAML: found character that cannot start any token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseSpecFile("t.yaml", []byte(tt.yaml))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v\nwant       %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Name != "t.yaml" || f.Root != tt.root {
				t.Errorf("name %q root %q, want t.yaml %q", f.Name, f.Root, tt.root)
			}
			var got []string
			for _, s := range f.Specs {
				got = append(got, s.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.specs, " ") {
				t.Errorf("specs %q\nwant  %q", got, tt.specs)
			}
			check := func(key string, got, want any, equal bool) {
				if !equal {
					t.Errorf("%s: %v, want %v", key, got, want)
				}
			}
			check(keyPushRegistry, deref1(f.PushRegistry), deref1(tt.want.PushRegistry), eq(f.PushRegistry, tt.want.PushRegistry))
			check(keyPushPrefix, deref1(f.PushPrefix), deref1(tt.want.PushPrefix), eq(f.PushPrefix, tt.want.PushPrefix))
			check(keyDoNotFail, deref1(f.DoNotFail), deref1(tt.want.DoNotFail), eq(f.DoNotFail, tt.want.DoNotFail))
			check(keyInterval, deref1(f.Interval), deref1(tt.want.Interval), eq(f.Interval, tt.want.Interval))
			check(keyJobs, deref1(f.Jobs), deref1(tt.want.Jobs), eq(f.Jobs, tt.want.Jobs))
		})
	}
}

// TestSpecFileBadSpecIsInvalidSpec: a bad spec in a file still matches fetch.ErrInvalidSpec.
func TestSpecFileBadSpecIsInvalidSpec(t *testing.T) {
	_, err := parseSpecFile("t.yaml", []byte("roots:\n  repositories: [\"a~//\"]\n"))
	if !errors.Is(err, fetch.ErrInvalidSpec) {
		t.Fatalf("%v: want fetch.ErrInvalidSpec", err)
	}
}

// TestSpecFileWhere: a setting's place, for errors a command finds in its value later.
func TestSpecFileWhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync.yaml")
	if err := os.WriteFile(path, []byte("roots:\n  repositories: [alpine]\n  push-registry: nowhere\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := loadSpecFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.where(keyPushRegistry), path+":3: push-registry"; got != want {
		t.Errorf("where(push-registry) = %q, want %q", got, want)
	}
	if got := f.where(keyJobs); got != path {
		t.Errorf("where(jobs), not in the file = %q, want %q", got, path)
	}
	if _, err := loadSpecFile(path + ".missing"); err == nil || !strings.Contains(err.Error(), path+".missing") {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
}

// eq reports whether two optional settings are both unset or both set and equal.
func eq[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// deref1 is *p, or "unset".
func deref1[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// FuzzSpecFile: any bytes give a file or a one-line error naming the file, never a panic; a file
// that parses holds what the rules promise.
func FuzzSpecFile(f *testing.F) {
	f.Add([]byte(lstagsReadme))
	f.Add([]byte("roots:\n  repositories: [alpine, \"quay.io/a/b~/^v/=x\"]\n  push-registry: r\n  push-prefix: /\n  do-not-fail: true\n  interval: 5m\n  jobs: 3\n"))
	f.Add([]byte("a: &x [alpine]\nroots:\n  repositories: *x\n  jobs: 0x10\n"))
	f.Add([]byte("roots:\n  repositories:\n    - alpine:3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := parseSpecFile("t.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "t.yaml") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line starting with the file name", err)
			}
			return
		}
		if len(sf.Specs) == 0 || sf.Jobs != nil && *sf.Jobs < 1 || sf.Interval != nil && *sf.Interval <= 0 {
			t.Fatalf("%q parsed to %+v", data, sf)
		}
	})
}
