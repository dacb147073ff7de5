package auth

import (
	"context"
	"errors"
	"sync"
)

// flight runs one call per key at a time and hands its result to every caller
// that asked meanwhile, so that N parallel requests fetch one token, not N.
// Unlike x/sync/singleflight, a waiter stops waiting when its own context ends,
// and retries as leader when the leader gave up because of the leader's context.
type flight[T any] struct {
	mu    sync.Mutex
	calls map[string]*flightCall[T]
}

type flightCall[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func (f *flight[T]) do(ctx context.Context, key string, fn func(context.Context) (T, error)) (T, error) {
	for {
		f.mu.Lock()
		if c, ok := f.calls[key]; ok {
			f.mu.Unlock()
			select {
			case <-c.done:
				if isContextError(c.err) && ctx.Err() == nil {
					continue // the leader's context ended, not ours: try again
				}
				return c.val, c.err
			case <-ctx.Done():
				var zero T
				return zero, ctx.Err()
			}
		}
		if f.calls == nil {
			f.calls = map[string]*flightCall[T]{}
		}
		c := &flightCall[T]{done: make(chan struct{})}
		f.calls[key] = c
		f.mu.Unlock()

		c.val, c.err = fn(ctx)

		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
		return c.val, c.err
	}
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
