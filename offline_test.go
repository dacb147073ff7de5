package roots_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// offlineSetup is a registry holding app:1 (two layers) and multi:1 (an index of the host's
// platform and two others), with caches filled from it online; the registry is then stopped,
// and a listener on its port counts every connection the offline commands make.
type offlineSetup struct {
	host     string
	app      registrytest.Pushed
	multi    registrytest.Pushed
	other    string // a platform of multi:1 whose manifest was pulled by digest only
	never    string // a platform of multi:1 never pulled
	listener *registrytest.Listener
}

func startOffline(t *testing.T, caches map[string]string) *offlineSetup {
	r := registrytest.Start(t, registrytest.Config{})
	s := &offlineSetup{host: r.Host}
	s.app = r.Push(t, "app", "1", registrytest.Image{Layers: []registrytest.Layer{
		{Entries: []registrytest.Entry{registrytest.Dir("etc/", 0o755), registrytest.File("etc/os-release", "NAME=app\n")}},
		{Entries: []registrytest.Entry{registrytest.File("hello.txt", "hello, offline\n")}},
	}})
	var archs []string
	for _, a := range []string{runtime.GOARCH, "s390x", "riscv64", "ppc64le"} {
		if len(archs) < 3 && (a == runtime.GOARCH || a != archs[0]) {
			archs = append(archs, a)
		}
	}
	var imgs []registrytest.Image
	for _, a := range archs {
		imgs = append(imgs, registrytest.Image{OS: "linux", Arch: a, Layers: []registrytest.Layer{{Entries: []registrytest.Entry{registrytest.File("arch", a+"\n")}}}})
	}
	s.multi = r.PushIndex(t, "multi", "1", registrytest.OCI, imgs...)
	s.other, s.never = "linux/"+archs[1], "linux/"+archs[2]
	other, _ := fetch.ParsePlatform(s.other)
	for _, cache := range caches {
		for _, ref := range []string{s.host + "/app:1", s.host + "/multi:1"} {
			if _, err := roots.Pull(t.Context(), ref, filepath.Join(t.TempDir(), "rootfs"), roots.PullOptions{Cache: cache}); err != nil {
				t.Fatal(err)
			}
		}
		// The other platform's manifest, by digest: a record of multi:1 resolves it offline.
		ref := s.host + "/multi@" + s.multi.Manifests[1].Digest.String()
		if _, err := roots.Pull(t.Context(), ref, filepath.Join(t.TempDir(), "rootfs"), roots.PullOptions{Cache: cache, Platform: &other}); err != nil {
			t.Fatal(err)
		}
	}
	r.Stop()
	s.listener = registrytest.Listen(t, r.Host)
	t.Cleanup(func() {
		if n := s.listener.Connections(); n != 0 {
			t.Errorf("offline commands made %d connections to the registry's port, want none", n)
		}
	})
	return s
}

// blob is the path of d in the cache.
func blobPath(cache string, d digest.Digest) string {
	return filepath.Join(cache, "blobs", d.Algorithm().String(), d.Encoded())
}

