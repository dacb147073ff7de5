package e2e

// Many roots processes on one cache at once, and roots killed at random
// points: the cache stays correct and every destination is whole or absent.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// overlappingImages are four images that share their bottom layer, and pairs
// of them their middle one.
func overlappingImages() []registrytest.Image {
	base := registrytest.Layer{Compression: "gzip", Entries: []reg{
		{Name: "etc/os-release", Body: []byte("ID=stress\n")},
		{Name: "usr/lib/big", Body: noise(7, 256<<10)},
	}}
	mid := []registrytest.Layer{
		{Compression: "zstd", Entries: []reg{{Name: "usr/lib/mid", Body: noise(8, 128<<10)}, {Name: "etc/.wh.os-release"}}},
		{Compression: "gzip", Entries: []reg{{Name: "opt/.wh..wh..opq"}, {Name: "opt/m", Body: []byte("m")}}},
	}
	var imgs []registrytest.Image
	for i := 0; i < 4; i++ {
		imgs = append(imgs, registrytest.Image{Layers: []registrytest.Layer{
			base, mid[i%2],
			{Compression: "none", Entries: []reg{{Name: fmt.Sprintf("app/%d", i), Body: noise(uint64(10+i), 64<<10)}}},
		}})
	}
	return imgs
}

// start runs the binary in the background.
func start(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(Bin(), args...)
	cmd.Env = Env(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// blobGets counts the successful GETs of each of the pushed layers.
func blobGets(r *registrytest.Registry, pushed []registrytest.Pushed) map[string]int {
	n := map[string]int{}
	for _, p := range pushed {
		for _, l := range p.Layers {
			n[l.Digest.String()] = 0
		}
	}
	for _, req := range r.Requests() {
		for d := range n {
			if req.Method == http.MethodGet && strings.HasSuffix(req.Path, d) && req.Status/100 == 2 {
				n[d]++
			}
		}
	}
	return n
}

// TestManyProcesses starts 8 pulls at once (hardlink, copy and overlay) over
// overlapping images into different destinations, first alone, then while
// another process purges the cache in a loop. Every pull must succeed or
// fail with one clear line; without purges each blob is fetched once, with
// them at most once more per purge; every destination must be whole; and
// roots check must find nothing to repair afterwards.
func TestManyProcesses(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	imgs := overlappingImages()
	var pushed []registrytest.Pushed
	want := make([]map[string]entry, len(imgs))
	for i, img := range imgs {
		pushed = append(pushed, r.Push(t, "stress", fmt.Sprint(i), img))
		ref := filepath.Join(t.TempDir(), "ref")
		MustPull(t, nil, "--cache=no", fmt.Sprintf("%s/stress:%d", r.Host, i), ref)
		want[i] = testtree.Scan(t, ref)
	}
	modes := []string{"hardlink", "copy", "overlay"}

	for _, purging := range []bool{false, true} {
		t.Run(map[bool]string{false: "Alone", true: "WithPurges"}[purging], func(t *testing.T) {
			cache := t.TempDir()
			r.ResetRequests()
			var purges atomic.Int32
			stop := make(chan struct{})
			var purger sync.WaitGroup
			if purging {
				purger.Add(1)
				go func() {
					defer purger.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if res := Roots(t, nil, "purge", "--cache", cache); res.Code != 0 {
							t.Errorf("purge: exit %d: %s", res.Code, res.Stderr)
							return
						}
						purges.Add(1)
					}
				}()
			}
			type run struct {
				dest, mode string
				img        int
				cmd        *exec.Cmd
				stderr     *bytes.Buffer
			}
			var runs []run
			for i := 0; i < 8; i++ {
				ru := run{dest: filepath.Join(t.TempDir(), "d"), mode: modes[i%3], img: i % 4}
				if ru.mode == "overlay" {
					umountAll(t, ru.dest)
				}
				if purging {
					time.Sleep(15 * time.Millisecond) // let purges in between the starts
				}
				ru.cmd, ru.stderr = start(t, "pull", "--cache", cache, "--mode", ru.mode, fmt.Sprintf("%s/stress:%d", r.Host, ru.img), ru.dest)
				runs = append(runs, ru)
			}
			ok := 0
			for _, ru := range runs {
				err := ru.cmd.Wait()
				msg := ru.stderr.String()
				if err != nil {
					if !strings.HasPrefix(msg, "roots: ") || strings.Count(msg, "\n") != 1 {
						t.Errorf("pull %s (%s) failed without one clear line: %v: %q", ru.dest, ru.mode, err, msg)
					} else {
						t.Logf("pull %s (%s) failed: %s", ru.dest, ru.mode, msg)
					}
					if _, err := os.Lstat(ru.dest); err == nil {
						t.Errorf("a failed pull left %s", ru.dest)
					}
					continue
				}
				ok++
				if msg != "" {
					t.Errorf("pull %s printed %q", ru.dest, msg)
				}
				SameTree(t, testtree.Scan(t, ru.dest), want[ru.img])
			}
			close(stop)
			purger.Wait()
			if ok < 8 {
				t.Errorf("%d of 8 pulls succeeded; the cache lock should have made every one succeed", ok)
			}
			n := int(purges.Load())
			for d, got := range blobGets(r, pushed) {
				if got > n+1 {
					t.Errorf("layer %s fetched %d times with %d purges in between, want at most %d", d, got, n, n+1)
				}
				if got == 0 {
					t.Errorf("layer %s never fetched", d)
				}
			}
			t.Logf("%d purges ran during the pulls", n)
			for _, ru := range runs {
				if ru.mode == "overlay" {
					if res := Roots(t, nil, "umount", ru.dest); res.Code != 0 {
						t.Errorf("umount %s: %s", ru.dest, res.Stderr)
					}
				}
			}
			if res := Roots(t, nil, "check", "--cache", cache); res.Code != 0 || !strings.HasSuffix(res.Stdout, ": 0 repaired\n") {
				t.Errorf("check afterwards: exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
			}
		})
	}
}

// TestKilledPulls kills roots pull with SIGKILL at random points, 20 times,
// on one cache: each time DEST is either absent or whole, the next pull
// succeeds, and it leaves nothing in tmp/ and no staging directory.
func TestKilledPulls(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	img := overlappingImages()[0]
	img.Layers = append(img.Layers, registrytest.Layer{Compression: "gzip", Entries: []reg{{Name: "var/lib/more", Body: noise(99, 2<<20)}}})
	r.Push(t, "kill", "latest", img)
	ref := filepath.Join(t.TempDir(), "ref")
	MustPull(t, nil, "--cache=no", r.Host+"/kill", ref)
	want := testtree.Scan(t, ref)

	// How long a cold pull takes here, to kill within it.
	t0 := time.Now()
	MustPull(t, nil, "--cache", t.TempDir(), r.Host+"/kill", filepath.Join(t.TempDir(), "timed"))
	cold := time.Since(t0)

	cache := t.TempDir()
	parent := t.TempDir()
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	attaching := 0
	defer func() { t.Logf("%d kills landed while an overlay was being attached", attaching) }()
	for trial := 0; trial < 20; trial++ {
		mode := []string{"hardlink", "overlay"}[trial%2]
		dest := filepath.Join(parent, fmt.Sprintf("d%d", trial%4))
		if mode == "overlay" {
			umountAll(t, dest)
		}
		if trial%5 == 4 {
			Roots(t, nil, "purge", "--cache", cache) // kill cold pulls too, not only warm ones
		}
		cmd, _ := start(t, "pull", "--force", "--cache", cache, "--mode", mode, r.Host+"/kill", dest)
		time.Sleep(time.Duration(rng.Int64N(int64(cold))))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		args := []string{"pull", "--force", "--cache", cache, "--mode", mode, r.Host + "/kill", dest}
		if _, err := os.Lstat(dest); err == nil {
			if mode == "overlay" && !isOverlayMount(t, dest) && len(testtree.Scan(t, dest)) == 0 {
				// Killed between making the mount point and attaching the mount (a
				// window of one system call, widened by the scheduler): the empty
				// mount point goes with the next pull, --force or not.
				attaching++
				args = append(args[:1], args[2:]...)
			} else {
				SameTree(t, testtree.Scan(t, dest), want) // whole, or the test fails here
			}
		}
		res := Roots(t, nil, args...)
		if res.Code != 0 {
			t.Fatalf("trial %d (%s): the pull after a kill failed: %s", trial, mode, res.Stderr)
		}
		SameTree(t, testtree.Scan(t, dest), want)
		if ents, _ := os.ReadDir(filepath.Join(cache, "tmp")); len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("trial %d: tmp/ holds %v after the next pull", trial, names)
		}
		for _, e := range must(os.ReadDir(parent)) {
			if strings.HasPrefix(e.Name(), ".") && !strings.HasSuffix(e.Name(), ".roots-overlay") {
				t.Fatalf("trial %d: left beside DEST: %s", trial, e.Name())
			}
		}
		if mode == "overlay" {
			if res := Roots(t, nil, "umount", dest); res.Code != 0 {
				t.Fatalf("umount: %s", res.Stderr)
			}
		} else {
			os.RemoveAll(dest)
		}
	}
	if res := Roots(t, nil, "check", "--cache", cache); res.Code != 0 || !strings.HasSuffix(res.Stdout, ": 0 repaired\n") {
		t.Errorf("check afterwards: exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestMadeLayerNotHeldWhileWaiting: a pull that has made a layer and waits for a layer below
// it, which another process is making, publishes what it made instead of keeping it locked:
// the other process may be pulling the same layers in another order and wait for it (a lock
// cycle, forever). The test is that other process: it holds the bottom layer's lock and waits
// for the pull to publish the top layer, in every mode.
func TestMadeLayerNotHeldWhileWaiting(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "order", "ab", registrytest.Image{Layers: []registrytest.Layer{
		{Compression: "gzip", Entries: []reg{{Name: "a", Body: noise(21, 64<<10)}}},
		{Compression: "gzip", Entries: []reg{{Name: "b", Body: noise(22, 64<<10)}}},
	}})
	bottom, top := pushed.DiffIDs[0], pushed.DiffIDs[1]
	for _, mode := range []string{"hardlink", "copy", "overlay"} {
		t.Run(mode, func(t *testing.T) {
			cache := t.TempDir()
			if err := os.Mkdir(filepath.Join(cache, "tmp"), 0o755); err != nil {
				t.Fatal(err)
			}
			// As another roots process would: the cache shared (so that the pull does not tidy
			// tmp/ away), the bottom layer's lock exclusive (it is making that layer).
			flock := func(path string, how int) *os.File {
				f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				if err := syscall.Flock(int(f.Fd()), how); err != nil {
					t.Fatal(err)
				}
				return f
			}
			flock(filepath.Join(cache, "roots.lock"), syscall.LOCK_SH)
			lk := flock(filepath.Join(cache, "tmp", bottom.Encoded()+".lock"), syscall.LOCK_EX)
			dest := filepath.Join(t.TempDir(), "d")
			cmd, stderr := start(t, "pull", "--cache", cache, "--mode", mode, r.Host+"/order:ab", dest)
			published := filepath.Join(cache, "trees", "sha256", top.Encoded())
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, err := os.Stat(published); err == nil {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("the pull kept the top layer it made unpublished while it waited for the bottom one: %s", stderr)
				}
			}
			syscall.Flock(int(lk.Fd()), syscall.LOCK_UN)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("pull: %v: %s", err, stderr)
			}
			for _, name := range []string{"a", "b"} {
				if _, err := os.Stat(filepath.Join(dest, name)); err != nil {
					t.Error(err)
				}
			}
			if mode == "overlay" {
				if res := Roots(t, nil, "umount", dest); res.Code != 0 {
					t.Errorf("umount: %s", res.Stderr)
				}
			}
		})
	}
}
