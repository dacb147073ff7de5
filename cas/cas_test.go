package cas

import (
	"bytes"
	"context"
	_ "crypto/sha512"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/fetch/registrytest"
)

const gzipType = "application/vnd.oci.image.layer.v1.tar+gzip"

// testLayer builds a gzip layer holding files (name → body).
func testLayer(t *testing.T, files map[string]string) (Layer, []byte) {
	t.Helper()
	var entries []registrytest.Entry
	for name, body := range files {
		entries = append(entries, registrytest.Entry{Name: name, Body: []byte(body)})
	}
	raw := registrytest.TarBytes(entries)
	blob, err := registrytest.Compress(raw, registrytest.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	return Layer{
		Digest:    digest.FromBytes(blob),
		Size:      int64(len(blob)),
		MediaType: gzipType,
		DiffID:    digest.FromBytes(raw),
	}, blob
}

// atOnce calls fn n times concurrently and returns what each call gave; an error fails t.
func atOnce[T any](t *testing.T, n int, fn func() (T, error)) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			v, err := fn()
			if err != nil {
				t.Error(err)
			}
			out[i] = v
		})
	}
	wg.Wait()
	return out
}

// serve is an Opener over b that counts its calls.
func serve(b []byte, calls *atomic.Int32) Opener {
	return func(context.Context) (io.ReadCloser, error) {
		calls.Add(1)
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

func openCache(t *testing.T) *Cache {
	t.Helper()
	c, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTreeMadeOnceAndReused(t *testing.T) {
	c := openCache(t)
	l, blob := testLayer(t, map[string]string{"etc/hostname": "box"})
	var calls atomic.Int32
	trees := atOnce(t, 8, func() (Tree, error) { return c.Tree(context.Background(), l, serve(blob, &calls)) })
	if calls.Load() != 1 {
		t.Fatalf("blob opened %d times by 8 concurrent callers, want 1", calls.Load())
	}
	for _, tr := range trees {
		if tr.Dir != c.treePath(l.DiffID) {
			t.Fatalf("tree at %s, want %s", tr.Dir, c.treePath(l.DiffID))
		}
	}
	if b, err := os.ReadFile(filepath.Join(trees[0].Dir, "etc/hostname")); err != nil || string(b) != "box" {
		t.Fatalf("tree content: %q, %v", b, err)
	}
	if b, err := os.ReadFile(c.blobPath(l.Digest)); err != nil || !bytes.Equal(b, blob) {
		t.Fatal("the blob was not kept exactly as fetched")
	}
	tr, err := c.Tree(context.Background(), l, serve(blob, &calls))
	if err != nil || !tr.Cached || calls.Load() != 1 {
		t.Fatalf("second Tree: cached=%v calls=%d err=%v", tr.Cached, calls.Load(), err)
	}
}

func TestTreeFromCachedBlob(t *testing.T) {
	c := openCache(t)
	l, blob := testLayer(t, map[string]string{"a": "1"})
	var calls atomic.Int32
	if _, err := c.Tree(context.Background(), l, serve(blob, &calls)); err != nil {
		t.Fatal(err)
	}
	// Lose the tree but keep the blob: the tree is made again without a fetch.
	os.RemoveAll(c.treePath(l.DiffID))
	if _, err := c.Tree(context.Background(), l, serve(blob, &calls)); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("fetched %d times, want 1 (the cached blob serves the second tree)", calls.Load())
	}
	// A cached blob that rotted on disk is thrown away and fetched again.
	os.RemoveAll(c.treePath(l.DiffID))
	os.WriteFile(c.blobPath(l.Digest), []byte("rotten"), 0o644)
	if _, err := c.Tree(context.Background(), l, serve(blob, &calls)); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("fetched %d times, want 2", calls.Load())
	}
}

func TestTreeRefusesBadInput(t *testing.T) {
	good, blob := testLayer(t, map[string]string{"a": "1"})
	other, otherBlob := testLayer(t, map[string]string{"b": "2"})
	corrupt := bytes.Clone(blob)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name  string
		layer Layer
		blob  []byte
		want  error  // errors.Is target, nil = just an error
		msg   string // in the message
	}{
		{"DigestMismatch", good, otherBlob[:len(otherBlob):len(otherBlob)], nil, "mismatch"},
		{"CorruptByte", good, corrupt, ErrDigestMismatch, good.Digest.String()},
		{"Truncated", good, blob[:len(blob)-5], ErrSizeMismatch, "expected"},
		{"TooLong", good, append(bytes.Clone(blob), 0), ErrSizeMismatch, "bytes, got"},
		{"DiffIDMismatch", Layer{Digest: good.Digest, Size: good.Size, MediaType: gzipType, DiffID: other.DiffID}, blob, ErrDigestMismatch, "diff id"},
		{"PathDigest", Layer{Digest: "sha256:../../etc/passwd", Size: 1, MediaType: gzipType, DiffID: good.DiffID}, blob, nil, "digest"},
		{"Sha512Refused", Layer{Digest: digest.SHA512.FromBytes(blob), Size: good.Size, MediaType: gzipType, DiffID: good.DiffID}, blob, nil, "sha256"},
		{"UnknownMediaType", Layer{Digest: good.Digest, Size: good.Size, MediaType: "text/plain", DiffID: good.DiffID}, blob, nil, "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openCache(t)
			var calls atomic.Int32
			_, err := c.Tree(context.Background(), tt.layer, serve(tt.blob, &calls))
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v; want an error (%v) mentioning %q", err, tt.want, tt.msg)
			}
			// No trace: no blob, no tree, nothing in tmp/ but locks.
			for _, d := range []string{"blobs/sha256", "trees/sha256"} {
				if ents, _ := os.ReadDir(c.path(d)); len(ents) != 0 {
					t.Errorf("%s holds %d entries after a failure", d, len(ents))
				}
			}
			ents, _ := os.ReadDir(c.path("tmp"))
			for _, e := range ents {
				if !strings.HasSuffix(e.Name(), ".lock") {
					t.Errorf("tmp/ holds %s after a failure", e.Name())
				}
			}
		})
	}
}

