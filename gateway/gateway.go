// Package gateway is the HTTP API of klantbeeld: it authenticates the caller
// (package auth checks the bearer JWT), validates the request against
// the OpenAPI document, asks the purpose policy, has package view compose
// what the permitted sources may disclose, records the access in the audit
// log and only then answers. It depends on the view, policy, audit and
// openapi packages through the small interfaces below; cmd/klantbeeld wires
// the real ones.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/openapi"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
)

// Decider is the purpose policy.
type Decider interface {
	Decide(ctx context.Context, in policies.Input) (policies.Decision, error)
}

// Recorder is the audit log. Append returns only once the event is durable.
type Recorder interface {
	Append(ctx context.Context, ev audit.Event) (int64, error)
	Ping(ctx context.Context) error
}

// Authenticator checks a request's credentials (*auth.Verifier). It
// returns auth.ErrNoToken when there are none and an error matching
// auth.ErrInvalidToken (an *auth.TokenError, whose text may be shown) when
// they are refused; any other error is a failure on our side.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (auth.Identity, error)
}

var _ Authenticator = (*auth.Verifier)(nil)

// Config holds what a Gateway needs. Zero values of the tuning fields mean
// their defaults.
type Config struct {
	// Sources are the source systems, in the order views and audit events
	// list them; one the gateway has no connector for is view.Unconfigured.
	Sources    []view.Source
	Policy     Decider
	Audit      Recorder
	Pseudonyms *audit.Pseudonymizer
	Auth       Authenticator
	Spec       *openapi.Spec
	Logger     *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// MaxBodyBytes of a request; 0: 16 KiB. Larger bodies get 413.
	MaxBodyBytes int64
	// Unauthenticated limits, per client address, the requests refused
	// for want of a valid token: see RateLimit. The zero value is the
	// defaults.
	Unauthenticated RateLimit
	// CallerLimits bound, per purpose, how often one caller (an
	// organisation by its OIN, an employee by sub) may ask for a resident
	// view: the key is the purpose; "*" is one budget per caller shared by
	// every purpose without a key of its own; without "*" those are not
	// limited. Past the budget the
	// answer is 429 with Retry-After, and the refusal is recorded. Clients
	// bounds the callers remembered per purpose.
	CallerLimits map[string]RateLimit
	// MaxViewsInFlight bounds the resident views composed at once, over
	// every caller. A view past it is refused at once (503 with
	// Retry-After, and the refusal recorded) before any source is asked:
	// a burst beyond what the gateway and its sources serve is shed, not
	// queued until every view in the queue times out and memory runs out.
	// 0: DefaultMaxViewsInFlight.
	MaxViewsInFlight int
	// CORSOrigins are the origins (https://app.gemeente.example) of the
	// browser front ends that may call every /v1 endpoint; "*" is refused.
	// The API document is open to every origin whatever this says.
	CORSOrigins []string
	// AuditLog is read by the auditor and subject-access endpoints; nil:
	// those endpoints are not served.
	AuditLog AuditLog
	// Checkpoints signs a checkpoint on demand when an event to be proved
	// is newer than the latest one; nil: proofs wait for the next
	// checkpoint made on the interval.
	Checkpoints Checkpointer
	// Residents checks residents' tokens for subject access; nil: only
	// employees with purpose inzage can use it.
	Residents ResidentAuthenticator
	// Sessions keeps the contact sessions (an audit store does); nil: the
	// /v1/contact-sessions endpoints are not served and a contact-session
	// context cannot be verified (403).
	Sessions audit.ContactSessionStore
	// SessionIdle is how long a contact session may go unused before it
	// times out; 0: DefaultSessionIdle.
	SessionIdle time.Duration
	// Workflow writes wrap-ups and searches callbacks; nil: those
	// endpoints are not served.
	Workflow Workflow
	// Contexts verifies zaak and interne taak contexts; nil: they cannot
	// be verified (403).
	Contexts ContextVerifier
	// Policies administers the purpose policy for privacy officers (the
	// /v1/policies endpoints); its Engine should be Policy too, or what it
	// activates decides nothing. nil: those endpoints are not served.
	Policies *PolicyAdmin
	// Metrics records requests and decisions; nil: nothing is recorded.
	Metrics *Metrics
	// ServeMetrics serves Metrics as GET /metrics beside the API, without
	// authentication, like /healthz (the metrics hold no personal data).
	// false: cmd serves them on an operator listener of their own, or not at all.
	ServeMetrics bool
}

// Gateway serves the API.
type Gateway struct {
	cfg Config
	log *slog.Logger
	// refusals is the budget of unauthenticated refusals per client.
	refusals *limiter
	// callers are the per-purpose budgets of authenticated callers.
	callers *callerLimits
	// views holds a token for every resident view being composed
	// (Config.MaxViewsInFlight).
	views chan struct{}
	// origins are the browser origins allowed to call the API (CORS).
	origins map[string]bool
	// routes is the mux, for the CORS preflight to ask which methods a
	// path serves.
	routes *http.ServeMux
}

