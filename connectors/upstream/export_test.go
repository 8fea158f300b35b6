package upstream

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
