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

// Reason names the sentinel err matches, so that tests can compare
// classifications in one word: Outcome, "" for none. (The view's own
// status words live in view.)
func Reason(err error) string {
	if err == nil {
		return ""
	}
	return Outcome(err)
}
