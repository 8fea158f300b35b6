package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Paths of the API document, which anyone may read from any origin.
const (
	pathOpenAPIJSON = "/v1/openapi.json"
	pathOpenAPIYAML = "/v1/openapi.yaml"
)

// CORS: what a browser front end on another origin may send and read.
// Tokens travel in the Authorization header, never in cookies, so
// credentials are never allowed (no Access-Control-Allow-Credentials).
const (
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, traceparent, tracestate, Fsc-Transaction-Id"
	corsExposeHeaders = "API-Version, traceparent, Fsc-Transaction-Id, Retry-After, WWW-Authenticate"
	corsMaxAge        = "600"
)

// checkOrigins checks Config.CORSOrigins: each an origin as browsers
// send it (scheme://host[:port], lower case, no path), never "*": only the
// API document is open to every origin.
func checkOrigins(origins []string) (map[string]bool, error) {
	out := make(map[string]bool, len(origins))
	for _, o := range origins {
		if o == "*" {
			return nil, fmt.Errorf("gateway: CORSOrigins: %q: list the origins of the front ends; only the API document is served to every origin", o)
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
			strings.ToLower(o) != o || u.Scheme+"://"+u.Host != o {
			return nil, fmt.Errorf("gateway: CORSOrigins: %q is not an origin like https://app.gemeente.example (scheme, host and port only, lower case)", o)
		}
		out[o] = true
	}
	return out, nil
}

// cors answers the CORS side of a request to /v1 and reports whether it
// has answered it all (a preflight). The API document may be read from
// any origin (Access-Control-Allow-Origin: *). Every other /v1 resource
// answers the origins of Config.CORSOrigins only: a preflight from one
// of them for a method the resource serves gets 204 with what may be
// sent; one from another origin gets 403, for another method 405 and for a
// path that does not exist 404,
// both without any Access-Control-Allow-* header, so the browser does not
// send the request. An OPTIONS request that is no preflight is left to
// the routes (405).
func (g *Gateway) cors(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		return false
	}
	h := w.Header()
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != ""
	public := r.URL.Path == pathOpenAPIJSON || r.URL.Path == pathOpenAPIYAML
	if !public {
		h.Add("Vary", "Origin")
	}
	if !preflight {
		switch {
		case public:
			h.Set("Access-Control-Allow-Origin", "*")
		case origin != "" && g.origins[origin]:
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if !public && !g.origins[origin] {
		writeProblem(w, r, problem(http.StatusForbidden, "This origin may not call the API from a browser; only the API document is open to every origin.", nil))
		return true
	}
	method := r.Header.Get("Access-Control-Request-Method")
	probe := r.Clone(r.Context())
	probe.Method = method
	_, pattern := g.routes.Handler(probe)
	if pattern == "/" {
		writeProblem(w, r, problem(http.StatusNotFound, "There is no resource at this path.", nil))
		return true
	}
	if !strings.HasPrefix(pattern, method+" ") {
		writeProblem(w, r, problem(http.StatusMethodNotAllowed, "This resource does not serve that method.", nil))
		return true
	}
	if public {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	h.Set("Access-Control-Allow-Methods", method)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
