// Package gateway is the HTTP API of klantbeeld: it authenticates the caller
// (JWT against the identity provider's JWKS), validates the request against
// the OpenAPI document, asks the purpose policy, has package view compose
// what the permitted sources may disclose, records the access in the audit
// log and only then answers. It depends on the view, policy, audit and
// openapi packages through the small interfaces below; cmd/klantbeeld wires
// the real ones.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
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

// Authenticator checks a request's credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Identity, error)
}

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
}

// Gateway serves the API.
type Gateway struct {
	cfg Config
	log *slog.Logger
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
	return &Gateway{cfg: cfg, log: cfg.Logger}, nil
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
	mux.Handle("GET /healthz", g.handle(g.healthz))
	mux.Handle("GET /readyz", g.handle(g.readyz))
	mux.Handle("/", g.handle(func(w http.ResponseWriter, r *http.Request) error {
		return problem(http.StatusNotFound, "There is no resource at this path.", nil)
	}))
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
				g.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "error", p.Error())
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

// common sets the headers every answer carries (API-Version and the ADR
// security headers), turns a panic into a 500 problem, and writes one
// access-log line per request. URLs of this API never hold personal data.
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
				g.log.Error("panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeProblem(rec, r, problem(http.StatusInternalServerError, "The gateway failed; no resident data was sent.", nil))
				}
			}
			g.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "ms", time.Since(start).Milliseconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

func (g *Gateway) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(g.cfg.Spec.JSON())
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
