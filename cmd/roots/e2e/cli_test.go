package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
)

func smallImage(body string) registrytest.Image {
	return registrytest.Image{Layers: []registrytest.Layer{
		{Compression: "gzip", Entries: []reg{{Name: "a/file", Body: []byte(body)}}},
		{Compression: "zstd", Entries: []reg{{Name: "b", Body: []byte(strings.Repeat(body, 50000))}}},
	}}
}

// TestUsageErrors checks that mistakes in the command line exit 2 with one
// line, before any network traffic.
func TestUsageErrors(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "d")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoArgs", []string{"pull"}, "expected"},
		{"UnknownFlag", []string{"pull", "--frobnicate", "x", dest}, "unknown flag"},
		{"UppercaseRepo", []string{"pull", "Debian", dest}, "invalid image reference"},
		{"BadDigest", []string{"pull", "debian@sha256:abc", dest}, "invalid image reference"},
		{"DoubleSlash", []string{"pull", "a//b", dest}, "invalid image reference"},
		{"BadPlatform", []string{"pull", "--platform", "linux/amd64/v3/extra", "debian", dest}, "platform"},
		{"PlatformAndArch", []string{"pull", "--platform", "linux/amd64", "--arch", "arm64", "debian", dest}, "--platform"},
		{"ZeroJobs", []string{"pull", "--jobs", "0", "debian", dest}, "--jobs"},
		{"DigestBadRef", []string{"digest", "UPPER"}, "invalid image reference"},
		{"PurgeNoCache", []string{"purge", "--cache=no"}, "no cache"},
		{"PlatformOneField", []string{"pull", "--platform", "linux", "debian", dest}, `--platform "linux"`},
		{"EmptyCache", []string{"pull", "--cache", "", "debian", dest}, `--cache ""`},
		{"EmptyCacheEquals", []string{"purge", "--cache="}, `--cache ""`},
		{"PushBadFormat", []string{"push", "--format", "v2s2", "debian", "host/x"}, "--format"},
		{"PushBadChunk", []string{"push", "--chunk-size", "0", "debian"}, "--chunk-size"},
		{"PushNoCache", []string{"push", "--cache=no", "debian"}, "roots copy"},
		{"PushBadDest", []string{"push", "debian", "UPPER"}, "invalid image reference"},
		{"CopyPlatformAndAll", []string{"copy", "--all-platforms", "--platform", "linux/amd64", "a/b", "c/d"}, "--all-platforms"},
		{"CopyOneArg", []string{"copy", "debian"}, "expected"},
		{"SyncNoTo", []string{"sync", "debian"}, "--to"},
		{"SyncNoSpec", []string{"sync", "--to", "host:5000"}, "no SPEC"},
		{"SyncBadTo", []string{"sync", "--to", "https://host:5000", "debian"}, "scheme"},
		{"SyncBadPrefix", []string{"sync", "-r", "host:5000", "--push-prefix", "/a b", "debian"}, "push prefix"},
		{"SyncIntervalAlone", []string{"sync", "--to", "host:5000", "--interval", "1m", "debian"}, "--daemon"},
		{"SyncNegativeInterval", []string{"sync", "-d", "--to", "host:5000", "--interval=-1m", "debian"}, "--interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No registry runs, and the proxy variables point nowhere: a
			// request would fail with another message.
			r := Roots(t, []string{"HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1"}, tt.args...)
			if r.Code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", r.Code, r.Stderr)
			}
			if !strings.HasPrefix(r.Stderr, "roots: ") || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, tt.want) {
				t.Fatalf("stderr %q: want one line \"roots: ...%s...\"", r.Stderr, tt.want)
			}
			if _, err := os.Lstat(dest); !os.IsNotExist(err) {
				t.Fatal("a usage error created DEST")
			}
		})
	}
}

func TestHelpShowsExamples(t *testing.T) {
	r := Roots(t, nil, "pull", "--help")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Examples:") || !strings.Contains(r.Stdout, "roots pull debian ./debian") {
		t.Fatalf("roots pull --help: exit %d, stdout:\n%s", r.Code, r.Stdout)
	}
}

func TestVersion(t *testing.T) {
	r := Roots(t, nil, "version")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "roots ") {
		t.Fatalf("roots version: exit %d, %q", r.Code, r.Stdout)
	}
}

