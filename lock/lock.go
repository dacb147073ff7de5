// Package lock provides interprocess locks that are safe between goroutines too.
//
// A lock is a flock(2) on a file (github.com/gofrs/flock) guarded by an in-process
// reader/writer gate, so goroutines of one process queue on a channel instead of
// polling the kernel, and other processes are excluded by the flock. Locks are
// shared or exclusive and every wait honours its context.
package lock

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// pollInterval is how often a waiter retries a flock held by another process.
const pollInterval = 10 * time.Millisecond

// Set hands out locks on files. Goroutines must share one Set for the in-process
// gate to work; separate Sets (or processes) are still excluded by the flock.
type Set struct {
	mu    sync.Mutex
	gates map[string]*gate
}

// gate is the in-process state of one lock file.
type gate struct {
	readers int           // goroutines holding it shared
	writer  bool          // a goroutine holds it exclusively
	users   int           // holders and waiters, so idle gates can be dropped
	changed chan struct{} // closed and replaced whenever readers or writer drop
}

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{gates: map[string]*gate{}} }

// Lock is one held lock. Release it exactly once.
type Lock struct {
	set       *Set
	path      string
	gate      *gate
	exclusive bool
	file      *flock.Flock
}

// Shared takes path's lock shared: many holders at once, none exclusive.
func (s *Set) Shared(ctx context.Context, path string) (*Lock, error) {
	return s.take(ctx, path, false)
}

// Exclusive takes path's lock for this holder alone.
func (s *Set) Exclusive(ctx context.Context, path string) (*Lock, error) {
	return s.take(ctx, path, true)
}

// TryExclusive takes path's lock exclusively if nobody holds it, without waiting.
// It reports false if the lock is busy.
func (s *Set) TryExclusive(path string) (*Lock, bool, error) {
	g := s.join(path)
	s.mu.Lock()
	free := !g.writer && g.readers == 0
	if free {
		g.writer = true
	}
	s.mu.Unlock()
	if !free {
		s.leave(path, g)
		return nil, false, nil
	}
	f := flock.New(path)
	ok, err := f.TryLock()
	if err != nil || !ok {
		s.drop(path, g, true)
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		return nil, false, nil
	}
	return &Lock{set: s, path: path, gate: g, exclusive: true, file: f}, true, nil
}

func (s *Set) take(ctx context.Context, path string, exclusive bool) (*Lock, error) {
	g := s.join(path)
	if err := s.enter(ctx, g, exclusive); err != nil {
		s.leave(path, g)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f := flock.New(path)
	var err error
	if exclusive {
		_, err = f.TryLockContext(ctx, pollInterval)
	} else {
		_, err = f.TryRLockContext(ctx, pollInterval)
	}
	if err != nil {
		s.drop(path, g, exclusive)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{set: s, path: path, gate: g, exclusive: exclusive, file: f}, nil
}

// Release gives the lock back; a nil Lock (none taken) has nothing to give.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	err := l.file.Unlock()
	l.set.drop(l.path, l.gate, l.exclusive)
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}

// join registers a user of path's gate, creating it if needed.
func (s *Set) join(path string) *gate {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gates[path]
	if g == nil {
		g = &gate{changed: make(chan struct{})}
		s.gates[path] = g
	}
	g.users++
	return g
}

// enter waits until g admits a holder of the wanted kind.
func (s *Set) enter(ctx context.Context, g *gate, exclusive bool) error {
	for {
		s.mu.Lock()
		if !g.writer && (!exclusive || g.readers == 0) {
			if exclusive {
				g.writer = true
			} else {
				g.readers++
			}
			s.mu.Unlock()
			return nil
		}
		wait := g.changed
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// drop ends a hold on g and wakes the waiters.
func (s *Set) drop(path string, g *gate, exclusive bool) {
	s.mu.Lock()
	if exclusive {
		g.writer = false
	} else {
		g.readers--
	}
	close(g.changed)
	g.changed = make(chan struct{})
	s.mu.Unlock()
	s.leave(path, g)
}

// leave unregisters a user and forgets an idle gate.
func (s *Set) leave(path string, g *gate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.users--
	if g.users == 0 && s.gates[path] == g {
		delete(s.gates, path)
	}
}
