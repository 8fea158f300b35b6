package gateway

import (
	"context"
	"net/http"
)

// trace is a request's W3C trace context: the caller's trace continued
// (or a new one), and this gateway's span in it.
type trace struct {
	// ID is the trace id: the incoming traceparent's, or a new one.
	ID string
	// Span is the gateway's own span id for this request.
	Span string
	// Parent is the incoming traceparent in its version-00 form; empty
	// when the request started a new trace.
	Parent string
	// Flags are the incoming trace flags, or 01 (sampled: every request
	// is recorded) for a new trace.
	Flags string
}

type traceKey struct{}

// startTrace is the trace of r, whose traceparent common has already
// checked (withTraceparent): its trace continued, or a new one.
func startTrace(r *http.Request) trace {
	t := trace{Span: randomHex(8), Flags: "01"}
	if tp, ok := parseTraceparent(r.Header.Get("traceparent")); ok {
		t.ID, t.Parent, t.Flags = tp[3:35], tp, tp[53:55]
	} else {
		t.ID = randomHex(16)
	}
	return t
}

// traceparent is the gateway's span as a traceparent header value: what
// the response carries, so the caller can quote the trace id.
func (t trace) traceparent() string { return "00-" + t.ID + "-" + t.Span + "-" + t.Flags }

func withTrace(r *http.Request, t trace) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), traceKey{}, t))
}

// traceOf is the trace common started for the request; a request that did
// not pass through common (a handler called directly) gets one now.
func traceOf(r *http.Request) trace {
	if t, ok := r.Context().Value(traceKey{}).(trace); ok {
		return t
	}
	return startTrace(r)
}

// fscTransactionID is the request's Fsc-Transaction-Id as the audit event
// keeps it: cut to the API document's maxLength.
func fscTransactionID(r *http.Request) string {
	return truncateRunes(r.Header.Get("Fsc-Transaction-Id"), maxFSCTransactionID)
}

// echoable reports whether a header value may be sent back as it is:
// visible ASCII only.
func echoable(s string) bool {
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}