// TestProfileFiles: ROOTS_PPROF=DIR leaves the CPU, block and mutex profiles
// and the execution trace there, and changes nothing else the command does.
func TestProfileFiles(t *testing.T) {
	dir := t.TempDir()
	r := Roots(t, []string{"ROOTS_PPROF=" + dir}, "version")
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("roots version with ROOTS_PPROF: exit %d, stderr %q", r.Code, r.Stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "trace.out"))
	if err != nil || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("trace.out: %v, starts %.8q; want a Go execution trace", err, b)
	}
	for _, name := range []string{"cpu.pprof", "block.pprof", "mutex.pprof"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		// A profile is a gzipped protocol buffer.
		zr, err := gzip.NewReader(f)
		if err == nil {
			var n int64
			n, err = io.Copy(io.Discard, zr)
			if err == nil && n == 0 {
				err = errors.New("empty")
			}
		}
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestDestination checks the rules for an existing DEST.
func TestDestination(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "img", "v1", smallImage("one"))
	r.Push(t, "img", "v2", smallImage("two"))
	cache := t.TempDir()
	parent := t.TempDir()
	dest := filepath.Join(parent, "rootfs")
	os.Mkdir(dest, 0o755)
	os.WriteFile(dest+"/precious", []byte("keep me"), 0o644)

	res := Roots(t, nil, "pull", "--cache", cache, r.Host+"/img:v1", dest)
	if res.Code != 1 || !strings.Contains(res.Stderr, "--force") {
		t.Fatalf("pull into an existing DEST: exit %d, %q; want exit 1 suggesting --force", res.Code, res.Stderr)
	}
	if b, _ := os.ReadFile(dest + "/precious"); string(b) != "keep me" {
		t.Fatal("existing DEST was changed")
	}
	MustPull(t, nil, "--cache", cache, "--force", r.Host+"/img:v1", dest)
	if b, _ := os.ReadFile(dest + "/a/file"); string(b) != "one" {
		t.Fatalf("after --force: a/file = %q", b)
	}
	if _, err := os.Lstat(dest + "/precious"); !os.IsNotExist(err) {
		t.Fatal("--force kept a file of the old DEST")
	}
	MustPull(t, nil, "--cache", cache, "-f", r.Host+"/img:v2", dest)
	if b, _ := os.ReadFile(dest + "/a/file"); string(b) != "two" {
		t.Fatalf("after the second --force: a/file = %q", b)
	}
	AssertNoStaging(t, parent)

	res = Roots(t, nil, "pull", "--cache", cache, r.Host+"/img:v1", filepath.Join(parent, "missing", "rootfs"))
	if res.Code != 1 || !strings.Contains(res.Stderr, "missing") {
		t.Fatalf("pull into a missing parent: exit %d, %q", res.Code, res.Stderr)
	}
	res = Roots(t, nil, "pull", "--cache", cache, r.Host+"/img:nope", filepath.Join(parent, "nope"))
	if res.Code != 1 || !strings.Contains(res.Stderr, "not found") {
		t.Fatalf("pull of a missing tag: exit %d, %q", res.Code, res.Stderr)
	}
	AssertNoStaging(t, parent)
}

// TestFaults puts a fault proxy in front of the registry.
func TestFaults(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "img", "latest", smallImage("fault"))
	big := pushed.Layers[1].Digest.String()
	onBig := func(req *http.Request) bool {
		return req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, big)
	}
	tests := []struct {
		name   string
		fault  registrytest.Fault
		ok     bool
		stderr string
	}{
		{"CutMidBlobResumes", registrytest.Fault{Match: onBig, Kind: registrytest.CutAfter, Bytes: 100, Times: 2}, true, ""},
		{"CutAndIgnoreRange", registrytest.Fault{Match: onBig, Kind: registrytest.IgnoreRange, Times: 0}, true, ""},
		{"Unavailable503ThenOK", registrytest.Fault{Kind: registrytest.Status, Code: 503, Times: 2}, true, ""},
		{"TooManyRequests429ThenOK", registrytest.Fault{Kind: registrytest.Status, Code: 429, Times: 1}, true, ""},
		{"WrongBytesFails", registrytest.Fault{Match: onBig, Kind: registrytest.WrongBytes}, false, "digest mismatch"},
		{"Always503Fails", registrytest.Fault{Kind: registrytest.Status, Code: 503}, false, "503"},
	}
	for _, mode := range []string{"cache", "no"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				host := r.FaultProxy(t, tt.fault)
				cache := t.TempDir()
				if mode == "no" {
					cache = "no"
				}
				parent := t.TempDir()
				dest := filepath.Join(parent, "rootfs")
				res := Roots(t, nil, "pull", "--cache", cache, host+"/img", dest)
				if tt.ok {
					if res.Code != 0 {
						t.Fatalf("exit %d: %s", res.Code, res.Stderr)
					}
					if b, _ := os.ReadFile(dest + "/b"); string(b) != strings.Repeat("fault", 50000) {
						t.Fatalf("b has %d bytes", len(b))
					}
					return
				}
				if res.Code != 1 || !strings.Contains(res.Stderr, tt.stderr) || strings.Count(res.Stderr, "\n") != 1 {
					t.Fatalf("exit %d, stderr %q; want exit 1 and one line with %q", res.Code, res.Stderr, tt.stderr)
				}
				if _, err := os.Lstat(dest); !os.IsNotExist(err) {
					t.Fatal("failed pull left DEST")
				}
				AssertNoStaging(t, parent)
				if mode == "cache" {
					assertNoBlob(t, cache, big)
					// Without the fault, the next pull fetches it again and succeeds.
					MustPull(t, nil, "--cache", cache, r.Host+"/img", dest)
				}
			})
		}
	}
}