func TestTreeCancelled(t *testing.T) {
	c := openCache(t)
	l, blob := testLayer(t, map[string]string{"a": strings.Repeat("x", 1<<20)})
	ctx, cancel := context.WithCancel(context.Background())
	open := func(context.Context) (io.ReadCloser, error) {
		cancel()
		return io.NopCloser(bytes.NewReader(blob)), nil
	}
	if _, err := c.Tree(ctx, l, open); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if exists(c.treePath(l.DiffID)) || exists(c.blobPath(l.Digest)) {
		t.Fatal("a cancelled Tree left a tree or blob")
	}
}

func TestPurge(t *testing.T) {
	root := t.TempDir()
	c, err := Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	l, blob := testLayer(t, map[string]string{"a": "12345"})
	var calls atomic.Int32
	if _, err := c.Tree(context.Background(), l, serve(blob, &calls)); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordImage("127.0.0.1:5000/x/y/latest", ImageRecord{Digest: l.Digest}); err != nil {
		t.Fatal(err)
	}
	// Purge waits for the open cache to close.
	done := make(chan error)
	go func() {
		_, err := Purge(context.Background(), root, Policy{})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("purge ran while the cache was open: %v", err)
	case <-waitABit():
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"blobs/sha256", "trees/sha256", "fixups/sha256", "linked", "images", "leases", "tmp"} {
		if ents, err := os.ReadDir(filepath.Join(root, d)); err != nil || len(ents) != 0 {
			t.Errorf("%s after purge: %d entries, %v", d, len(ents), err)
		}
	}
	rep, err := Purge(context.Background(), filepath.Join(root, "missing"), Policy{})
	if err != nil || rep.Freed != 0 || len(rep.Removed) != 0 {
		t.Fatalf("purge of a missing cache: %+v, %v", rep, err)
	}
}

func TestRecordImageRefusesEscape(t *testing.T) {
	c := openCache(t)
	d := digest.FromString("x")
	for _, name := range []string{"", "/abs/x/y", "a/../../y", "a//b", "./a"} {
		if err := c.RecordImage(name, ImageRecord{Digest: d}); err == nil {
			t.Errorf("RecordImage(%q) succeeded", name)
		}
	}
}

func TestOpenCleansLeftovers(t *testing.T) {
	root := t.TempDir()
	c, _ := Open(context.Background(), root)
	os.MkdirAll(filepath.Join(root, "tmp", "tree-dead", "tree", "d"), 0o500)
	c.Close()
	c, err := Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
		t.Fatalf("tmp/ still holds %d entries", len(ents))
	}
}

func waitABit() <-chan struct{} {
	ch := make(chan struct{})
	go func() { defer close(ch); timeSleep() }()
	return ch
}
func timeSleep() { time.Sleep(200 * time.Millisecond) }

