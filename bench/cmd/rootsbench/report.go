//go:build linux

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report is everything one `make bench` measured.
type report struct {
	started  time.Time
	elapsed  time.Duration
	machine  []string // "key: value" lines
	images   []*image
	results  map[string][]*result // image name → rows in order
	runs     int
	slowRuns int
	overlay  bool // roots has --mode overlay
}

func (r *report) stats(img, key string) (stats, bool) {
	for _, res := range r.results[img] {
		if res.sc.key == key && res.err == nil && len(res.samples) > 0 {
			return summarize(res.samples), true
		}
	}
	return stats{}, false
}

// write prints the report as Markdown.
func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "# roots benchmark — %s\n\n", r.started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Made by `make bench` (bench/cmd/rootsbench) in %s. See bench/README.md for how to read it.\n\n", r.elapsed.Round(time.Second))
	fmt.Fprintln(w, "## Machine")
	fmt.Fprintln(w)
	for _, l := range r.machine {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Images")
	fmt.Fprintln(w)
	for _, img := range r.images {
		gz, tar := img.size()
		fmt.Fprintf(w, "- **%s**: %d layer(s), gzip level 6, %.1f MB compressed, %.1f MB uncompressed, %d files, %d entries in the rootfs\n",
			img.name, len(img.layers), float64(gz)/1e6, float64(tar)/1e6, img.files, img.entries)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "## Results\n\n")
	fmt.Fprintf(w, "Every row: one warm-up run (output checked), then %d timed runs (fewer where the runs column says so), "+
		"each after `sync; echo 3 > /proc/sys/vm/drop_caches`. Wall is the median (min–max); CPU is the median user+sys of "+
		"every process the run started; RSS is the largest peak RSS of any of them in any run. "+
		"`× ref` is this row's median wall over the median of the row named in `ref` "+
		"(above 1: slower than that roots row; below 1: faster). `others` is the median share of the machine's CPU that other "+
		"processes used during a run (noise: rows with a high figure are less trustworthy).\n\n", r.runs)
	for _, img := range r.images {
		r.table(w, img)
	}
	fmt.Fprintln(w, "## Targets (issue 6, large image)")
	fmt.Fprintln(w)
	for _, t := range r.targets() {
		fmt.Fprintf(w, "- %s %s\n", t.mark(), t.text)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Targets (issue 14, every image)")
	fmt.Fprintln(w)
	for _, t := range r.coldTargets() {
		fmt.Fprintf(w, "- %s %s\n", t.mark(), t.text)
	}
	fmt.Fprintln(w)
	r.notes(w)
}

func (r *report) table(w io.Writer, img *image) {
	fmt.Fprintf(w, "### %s\n\n", img.name)
	fmt.Fprintln(w, "| row | runs | wall median (min–max) | CPU | peak RSS | × ref | ref | others |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|---:|")
	group := ""
	for _, res := range r.results[img.name] {
		sc := res.sc
		if sc.group != group {
			group = sc.group
			fmt.Fprintf(w, "| *%s* | | | | | | | |\n", groupTitle[group])
		}
		label := strings.ReplaceAll(sc.label, "|", `\|`)
		switch {
		case sc.skip != "":
			fmt.Fprintf(w, "| %s | – | %s | | | | | |\n", label, sc.skip)
			continue
		case res.err != nil && len(res.samples) == 0:
			fmt.Fprintf(w, "| %s | – | failed: %s | | | | | |\n", label, oneLine(res.err.Error(), 160))
			continue
		}
		s := summarize(res.samples)
		runs := fmt.Sprint(s.n)
		if res.err != nil {
			runs += " (then failed)"
		}
		rel, refName := "", ""
		if sc.ref != "" && sc.ref != sc.key {
			if ref, ok := r.stats(img.name, sc.ref); ok {
				rel = fmt.Sprintf("%.2f×", ratio(s.median, ref.median))
			}
			refName = strings.ReplaceAll(strings.Replace(r.label(img.name, sc.ref), "roots pull, ", "roots ", 1), "|", `\|`)
		} else if sc.ref == sc.key {
			rel, refName = "1", "(baseline)"
		}
		fmt.Fprintf(w, "| %s | %s | %s (%s–%s) | %s | %s | %s | %s | %.0f%% |\n",
			label, runs, seconds(s.median), seconds(s.min), seconds(s.max), seconds(s.cpu), mib(s.rss), rel, refName, 100*s.others)
	}
	fmt.Fprintln(w)
}

var groupTitle = map[string]string{
	groupRoots: "roots",
	groupPeer:  "peers",
	groupLimit: "limits of this machine, same bytes",
}

func (r *report) image(name string) *image {
	for _, img := range r.images {
		if img.name == name {
			return img
		}
	}
	return nil
}

func (r *report) label(img, key string) string {
	for _, res := range r.results[img] {
		if res.sc.key == key {
			return res.sc.label
		}
	}
	return key
}

// notes lists how each limit was measured, skipped rows and failures.
func (r *report) notes(w io.Writer) {
	var lines []string
	seen := map[string]bool{}
	for _, img := range r.images {
		for _, res := range r.results[img.name] {
			if n := res.sc.note; n != "" && !seen[n] {
				seen[n] = true
				lines = append(lines, n)
			}
			if res.err != nil {
				lines = append(lines, fmt.Sprintf("%s / %s failed: %s", img.name, res.sc.label, oneLine(res.err.Error(), 600)))
			}
		}
	}
	if r.slowRuns != r.runs {
		lines = append(lines, fmt.Sprintf("skopeo + umoci and podman cold: %d timed runs instead of %d, to keep `make bench` short.", r.slowRuns, r.runs))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "## Notes")
	fmt.Fprintln(w)
	for _, l := range lines {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintln(w)
}

// target is one of issue 6's targets, checked against this run.
type target struct {
	text string
	ok   bool
	na   bool // not measured
}

func (t target) mark() string {
	switch {
	case t.na:
		return "➖ not measured:"
	case t.ok:
		return "✅ holds:"
	}
	return "❌ fails:"
}

func (r *report) targets() []target {
	var ts []target
	get := func(img, key string) (stats, bool) { return r.stats(img, key) }
	faster := func(what string, key string, factor float64) {
		cold, ok1 := get("large", "roots-cold")
		peer, ok2 := get("large", key)
		if !ok1 || !ok2 {
			ts = append(ts, target{text: fmt.Sprintf("cold pull ≥ %.1f× faster than %s", factor, what), na: true})
			return
		}
		x := ratio(peer.median, cold.median)
		ts = append(ts, target{ok: x >= factor, text: fmt.Sprintf("cold pull ≥ %.1f× faster than %s: %.2f× (%s vs %s)", factor, what, x, seconds(cold.median), seconds(peer.median))})
	}
	faster("skopeo copy + umoci unpack", "skopeo-umoci", 3)
	faster("crane export | tar -x", "crane", 1.5)

	if cold, ok := get("large", "roots-cold"); ok {
		type lim struct {
			name string
			s    stats
		}
		var limits []lim
		if s, ok := get("large", "fetch"); ok {
			limits = append(limits, lim{"fetch", s})
		}
		var best *lim
		for _, k := range []string{"gunzip-gzip", "gunzip-pigz", "gunzip-go", "gunzip-klauspost", "gunzip-pgzip"} {
			if s, ok := get("large", k); ok && (best == nil || s.median < best.s.median) {
				best = &lim{"decompress (" + strings.TrimPrefix(r.label("large", k), "decompress: ") + ")", s}
			}
		}
		if best != nil {
			limits = append(limits, *best)
		}
		if s, ok := get("large", "tar-x"); ok {
			limits = append(limits, lim{"tar -x", s})
		}
		if len(limits) == 3 {
			slowest := slices.MaxFunc(limits, func(a, b lim) int { return int(a.s.median - b.s.median) })
			x := ratio(cold.median, slowest.s.median)
			text := fmt.Sprintf("cold pull ≤ 1.3× the slowest single limit (%s, %s): %.2f×", slowest.name, seconds(slowest.s.median), x)
			if floor, ok := get("large", "pigz-tar"); ok {
				text += fmt.Sprintf(" (pigz -dc | tar -x alone, nothing verified: %.2f×)", ratio(floor.median, slowest.s.median))
			}
			ts = append(ts, target{ok: x <= 1.3, text: text})
		} else {
			ts = append(ts, target{text: "cold pull ≤ 1.3× the slowest single limit", na: true})
		}
	} else {
		ts = append(ts, target{text: "cold pull ≤ 1.3× the slowest single limit", na: true})
	}

	if warm, ok := get("large", "roots-warm-hardlink"); ok {
		if cp, ok := get("large", "cp-al"); ok {
			x := ratio(warm.median, cp.median)
			ts = append(ts, target{ok: x <= 1.3, text: fmt.Sprintf("warm hardlink pull ≤ 1.3× cp -al: %.2f× (%s vs %s)", x, seconds(warm.median), seconds(cp.median))})
		}
	} else {
		ts = append(ts, target{text: "warm hardlink pull ≤ 1.3× cp -al", na: true})
	}

	if ov, ok := get("large", "roots-warm-overlay"); ok {
		ts = append(ts, target{ok: ov.median < 50*time.Millisecond, text: fmt.Sprintf("warm overlay pull < 50 ms: %s", seconds(ov.median))})
		one, ok1 := get("flat1", "roots-warm-overlay")
		hundred, ok2 := get("flat100", "roots-warm-overlay")
		if ok1 && ok2 {
			x := ratio(hundred.median, one.median)
			ts = append(ts, target{ok: x <= 1.5 && hundred.median < 50*time.Millisecond,
				text: fmt.Sprintf("warm overlay flat in image size (100 layers ≤ 1.5× 1 layer, both < 50 ms): %s vs %s, %.2f×", seconds(hundred.median), seconds(one.median), x)})
		} else {
			ts = append(ts, target{text: "warm overlay flat in image size (1 vs 100 layers)", na: true})
		}
	} else {
		why := "no figures"
		if !r.overlay {
			why = "roots pull --mode overlay not built yet"
		}
		ts = append(ts, target{text: "warm overlay pull < 50 ms and flat in image size: " + why, na: true})
	}

	nocache, ok1 := get("large", "roots-nocache")
	crane, ok2 := get("large", "crane")
	if ok1 && ok2 {
		x := ratio(nocache.median, crane.median)
		ts = append(ts, target{ok: x <= 1, text: fmt.Sprintf("--cache=no no slower than crane export | tar -x: %.2f× (%s vs %s)", x, seconds(nocache.median), seconds(crane.median))})
	} else {
		ts = append(ts, target{text: "--cache=no no slower than crane export | tar -x", na: true})
	}

	dg, ok1 := get("large", "roots-digest")
	sk, ok2 := get("large", "skopeo-inspect")
	if ok1 && ok2 {
		x := ratio(dg.median, sk.median)
		ts = append(ts, target{ok: x <= 1, text: fmt.Sprintf("roots digest no slower than skopeo inspect: %.2f× (%s vs %s)", x, seconds(dg.median), seconds(sk.median))})
	} else {
		ts = append(ts, target{text: "roots digest no slower than skopeo inspect", na: true})
	}

	var worst int64
	worstRow := ""
	for _, img := range r.images {
		for _, res := range r.results[img.name] {
			if res.sc.group != groupRoots || len(res.samples) == 0 {
				continue
			}
			if s := summarize(res.samples); s.rss > worst {
				worst, worstRow = s.rss, img.name+" / "+res.sc.label
			}
		}
	}
	if worstRow != "" {
		ts = append(ts, target{ok: worst < 100<<20, text: fmt.Sprintf("peak RSS < 100 MB on every roots run: largest %s (%s)", mib(worst), worstRow)})
	}
	// Flat in image size: what doubling the image (large → double) added
	// to peak RSS, extrapolated linearly to an image of 4 GB, must stay
	// under the 100 MB bound.
	var flat []string
	flatOK := true
	largeImg, doubleImg := r.image("large"), r.image("double")
	for _, res := range r.results["double"] {
		if len(res.samples) == 0 || largeImg == nil || doubleImg == nil {
			continue
		}
		large, ok := get("large", res.sc.key)
		if !ok {
			continue
		}
		_, lsize := largeImg.size()
		_, dsize := doubleImg.size()
		d := summarize(res.samples)
		perByte := float64(max(0, d.rss-large.rss)) / float64(dsize-lsize)
		at4G := float64(large.rss) + perByte*float64(int64(4<<30)-lsize)
		if at4G >= 100<<20 {
			flatOK = false
		}
		sizes := mib(large.rss) + " → " + mib(d.rss)
		if small, ok := get("small", res.sc.key); ok {
			sizes = mib(small.rss) + " → " + sizes
		}
		flat = append(flat, fmt.Sprintf("%s %s, ≈ %s at 4 GB", strings.TrimPrefix(res.sc.label, "roots "), sizes, mib(int64(at4G))))
	}
	if len(flat) > 0 {
		ts = append(ts, target{ok: flatOK, text: "peak RSS flat in image size (small → large → double; the large → double growth extrapolated to a 4 GB image must stay < 100 MB): " + strings.Join(flat, "; ")})
	} else {
		ts = append(ts, target{text: "peak RSS flat in image size (needs the double image)", na: true})
	}
	return ts
}

// coldTargets are issue 14's targets, checked on every image that has the rows (the flat
// images only for the warm overlay's flatness in layer count).
func (r *report) coldTargets() []target {
	var ts []target
	// compare checks a's median against b's on img: at least factor× faster (faster) or at
	// most factor× b's (!faster).
	compare := func(img, a, b string, faster bool, factor float64, what string) {
		sa, ok1 := r.stats(img, a)
		sb, ok2 := r.stats(img, b)
		if !ok1 || !ok2 {
			ts = append(ts, target{text: img + ": " + what, na: true})
			return
		}
		if faster {
			x := ratio(sb.median, sa.median)
			ts = append(ts, target{ok: x >= factor, text: fmt.Sprintf("%s: %s: %.2f× (%s vs %s)", img, what, x, seconds(sa.median), seconds(sb.median))})
			return
		}
		x := ratio(sa.median, sb.median)
		ts = append(ts, target{ok: x <= factor, text: fmt.Sprintf("%s: %s: %.2f× (%s vs %s)", img, what, x, seconds(sa.median), seconds(sb.median))})
	}
	for _, img := range r.images {
		n := img.name
		if strings.HasPrefix(n, "flat") || n == "double" {
			continue
		}
		compare(n, "roots-cold", "crane", true, 1.3, "cold pull ≥ 1.3× faster than crane export | tar -x")
		compare(n, "roots-cold", "skopeo-umoci", true, 4, "cold pull ≥ 4× faster than skopeo copy + umoci unpack")
		compare(n, "roots-cold", "pigz-tar", false, 1.25, "cold pull ≤ 1.25× pigz -dc | tar -x")
		compare(n, "roots-cold", "pigz-tar-sync", false, 1.25, "cold pull ≤ 1.25× pigz -dc | tar -x then sync -f (the floor with point 4's durability)")
		compare(n, "roots-cold", "roots-nocache", false, 1.15, "cold pull ≤ 1.15× roots pull --cache=no")
		compare(n, "roots-cold", "roots-nocache-sync", false, 1.15, "cold pull ≤ 1.15× roots pull --cache=no then sync -f (the same durability)")
		compare(n, "roots-nocache", "crane", true, 1.3, "--cache=no ≥ 1.3× faster than crane export | tar -x")
		compare(n, "roots-warm-hardlink", "cp-al", false, 1.0, "warm hardlink ≤ 1.0× cp -al")
		for _, k := range []string{"roots-warm-overlay", "roots-warm-overlay-shared"} {
			if s, ok := r.stats(n, k); ok {
				ts = append(ts, target{ok: s.median < 50*time.Millisecond, text: fmt.Sprintf("%s: %s < 50 ms: %s%s", n, r.label(n, k), seconds(s.median), r.startFloors(n))})
			} else {
				ts = append(ts, target{text: n + ": " + k + " < 50 ms", na: true})
			}
		}
	}
	for _, k := range []string{"roots-warm-overlay", "roots-warm-overlay-shared"} {
		one, ok1 := r.stats("flat1", k)
		hundred, ok2 := r.stats("flat100", k)
		if !ok1 || !ok2 {
			ts = append(ts, target{text: "flat1 → flat100: " + k + " flat in layer count", na: true})
			continue
		}
		x := ratio(hundred.median, one.median)
		ts = append(ts, target{ok: x <= 1.5 && hundred.median < 50*time.Millisecond,
			text: fmt.Sprintf("flat1 → flat100: %s flat in layer count (100 layers ≤ 1.5× 1 layer, both < 50 ms): %s vs %s, %.2f×", r.label("flat1", k), seconds(hundred.median), seconds(one.median), x)})
	}
	return ts
}

// startFloors is what the start rows of img measured, for the warm overlay targets: the
// least a warm overlay pull does, what starting that program costs, and roots' own start.
func (r *report) startFloors(img string) string {
	var parts []string
	for _, row := range []struct{ key, name string }{
		{"floor-overlay", "warmfloor"}, {"floor-start", "warmfloor -exit"}, {"roots-start", "roots pull with no arguments"},
	} {
		if s, ok := r.stats(img, row.key); ok {
			parts = append(parts, row.name+" "+seconds(s.median))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (same run: " + strings.Join(parts, "; ") + ")"
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}
