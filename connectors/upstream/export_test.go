package upstream

// EffectiveConfig is the configuration after New filled in its defaults; the
// wait and cooldown defaults cannot be observed quickly from outside.
func (c *Client) EffectiveConfig() Config { return c.cfg }