// TestOffline: with the registry stopped, pull (hardlink, copy and, as root, overlay), digest
// and inspect answer from the cache alone, a tag through its record and a digest through the
// cached manifest; another platform of a multi-platform tag resolves through the record's index
// when its manifest is cached; a tree changed through a hardlinked DEST is unpacked again
// from its cached blob. No connection reaches the registry's port.
func TestOffline(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	s := startOffline(t, map[string]string{"main": cache})
	app, multi := s.host+"/app:1", s.host+"/multi:1"
	modes := []roots.Mode{roots.Hardlink, roots.Copy}
	if os.Geteuid() == 0 {
		modes = append(modes, roots.Overlay)
	}
	for _, mode := range modes {
		t.Run("Pull"+string(mode), func(t *testing.T) {
			var recorded bool
			dest := filepath.Join(t.TempDir(), "rootfs")
			pulled, err := roots.Pull(t.Context(), app, dest, roots.PullOptions{Cache: cache, Mode: mode, Offline: true, Progress: func(e roots.Event) {
				if e.Kind == roots.Resolved && !e.Recorded.IsZero() {
					recorded = true
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if mode == roots.Overlay {
				defer roots.Unmount(t.Context(), dest, false)
			}
			if b, err := os.ReadFile(filepath.Join(dest, "hello.txt")); err != nil || string(b) != "hello, offline\n" {
				t.Errorf("hello.txt: %q, %v", b, err)
			}
			if pulled.Digest != s.app.Digest || !recorded {
				t.Errorf("pulled %s (record's time told: %v), want %s", pulled.Digest, recorded, s.app.Digest)
			}
		})
	}
	t.Run("PullPlatforms", func(t *testing.T) {
		for i, p := range []string{"", s.other} {
			var want *fetch.Platform
			if p != "" {
				pl, _ := fetch.ParsePlatform(p)
				want = &pl
			}
			dest := filepath.Join(t.TempDir(), "rootfs")
			pulled, err := roots.Pull(t.Context(), multi, dest, roots.PullOptions{Cache: cache, Platform: want, Offline: true})
			if err != nil {
				t.Fatalf("%q: %v", p, err)
			}
			if pulled.Digest != s.multi.Manifests[i].Digest || pulled.Index != s.multi.Digest {
				t.Errorf("%q: pulled %s of %s, want %s of %s", p, pulled.Digest, pulled.Index, s.multi.Manifests[i].Digest, s.multi.Digest)
			}
		}
	})
	t.Run("PullGit", func(t *testing.T) {
		for _, trees := range []bool{true, false} { // the scratch rootfs from the trees, or from the blobs
			roots.GitScratchTrees(t, trees)
			dest := filepath.Join(t.TempDir(), "rootfs")
			if _, err := roots.Pull(t.Context(), app, dest, roots.PullOptions{Cache: cache, Git: true, Offline: true}); err != nil {
				t.Fatalf("trees %v: %v", trees, err)
			}
			if _, err := os.Stat(filepath.Join(dest, ".git")); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("PullByDigest", func(t *testing.T) {
		if _, err := roots.Pull(t.Context(), s.host+"/app@"+s.app.Digest.String(), filepath.Join(t.TempDir(), "rootfs"), roots.PullOptions{Cache: cache, Offline: true}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Digest", func(t *testing.T) {
		other, _ := fetch.ParsePlatform(s.other)
		for _, tt := range []struct {
			ref      string
			platform *fetch.Platform
			want     digest.Digest
		}{
			{app, nil, s.app.Digest},
			{multi, nil, s.multi.Digest},
			{multi, &other, s.multi.Manifests[1].Digest},
			{s.host + "/multi@" + s.multi.Digest.String(), nil, s.multi.Digest},
		} {
			got, err := roots.Digest(t.Context(), tt.ref, roots.DigestOptions{Cache: cache, Platform: tt.platform, Offline: true})
			if err != nil || got.Digest != tt.want {
				t.Errorf("Digest %s %v: %+v, %v; want %s", tt.ref, tt.platform, got, err, tt.want)
			}
		}
	})
	t.Run("Inspect", func(t *testing.T) {
		got, err := roots.Inspect(t.Context(), multi, roots.InspectOptions{Cache: cache, Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != s.multi.Digest || got.Manifest != s.multi.Manifests[0].Digest || got.Source != "cache" || got.Recorded.IsZero() || len(got.RawIndex) == 0 {
			t.Errorf("Inspect: %+v", got)
		}
	})
	t.Run("TouchedTreeWithBlob", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "rootfs")
		if _, err := roots.Pull(t.Context(), app, dest, roots.PullOptions{Cache: cache, Offline: true}); err != nil {
			t.Fatal(err)
		}
		// hello.txt is the tree's inode: writing through DEST changes the cached tree.
		if err := os.WriteFile(filepath.Join(dest, "hello.txt"), []byte("changed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var warned bool
		again := filepath.Join(t.TempDir(), "rootfs")
		_, err := roots.Pull(t.Context(), app, again, roots.PullOptions{Cache: cache, Offline: true, Progress: func(e roots.Event) {
			warned = warned || e.Kind == roots.Warning && strings.Contains(e.Message, "unpacked it again")
		}})
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(again, "hello.txt")); string(b) != "hello, offline\n" || !warned {
			t.Errorf("hello.txt %q, repair told: %v", b, warned)
		}
	})
}

// TestOfflineRefused: what the cache lacks or holds corrupt is refused with one line that
// wraps ErrOffline and names the digest, and leaves no DEST: a tag never pulled, a platform
// never pulled, a missing manifest, a corrupt config, a missing layer blob under a changed tree.
func TestOfflineRefused(t *testing.T) {
	caches := map[string]string{}
	for _, name := range []string{"main", "manifest", "config", "layer"} {
		caches[name] = filepath.Join(t.TempDir(), name)
	}
	s := startOffline(t, caches)
	app := s.host + "/app:1"
	configDigest := digest.FromBytes(s.app.Config)
	if err := os.Remove(blobPath(caches["manifest"], s.app.Digest)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blobPath(caches["config"], configDigest), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A hardlinked DEST written through (its tree changed), and the layer's blob gone.
	linked := filepath.Join(t.TempDir(), "linked")
	if _, err := roots.Pull(t.Context(), app, linked, roots.PullOptions{Cache: caches["layer"], Offline: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(linked, "hello.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(blobPath(caches["layer"], s.app.Layers[1].Digest)); err != nil {
		t.Fatal(err)
	}
	never, _ := fetch.ParsePlatform(s.never)
	tests := []struct {
		name, cache, ref string
		platform         *fetch.Platform
		inspect, digest  bool   // refused by Inspect and Digest too
		want             string // in the message
	}{
		{"TagNeverPulled", "main", s.host + "/app:2", nil, true, true, "no record of " + s.host + "/app:2"},
		{"DigestNeverPulled", "main", s.host + "/app@" + digest.FromString("x").String(), nil, true, true, digest.FromString("x").String()},
		{"PlatformNeverPulled", "main", s.host + "/multi:1", &never, true, true, "no " + s.never + " image"},
		{"MissingManifest", "manifest", app, nil, true, true, s.app.Digest.String()},
		{"CorruptConfig", "config", app, nil, true, false, configDigest.String()},
		{"MissingLayerBlob", "layer", app, nil, false, false, s.app.Layers[1].Digest.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := caches[tt.cache]
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, roots.ErrOffline) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: %v; want one line wrapping ErrOffline naming %s", what, err, tt.want)
				}
			}
			modes := []roots.Mode{roots.Hardlink}
			if os.Geteuid() == 0 {
				modes = append(modes, roots.Overlay)
			}
			for _, mode := range modes {
				parent := t.TempDir()
				_, err := roots.Pull(t.Context(), tt.ref, filepath.Join(parent, "rootfs"), roots.PullOptions{Cache: cache, Mode: mode, Platform: tt.platform, Offline: true})
				check("Pull "+string(mode), err)
				if ents, _ := os.ReadDir(parent); len(ents) != 0 {
					t.Errorf("Pull %s left %v beside DEST", mode, ents)
				}
			}
			if tt.inspect {
				_, err := roots.Inspect(t.Context(), tt.ref, roots.InspectOptions{Cache: cache, Platform: tt.platform, Offline: true})
				check("Inspect", err)
			}
			if tt.digest {
				_, err := roots.Digest(t.Context(), tt.ref, roots.DigestOptions{Cache: cache, Platform: tt.platform, Offline: true})
				check("Digest", err)
			}
		})
	}
	if _, err := roots.Pull(t.Context(), app, filepath.Join(t.TempDir(), "rootfs"), roots.PullOptions{Offline: true}); !errors.Is(err, roots.ErrOffline) {
		t.Errorf("Pull offline with no cache: %v, want ErrOffline", err)
	}
}

// TestOfflineRepairedOnline: a corrupt cached manifest and config are refused offline (and no
// request reaches the registry, which is up); the next pull online replaces them, and offline
// works again. An offline pull leaves the tag's record as old as it was: the tag was not asked.
// A single-platform image of another platform, pulled with no platform asked for, is pulled
// offline the same way; asked for the host's platform, it is refused.
func TestOfflineRepairedOnline(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "app", "1", registrytest.Image{Layers: []registrytest.Layer{{Entries: []registrytest.Entry{registrytest.File("f", "x\n")}}}})
	ref, cache := r.Host+"/app:1", filepath.Join(t.TempDir(), "cache")
	pull := func(offline bool) error {
		_, err := roots.Pull(t.Context(), ref, filepath.Join(t.TempDir(), "rootfs"), roots.PullOptions{Cache: cache, Offline: offline})
		return err
	}
	if err := pull(false); err != nil {
		t.Fatal(err)
	}
	before, err := roots.Digest(t.Context(), ref, roots.DigestOptions{Cache: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pull(true); err != nil {
		t.Fatal(err)
	}
	if after, err := roots.Digest(t.Context(), ref, roots.DigestOptions{Cache: cache, Offline: true}); err != nil || !after.Recorded.Equal(before.Recorded) {
		t.Errorf("the record after an offline pull: %+v, %v; want it made at %v still", after, err, before.Recorded)
	}
	foreign := "s390x"
	if runtime.GOARCH == foreign {
		foreign = "riscv64"
	}
	r.Push(t, "foreign", "1", registrytest.Image{OS: "linux", Arch: foreign, Layers: []registrytest.Layer{{Entries: []registrytest.Entry{registrytest.File("f", "y\n")}}}})
	host := fetch.HostPlatform()
	for i, offline := range []bool{false, true, true} {
		var want *fetch.Platform
		if i == 2 {
			want = &host
		}
		_, err := roots.Pull(t.Context(), r.Host+"/foreign:1", filepath.Join(t.TempDir(), "rootfs"), roots.PullOptions{Cache: cache, Offline: offline, Platform: want})
		if i < 2 && err != nil || i == 2 && !errors.Is(err, roots.ErrOffline) {
			t.Errorf("foreign image, offline %v, platform %v: %v", offline, want, err)
		}
	}
	for _, d := range []digest.Digest{pushed.Digest, digest.FromBytes(pushed.Config)} {
		if err := os.WriteFile(blobPath(cache, d), []byte("rotten"), 0o644); err != nil {
			t.Fatal(err)
		}
		r.ResetRequests()
		if err := pull(true); !errors.Is(err, roots.ErrOffline) || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("offline, %s corrupt: %v", d, err)
		}
		if reqs := r.Requests(); len(reqs) != 0 {
			t.Errorf("offline pull sent %d requests", len(reqs))
		}
		if err := pull(false); err != nil {
			t.Fatal(err)
		}
		if err := pull(true); err != nil {
			t.Errorf("offline after the online pull that replaced %s: %v", d, err)
		}
	}
}