// New checks cfg.
func New(cfg Config) (*Gateway, error) {
	switch {
	case cfg.Policy == nil:
		return nil, errors.New("gateway: no policy")
	case cfg.Audit == nil:
		return nil, errors.New("gateway: no audit log")
	case cfg.Pseudonyms == nil:
		return nil, errors.New("gateway: no pseudonym key")
	case cfg.Auth == nil:
		return nil, errors.New("gateway: no authenticator")
	case cfg.Spec == nil:
		return nil, errors.New("gateway: no API document")
	case cfg.Unauthenticated.Burst < 0, cfg.Unauthenticated.Every < 0, cfg.Unauthenticated.Clients < 0:
		return nil, fmt.Errorf("gateway: Unauthenticated %+v: no field may be negative", cfg.Unauthenticated)
	case cfg.MaxViewsInFlight < 0:
		return nil, fmt.Errorf("gateway: MaxViewsInFlight %d is negative", cfg.MaxViewsInFlight)
	}
	if cfg.MaxViewsInFlight == 0 {
		cfg.MaxViewsInFlight = DefaultMaxViewsInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 10
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	origins, err := checkOrigins(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	callers, err := newCallerLimits(cfg.CallerLimits, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &Gateway{
		cfg: cfg, log: cfg.Logger, refusals: newLimiter(cfg.Unauthenticated, cfg.Now), callers: callers, origins: origins,
		views: make(chan struct{}, cfg.MaxViewsInFlight),
	}, nil
}

// handlerFunc is a handler that returns its error for one place to map.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/resident-views", g.handle(g.residentView))
	mux.Handle("/v1/resident-views", methodNotAllowed(http.MethodPost))
	mux.Handle("GET /v1/openapi.json", g.handle(g.openAPI))
	mux.Handle("/v1/openapi.json", methodNotAllowed(http.MethodGet))
	mux.Handle("GET /v1/openapi.yaml", g.handle(g.openAPIYAML))
	mux.Handle("/v1/openapi.yaml", methodNotAllowed(http.MethodGet))
	mux.Handle("GET /healthz", g.handle(g.healthz))
	mux.Handle("GET /readyz", g.handle(g.readyz))
	if g.cfg.ServeMetrics && g.cfg.Metrics != nil {
		mux.Handle("GET /metrics", g.cfg.Metrics.Handler())
	}
	g.auditRoutes(mux)
	g.policyRoutes(mux)
	g.sessionRoutes(mux)
	g.workflowRoutes(mux)
	mux.Handle("/", g.handle(func(w http.ResponseWriter, r *http.Request) error {
		return problem(http.StatusNotFound, "There is no resource at this path.", nil)
	}))
	g.routes = mux
	return g.common(mux)
}

func (g *Gateway) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			p := problemFor(err)
			switch {
			case p.Status == statusClientClosed:
				return // nobody to answer
			case p.Status >= 500:
				// The cause is logged; the caller only sees the problem.
				// The route, not the path: a path may hold anything.
				g.log.Error("request failed", "method", r.Method, "route", route(r), "status", p.Status, "error", bsn.Redact(p.Error()))
			}
			writeProblem(w, r, p)
		}
	})
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeProblem(w, r, problem(http.StatusMethodNotAllowed, "Use "+allow+" on this resource.", nil))
	})
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// common sets the headers every answer carries (API-Version, the ADR
// security headers, the traceparent of the gateway's span in the trace it
// continues or starts, the caller's Fsc-Transaction-Id), refuses what no
// route should see (a path that is not in its one canonical form, a
// request body with a content coding), drops an invalid traceparent,
// answers CORS (cors), turns a panic into a 500 problem, and
// writes one access-log line per request. The log names the route
// pattern, never the path or query: whatever a caller puts in a URL
// (a BSN, say) stays out of the log.
func (g *Gateway) common(next http.Handler) http.Handler {
	version := g.cfg.Spec.Version()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		h.Set("API-Version", version)
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				g.log.Error("panic", "method", r.Method, "route", route(r), "panic", bsn.Redact(fmt.Sprint(v)), "stack", bsn.Redact(string(debug.Stack())))
				if rec.status == 0 {
					writeProblem(rec, r, problem(http.StatusInternalServerError, "The gateway failed; no resident data was sent.", nil))
				}
			}
			took := time.Since(start)
			g.cfg.Metrics.request(route(r), answered(rec.status, r), took)
			g.log.Info("request", "method", r.Method, "route", route(r), "status", rec.status, "ms", took.Milliseconds())
		}()
		r = withTraceparent(r)
		t := startTrace(r)
		r = withTrace(r, t)
		h.Set("Traceparent", t.traceparent())
		if fsc := fscTransactionID(r); echoable(fsc) {
			h.Set("Fsc-Transaction-Id", fsc)
		}
		if p := refuseRequest(r); p != nil {
			writeProblem(rec, r, p)
			return
		}
		if g.cors(rec, r) {
			return
		}
		// The mux sets r.Pattern on the request it is given: the one the
		// deferred log line reads.
		next.ServeHTTP(rec, r)
	})
}

// answered is the status a request got for the metrics: what was written,
// the 499 of a caller who hung up before anything was, else net/http's 200.
func answered(status int, r *http.Request) int {
	switch {
	case status != 0:
		return status
	case r.Context().Err() != nil:
		return statusClientClosed
	}
	return http.StatusOK
}

// route is what the logs say of a request's URL: the pattern of the route
// it matched (r.Pattern), or "-" before or without a match.
func route(r *http.Request) string {
	if r.Pattern == "" {
		return "-"
	}
	return r.Pattern
}

func (g *Gateway) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(g.cfg.Spec.JSON())
	return err
}

// openAPIYAML serves the API document as written (RFC 9512 media type).
func (g *Gateway) openAPIYAML(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(g.cfg.Spec.YAML())
	return err
}

func (g *Gateway) healthz(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (g *Gateway) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := g.cfg.Audit.Ping(ctx); err != nil {
		g.log.Warn("not ready: audit store", "error", err.Error())
		return problem(http.StatusServiceUnavailable, "The audit store is unreachable; the gateway refuses data until it is back.", nil)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "audit": "ok"})
}