// assertNoBlob fails if the cache holds digest d as a blob or anything in tmp/.
func assertNoBlob(t *testing.T, cache, d string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(cache, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))); !os.IsNotExist(err) {
		t.Errorf("the cache kept blob %s", d)
	}
	ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left in the cache's tmp/: %s", e.Name())
		}
	}
}

// TestDigest checks roots digest against what was pushed.
func TestDigest(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	single := r.Push(t, "single", "latest", smallImage("x"))
	amd := smallImage("amd")
	amd.OS, amd.Arch = "linux", "amd64"
	arm := smallImage("arm")
	arm.OS, arm.Arch, arm.Variant = "linux", "arm64", "v8"
	index := r.PushIndex(t, "multi", "latest", registrytest.OCI, amd, arm)
	armOnly := r.Push(t, "armonly", "latest", arm)
	user := []string{"--user", r.User + ":" + r.Password}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"Single", []string{r.Host + "/single"}, single.Digest.String()},
		{"Index", []string{r.Host + "/multi"}, index.Digest.String()},
		{"IndexPlatform", []string{"--platform", "linux/arm64", r.Host + "/multi"}, armOnly.Digest.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Roots(t, nil, append(append([]string{"digest"}, user...), tt.args...)...)
			if res.Code != 0 || strings.TrimSpace(res.Stdout) != tt.want {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %s", res.Code, res.Stdout, res.Stderr, tt.want)
			}
		})
	}
	res := Roots(t, nil, append(append([]string{"digest"}, user...), "--platform", "linux/s390x", r.Host+"/multi")...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "linux/arm64") {
		t.Fatalf("digest of a missing platform: exit %d, %q; want the platforms listed", res.Code, res.Stderr)
	}
}

// TestMultiPlatformPull pulls each platform of an index.
func TestMultiPlatformPull(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	amd := smallImage("amd")
	amd.OS, amd.Arch = "linux", "amd64"
	arm := smallImage("arm")
	arm.OS, arm.Arch, arm.Variant = "linux", "arm", "v7"
	for _, f := range []registrytest.Format{registrytest.OCI, registrytest.Docker} {
		r.PushIndex(t, "multi", fmtName(f), f, amd, arm)
	}
	r.Push(t, "single", "arm", arm)
	tests := []struct {
		name string
		args []string
		want string // content of a/file, "" = the pull fails
	}{
		{"OCIDefaultIsHost", []string{r.Host + "/multi:oci"}, "amd"},
		{"OCIArm", []string{"--platform", "linux/arm/v7", r.Host + "/multi:oci"}, "arm"},
		{"DockerArmFlags", []string{"--os", "linux", "--arch", "arm", "--variant", "v7", r.Host + "/multi:docker"}, "arm"},
		{"DockerArmNoVariant", []string{"--arch", "arm", r.Host + "/multi:docker"}, "arm"},
		{"NoSuchPlatform", []string{"--platform", "linux/ppc64le", r.Host + "/multi:oci"}, ""},
		{"SingleContradicted", []string{"--platform", "linux/amd64", r.Host + "/single:arm"}, ""},
		{"SingleMatching", []string{"--platform", "linux/arm/v7", r.Host + "/single:arm"}, "arm"},
	}
	if runtime.GOARCH != "amd64" {
		tests = tests[1:]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "rootfs")
			res := Roots(t, nil, append(append([]string{"pull", "--cache", t.TempDir()}, tt.args...), dest)...)
			if tt.want == "" {
				if res.Code != 1 || !strings.Contains(res.Stderr, "linux/") {
					t.Fatalf("exit %d, %q: want a failure naming platforms", res.Code, res.Stderr)
				}
				return
			}
			if res.Code != 0 {
				t.Fatalf("exit %d: %s", res.Code, res.Stderr)
			}
			if b, _ := os.ReadFile(dest + "/a/file"); string(b) != tt.want {
				t.Fatalf("a/file = %q, want %q", b, tt.want)
			}
		})
	}
}

