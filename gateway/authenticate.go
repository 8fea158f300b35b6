package gateway

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
)

// authenticate checks the request's bearer token with Config.Auth. On
// success it names the caller in ev.Actor and returns who it is. On
// failure it returns what the handler returns: refuseUnauthenticated's
// 401 (recorded in the audit log), 429 (not recorded) or the audit
// store's error (503).
func (g *Gateway) authenticate(ctx context.Context, r *http.Request, ev *audit.Event) (auth.Identity, error) {
	id, err := g.cfg.Auth.Authenticate(ctx, r)
	if err != nil {
		return auth.Identity{}, g.refuseUnauthenticated(ctx, r, ev, err)
	}
	ev.Actor = actorOf(id)
	return id, nil
}

// actorOf is how an audit event names an authenticated caller.
func actorOf(id auth.Identity) audit.Actor {
	return audit.Actor{Sub: id.Sub, Department: id.Department, Roles: id.Roles, Organisation: id.Organisation, Delegate: id.Delegate}
}

// refuseUnauthenticated answers a request whose credentials an
// authenticator refused with err (auth.ErrNoToken, an *auth.TokenError,
// or a failure of our own). Such a request is recorded with its actor
// unknown and nothing taken from its body or URL: no subject, context or
// purpose (ev's are cleared), for an anonymous caller must not be able to
// write into a resident's access history. Each one spends one of the
// client address's budget (Config.Unauthenticated); past it the answer is
// 429 with Retry-After and nothing is recorded, so that nobody can grow
// the append-only log at will. Use it for every authentication failure,
// of employees' tokens and of residents'.
func (g *Gateway) refuseUnauthenticated(ctx context.Context, r *http.Request, ev *audit.Event, err error) error {
	if ok, wait := g.refusals.take(clientKey(r.RemoteAddr)); !ok {
		g.log.Debug("unauthenticated request over budget", "route", route(r))
		return tooManyRefusals(wait)
	}
	ev.Subject, ev.Context, ev.Purpose = "", nil, ""
	p := problemFor(err)
	decision := audit.DecisionDeny
	if p.Status >= http.StatusInternalServerError {
		decision = audit.DecisionError
	}
	if te, ok := errors.AsType[*auth.TokenError](err); ok && te.Err != nil {
		// The caller is told the reason; the cause is for us.
		g.log.Debug("token refused", "route", route(r), "reason", string(te.Reason), "error", te.Err.Error())
	}
	return g.refuse(ctx, ev, p, decision, []string{p.Detail})
}

func tooManyRefusals(wait time.Duration) *Problem {
	p := problem(http.StatusTooManyRequests, "Too many requests without a valid token from this address: they are no longer answered or recorded. Send a valid bearer token, or try again later.", nil)
	secs := max(1, int(math.Ceil(wait.Seconds())))
	p.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	return p
}

// RateLimit is a token bucket per client. As Config.Unauthenticated it
// counts, per client address, requests refused for want of a valid
// token: each such refusal is a 401 and an audit event; past the budget
// the answer is 429 with Retry-After and nothing is recorded. Requests
// with a valid token are never counted there. The client address is the
// TCP peer (Request.RemoteAddr; a header such as X-Forwarded-For is not
// believed), an IPv6 address counted by its /64, which is what one
// client is given. As a Config.CallerLimits entry it counts the resident
// views of one authenticated caller for a purpose. The zero value is the
// defaults.
type RateLimit struct {
	// Burst is how many requests a client may make in a row; 0: 20.
	Burst int
	// Every is the time in which a client regains one; 0: 1 s.
	Every time.Duration
	// Clients bounds how many addresses with budget spent are remembered
	// (some 100 bytes each); while that many are, a new address gets 429
	// at once. An address is forgotten when its budget is whole again.
	// 0: 10 000.
	Clients int
}

// Defaults of RateLimit.
const (
	DefaultRateLimitBurst   = 20
	DefaultRateLimitEvery   = time.Second
	DefaultRateLimitClients = 10_000
)

// limiter keeps a RateLimit. It is the generic cell rate algorithm: per
// address one time, when its budget will be whole again ("theoretical
// arrival time"); a refusal is allowed while that lies at most
// (Burst−1)·Every ahead, and moves it Every further.
type limiter struct {
	every     time.Duration
	tolerance time.Duration
	clients   int
	now       func() time.Time

	mu        sync.Mutex
	full      map[string]time.Time
	lastSweep time.Time
}

func newLimiter(c RateLimit, now func() time.Time) *limiter {
	if c.Burst == 0 {
		c.Burst = DefaultRateLimitBurst
	}
	if c.Every == 0 {
		c.Every = DefaultRateLimitEvery
	}
	if c.Clients == 0 {
		c.Clients = DefaultRateLimitClients
	}
	return &limiter{
		every:     c.Every,
		tolerance: time.Duration(c.Burst-1) * c.Every,
		clients:   c.Clients,
		now:       now,
		full:      map[string]time.Time{},
	}
}

// take spends one of client's budget. When none is left it returns false
// and how long until one is.
func (l *limiter) take(client string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.tolerance+l.every {
		l.sweep(now)
	}
	full, known := l.full[client]
	if !known || full.Before(now) {
		full = now
	}
	if ahead := full.Sub(now); ahead > l.tolerance {
		return false, ahead - l.tolerance
	}
	if !known && len(l.full) >= l.clients {
		if l.sweep(now); len(l.full) >= l.clients {
			return false, l.every
		}
	}
	l.full[client] = full.Add(l.every)
	return true, 0
}

// sweep forgets the addresses whose budget is whole again: they are as
// if never seen. It keeps memory to the addresses of the last
// Burst·Every, at most Clients of them.
func (l *limiter) sweep(now time.Time) {
	for c, full := range l.full {
		if !full.After(now) {
			delete(l.full, c)
		}
	}
	l.lastSweep = now
}

// size is how many addresses are remembered.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.full)
}

// clientKey is the address a request's budget is kept under: the TCP
// peer's IP, an IPv6 address by its /64 (one client's share).
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
