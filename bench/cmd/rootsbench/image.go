//go:build linux

package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// image is a benchmark image built on disk and pushed to the registry.
type image struct {
	name     string // row group in the table: "large", "small", ...
	repo     string
	tag      string
	ref      string // host:port/repo:tag, set by push
	layers   []builtLayer
	config   []byte
	manifest []byte
	digest   digest.Digest // of manifest
	entries  int           // distinct paths in the rootfs, for checking what tools made
	files    int           // regular files
}

// builtLayer is one layer blob and its uncompressed tar, both on disk.
type builtLayer struct {
	gz, tar string // paths
	digest  digest.Digest
	diffID  digest.Digest
	size    int64 // compressed
	usize   int64 // uncompressed
}

func (img *image) size() (compressed, uncompressed int64) {
	for _, l := range img.layers {
		compressed += l.size
		uncompressed += l.usize
	}
	return
}

// item is one tar entry to write: a header, and for a regular file where
// its content comes from (a file on disk or bytes).
type item struct {
	hdr  *tar.Header
	src  string
	body []byte
}

// treeItems lists src as tar entries named prefix/..., in walk order, with
// owners reset to root (an image's files belong to root).
func treeItems(src, prefix string) ([]item, error) {
	var items []item
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if rel == "." && prefix == "" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
			return nil // sockets, devices: not in an image built from a tree
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		it := item{hdr: hdr}
		if fi.Mode().IsRegular() {
			it.src = p
		}
		items = append(items, it)
		return nil
	})
	return items, err
}

// splitLayers cuts items (in walk order) into n layers of about the same
// number of content bytes. A layer holds the entries of its parent
// directories too, as layers built by docker do; the directories above the
// first one (usr/, usr/local/) are made up with mode 0755.
func splitLayers(items []item, n int) [][]item {
	var total int64
	for _, it := range items {
		total += it.hdr.Size
	}
	dirs := map[string]*tar.Header{}
	for _, it := range items {
		if it.hdr.Typeflag == tar.TypeDir {
			dirs[strings.TrimSuffix(it.hdr.Name, "/")] = it.hdr
		}
	}
	layers := make([][]item, n)
	have := make([]map[string]bool, n)
	for i := range have {
		have[i] = map[string]bool{}
	}
	var ensure func(k int, dir string)
	ensure = func(k int, dir string) {
		if dir == "." || dir == "/" || dir == "" || have[k][dir] {
			return
		}
		ensure(k, path.Dir(dir))
		hdr, ok := dirs[dir]
		if !ok {
			hdr = &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Format: tar.FormatPAX}
		}
		layers[k] = append(layers[k], item{hdr: hdr})
		have[k][dir] = true
	}
	var done int64
	for _, it := range items {
		k := 0
		if total > 0 {
			k = int(done * int64(n) / total)
		}
		k = min(k, n-1)
		name := strings.TrimSuffix(it.hdr.Name, "/")
		ensure(k, path.Dir(name))
		if it.hdr.Typeflag == tar.TypeDir {
			ensure(k, name)
		} else {
			layers[k] = append(layers[k], it)
		}
		done += it.hdr.Size
	}
	return layers
}

// rootfsEntries counts the distinct paths the layers make in a rootfs.
func rootfsEntries(layers [][]item) int {
	seen := map[string]bool{}
	for _, l := range layers {
		for _, it := range l {
			seen[strings.TrimSuffix(it.hdr.Name, "/")] = true
		}
	}
	return len(seen)
}

// buildImage writes every layer (tar and gzip blob, gzip at its default
// level 6 as docker and buildkit use) under dir, in parallel, and makes the
// OCI config and manifest.
func buildImage(name, repo, tag, dir string, layers [][]item) (*image, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	img := &image{name: name, repo: repo, tag: tag, layers: make([]builtLayer, len(layers)), entries: rootfsEntries(layers)}
	for _, l := range layers {
		for _, it := range l {
			if it.hdr.Typeflag == tar.TypeReg {
				img.files++
			}
		}
	}
	errs := make([]error, len(layers))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			img.layers[i], errs[i] = writeLayer(filepath.Join(dir, fmt.Sprintf("layer%03d", i)), l)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := img.makeManifest(); err != nil {
		return nil, err
	}
	return img, nil
}

// writeLayer writes base.tar and base.tar.gz in one pass over the items.
func writeLayer(base string, items []item) (builtLayer, error) {
	l := builtLayer{tar: base + ".tar", gz: base + ".tar.gz"}
	tf, err := os.Create(l.tar)
	if err != nil {
		return l, err
	}
	defer tf.Close()
	gf, err := os.Create(l.gz)
	if err != nil {
		return l, err
	}
	defer gf.Close()
	gzDigest, tarDigest := digest.Canonical.Digester(), digest.Canonical.Digester()
	gzCount, tarCount := &counter{}, &counter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(gf, gzDigest.Hash(), gzCount), gzip.DefaultCompression)
	if err != nil {
		return l, err
	}
	tw := tar.NewWriter(io.MultiWriter(tf, zw, tarDigest.Hash(), tarCount))
	for _, it := range items {
		if err := writeItem(tw, it); err != nil {
			return l, fmt.Errorf("layer %s: %w", base, err)
		}
	}
	if err := tw.Close(); err != nil {
		return l, err
	}
	if err := zw.Close(); err != nil {
		return l, err
	}
	if err := tf.Close(); err != nil {
		return l, err
	}
	if err := gf.Close(); err != nil {
		return l, err
	}
	l.digest, l.diffID = gzDigest.Digest(), tarDigest.Digest()
	l.size, l.usize = gzCount.n, tarCount.n
	return l, nil
}

func writeItem(tw *tar.Writer, it item) error {
	if err := tw.WriteHeader(it.hdr); err != nil {
		return fmt.Errorf("%s: %w", it.hdr.Name, err)
	}
	switch {
	case it.src != "":
		f, err := os.Open(it.src)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, it.hdr.Size); err != nil {
			return fmt.Errorf("%s: %w", it.src, err)
		}
	case len(it.body) > 0:
		if _, err := tw.Write(it.body); err != nil {
			return fmt.Errorf("%s: %w", it.hdr.Name, err)
		}
	}
	return nil
}

// makeManifest makes the image's OCI config and manifest.
func (img *image) makeManifest() error {
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config:   ocispec.ImageConfig{Env: []string{"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg.Created = &created
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range img.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: l.digest, Size: l.size})
	}
	var err error
	if img.config, err = json.Marshal(cfg); err != nil {
		return err
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))}
	if img.manifest, err = json.Marshal(m); err != nil {
		return err
	}
	img.digest = digest.FromBytes(img.manifest)
	return nil
}

// syntheticLayers makes n small layers, each a directory of its own with a
// few files: the image for checking that an overlay mount costs the same
// for 1 layer as for 100.
func syntheticLayers(n int) [][]item {
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	layers := make([][]item, n)
	for i := range layers {
		dir := fmt.Sprintf("layers/%03d", i)
		l := []item{
			{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "layers/", Mode: 0o755, ModTime: mtime}},
			{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mtime}},
		}
		for j := range 4 {
			body := []byte(strings.Repeat(fmt.Sprintf("layer %d file %d\n", i, j), 64))
			l = append(l, item{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/f%d", dir, j), Mode: 0o644, Size: int64(len(body)), ModTime: mtime}, body: body})
		}
		layers[i] = l
	}
	return layers
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
