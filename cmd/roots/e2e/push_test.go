package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// pushedJSON is what roots push --json and roots copy --json print.
type pushedJSON struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Unchanged bool   `json:"unchanged"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
	Blobs []struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
		Action string `json:"action"`
		From   string `json:"from"`
	} `json:"blobs"`
}

// runJSON runs roots with --json and decodes what it prints; it fails the test on any error.
func runJSON(t *testing.T, args ...string) pushedJSON {
	t.Helper()
	res := Roots(t, nil, append(args, "--json")...)
	if res.Code != 0 {
		t.Fatalf("roots %v: exit %d: %s", args, res.Code, res.Stderr)
	}
	var out pushedJSON
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
		t.Fatalf("roots %v --json: %v\n%s", args, err, res.Stdout)
	}
	return out
}

// gzipImage is a two-layer image umoci can unpack (no zstd).
func gzipImage(body string, seed uint64) registrytest.Image {
	return registrytest.Image{Layers: []registrytest.Layer{
		{Compression: "gzip", Entries: []reg{{Name: "etc/", Type: '5'}, {Name: "etc/name", Body: []byte(body)}, {Name: "link", Type: '2', Linkname: "etc/name"}}},
		{Compression: "gzip", Entries: []reg{{Name: "data", Body: noise(seed, 64<<10), Mode: 0o600}}},
	}}
}

// TestPushCommand: roots push from a token registry's pull to an empty repository uploads
// each blob once; again, it uploads nothing and PUTs only the manifest; to another repository
// of the same registry it mounts; with --chunk-size it PATCHes; what it pushed pulls back with
// roots and with skopeo + umoci as the image pulled, file for file; a push refused for want of
// credentials is one line naming the registry, the repository and the credentials tried.
func TestPushCommand(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	dst := registrytest.Start(t, registrytest.Config{})
	src.Push(t, "team/app", "1", gzipImage("app", 1))
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	user := "--user=" + src.User + ":" + src.Password
	MustPull(t, nil, "--cache", cache, user, src.Host+"/team/app:1", filepath.Join(tmp, "pulled"))
	pulled := testtree.Scan(t, filepath.Join(tmp, "pulled"))

	tests := []struct {
		name   string
		dest   string
		extra  []string
		action string
		want   registrytest.Counts
	}{
		{"Empty", dst.Host + "/app:1", nil, "pushed", registrytest.Counts{Heads: 3, Posts: 3, BlobPuts: 3, ManifestPuts: 1}},
		{"Again", dst.Host + "/app:1", nil, "exists", registrytest.Counts{Heads: 3, ManifestPuts: 1}},
		{"Mount", dst.Host + "/mirror/app:1", nil, "mounted", registrytest.Counts{Heads: 3, Mounts: 3, ManifestPuts: 1}},
	}
	var digest string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst.ResetRequests()
			out := runJSON(t, append([]string{"push", "--cache", cache, user, src.Host + "/team/app:1", tt.dest}, tt.extra...)...)
			if len(out.Blobs) != 3 {
				t.Fatalf("%d blobs, want 3: %+v", len(out.Blobs), out)
			}
			for _, b := range out.Blobs {
				if b.Action != tt.action || tt.action == "mounted" && b.From != dst.Host+"/app" {
					t.Errorf("blob %s: %s %s, want %s", b.Digest, b.Action, b.From, tt.action)
				}
			}
			if digest != "" && out.Digest != digest {
				t.Errorf("digest %s, the first push's %s", out.Digest, digest)
			}
			digest = out.Digest
			if got := registrytest.Count(dst.Requests()); got != tt.want {
				t.Errorf("requests %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("ChunkSize", func(t *testing.T) {
		other := registrytest.Start(t, registrytest.Config{})
		res := Roots(t, nil, "push", "--cache", cache, user, "--chunk-size", "4KiB", src.Host+"/team/app:1", other.Host+"/app:1")
		if res.Code != 0 || strings.TrimSpace(res.Stdout) != digest {
			t.Fatalf("exit %d, stdout %q, stderr %s", res.Code, res.Stdout, res.Stderr)
		}
		if n := registrytest.Count(other.Requests()); n.Patches <= 3 || n.Posts != 3 || n.BlobPuts != 3 {
			t.Errorf("requests %+v: want several PATCHes for the 64 KiB layer, one session per blob", n)
		}
	})
	t.Run("TokenMount", func(t *testing.T) { // push,pull on the target and pull on the source, in tokens
		src.ResetRequests()
		out := runJSON(t, "push", "--cache", cache, user, src.Host+"/team/app:1", src.Host+"/team/copy:1")
		for _, b := range out.Blobs {
			if b.Action != "mounted" || b.From != src.Host+"/team/app" {
				t.Errorf("blob %s: %s %s, want mounted from team/app", b.Digest, b.Action, b.From)
			}
		}
		if n := registrytest.Count(src.Requests()); n != (registrytest.Counts{Heads: 3, Mounts: 3, ManifestPuts: 1}) {
			t.Errorf("requests %+v, want 3 HEADs, 3 mounts and the manifest", n)
		}
	})
	t.Run("PullBack", func(t *testing.T) {
		back := filepath.Join(t.TempDir(), "back")
		MustPull(t, nil, "--cache=no", dst.Host+"/app:1", back)
		only := testtree.Only(testtree.Type, testtree.Mode, testtree.Size, testtree.Content, testtree.Target, testtree.Mtime)
		if diffs := testtree.Diff(pulled, testtree.Scan(t, back), only); len(diffs) > 0 {
			t.Errorf("pulled back from the push:\n%s", strings.Join(diffs, "\n"))
		}
		craneValidate(t, dst.Host+"/app:1")
		rootfs := umociUnpack(t, dst.Host+"/app:1")
		if diffs := testtree.Diff(pulled, testtree.Scan(t, rootfs), testtree.Only(testtree.Type, testtree.Content, testtree.Target)); len(diffs) > 0 {
			t.Errorf("skopeo + umoci of the push:\n%s", strings.Join(diffs, "\n"))
		}
	})
	t.Run("Unauthorized", func(t *testing.T) {
		res := Roots(t, nil, "push", "--cache", cache, src.Host+"/team/app:1", src.Host+"/team/other:1")
		line := strings.TrimSuffix(res.Stderr, "\n")
		if res.Code != 1 || strings.Contains(line, "\n") || !strings.Contains(line, src.Host+"/team/other") || !strings.Contains(line, "credentials tried: none") {
			t.Fatalf("exit %d, stderr %q: want one line naming the registry, the repository and the credentials tried", res.Code, res.Stderr)
		}
	})
}

// craneValidate runs go-containerregistry's own check of ref in its registry: `crane validate
// --remote` reads the manifest and every blob and checks their digests and sizes. .ci/run
// installs crane (go install) when it is missing.
func craneValidate(t *testing.T, ref string) {
	t.Helper()
	crane, err := exec.LookPath("crane")
	if err != nil {
		out, gerr := exec.Command("go", "env", "GOPATH").Output()
		crane = filepath.Join(strings.TrimSpace(string(out)), "bin", "crane")
		if _, serr := os.Stat(crane); gerr != nil || serr != nil {
			t.Fatalf("crane is needed to check what roots pushed: go install github.com/google/go-containerregistry/cmd/crane@v0.22.1 (as .ci/run does)")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, crane, "validate", "--insecure", "--remote", ref).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("crane validate --remote %s: %v\n%s", ref, err, out)
	}
}