// TestCacheSelection checks --cache, ROOTS_CACHE and ROOTS_CACHE=no, and purge.
func TestCacheSelection(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "img", "latest", smallImage("c"))
	envCache, flagCache := t.TempDir(), t.TempDir()
	blobs := func(dir string) int {
		ents, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
		return len(ents)
	}
	envDest := filepath.Join(t.TempDir(), "d")
	MustPull(t, []string{"ROOTS_CACHE=" + envCache}, r.Host+"/img", envDest)
	if blobs(envCache) != 4 { // manifest, config, two layers
		t.Fatalf("ROOTS_CACHE: %d blobs cached, want 4", blobs(envCache))
	}
	MustPull(t, []string{"ROOTS_CACHE=" + envCache}, "--cache", flagCache, r.Host+"/img", filepath.Join(t.TempDir(), "d"))
	if blobs(flagCache) != 4 {
		t.Fatal("--cache does not take precedence over ROOTS_CACHE")
	}
	noCache := filepath.Join(t.TempDir(), "unused")
	MustPull(t, []string{"ROOTS_CACHE=no", "XDG_CACHE_HOME=" + noCache}, r.Host+"/img", filepath.Join(t.TempDir(), "d"))
	if _, err := os.Stat(noCache); !os.IsNotExist(err) {
		t.Fatal("ROOTS_CACHE=no still made a cache")
	}
	os.RemoveAll(envDest) // a destination on disk keeps its image's blobs
	res := Roots(t, []string{"ROOTS_CACHE=" + envCache}, "purge")
	if res.Code != 0 || blobs(envCache) != 0 {
		t.Fatalf("purge: exit %d, %s; %d blobs left", res.Code, res.Stderr, blobs(envCache))
	}
	trees, _ := os.ReadDir(filepath.Join(envCache, "trees", "sha256"))
	if len(trees) != 0 {
		t.Fatalf("purge left %d trees", len(trees))
	}
	// The cache still works after a purge.
	MustPull(t, []string{"ROOTS_CACHE=" + envCache}, r.Host+"/img", filepath.Join(t.TempDir(), "d"))
}

// TestConcurrentPullsShareCache starts pulls at once into one cache: each
// succeeds and each blob is fetched from the registry once.
func TestConcurrentPullsShareCache(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "img", "latest", smallImage("shared"))
	cache := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dest := filepath.Join(t.TempDir(), "d")
			res := Roots(t, nil, "pull", "--cache", cache, r.Host+"/img", dest)
			if res.Code != 0 {
				t.Errorf("pull %d: exit %d: %s", i, res.Code, res.Stderr)
			}
		}()
	}
	wg.Wait()
	for _, l := range pushed.Layers {
		n := 0
		for _, req := range r.Requests() {
			if req.Method == http.MethodGet && strings.HasSuffix(req.Path, l.Digest.String()) && req.Status/100 == 2 {
				n++
			}
		}
		if n != 1 {
			t.Errorf("layer %s fetched %d times, want 1", l.Digest, n)
		}
	}
}

// TestPullWithoutRoot runs roots as nobody: an image with owners and a device
// still pulls, and what could not be applied is reported once, on one line.
func TestPullWithoutRoot(t *testing.T) {
	NeedRoot(t) // to become nobody
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "owned", "latest", registrytest.Image{Layers: []registrytest.Layer{{Compression: "gzip", Entries: []reg{
		{Name: "etc/shadow", Body: []byte("secret"), Mode: 0o640, Gid: 42},
		{Name: "home/user/", Type: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000},
		{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "bin/tool", Body: []byte("#!"), Mode: 0o755},
	}}}})
	for _, cache := range []string{"cache", "no"} {
		t.Run(cache, func(t *testing.T) {
			work := t.TempDir()
			os.Chmod(filepath.Dir(work), 0o755) // t.TempDir makes its parent 0700
			os.Chmod(work, 0o777)
			if cache == "cache" {
				cache = filepath.Join(work, "cache")
			}
			dest := filepath.Join(work, "rootfs")
			cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", Bin(), "pull", "--cache", cache, r.Host+"/owned", dest)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("roots pull as nobody: %v\n%s", err, out)
			}
			if !strings.HasPrefix(string(out), "roots: warning: ") || strings.Count(string(out), "\n") != 1 || !strings.Contains(string(out), "run as root") {
				t.Fatalf("want one warning line naming what was not applied, got %q", out)
			}
			if b, err := os.ReadFile(dest + "/bin/tool"); err != nil || string(b) != "#!" {
				t.Fatalf("bin/tool: %q, %v", b, err)
			}
		})
	}
}

