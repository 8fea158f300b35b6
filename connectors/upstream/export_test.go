package upstream

import (
	"context"
	"errors"
)

// EffectiveConfig is the configuration after New filled in its defaults; the
// wait and cooldown defaults cannot be observed quickly from outside.
func (c *Client) EffectiveConfig() Config { return c.cfg }

// MaxCacheEntries is the bound a Cache keeps to.
const MaxCacheEntries = maxCacheEntries

// Len is how many entries the cache holds.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Reason names the sentinel err matches, so that tests can compare
// classifications in one word. (The view's own status words live in view.)
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	case errors.Is(err, ErrForeignLink):
		return "foreign_link"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "error"
	}
}
