package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rootsdev/roots"
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

	image string // as the user named it, for the offline record's line ("": the reference)
}

type layerProgress struct {
	name  string
	total int64
	n     atomic.Int64
	state atomic.Value // string: "", "done", "cached"
}

func newProgress(e *env, on bool) *progress {
	return &progress{on: on, w: e.stderr, quit: make(chan struct{}), start: time.Now()}
}

// event takes a pull's event (roots.PullOptions.Progress).
func (p *progress) event(ev roots.Event) {
	switch ev.Kind {
	case roots.Resolved: // first, before any other: the layers are known from now on
		p.layers = make([]layerProgress, len(ev.Image.Layers))
		for i, l := range ev.Image.Layers {
			p.layers[i].name = l.Digest.Encoded()
			if len(p.layers[i].name) > 12 {
				p.layers[i].name = p.layers[i].name[:12]
			}
			p.layers[i].total = l.Size
		}
		if p.on && !ev.Recorded.IsZero() {
			image := p.image
			if image == "" {
				image = ev.Image.Ref.String()
			}
			fmt.Fprintln(p.w, recordNote(image, ev.Recorded))
		}
		if p.on {
			go p.loop()
		}
	case roots.Read:
		p.layers[ev.Layer].n.Add(ev.Bytes)
	case roots.LayerDone:
		p.layers[ev.Layer].state.Store("done")
	case roots.LayerCached:
		p.layers[ev.Layer].state.Store("cached")
	case roots.Warning:
		p.warn("roots: warning: " + ev.Message)
	}
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

// warn prints a warning line on stderr, after the progress lines if they are drawn.
func (p *progress) warn(line string) {
	if !p.on {
		fmt.Fprintln(p.w, line)
		return
	}
	p.mu.Lock()
	p.warnings = append(p.warnings, line)
	p.mu.Unlock()
}

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

// humanBytes formats n as B, kB, MB, GB (powers of 1000, like docker).
func humanBytes(n int64) string { return roots.HumanBytes(n) }
