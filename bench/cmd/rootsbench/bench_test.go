package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSplitLayersBalancesBytesAndCarriesParents(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct {
		name string
		size int
	}{{"a/x", 100}, {"a/y", 100}, {"b/c/z", 100}, {"b/w", 100}} {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, f.size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	items, err := treeItems(dir, "usr/local/t")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		n    int
		want [][]string
	}{
		{"one layer holds everything", 1, [][]string{
			{"usr/", "usr/local/", "usr/local/t/", "usr/local/t/a/", "usr/local/t/a/x", "usr/local/t/a/y", "usr/local/t/b/", "usr/local/t/b/c/", "usr/local/t/b/c/z", "usr/local/t/b/w"},
		}},
		{"two layers split the bytes and repeat the parents", 2, [][]string{
			{"usr/", "usr/local/", "usr/local/t/", "usr/local/t/a/", "usr/local/t/a/x", "usr/local/t/a/y"},
			{"usr/", "usr/local/", "usr/local/t/", "usr/local/t/b/", "usr/local/t/b/c/", "usr/local/t/b/c/z", "usr/local/t/b/w"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers := splitLayers(items, tt.n)
			if len(layers) != len(tt.want) {
				t.Fatalf("%d layers, want %d", len(layers), len(tt.want))
			}
			for i, l := range layers {
				var got []string
				for _, it := range l {
					got = append(got, it.hdr.Name)
				}
				if !slices.Equal(got, tt.want[i]) {
					t.Errorf("layer %d:\n got %v\nwant %v", i, got, tt.want[i])
				}
			}
			if got := rootfsEntries(layers); got != 10 {
				t.Errorf("rootfsEntries = %d, want 10", got)
			}
		})
	}
}

func TestBuildImageWritesMatchingTarAndGzip(t *testing.T) {
	img, err := buildImage("t", "bench/t", "1", t.TempDir(), syntheticLayers(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(img.layers) != 3 || img.files != 12 || img.entries != 1+3*5 {
		t.Fatalf("layers %d files %d entries %d, want 3, 12, 16", len(img.layers), img.files, img.entries)
	}
	for _, l := range img.layers {
		f, err := os.Open(l.tar)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		n := 0
		for {
			if _, err := tr.Next(); err != nil {
				break
			}
			n++
		}
		f.Close()
		if n != 6 {
			t.Errorf("%s: %d entries, want 6", l.tar, n)
		}
		if fi, err := os.Stat(l.gz); err != nil || fi.Size() != l.size {
			t.Errorf("%s: size on disk differs from %d (%v)", l.gz, l.size, err)
		}
	}
	if !strings.Contains(string(img.manifest), img.layers[2].digest.String()) {
		t.Errorf("manifest does not name the top layer")
	}
}

func TestPullModesReadsTheModeFlagOnly(t *testing.T) {
	tests := []struct {
		name string
		help string
		want []string
	}{
		{"no mode flag", "Flags:\n  -f, --force  Replace DEST; copy it over.\n", nil},
		{"hardlink and copy", "  -f, --force   x\n      --mode=hardlink  How to assemble: hardlink or copy.\n      --cache=DIR  overlay\n", []string{"copy", "hardlink"}},
		{"examples do not count", "Examples:\n    roots pull --mode overlay x y\n\nFlags:\n      --mode=\"hardlink\"  hardlink or copy.\n  -q, --quiet\n", []string{"copy", "hardlink"}},
		{"all three over two lines", "      --mode=MODE  hardlink (default), copy,\n                   or overlay (mounted).\n  -q, --quiet\n", []string{"copy", "hardlink", "overlay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for m := range pullModes(tt.help) {
				got = append(got, m)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSummarizeTakesMedianAndPeak(t *testing.T) {
	s := summarize([]sample{
		{wall: 3 * time.Second, cpu: 2 * time.Second, maxRSS: 10},
		{wall: 1 * time.Second, cpu: 1 * time.Second, maxRSS: 30},
		{wall: 2 * time.Second, cpu: 5 * time.Second, maxRSS: 20},
		{wall: 9 * time.Second, cpu: 3 * time.Second, maxRSS: 5},
	})
	want := stats{n: 4, median: 2500 * time.Millisecond, min: time.Second, max: 9 * time.Second, cpu: 2500 * time.Millisecond, rss: 30}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
}

func TestTargetsReadTheLargeImage(t *testing.T) {
	ms := time.Millisecond
	row := func(key, group string, wall time.Duration, rss int64) *result {
		return &result{sc: &scenario{key: key, label: key, group: group}, samples: []sample{{wall: wall, maxRSS: rss}}}
	}
	large := &image{name: "large", layers: []builtLayer{{usize: 250 << 20}}}
	double := &image{name: "double", layers: []builtLayer{{usize: 500 << 20}}}
	r := &report{images: []*image{large, double}, overlay: false, results: map[string][]*result{
		"large": {
			row("roots-cold", groupRoots, 1000*ms, 50<<20),
			row("roots-warm-hardlink", groupRoots, 400*ms, 16<<20),
			row("roots-nocache", groupRoots, 1100*ms, 25<<20),
			row("roots-digest", groupRoots, 30*ms, 12<<20),
			row("skopeo-umoci", groupPeer, 4000*ms, 0),
			row("crane", groupPeer, 1400*ms, 0),
			row("skopeo-inspect", groupPeer, 20*ms, 0),
			row("fetch", groupLimit, 100*ms, 0),
			row("gunzip-pigz", groupLimit, 500*ms, 0),
			row("gunzip-klauspost", groupLimit, 400*ms, 0),
			row("tar-x", groupLimit, 800*ms, 0),
			row("cp-al", groupLimit, 300*ms, 0),
		},
		"double": {
			row("roots-cold", groupRoots, 2000*ms, 51<<20),
			row("roots-nocache", groupRoots, 2200*ms, 45<<20),
		},
	}}
	got := map[string]string{}
	for _, tg := range r.targets() {
		got[strings.SplitN(tg.text, ":", 2)[0]] = tg.mark()
	}
	want := map[string]string{
		"cold pull ≥ 3.0× faster than skopeo copy + umoci unpack":      "✅ holds:",
		"cold pull ≥ 1.5× faster than crane export | tar -x":           "❌ fails:",
		"cold pull ≤ 1.3× the slowest single limit (tar -x, 800.0 ms)": "✅ holds:",
		"warm hardlink pull ≤ 1.3× cp -al":                             "❌ fails:",
		"warm overlay pull < 50 ms and flat in image size":             "➖ not measured:",
		"--cache=no no slower than crane export | tar -x":              "✅ holds:",
		"roots digest no slower than skopeo inspect":                   "❌ fails:",
		"peak RSS < 100 MB on every roots run":                         "✅ holds:",
		// nocache grows 20 MiB per 250 MiB: far over 100 MB at 4 GB.
		"peak RSS flat in image size (small → large → double; the large → double growth extrapolated to a 4 GB image must stay < 100 MB)": "❌ fails:",
	}
	for text, mark := range want {
		if got[text] != mark {
			t.Errorf("%q: got %q, want %q (all: %v)", text, got[text], mark, got)
		}
	}
}

func TestColdTargetsReadEveryImage(t *testing.T) {
	ms := time.Millisecond
	row := func(key string, wall time.Duration) *result {
		return &result{sc: &scenario{key: key, label: key, group: groupRoots}, samples: []sample{{wall: wall}}}
	}
	r := &report{images: []*image{{name: "many"}, {name: "flat1"}, {name: "flat100"}}, results: map[string][]*result{
		"many": {
			row("roots-cold", 1000*ms), row("roots-nocache", 900*ms), row("crane", 1200*ms), row("skopeo-umoci", 5000*ms),
			row("pigz-tar", 700*ms), row("roots-warm-hardlink", 300*ms), row("cp-al", 300*ms), row("roots-warm-overlay", 20*ms),
			row("floor-overlay", 15*ms), row("floor-start", 10*ms), row("roots-start", 12*ms),
		},
		"flat1":   {row("roots-warm-overlay", 10*ms), row("roots-warm-overlay-shared", 10*ms)},
		"flat100": {row("roots-warm-overlay", 12*ms), row("roots-warm-overlay-shared", 40*ms)},
	}}
	got := map[string]string{}
	floors := ""
	for _, tg := range r.coldTargets() {
		f := strings.SplitN(tg.text, ":", 3)
		got[f[1]] = tg.mark()
		if tg.text == "many: roots-warm-overlay < 50 ms: 20.0 ms (same run: warmfloor 15.0 ms; warmfloor -exit 10.0 ms; roots pull with no arguments 12.0 ms)" {
			floors = tg.text
		}
	}
	if floors == "" {
		t.Errorf("no warm overlay target of many with the start rows' figures: %v", r.coldTargets())
	}
	want := map[string]string{
		" cold pull ≥ 1.3× faster than crane export | tar -x":                                      "❌ fails:", // 1.2×
		" cold pull ≥ 4× faster than skopeo copy + umoci unpack":                                   "✅ holds:", // 5×
		" cold pull ≤ 1.25× pigz -dc | tar -x":                                                     "❌ fails:", // 1.43×
		" cold pull ≤ 1.15× roots pull --cache=no":                                                 "✅ holds:", // 1.11×
		" --cache=no ≥ 1.3× faster than crane export | tar -x":                                     "✅ holds:", // 1.33×
		" warm hardlink ≤ 1.0× cp -al":                                                             "✅ holds:",
		" roots-warm-overlay < 50 ms":                                                              "✅ holds:",
		" roots-warm-overlay-shared < 50 ms":                                                       "➖ not measured:",
		" roots-warm-overlay flat in layer count (100 layers ≤ 1.5× 1 layer, both < 50 ms)":        "✅ holds:",
		" roots-warm-overlay-shared flat in layer count (100 layers ≤ 1.5× 1 layer, both < 50 ms)": "❌ fails:", // 4×
	}
	for text, mark := range want {
		if got[text] != mark {
			t.Errorf("%q: got %q, want %q (all: %v)", text, got[text], mark, got)
		}
	}
}
