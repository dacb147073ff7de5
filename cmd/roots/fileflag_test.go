package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// writeFile writes a -f FILE for a test and returns its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tags.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFileFlagTags: roots tags' specs come from -f FILE or the arguments, never both; the
// file's jobs and do-not-fail fill the flags the command line and environment did not set.
func TestFileFlagTags(t *testing.T) {
	file := writeFile(t, "roots:\n  repositories: [alpine, debian~/^12/]\n  jobs: 8\n  do-not-fail: true\n  push-registry: r.example.com\n  push-prefix: /m\n  interval: 1m\n")
	bare := writeFile(t, "lstags:\n  repositories: [alpine]\n")
	off := writeFile(t, "roots:\n  repositories: [alpine]\n  do-not-fail: false\n")
	bad := writeFile(t, "roots:\n  repositories: [alpine]\n  job: 2\n")
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		specs     []string
		jobs      int
		doNotFail bool
		usage     string // a usage error containing this
	}{
		{name: "FileSettings", args: []string{"-f", file}, specs: []string{"docker.io/library/alpine", "docker.io/library/debian~/^12/"}, jobs: 8, doNotFail: true},
		{name: "FlagOverJobs", args: []string{"-f", file, "--jobs", "3"}, specs: []string{"docker.io/library/alpine", "docker.io/library/debian~/^12/"}, jobs: 3, doNotFail: true},
		{name: "ShortFlagOverJobs", args: []string{"-j2", "--file=" + file}, specs: []string{"docker.io/library/alpine", "docker.io/library/debian~/^12/"}, jobs: 2, doNotFail: true},
		{name: "DefaultGivenOverFile", args: []string{"-f", file, "--jobs=4"}, specs: []string{"docker.io/library/alpine", "docker.io/library/debian~/^12/"}, jobs: 4, doNotFail: true},
		{name: "FlagOverDoNotFail", args: []string{"-f", off, "-N"}, specs: []string{"docker.io/library/alpine"}, jobs: 4, doNotFail: true},
		{name: "EnvOverDoNotFail", env: map[string]string{"ROOTS_DO_NOT_FAIL": "false"}, args: []string{"-f", file}, specs: []string{"docker.io/library/alpine", "docker.io/library/debian~/^12/"}, jobs: 8},
		{name: "FileWithoutSettings", args: []string{"-f", bare}, specs: []string{"docker.io/library/alpine"}, jobs: 4},
		{name: "Arguments", args: []string{"alpine=3", "--jobs", "5"}, specs: []string{"docker.io/library/alpine=3"}, jobs: 5},
		{name: "Both", args: []string{"-f", file, "alpine"}, usage: "-f " + file + " and SPEC arguments: give the repositories in the file or as arguments, not both"},
		{name: "Neither", args: nil, usage: "no SPEC: name repositories as arguments or in a -f FILE"},
		{name: "BadFile", args: []string{"-f", bad}, usage: bad + `:3: unknown key "job" under roots:`},
		{name: "BadArgument", args: []string{"alpine:3"}, usage: `repository spec "alpine:3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("ROOTS_DO_NOT_FAIL", "") // restored after the test
			os.Unsetenv("ROOTS_DO_NOT_FAIL")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var cli CLI
			parser, err := kong.New(&cli, kong.Name("roots"))
			if err != nil {
				t.Fatal(err)
			}
			k, err := parser.Parse(append([]string{"tags"}, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			c := &cli.Tags
			specs, _, err := c.load(k, c.Specs, fileTargets{Jobs: &c.Jobs, DoNotFail: &c.DoNotFail})
			if tt.usage != "" {
				var u usageError
				if !errors.As(err, &u) || !strings.Contains(err.Error(), tt.usage) {
					t.Fatalf("error %v, want a usage error containing %q", err, tt.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range specs {
				got = append(got, s.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.specs, " ") {
				t.Errorf("specs %q, want %q", got, tt.specs)
			}
			if c.Jobs != tt.jobs || c.DoNotFail != tt.doNotFail {
				t.Errorf("jobs %d do-not-fail %v, want %d %v", c.Jobs, c.DoNotFail, tt.jobs, tt.doNotFail)
			}
		})
	}
}

// syncLike has the flags roots sync is meant to have, to show that a flag given by any of its
// names (--to, -r, --push-registry) wins over the file, and that the file fills the others.
type syncLike struct {
	Sync struct {
		Specs      []string      `arg:"" optional:""`
		To         string        `short:"r" aliases:"push-registry"`
		PushPrefix string        `name:"push-prefix"`
		DoNotFail  bool          `short:"N" name:"do-not-fail"`
		Interval   time.Duration `default:"10m"`
		Jobs       int           `default:"4"`
		fileFlag
	} `cmd:""`
}

// TestFileFlagSyncLike: every setting a file gives, against a command that takes them all.
func TestFileFlagSyncLike(t *testing.T) {
	file := writeFile(t, "lstags:\n  repositories: [alpine]\n  push-registry: file.example.com\n  push-prefix: /from/file\n  do-not-fail: true\n  interval: 1m\n  jobs: 8\n")
	tests := []struct {
		name     string
		args     []string
		to       string
		prefix   string
		interval time.Duration
		jobs     int
	}{
		{"File", nil, "file.example.com", "/from/file", time.Minute, 8},
		{"To", []string{"--to", "flag.example.com"}, "flag.example.com", "/from/file", time.Minute, 8},
		{"Short", []string{"-r", "flag.example.com"}, "flag.example.com", "/from/file", time.Minute, 8},
		{"Alias", []string{"--push-registry=flag.example.com", "--push-prefix=/", "--interval=2m"}, "flag.example.com", "/", 2 * time.Minute, 8},
		{"Jobs", []string{"--jobs", "1"}, "file.example.com", "/from/file", time.Minute, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cli syncLike
			parser, err := kong.New(&cli)
			if err != nil {
				t.Fatal(err)
			}
			k, err := parser.Parse(append([]string{"sync", "-f", file}, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			c := &cli.Sync
			specs, sf, err := c.load(k, c.Specs, fileTargets{PushRegistry: &c.To, PushPrefix: &c.PushPrefix, DoNotFail: &c.DoNotFail, Interval: &c.Interval, Jobs: &c.Jobs})
			if err != nil || len(specs) != 1 || sf == nil {
				t.Fatalf("load: %v, %d specs, file %v", err, len(specs), sf)
			}
			if c.To != tt.to || c.PushPrefix != tt.prefix || c.Interval != tt.interval || c.Jobs != tt.jobs || !c.DoNotFail {
				t.Errorf("to %q prefix %q interval %v jobs %d do-not-fail %v; want %q %q %v %d true",
					c.To, c.PushPrefix, c.Interval, c.Jobs, c.DoNotFail, tt.to, tt.prefix, tt.interval, tt.jobs)
			}
		})
	}
}
