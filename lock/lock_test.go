package lock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockExclusion(t *testing.T) {
	tests := []struct {
		name          string
		first, second bool // exclusive?
		secondWaits   bool
	}{
		{"SharedAllowsShared", false, false, false},
		{"SharedBlocksExclusive", false, true, true},
		{"ExclusiveBlocksShared", true, false, true},
		{"ExclusiveBlocksExclusive", true, true, true},
	}
	take := func(s *Set, ctx context.Context, path string, excl bool) (*Lock, error) {
		if excl {
			return s.Exclusive(ctx, path)
		}
		return s.Shared(ctx, path)
	}
	for _, tt := range tests {
		for _, sets := range []string{"OneSet", "TwoSets"} {
			t.Run(tt.name+"/"+sets, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "l")
				a, b := NewSet(), NewSet()
				if sets == "OneSet" {
					b = a
				}
				l1, err := take(a, context.Background(), path, tt.first)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				l2, err := take(b, ctx, path, tt.second)
				if tt.secondWaits {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("second lock: got %v, want it to wait until the deadline", err)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					l2.Release()
				}
				if err := l1.Release(); err != nil {
					t.Fatal(err)
				}
				// Once released, the second one gets it at once.
				l3, err := take(b, context.Background(), path, tt.second)
				if err != nil {
					t.Fatal(err)
				}
				l3.Release()
			})
		}
	}
}

func TestLockMutualExclusionUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	s := NewSet()
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				l, err := s.Exclusive(context.Background(), path)
				if err != nil {
					t.Error(err)
					return
				}
				if n := inside.Add(1); n > maxInside.Load() {
					maxInside.Store(n)
				}
				inside.Add(-1)
				l.Release()
			}
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Fatalf("%d holders at once, want 1", maxInside.Load())
	}
	if len(s.gates) != 0 {
		t.Fatalf("%d idle gates left behind", len(s.gates))
	}
}

func TestTryExclusiveSeesOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// flock(1) holds the lock from another process.
	cmd := exec.Command("flock", "-s", path, "sleep", "2")
	if err := cmd.Start(); err != nil {
		t.Fatalf("flock(1) from util-linux is needed: %v", err)
	}
	defer cmd.Process.Kill()
	s := NewSet()
	deadline := time.Now().Add(2 * time.Second)
	for {
		l, ok, err := s.TryExclusive(path)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break // the other process's shared lock excludes us
		}
		l.Release()
		if time.Now().After(deadline) {
			t.Fatal("TryExclusive kept succeeding while flock(1) held the file shared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.Shared(context.Background(), path); err != nil {
		t.Fatalf("shared lock next to another shared holder: %v", err)
	}
}
