package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/openapi"
	"github.com/klantbeeld/klantbeeld/policies"
)

// Problem is an RFC 9457 problem: what the caller is told. The cause, which
// may hold internal detail, is logged and never sent.
type Problem struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	// TraceID is the request's W3C trace id, for the caller to quote to
	// support; the audit event and the traceparent header carry it too.
	TraceID       string                 `json:"traceId,omitempty"`
	InvalidParams []openapi.InvalidParam `json:"invalidParams,omitempty"`
	// Codes are the purpose policy's reason codes of a refusal, sorted;
	// Type is the URI of the most basic one (policyRefusal).
	Codes []string `json:"codes,omitempty"`
	// Invariants are the guard invariants a rejected policy bundle breaks;
	// FailedTests its own Rego tests that failed (bundleProblem).
	Invariants  []*policies.InvariantError `json:"invariants,omitempty"`
	FailedTests []string                   `json:"failedTests,omitempty"`

	cause  error
	header http.Header
}

func (p *Problem) Error() string {
	if p.cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", p.Status, p.Title, p.Detail, p.cause)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

func (p *Problem) Unwrap() error { return p.cause }

func problem(status int, detail string, cause error) *Problem {
	return &Problem{Title: http.StatusText(status), Status: status, Detail: detail, cause: cause}
}

// statusClientClosed is what the log shows when the client hung up.
const statusClientClosed = 499

// problemFor is the one place that maps errors to what the caller sees.
func problemFor(err error) *Problem {
	if p, ok := errors.AsType[*Problem](err); ok {
		return p
	}
	if p := bundleProblem(err); p != nil {
		return p
	}
	switch {
	case errors.Is(err, audit.ErrUnavailable), errors.Is(err, audit.ErrClosed):
		p := problem(http.StatusServiceUnavailable, "The access log cannot record this request, so no data is sent. Try again shortly.", err)
		p.header = http.Header{"Retry-After": {"5"}}
		return p
	case errors.Is(err, policies.ErrEvaluation):
		return problem(http.StatusInternalServerError, "The purpose policy could not be evaluated, so no data is sent.", err)
	case errors.Is(err, auth.ErrNoToken):
		p := problem(http.StatusUnauthorized, "A bearer token is required.", err)
		p.header = http.Header{"WWW-Authenticate": {`Bearer realm="klantbeeld"`}}
		return p
	case errors.Is(err, auth.ErrInvalidToken):
		// A TokenError's text is meant for the caller: a stable phrase
		// that holds no claim value. Its cause stays in the log.
		detail := "The bearer token is not valid."
		if te, ok := errors.AsType[*auth.TokenError](err); ok {
			detail = te.Error()
		}
		p := problem(http.StatusUnauthorized, detail, err)
		p.header = http.Header{"WWW-Authenticate": {`Bearer realm="klantbeeld", error="invalid_token"`}}
		return p
	case errors.Is(err, context.Canceled):
		return problem(statusClientClosed, "The client closed the request.", err)
	default:
		return problem(http.StatusInternalServerError, "The gateway failed; no resident data was sent.", err)
	}
}

// policyRefusal is the 403 of a decision that denies: its type names
// the decision's most basic reason code, and codes lists them all.
func policyRefusal(dec policies.Decision) *Problem {
	code := dec.Code()
	p := problem(http.StatusForbidden, "Not permitted: "+strings.Join(dec.Reasons, "; ")+".", nil)
	p.Type, p.Title = policies.ReasonTypeURI(code), policies.ReasonTitle(code)
	for _, c := range dec.Codes {
		// A bundle's own code is shown only in the form ReasonTypeURI
		// accepts; the audit event keeps whatever it was.
		if policies.ValidCode(c) {
			p.Codes = append(p.Codes, c)
		}
	}
	return p
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	for k, vs := range p.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	p.TraceID = traceOf(r).ID
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer func() {
		// A buffer grown by a rare huge view is left to the collector.
		if buf.Cap() <= maxPooledJSON {
			jsonBuffers.Put(buf)
		}
	}()
	buf.Reset()
	// Encode writes what Marshal would, and the newline.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// With its length said and the bytes flushed, the answer is complete
	// on the wire here: the client need not wait for what the gateway does
	// after it (the access log, the metrics, the end of a chunked body).
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return err
	}
	_ = http.NewResponseController(w).Flush()
	return nil
}

// jsonBuffers hold answers while they are encoded: one view's worth of
// bytes is not allocated (and grown) anew for every answer.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledJSON is the largest buffer kept for the next answer.
const maxPooledJSON = 1 << 20
