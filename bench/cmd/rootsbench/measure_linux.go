package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/rootsdev/roots/internal/mountinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sample is what one timed run cost.
type sample struct {
	wall      time.Duration
	cpu       time.Duration // user + sys of every child the run started
	maxRSS    int64         // bytes: the largest maxrss of any child
	user, sys time.Duration
	others    time.Duration // CPU that other processes used during the run
}

// meter runs the child processes of one run and adds up what they used.
// CPU time is the rusage wait4 returns for each child (its own waited-for
// children included). Peak RSS is not taken from wait4: Linux carries the
// forking process's RSS into the child's maxrss when it execs (exec_mmap
// records the old mm's high-water mark), so every child of this benchmark
// would show at least the benchmark's own RSS. Each child is therefore run
// under GNU time (/usr/bin/time -f %M), a 1 MB process whose figure for
// its child is the child's own.
type meter struct {
	env     []string
	timeBin string // /usr/bin/time, or "" to fall back to wait4's maxrss
	tmp     string // where time writes its figures

	mu        sync.Mutex
	user, sys time.Duration
	maxRSS    int64
}

// newMeter measures children started with env; peak RSS through timeBin
// (GNU time) when it is not "", with its figures written under tmp.
func newMeter(env []string, timeBin, tmp string) *meter {
	return &meter{env: env, timeBin: timeBin, tmp: tmp}
}

// child is one started command.
type child struct {
	*exec.Cmd
	argv    []string
	stderr  *tailBuffer
	rssFile string
}

var rssSeq atomic.Int64

// command makes a child in its own process group, killed with the group
// when ctx ends, with stdin from /dev/null and stderr kept for errors.
func (m *meter) command(ctx context.Context, argv []string) *child {
	c := &child{argv: argv, stderr: &tailBuffer{max: 4 << 10}}
	run := argv
	if m.timeBin != "" {
		c.rssFile = filepath.Join(m.tmp, fmt.Sprintf("rss-%d-%d", os.Getpid(), rssSeq.Add(1)))
		run = append([]string{m.timeBin, "-f", "%M", "-o", c.rssFile}, argv...)
	}
	cmd := exec.CommandContext(ctx, run[0], run[1:]...)
	cmd.Env = m.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stderr = c.stderr
	c.Cmd = cmd
	return c
}

// done records what the finished child used and returns its error with
// context.
func (m *meter) done(ctx context.Context, c *child, err error) error {
	if ps := c.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			rss := ru.Maxrss * 1024
			if c.rssFile != "" {
				rss = readRSS(c.rssFile)
			}
			m.mu.Lock()
			m.user += time.Duration(ru.Utime.Nano())
			m.sys += time.Duration(ru.Stime.Nano())
			m.maxRSS = max(m.maxRSS, rss)
			m.mu.Unlock()
		}
	}
	if c.rssFile != "" {
		os.Remove(c.rssFile)
	}
	return commandError(ctx, c.argv, err, c.stderr)
}

// readRSS reads GNU time's %M (KiB; the last line: before it time may
// write "Command exited with non-zero status N").
func readRSS(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	kb, _ := strconv.ParseInt(lastLine(string(b)), 10, 64)
	return kb * 1024
}

// run runs argv with stdout to /dev/null.
func (m *meter) run(ctx context.Context, argv ...string) error {
	return m.runIn(ctx, "", argv...)
}

// runIn runs argv in dir with stdout to /dev/null.
func (m *meter) runIn(ctx context.Context, dir string, argv ...string) error {
	c := m.command(ctx, argv)
	c.Dir = dir
	return m.done(ctx, c, c.Run())
}

// output runs argv and returns what it printed on stdout.
func (m *meter) output(ctx context.Context, argv ...string) (string, error) {
	c := m.command(ctx, argv)
	var out bytes.Buffer
	c.Stdout = &out
	err := m.done(ctx, c, c.Run())
	return out.String(), err
}

// pipe runs from | to.
func (m *meter) pipe(ctx context.Context, from, to []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	a, b := m.command(ctx, from), m.command(ctx, to)
	a.Stdout, b.Stdin = w, r
	if err := a.Start(); err != nil {
		r.Close()
		w.Close()
		return m.done(ctx, a, err)
	}
	if err := b.Start(); err != nil {
		w.Close()
		r.Close()
		a.Process.Kill()
		a.Wait()
		return m.done(ctx, b, err)
	}
	w.Close()
	r.Close()
	errA, errB := a.Wait(), b.Wait()
	errA, errB = m.done(ctx, a, errA), m.done(ctx, b, errB)
	if errB != nil {
		return errB
	}
	return errA
}

// parallel runs every command, at most jobs at once, stdout to /dev/null.
func (m *meter) parallel(ctx context.Context, jobs int, cmds [][]string) error {
	sem := make(chan struct{}, jobs)
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, argv := range cmds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = m.run(ctx, argv...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *meter) result(wall time.Duration) sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sample{wall: wall, cpu: m.user + m.sys, user: m.user, sys: m.sys, maxRSS: m.maxRSS}
}

func commandError(ctx context.Context, argv []string, err error, stderr *tailBuffer) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), context.Cause(ctx))
	}
	msg := strings.TrimSpace(stderr.String())
	if msg != "" {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// dropCaches writes dirty pages back and empties the page, dentry and inode
// caches, as `sync; echo 3 > /proc/sys/vm/drop_caches` does: without it,
// runs that write trees vary by 2× on machines with ballooned memory.
func dropCaches() error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	return nil
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest
// first (podman's overlay store, overlay mounts left by a failed run).
func unmountUnder(dir string) {
	points, _ := mountinfo.Below(dir)
	for i := len(points) - 1; i >= 0; i-- {
		unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// isMountPoint says whether dir is the root of a mount.
func isMountPoint(dir string) bool {
	points, _ := mountinfo.Below(dir)
	return len(points) > 0 && points[0] == dir
}