// TestStartTreePublishes: a tree StartTree makes is readable at once, from
// tmp/, and nothing of it is published (not the tree, its record or its blob)
// until Publish; a second caller waits for it; a Publish whose context has
// ended publishes nothing and leaves tmp/ clean.
func TestStartTreePublishes(t *testing.T) {
	c := openCache(t)
	l, blob := testLayer(t, map[string]string{"etc/hostname": "box"})
	var calls atomic.Int32
	ctx := context.Background()
	tr, err := c.StartTree(ctx, l, serve(blob, &calls), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(tr.Dir, "etc/hostname")); err != nil || string(b) != "box" {
		t.Fatalf("unpublished tree content: %q, %v", b, err)
	}
	for _, p := range []string{c.treePath(l.DiffID), c.treePath(l.DiffID) + ".json", c.blobPath(l.Digest)} {
		if exists(p) {
			t.Fatalf("%s exists before Publish", p)
		}
	}
	second := make(chan Tree)
	go func() {
		t2, err := c.Tree(ctx, l, serve(blob, &calls))
		if err != nil {
			t.Error(err)
		}
		second <- t2
	}()
	select {
	case <-second:
		t.Fatal("a second caller got the tree before it was published")
	case <-waitABit():
	}
	if err := tr.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if tr.Dir != c.treePath(l.DiffID) || !exists(c.blobPath(l.Digest)) {
		t.Fatalf("published at %s (blob kept: %v), want %s", tr.Dir, exists(c.blobPath(l.Digest)), c.treePath(l.DiffID))
	}
	if t2 := <-second; !t2.Cached || calls.Load() != 1 {
		t.Fatalf("second caller: cached=%v, blob fetched %d times", t2.Cached, calls.Load())
	}

	// A Publish cut short publishes nothing, and the next caller makes the tree.
	l2, blob2 := testLayer(t, map[string]string{"a": "2"})
	tr2, err := c.StartTree(ctx, l2, serve(blob2, &calls), nil)
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := tr2.Publish(done); err == nil {
		t.Fatal("Publish with an ended context succeeded")
	}
	if exists(c.treePath(l2.DiffID)) || exists(c.blobPath(l2.Digest)) {
		t.Fatal("a Publish cut short left the tree or its blob published")
	}
	if ents, _ := os.ReadDir(c.path("tmp")); len(ents) > 2 { // the two layers' lock files
		t.Fatalf("tmp/ keeps %d entries after a Publish cut short: %v", len(ents), ents)
	}
	if _, err := c.Tree(ctx, l2, serve(blob2, &calls)); err != nil {
		t.Fatal(err)
	}
}

// TestStartTreePublishOnceAbort: a Tree is published once, whichever copy publishes it (a
// second Publish, of the Tree or a copy, returns at once with the first outcome); Abort gives
// an unused tree up, leaves tmp/ clean and lets the next caller make it; Abort after Publish
// does nothing.
func TestStartTreePublishOnceAbort(t *testing.T) {
	c := openCache(t)
	ctx := context.Background()
	var calls atomic.Int32
	l, blob := testLayer(t, map[string]string{"a": "1"})
	tr, err := c.StartTree(ctx, l, serve(blob, &calls), nil)
	if err != nil {
		t.Fatal(err)
	}
	copied := tr
	done := make(chan error, 2)
	go func() { done <- tr.Publish(ctx) }()
	go func() { done <- copied.Publish(ctx) }()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a second Publish of a copied Tree blocked")
		}
	}
	tr.Abort() // after Publish: nothing
	if got, ok, err := c.Lookup(ctx, l, WithRecord); err != nil || !ok || got.Dir != c.treePath(l.DiffID) {
		t.Fatalf("after Publish and Abort: %v %v %v", got.Dir, ok, err)
	}

	l2, blob2 := testLayer(t, map[string]string{"b": "2"})
	tr2, err := c.StartTree(ctx, l2, serve(blob2, &calls), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr2.Abort()
	tr2.Abort()
	if exists(c.treePath(l2.DiffID)) {
		t.Fatal("an aborted tree was published")
	}
	if ents, _ := os.ReadDir(c.path("tmp")); len(ents) > 2 {
		t.Fatalf("tmp/ keeps %d entries after Abort: %v", len(ents), ents)
	}
	if _, err := c.Tree(ctx, l2, serve(blob2, &calls)); err != nil { // the lock was released
		t.Fatal(err)
	}
}
