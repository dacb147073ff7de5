package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// progress draws one line per layer on a terminal: bytes so far, total and
// rate, redrawn in place. When off, every method does nothing.
type progress struct {
	on     bool
	w      io.Writer
	layers []layerProgress
	quit   chan struct{}
	once   sync.Once
	drawn  int // lines on screen
	start  time.Time

	mu       sync.Mutex
	warnings []string // held back while drawing, printed by stop
}

type layerProgress struct {
	name  string
	total int64
	n     atomic.Int64
	state atomic.Value // string: "", "done", "cached"
}

func newProgress(e *env, on bool, layers []ocispec.Descriptor) *progress {
	p := &progress{on: on, w: e.stderr, layers: make([]layerProgress, len(layers)), quit: make(chan struct{}), start: time.Now()}
	for i, l := range layers {
		p.layers[i].name = l.Digest.Encoded()
		if len(p.layers[i].name) > 12 {
			p.layers[i].name = p.layers[i].name[:12]
		}
		p.layers[i].total = l.Size
	}
	if on {
		go p.loop()
	}
	return p
}

func (p *progress) loop() {
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.draw()
		case <-p.quit:
			return
		}
	}
}

// reader counts what is read through r for layer i.
func (p *progress) reader(i int, r io.ReadCloser) io.ReadCloser {
	if !p.on {
		return r
	}
	return &countingReader{ReadCloser: r, n: &p.layers[i].n}
}

// warn prints a warning line on stderr, after the progress lines if they are drawn.
func (p *progress) warn(e *env, line string) {
	if !p.on {
		fmt.Fprintln(e.stderr, line)
		return
	}
	p.mu.Lock()
	p.warnings = append(p.warnings, line)
	p.mu.Unlock()
}

func (p *progress) done(i int)   { p.layers[i].state.Store("done") }
func (p *progress) cached(i int) { p.layers[i].state.Store("cached") }

// stop draws the final state once and ends the redraws.
func (p *progress) stop() {
	p.once.Do(func() {
		if p.on {
			close(p.quit)
			p.draw()
			p.mu.Lock()
			for _, w := range p.warnings {
				fmt.Fprintln(p.w, w)
			}
			p.mu.Unlock()
		}
	})
}

func (p *progress) draw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	secs := time.Since(p.start).Seconds()
	for i := range p.layers {
		l := &p.layers[i]
		n := l.n.Load()
		state, _ := l.state.Load().(string)
		switch {
		case state == "cached":
			fmt.Fprintf(&b, "\x1b[2K%s  cached %s\n", l.name, humanBytes(l.total))
		case state == "done":
			fmt.Fprintf(&b, "\x1b[2K%s  done   %s\n", l.name, humanBytes(l.total))
		default:
			fmt.Fprintf(&b, "\x1b[2K%s  %s / %s  %s/s\n", l.name, humanBytes(n), humanBytes(l.total), humanBytes(int64(float64(n)/max(secs, 0.001))))
		}
	}
	p.drawn = len(p.layers)
	io.WriteString(p.w, b.String())
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// humanBytes formats n as B, kB, MB, GB (powers of 1000, like docker).
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
