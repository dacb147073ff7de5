//go:build linux

package main

import (
	"archive/tar"
	"fmt"
	"math/rand/v2"
	"time"
)

// The generated images: what the trees on the machine do not give. Their content is made from
// a seeded generator, so every run measures the same bytes.

// genMtime is every generated entry's mtime.
var genMtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// textBuffer is n bytes of word-like text, which gzip shrinks about as much as source code
// and configuration files (3–4×).
func textBuffer(rng *rand.Rand, n int) []byte {
	words := make([]string, 2000)
	for i := range words {
		w := make([]byte, 2+rng.IntN(9))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = string(w)
	}
	b := make([]byte, 0, n+16)
	for len(b) < n {
		b = append(b, words[int(rng.ExpFloat64()*150)%len(words)]...)
		if rng.IntN(12) == 0 {
			b = append(b, '\n')
		} else {
			b = append(b, ' ')
		}
	}
	return b[:n]
}

// manyFilesLayers is the many-small-files image: files of 0–8 KB of text (most of them small),
// 100 to a directory, in 3 layers holding 2/3, 3/10 and 1/30 of them (n in all).
func manyFilesLayers(n int) [][]item {
	rng := rand.New(rand.NewPCG(14, 1))
	text := textBuffer(rng, 16<<20)
	counts := []int{n * 2 / 3, n * 3 / 10}
	counts = append(counts, n-counts[0]-counts[1])
	layers := make([][]item, len(counts))
	for k, count := range counts {
		top := fmt.Sprintf("many/l%d", k)
		l := []item{
			{hdr: genDir("many/")},
			{hdr: genDir(top + "/")},
		}
		for i := range count {
			if i%100 == 0 {
				l = append(l, item{hdr: genDir(fmt.Sprintf("%s/d%04d/", top, i/100))})
			}
			size := min(int(rng.ExpFloat64()*1500), 8<<10)
			off := rng.IntN(len(text) - size)
			l = append(l, item{hdr: genFile(fmt.Sprintf("%s/d%04d/f%02d", top, i/100, i%100), size), body: text[off : off+size]})
		}
		layers[k] = l
	}
	return layers
}

// bigLayers is the big image: the large image's tree (tree, with its parent directories) as its first layer, and two layers of
// `perLayer` bytes each in files of 16 KB to 4 MB that gzip halves at best (half of every file
// is random), so that each holds more than 200 MB of gzip, and an empty layer on top, as
// images built by docker often end.
func bigLayers(tree []item, perLayer int) [][]item {
	rng := rand.New(rand.NewPCG(14, 2))
	const chunk = 64 << 10
	buf := make([]byte, 0, 96<<20)
	text := textBuffer(rng, chunk*8)
	for len(buf) < cap(buf) {
		r := make([]byte, chunk)
		for i := range r {
			r[i] = byte(rng.Uint32())
		}
		off := rng.IntN(len(text) - chunk)
		buf = append(append(buf, r...), text[off:off+chunk]...)
	}
	layers := [][]item{tree}
	for k := range 2 {
		top := fmt.Sprintf("big/l%d", k)
		l := []item{{hdr: genDir("big/")}, {hdr: genDir(top + "/")}}
		for i, total := 0, 0; total < perLayer; i++ {
			if i%50 == 0 {
				l = append(l, item{hdr: genDir(fmt.Sprintf("%s/d%03d/", top, i/50))})
			}
			size := 16<<10 + int(rng.ExpFloat64()*float64(400<<10))
			size = min(size, 4<<20)
			off := rng.IntN(len(buf) - size)
			l = append(l, item{hdr: genFile(fmt.Sprintf("%s/d%03d/f%02d", top, i/50, i%50), size), body: buf[off : off+size]})
			total += size
		}
		layers = append(layers, l)
	}
	return append(layers, nil)
}

func genDir(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: genMtime, Format: tar.FormatPAX}
}

func genFile(name string, size int) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(size), ModTime: genMtime, Format: tar.FormatPAX}
}