// TestCopyCommand: roots copy of a multi-platform index from a token registry keeps its
// digest in the target and sends each blob once; a second copy costs one HEAD on each side (and
// the auth challenge that precedes it).
func TestCopyCommand(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	dst := registrytest.Start(t, registrytest.Config{Auth: registrytest.Basic})
	amd, arm := gzipImage("amd", 2), gzipImage("arm", 3)
	amd.OS, amd.Arch = "linux", "amd64"
	arm.OS, arm.Arch = "linux", "arm64"
	index := src.PushIndex(t, "multi", "1", registrytest.OCI, amd, arm)
	user := "--user=" + src.User + ":" + src.Password
	out := runJSON(t, "copy", "--cache=no", user, src.Host+"/multi:1", dst.Host+"/copy/multi:1")
	if out.Digest != index.Digest.String() || len(out.Manifests) != 5 {
		t.Fatalf("copied %s with %d manifests, want %s and 5", out.Digest, len(out.Manifests), index.Digest)
	}
	sent := map[string]bool{}
	for _, b := range out.Blobs {
		if b.Action != "pushed" || sent[b.Digest] {
			t.Errorf("blob %s: %s (sent before: %v)", b.Digest, b.Action, sent[b.Digest])
		}
		sent[b.Digest] = true
	}
	if n := registrytest.Count(dst.Requests()); n.BlobPuts != len(sent) || n.ManifestPuts != 5 {
		t.Errorf("requests %+v: want %d blob PUTs and 5 manifest PUTs", n, len(sent))
	}
	res := Roots(t, nil, "digest", user, dst.Host+"/copy/multi:1")
	if strings.TrimSpace(res.Stdout) != index.Digest.String() {
		t.Errorf("the copy's digest: %q %s", res.Stdout, res.Stderr)
	}
	src.ResetRequests()
	dst.ResetRequests()
	again := runJSON(t, "copy", "--cache=no", user, src.Host+"/multi:1", dst.Host+"/copy/multi:1")
	if !again.Unchanged || again.Digest != index.Digest.String() {
		t.Errorf("second copy: %+v, want unchanged", again)
	}
	for _, r := range []*registrytest.Registry{src, dst} {
		var answered []registrytest.Request // the auth challenges (401) aside
		for _, q := range r.Requests() {
			if q.Status != 401 {
				answered = append(answered, q)
			}
		}
		if len(answered) != 1 || answered[0].Method != "HEAD" {
			t.Errorf("second copy sent %+v to %s, want one HEAD", answered, r.Host)
		}
	}
}

// TestPushOnTerminal: on a terminal roots push prints one line per blob and the digest it
// pushed: to another repository of the registry every blob is mounted from the image's own,
// and a second push says every blob exists.
func TestPushOnTerminal(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	p := r.Push(t, "img", "1", gzipImage("tty", 4))
	cache := t.TempDir()
	MustPull(t, nil, "--cache", cache, r.Host+"/img:1", filepath.Join(t.TempDir(), "rootfs"))
	for _, want := range []string{"mounted from " + r.Host + "/img", "exists"} {
		args := Bin() + " push --cache=" + cache + " " + r.Host + "/img:1 " + r.Host + "/copy:1"
		cmd := exec.Command("script", "-qec", args, "/dev/null")
		cmd.Env = Env(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("script -c %q: %v\n%s", args, err, out)
		}
		text := string(out)
		if strings.Count(text, want) != len(p.Layers)+1 || !strings.Contains(text, "pushed "+r.Host+"/copy:1@"+p.Digest.String()) {
			t.Fatalf("want a %q line per blob and the digest in %q", want, text)
		}
	}
}
