//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// cranePackage is installed from the Go module proxy when crane is missing.
const cranePackage = "github.com/google/go-containerregistry/cmd/crane@latest"

// aptPeers are the Debian packages of the peers, by command.
var aptPeers = []struct{ command, pkg string }{
	{"skopeo", "skopeo"},
	{"umoci", "umoci"},
	{"podman", "podman"},
	{"pigz", "pigz"},
	{"time", "time"}, // GNU time, for the children's peak RSS
}

// tools are the programs the benchmark runs.
type tools struct {
	roots   string
	floor   string // bench/cmd/warmfloor, built as roots is ("": not built, see missing["warmfloor"])
	crane   string
	path    map[string]string // command → path, for the Debian peers present
	missing map[string]string // command → why it is not there
	modes   map[string]bool   // roots pull --mode values this roots has
	umount  bool              // roots has an umount command
	source  string            // what roots was built from
	version []string          // "tool version" lines for the machine description
}

func (t *tools) has(command string) bool { return t.path[command] != "" }

// setupTools builds roots from repo, installs the peers that are missing
// (unless install is false) and records every version.
func setupTools(ctx context.Context, repo, work, toolsDir, roots string, install bool, logf func(string, ...any)) (*tools, error) {
	t := &tools{path: map[string]string{}, missing: map[string]string{}, modes: map[string]bool{}}
	if roots != "" {
		t.roots = roots
		logf("using roots %s", roots)
	} else {
		t.roots = filepath.Join(work, "bin", "roots")
		// Built as `make build` builds it: the binary users install. (Its
		// size matters here: a pull after a cache drop reads it from disk.)
		cmdline := "CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' ./cmd/roots"
		logf("building roots (%s)", cmdline)
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", t.roots, "./cmd/roots")
		build.Dir = repo
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", cmdline, err, out)
		}
		desc, _ := exec.CommandContext(ctx, "git", "-C", repo, "describe", "--always", "--dirty").Output()
		t.source = "git " + strings.TrimSpace(string(desc)) + " (" + cmdline + ")"
	}
	// The least a warm overlay pull does, built as roots is: a floor for roots-warm-overlay.
	floor := filepath.Join(work, "bin", "warmfloor")
	os.MkdirAll(filepath.Dir(floor), 0o755)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", floor, "./bench/cmd/warmfloor")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.missing["warmfloor"] = fmt.Sprintf("go build ./bench/cmd/warmfloor: %v: %s", err, strings.TrimSpace(string(out)))
	} else {
		t.floor = floor
	}
	help, _ := exec.CommandContext(ctx, t.roots, "pull", "--help").CombinedOutput()
	t.modes = pullModes(string(help))
	top, _ := exec.CommandContext(ctx, t.roots, "--help").CombinedOutput()
	t.umount = regexp.MustCompile(`(?m)^\s+umount\b`).Match(top)

	var need []string
	for _, p := range aptPeers {
		if _, err := exec.LookPath(p.command); err != nil {
			need = append(need, p.pkg)
		}
	}
	if _, err := os.Stat(registryBinary); err != nil {
		need = append(need, "docker-registry") // the registry the bench serves from
	}
	if len(need) > 0 && install {
		logf("installing %s with apt-get", strings.Join(need, " "))
		if err := aptInstall(ctx, need); err != nil {
			logf("apt-get: %v", err)
		}
	}
	for _, p := range aptPeers {
		if path, err := exec.LookPath(p.command); err == nil {
			t.path[p.command] = path
		} else if install {
			t.missing[p.command] = "apt-get install " + p.pkg + " failed"
		} else {
			t.missing[p.command] = "not installed (-install=false)"
		}
	}

	t.crane = filepath.Join(toolsDir, "bin", "crane")
	if _, err := os.Stat(t.crane); err != nil {
		if path, err := exec.LookPath("crane"); err == nil {
			t.crane = path
		} else if install {
			logf("installing crane: go install %s (GOBIN=%s)", cranePackage, filepath.Dir(t.crane))
			if err := os.MkdirAll(filepath.Dir(t.crane), 0o755); err != nil {
				return nil, err
			}
			cmd := exec.CommandContext(ctx, "go", "install", cranePackage)
			cmd.Dir = toolsDir
			cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(t.crane), "GOFLAGS=")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.missing["crane"] = fmt.Sprintf("go install failed: %v: %s", err, lastLine(string(out)))
				t.crane = ""
			}
		} else {
			t.missing["crane"] = "not installed (-install=false)"
			t.crane = ""
		}
	}

	t.version = t.versions(ctx)
	return t, nil
}

func aptInstall(ctx context.Context, pkgs []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	update := exec.CommandContext(ctx, "apt-get", "update", "-qq")
	update.Env = env
	if out, err := update.CombinedOutput(); err != nil {
		return fmt.Errorf("update: %v: %s", err, lastLine(string(out)))
	}
	args := append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)
	inst := exec.CommandContext(ctx, "apt-get", args...)
	inst.Env = env
	if out, err := inst.CombinedOutput(); err != nil {
		return fmt.Errorf("install: %v: %s", err, lastLine(string(out)))
	}
	return nil
}

// pullModes reads the values of --mode from `roots pull --help`: the help
// text of the line defining the flag, up to the next flag (not the examples).
func pullModes(help string) map[string]bool {
	modes := map[string]bool{}
	loc := regexp.MustCompile(`(?m)^\s*(?:-\w,\s+)?--mode\b`).FindStringIndex(help)
	if loc == nil {
		return modes
	}
	text := help[loc[1]:]
	if j := regexp.MustCompile(`\n\s*-`).FindStringIndex(text); j != nil {
		text = text[:j[0]]
	}
	for _, m := range []string{"hardlink", "copy", "overlay"} {
		if regexp.MustCompile(`\b` + m + `\b`).MatchString(text) {
			modes[m] = true
		}
	}
	return modes
}

// versions lists what ran, for the results file.
func (t *tools) versions(ctx context.Context) []string {
	ask := func(name string, argv ...string) {
		if argv[0] == "" {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		v := firstLine(string(out))
		if err != nil && v == "" {
			v = err.Error()
		}
		t.version = append(t.version, name+": "+v)
	}
	ask("roots", t.roots, "version")
	if t.source != "" {
		t.version = append(t.version, "roots source: "+t.source)
	}
	ask("go", "go", "version")
	ask("docker-registry", registryBinary, "--version")
	for _, p := range aptPeers {
		if t.has(p.command) {
			ask(p.command, t.path[p.command], "--version")
		}
	}
	ask("crane", t.crane, "version")
	ask("gzip", "gzip", "--version")
	ask("tar", "tar", "--version")
	return t.version
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
