package zaken

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// maxEntries bounds a cache: a source cannot grow it without limit by
// inventing zaaktype URLs.
const maxEntries = 4096

// cache keeps values by URL for a TTL. Concurrent misses for one key share a
// single load; failures are not kept. A ttl <= 0 keeps nothing but still
// shares concurrent loads.
type cache[V any] struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*entry[V]
}

// entry is one value; val, err and expires are written before done is
// closed and only read after.
type entry[V any] struct {
	done    chan struct{}
	val     V
	err     error
	expires time.Time
}

func newCache[V any](ttl time.Duration, now func() time.Time) *cache[V] {
	return &cache[V]{ttl: ttl, now: now, entries: map[string]*entry[V]{}}
}

// get returns the value for key, calling load when it is missing or
// expired. A caller waiting for another's load stops when its own ctx ends,
// and loads itself when the other's load was cut short by its caller.
func (c *cache[V]) get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	var zero V
	for {
		c.mu.Lock()
		e, ok := c.entries[key]
		if ok {
			select {
			case <-e.done:
				if e.err == nil && c.now().Before(e.expires) {
					c.mu.Unlock()
					return e.val, nil
				}
				ok = false // expired: load again below
			default:
			}
		}
		if ok {
			c.mu.Unlock()
			select {
			case <-e.done:
			case <-ctx.Done():
				return zero, ctxError(ctx)
			}
			if e.err == nil {
				return e.val, nil
			}
			if ctx.Err() == nil && (errors.Is(e.err, context.Canceled) || errors.Is(e.err, upstream.ErrTimeout)) {
				continue // the loader's caller gave up; this one has time left
			}
			return zero, e.err
		}
		e = &entry[V]{done: make(chan struct{})}
		c.entries[key] = e
		c.sweepLocked()
		c.mu.Unlock()

		e.val, e.err = load(ctx)
		e.expires = c.now().Add(c.ttl)
		if e.err != nil || c.ttl <= 0 {
			c.mu.Lock()
			if c.entries[key] == e {
				delete(c.entries, key)
			}
			c.mu.Unlock()
		}
		close(e.done)
		return e.val, e.err
	}
}

// sweepLocked drops expired entries when the cache is full, and everything
// loaded when that is not enough.
func (c *cache[V]) sweepLocked() {
	if len(c.entries) <= maxEntries {
		return
	}
	now := c.now()
	for k, e := range c.entries {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		default:
		}
	}
	if len(c.entries) <= maxEntries {
		return
	}
	for k, e := range c.entries {
		select {
		case <-e.done:
			delete(c.entries, k)
		default:
		}
	}
}

// ctxError is the error of a caller whose context ended while waiting.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("zaken: %w: waiting for the catalogi", upstream.ErrTimeout)
	}
	return fmt.Errorf("zaken: %w", ctx.Err())
}