// TestPullJSON: pull --json prints one object whose digests are the registry's (the platform's
// manifest; the index's as roots digest prints it), with each layer's digest, diff id, size,
// and whether it came from the cache (cold: none, every byte fetched; warm: all, none fetched);
// --digest-file holds the manifest's digest; with --cache=no the object has no cache and the
// terminal-less run prints nothing else.
func TestPullJSON(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	amd := smallImage("amd")
	amd.OS, amd.Arch = "linux", "amd64"
	arm := smallImage("arm")
	arm.OS, arm.Arch, arm.Variant = "linux", "arm64", "v8"
	index := r.PushIndex(t, "multi", "1", registrytest.OCI, amd, arm)
	manifest := r.Push(t, "amdonly", "1", amd) // the same manifest, by itself
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	type layerJSON struct {
		Digest, DiffID, MediaType string
		Size                      int64
		Cached                    bool
	}
	type pulledJSON struct {
		Reference, Digest, IndexDigest, Platform, Dest, Mode, Cache string
		Layers                                                      []layerJSON
		Size, FetchedBytes                                          int64
		CachedLayers                                                int
		Seconds                                                     float64
	}
	pull := func(name string, args ...string) pulledJSON {
		t.Helper()
		res := Roots(t, nil, append(append([]string{"pull", "--json", "--platform", "linux/amd64"}, args...), r.Host+"/multi:1", filepath.Join(tmp, name))...)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("pull --json: exit %d, stderr %q", res.Code, res.Stderr)
		}
		var p pulledJSON
		dec := json.NewDecoder(strings.NewReader(res.Stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil || dec.More() {
			t.Fatalf("pull --json printed %q: %v", res.Stdout, err)
		}
		return p
	}
	digestFile := filepath.Join(tmp, "digest")
	cold := pull("cold", "--cache", cache, "--digest-file", digestFile)
	warm := pull("warm", "--cache", cache)
	none := pull("none", "--cache", "no")
	if res := Roots(t, nil, "digest", r.Host+"/multi:1"); strings.TrimSpace(res.Stdout) != cold.IndexDigest {
		t.Errorf("indexDigest %s, roots digest says %s", cold.IndexDigest, res.Stdout)
	}
	if b, _ := os.ReadFile(digestFile); string(b) != manifest.Digest.String()+"\n" {
		t.Errorf("--digest-file holds %q, want %s", b, manifest.Digest)
	}
	for _, tt := range []struct {
		name    string
		p       pulledJSON
		cached  bool
		cache   string
		fetched bool
	}{{"cold", cold, false, cache, true}, {"warm", warm, true, cache, false}, {"none", none, false, "", true}} {
		p := tt.p
		if p.Reference != r.Host+"/multi:1" || p.Digest != manifest.Digest.String() || p.IndexDigest != index.Digest.String() ||
			p.Platform != "linux/amd64" || p.Dest != filepath.Join(tmp, tt.name) || p.Cache != tt.cache || p.Seconds <= 0 {
			t.Errorf("%s: %+v", tt.name, p)
		}
		var size int64
		for i, l := range p.Layers {
			want := manifest.Layers[i]
			if l.Digest != want.Digest.String() || l.Size != want.Size || l.MediaType != want.MediaType || l.DiffID != manifest.DiffIDs[i].String() || l.Cached != tt.cached {
				t.Errorf("%s: layer %d: %+v, want %+v (diff id %s), cached %v", tt.name, i, l, want, manifest.DiffIDs[i], tt.cached)
			}
			size += want.Size
		}
		wantFetched := int64(0)
		if tt.fetched {
			wantFetched = size
		}
		if len(p.Layers) != len(manifest.Layers) || p.Size != size || p.FetchedBytes != wantFetched || (p.CachedLayers == len(p.Layers)) != tt.cached {
			t.Errorf("%s: %d layers, size %d, fetched %d, cached %d; want %d, %d, %d", tt.name, len(p.Layers), p.Size, p.FetchedBytes, p.CachedLayers, len(manifest.Layers), size, wantFetched)
		}
	}
}
