//go:build linux

// Command rootsbench is `make bench`: it measures how fast roots turns a
// registry image into a root filesystem, against the tools users would pick
// instead (skopeo + umoci, crane, podman) and against what this machine
// allows on the same bytes (fetch, decompress, tar -x, cp -al, an overlay
// mount). Issue 6's targets are checked by it, not by timed tests: timings
// need a quiet machine, dropped caches and peers that `make test` does not
// install.
//
// It builds roots, starts a CNCF Distribution registry on 127.0.0.1, builds
// and pushes the benchmark images, installs missing peers, runs every row
// (a warm-up, then timed runs after dropping the page cache), prints one
// Markdown table per image with the targets, and writes it under
// bench/results/. It needs root. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

type options struct {
	runs     int
	slowRuns int
	timeout  time.Duration
	only     *regexp.Regexp
	images   map[string]bool
	tree     string
	work     string
	keep     bool
	out      string
	install  bool
	roots    string
	quiet    time.Duration
}

// bench is one benchmark session.
type bench struct {
	opts   options
	tools  *tools
	reg    *registry
	work   string
	tmp    string   // TMPDIR of the children
	short  string   // a directory with a short path (podman's runroot)
	images string   // the images' layer blobs and tars (on tmpfs when /dev/shm is one)
	self   string   // this binary, for the -helper rows
	env    []string // every child's environment
	policy string   // containers signature policy (accept anything) for skopeo
	warmed map[string]bool
	trash  *trash
	// quietBudget is what is left of -quiet.
	quietBudget time.Duration
	logf        func(string, ...any)
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-helper" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runHelper(ctx, os.Args[2], os.Args[3:])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "rootsbench:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var only, images string
	flag.IntVar(&o.runs, "runs", 7, "timed runs per row, after one warm-up")
	flag.IntVar(&o.slowRuns, "slow-runs", 0, "timed runs for the slowest peers (skopeo + umoci, podman cold); 0 means -runs")
	flag.DurationVar(&o.timeout, "timeout", 4*time.Minute, "limit for any one run (or setup step)")
	flag.StringVar(&only, "only", "", "run only the rows whose key matches this regexp (roots-cold, crane, tar-x, ...)")
	flag.StringVar(&images, "images", "large,small,double,many,big", "images to measure: large, small, double, many (210 k small files), big (1.2 GB; flat1 and flat100 are added when roots has --mode overlay)")
	flag.StringVar(&o.tree, "tree", "/usr/local/go", "the directory tree the large image is made of")
	flag.StringVar(&o.work, "work", "", "work directory (default: a new one under /var/tmp, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the results file (\"\" writes none)")
	flag.StringVar(&o.roots, "roots", "", "measure this roots binary instead of building ./cmd/roots (to compare two builds)")
	flag.DurationVar(&o.quiet, "quiet", 3*time.Minute, "total time to spend waiting, before timed runs, for the CPUs to be 90% idle (at most 10s a run)")
	flag.BoolVar(&o.install, "install", true, "install missing peers (apt-get; crane with go install)")
	flag.Parse()
	if o.roots != "" {
		abs, err := filepath.Abs(o.roots)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rootsbench: -roots:", err)
			os.Exit(2)
		}
		o.roots = abs
	}
	if o.slowRuns <= 0 {
		o.slowRuns = o.runs
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rootsbench: -only:", err)
			os.Exit(2)
		}
		o.only = re
	}
	o.images = map[string]bool{}
	for _, n := range strings.Split(images, ",") {
		if n = strings.TrimSpace(n); n != "" {
			o.images[n] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rootsbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it drops the page cache, mounts overlayfs and runs podman with a store of its own (sudo make bench)")
	}
	started := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%5.0fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	repo, err := findRepo()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("/var/tmp", "rootsbench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if work, err = filepath.Abs(work); err != nil {
		return err
	}
	if !o.keep {
		defer func() {
			unmountUnder(work)
			os.RemoveAll(work)
		}()
	}
	logf("work directory %s", work)
	loadBefore := loadAverage()

	t, err := setupTools(ctx, repo, work, filepath.Join(repo, "bench", ".tools"), o.roots, o.install, logf)
	if err != nil {
		return err
	}
	reg, err := startRegistry(ctx, filepath.Join(work, "registry"))
	if err != nil {
		return err
	}
	defer reg.stop()
	logf("registry on %s", reg.host)

	b := &bench{opts: o, tools: t, reg: reg, work: work, self: self, warmed: map[string]bool{}, logf: logf, quietBudget: o.quiet}
	if b.short, err = os.MkdirTemp("/tmp", "rb"); err != nil {
		return err
	}
	defer os.RemoveAll(b.short)
	if b.trash, err = newTrash(work, 40<<30); err != nil {
		return err
	}
	if !b.trash.keep {
		logf("less than 40 GiB free in %s: outputs are deleted between runs, not kept until the end (slower file creation on ext4 without a journal)", work)
	}
	if err := b.configure(); err != nil {
		return err
	}
	b.images = filepath.Join(work, "images")
	if fs, _ := mountOf("/dev/shm"); fs == "tmpfs" {
		// The blobs and tars the limit rows read stay in memory whatever
		// the cache drops do: those rows time one stage, not the disk.
		if b.images, err = os.MkdirTemp("/dev/shm", "rootsbench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(b.images)
		}
	}
	imgs, err := b.buildImages(ctx)
	if err != nil {
		return err
	}

	rep := &report{started: started, results: map[string][]*result{}, runs: o.runs, slowRuns: o.slowRuns, images: imgs, overlay: t.modes["overlay"]}
	var rows []*result
	for _, img := range imgs {
		var scs []*scenario
		switch {
		case strings.HasPrefix(img.name, "flat"):
			scs = b.flatRows(img)
		case img.name == "double":
			scs = b.sizeRows(img)
		default:
			scs = append(append(b.rootsRows(img), b.peerRows(img)...), b.limitRows(img)...)
		}
		for _, sc := range scs {
			if o.only != nil && !o.only.MatchString(sc.key) {
				continue
			}
			r := &result{sc: sc, img: img}
			rows = append(rows, r)
			rep.results[img.name] = append(rep.results[img.name], r)
		}
	}
	spreadDirs(work)
	for _, img := range imgs {
		d := filepath.Join(work, "run", img.name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		spreadDirs(filepath.Dir(d))
		spreadDirs(d)
	}
	b.runRows(ctx, rows)
	if err := ctx.Err(); err != nil {
		return err
	}
	logf("emptying the trash")
	if err := b.trash.empty(); err != nil {
		logf("empty the trash: %v", err)
	}
	rep.elapsed = time.Since(started)
	rep.machine = append(describeMachine(work), t.version...)
	rep.machine = append(rep.machine, fmt.Sprintf("load average: %s at the start, %s at the end (other work on the machine skews the figures)", loadBefore, loadAverage()))
	if !t.modes["overlay"] {
		rep.machine = append(rep.machine, "roots pull --mode overlay: not built yet")
	}

	var sb strings.Builder
	rep.write(&sb)
	fmt.Println(sb.String())
	if o.out != "" {
		dir := o.out
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(repo, dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		name := filepath.Join(dir, started.Format("2006-01-02")+"-"+machineID()+".md")
		if err := os.WriteFile(name, []byte(sb.String()), 0o644); err != nil {
			return err
		}
		logf("wrote %s", name)
	}
	return nil
}

// configure writes what the peers read (signature policy, registries.conf
// marking the loopback registry insecure) and sets the children's env.
func (b *bench) configure() error {
	b.policy = filepath.Join(b.work, "policy.json")
	if err := os.WriteFile(b.policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`+"\n"), 0o644); err != nil {
		return err
	}
	regConf := filepath.Join(b.work, "registries.conf")
	conf := fmt.Sprintf("unqualified-search-registries = []\n\n[[registry]]\nlocation = %q\ninsecure = true\n", b.reg.host)
	if err := os.WriteFile(regConf, []byte(conf), 0o644); err != nil {
		return err
	}
	b.tmp = filepath.Join(b.work, "tmp")
	if err := os.MkdirAll(b.tmp, 0o1777); err != nil {
		return err
	}
	path := os.Getenv("PATH")
	if b.tools.crane != "" {
		path = filepath.Dir(b.tools.crane) + ":" + path
	}
	b.env = []string{"PATH=" + path, "HOME=" + os.Getenv("HOME"), "TMPDIR=" + b.tmp, "LC_ALL=C",
		"CONTAINERS_REGISTRIES_CONF=" + regConf}
	return nil
}

// buildImages builds and pushes the benchmark images.
func (b *bench) buildImages(ctx context.Context) ([]*image, error) {
	type spec struct {
		name, repo, tag string
		layers          func() ([][]item, error)
	}
	fromTree := func(src, prefix string, n int) func() ([][]item, error) {
		return func() ([][]item, error) {
			items, err := treeItems(src, prefix)
			if err != nil {
				return nil, err
			}
			return splitLayers(items, n), nil
		}
	}
	tree := strings.TrimPrefix(filepath.Clean(b.opts.tree), "/")
	var specs []spec
	if b.opts.images["large"] {
		specs = append(specs, spec{"large", "bench/large", "4layers", fromTree(b.opts.tree, tree, 4)})
	}
	if b.opts.images["double"] {
		// The large image's tree twice over: does peak RSS grow with size?
		specs = append(specs, spec{"double", "bench/double", "4layers", func() ([][]item, error) {
			one, err := treeItems(b.opts.tree, tree)
			if err != nil {
				return nil, err
			}
			two, err := treeItems(b.opts.tree, tree+"-copy")
			if err != nil {
				return nil, err
			}
			return splitLayers(append(one, two...), 4), nil
		}})
	}
	if b.opts.images["many"] {
		specs = append(specs, spec{"many", "bench/many", "3layers", func() ([][]item, error) { return manyFilesLayers(210_000), nil }})
	}
	if b.opts.images["big"] {
		specs = append(specs, spec{"big", "bench/big", "4layers", func() ([][]item, error) {
			items, err := treeItems(b.opts.tree, tree)
			if err != nil {
				return nil, err
			}
			return bigLayers(splitLayers(items, 1)[0], 480<<20), nil
		}})
	}
	if b.opts.images["small"] {
		small := filepath.Join(b.opts.tree, "src", "crypto")
		specs = append(specs, spec{"small", "bench/small", "4layers", fromTree(small, strings.TrimPrefix(small, "/"), 4)})
	}
	if b.tools.modes["overlay"] {
		specs = append(specs,
			spec{"flat1", "bench/flat", "1layer", func() ([][]item, error) { return syntheticLayers(1), nil }},
			spec{"flat100", "bench/flat", "100layers", func() ([][]item, error) { return syntheticLayers(100), nil }})
	}
	var imgs []*image
	for _, s := range specs {
		start := time.Now()
		layers, err := s.layers()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.name, err)
		}
		img, err := buildImage(s.name, s.repo, s.tag, filepath.Join(b.images, s.name), layers)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.name, err)
		}
		if err := b.reg.push(ctx, img); err != nil {
			return nil, fmt.Errorf("image %s: %w", s.name, err)
		}
		gz, tar := img.size()
		b.logf("image %s: %s, %d layers, %.1f MB gzip / %.1f MB tar, %d files (built and pushed in %.1fs)",
			s.name, img.ref, len(img.layers), float64(gz)/1e6, float64(tar)/1e6, img.files, time.Since(start).Seconds())
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// findRepo is the roots module's root: the working directory or a parent
// of it with roots' go.mod.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/rootsdev/roots\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it from the roots repository (no go.mod of github.com/rootsdev/roots here or above)")
		}
		dir = parent
	}
}
