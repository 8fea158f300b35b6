package gateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/klantbeeld/klantbeeld/auth"
)

// callerLimits are the budgets of Config.CallerLimits: one limiter per
// purpose (and one for "*"), each keeping one budget per caller.
type callerLimits struct {
	purposes map[string]*limiter
	other    *limiter
}

// anyPurpose is the CallerLimits key of every purpose without its own.
const anyPurpose = "*"

func newCallerLimits(cfg map[string]RateLimit, now func() time.Time) (*callerLimits, error) {
	c := &callerLimits{purposes: map[string]*limiter{}}
	for purpose, rl := range cfg {
		if purpose != anyPurpose && !purposePattern.MatchString(purpose) {
			return nil, fmt.Errorf("gateway: CallerLimits: %q is not a purpose (or %q)", purpose, anyPurpose)
		}
		if rl.Burst < 0 || rl.Every < 0 || rl.Clients < 0 {
			return nil, fmt.Errorf("gateway: CallerLimits[%q] %+v: no field may be negative", purpose, rl)
		}
		l := newLimiter(rl, now)
		if purpose == anyPurpose {
			c.other = l
		} else {
			c.purposes[purpose] = l
		}
	}
	return c, nil
}

// take spends one of the caller's budget for purpose. When none is left
// it returns false and how long until one is.
func (c *callerLimits) take(id auth.Identity, purpose string) (bool, time.Duration) {
	l, ok := c.purposes[purpose]
	if !ok {
		l = c.other
	}
	if l == nil {
		return true, 0
	}
	return l.take(callerKey(id))
}

// callerKey is whose budget a request spends: an organisation's OIN (all
// its clients share it), else the employee's sub.
func callerKey(id auth.Identity) string {
	if id.Organisation != "" {
		return "organisation:" + id.Organisation
	}
	return "sub:" + id.Sub
}

// tooManyRequests is the 429 of a caller past their budget for a purpose.
func tooManyRequests(purpose string, wait time.Duration) *Problem {
	p := problem(http.StatusTooManyRequests, fmt.Sprintf("Too many requests for purpose %q from this caller; try again after Retry-After seconds.", purpose), nil)
	secs := max(1, int(math.Ceil(wait.Seconds())))
	p.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	return p
}

// DefaultMaxViewsInFlight is Config.MaxViewsInFlight's default: with
// sources answering in 20 ms a gateway on two cores composes some 400
// views/s with about 15 in flight (p50 near 40 ms); far more in flight
// means the machine is overloaded and more only adds queueing, while
// slower sources need room for more.
const DefaultMaxViewsInFlight = 128

// takeView takes a token of Config.MaxViewsInFlight for one view, and
// returns false when every one is taken. release gives it back.
func (g *Gateway) takeView() (ok bool, release func()) {
	select {
	case g.views <- struct{}{}:
		return true, func() { <-g.views }
	default:
		return false, nil
	}
}

// atCapacity is the problem of a view refused by Config.MaxViewsInFlight.
func atCapacity() *Problem {
	p := problem(http.StatusServiceUnavailable, "The gateway is composing as many resident views as it may at once; try again after Retry-After seconds.", nil)
	p.header = http.Header{"Retry-After": {"1"}}
	return p
}
