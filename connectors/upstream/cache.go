package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// maxCacheEntries bounds a Cache: a source cannot grow it without limit by
// inventing resource URLs.
const maxCacheEntries = 4096

// Cache keeps the results of look-ups by key (a resource URL) for a TTL:
// resources that rarely change and that many answers link to, such as the
// zaaktypen and catalogi of the Catalogi API. Concurrent misses for one key
// share a single load; failures are not kept. It is safe for concurrent use.
type Cache[V any] struct {
	name string
	ttl  time.Duration
	now  func() time.Time

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

// NewCache returns an empty cache for the source name (used in errors).
// A ttl <= 0 keeps nothing but still shares concurrent loads; now nil means
// time.Now.
func NewCache[V any](name string, ttl time.Duration, now func() time.Time) *Cache[V] {
	if now == nil {
		now = time.Now
	}
	return &Cache[V]{name: name, ttl: ttl, now: now, entries: map[string]*entry[V]{}}
}

// Get returns the value for key, calling load when it is missing or
// expired. A caller waiting for another's load stops when its own ctx ends
// (ErrTimeout on a deadline, else the context's error), and loads itself
// when the other's load was cut short by its caller. Otherwise the error is
// load's.
func (c *Cache[V]) Get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
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
				return zero, c.waitError(ctx)
			}
			if e.err == nil {
				return e.val, nil
			}
			if ctx.Err() == nil && (errors.Is(e.err, context.Canceled) || errors.Is(e.err, ErrTimeout)) {
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
func (c *Cache[V]) sweepLocked() {
	if len(c.entries) <= maxCacheEntries {
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
	if len(c.entries) <= maxCacheEntries {
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

// waitError is the error of a caller whose context ended while waiting for
// another caller's load.
func (c *Cache[V]) waitError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: waiting for a shared look-up", c.name, ErrTimeout)
	}
	return fmt.Errorf("%s: %w", c.name, ctx.Err())
}
