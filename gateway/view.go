package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/openapi"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
)

// viewRequest is the body of POST /v1/resident-views.
type viewRequest struct {
	BSN     string            `json:"bsn"`
	Purpose string            `json:"purpose"`
	Sources []string          `json:"sources,omitempty"`
	Context *policies.Context `json:"context,omitempty"`
}

const opResidentView = "POST /v1/resident-views"

// residentView handles POST /v1/resident-views. Every outcome, allowed,
// refused or failed, is recorded in the audit log before the answer goes
// out; if that record cannot be made, the answer is 503 without data.
func (g *Gateway) residentView(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opResidentView)
	ctx := view.WithTrace(r.Context(), ev.TraceID)

	body, bodyErr := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	// Who the request is about, for the audit event, even if it is refused.
	var peek viewRequest
	if bodyErr == nil && json.Unmarshal(body, &peek) == nil {
		if bsn.Valid(peek.BSN) {
			ev.Subject = g.cfg.Pseudonyms.Pseudonym(peek.BSN)
		}
		if purposePattern.MatchString(peek.Purpose) {
			ev.Purpose = peek.Purpose
		}
		if c := peek.Context; c != nil && contextTypes[c.Type] && len(c.ID) <= 200 {
			ev.Context = &audit.Context{Type: c.Type, ID: c.ID}
		}
	}

	id, err := g.cfg.Auth.Authenticate(ctx, r)
	if err != nil {
		p := problemFor(err)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	ev.Actor = audit.Actor{Sub: id.Sub, Department: id.Department, Roles: id.Roles, Organisation: id.Organisation}

	req, p := g.parseViewRequest(ctx, r, body, bodyErr)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}

	in := policies.Input{
		Actor:   policies.Actor{Sub: id.Sub, Department: id.Department, Roles: id.Roles, Organisation: id.Organisation},
		Action:  policies.ActionResidentView,
		Purpose: req.Purpose,
		Context: req.Context,
		Sources: req.Sources,
	}
	dec, err := g.cfg.Policy.Decide(ctx, in)
	if err != nil {
		return g.refuse(ctx, &ev, problemFor(err), audit.DecisionError, []string{"policy evaluation failed"})
	}
	recordDecision(&ev, dec)
	if !dec.Allow {
		return g.refuse(ctx, &ev, problem(http.StatusForbidden, "Not permitted: "+strings.Join(dec.Reasons, "; ")+".", nil), audit.DecisionDeny, nil)
	}

	vreq := view.Request{BSN: req.BSN, Purpose: req.Purpose, Sources: req.Sources, User: view.User{ID: id.Sub, Name: id.Name}}
	f := view.Fetch(ctx, g.cfg.Sources, vreq, dec, g.log)

	// What the BRP says about the resident goes into the policy input: ask
	// again with it, and let that decision rule the disclosure.
	if subject := f.Subject(); subject != nil {
		in.Subject = subject
		dec, err = g.cfg.Policy.Decide(ctx, in)
		if err != nil {
			ev.Sources = f.Refused()
			return g.refuse(ctx, &ev, problemFor(err), audit.DecisionError, []string{"policy evaluation failed"})
		}
		recordDecision(&ev, dec)
		if !dec.Allow {
			ev.Sources = f.Refused()
			return g.refuse(ctx, &ev, problem(http.StatusForbidden, "Not permitted: "+strings.Join(dec.Reasons, "; ")+".", nil), audit.DecisionDeny, nil)
		}
	}

	v, access := f.Compose(dec, g.cfg.Now())
	ev.Sources = access
	ev.Decision = audit.DecisionAllow
	ev.Status = http.StatusOK
	seq, err := g.cfg.Audit.Append(ctx, ev)
	if err != nil {
		// No record, no data.
		return err
	}
	v.AuditSeq = seq
	return writeJSON(w, http.StatusOK, v)
}

var (
	purposePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
	contextTypes   = map[string]bool{"klantcontact": true, "zaak": true, "internetaak": true}
)

func recordDecision(ev *audit.Event, dec policies.Decision) {
	ev.ProcessingActivity = dec.ProcessingActivity
	ev.PolicyVersion = dec.BundleVersion
	ev.Reasons = append(append([]string(nil), dec.Reasons...), dec.Notes...)
}

// refuse records a refused or failed request and returns its problem. If
// the record cannot be made the caller gets 503 instead.
func (g *Gateway) refuse(ctx context.Context, ev *audit.Event, p *Problem, decision string, reasons []string) error {
	ev.Decision = decision
	if len(reasons) > 0 {
		ev.Reasons = append(ev.Reasons, reasons...)
	}
	ev.Status = p.Status
	if _, err := g.cfg.Audit.Append(ctx, *ev); err != nil {
		return err
	}
	return p
}

// parseViewRequest validates the body against the API document, decodes it
// strictly and checks what the document cannot say (the 11-proef).
func (g *Gateway) parseViewRequest(ctx context.Context, r *http.Request, body []byte, bodyErr error) (viewRequest, *Problem) {
	if bodyErr != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](bodyErr); ok {
			return viewRequest{}, problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than %d bytes.", g.cfg.MaxBodyBytes), nil)
		}
		return viewRequest{}, problem(http.StatusBadRequest, "The request body could not be read.", bodyErr)
	}
	if err := g.cfg.Spec.ValidateRequest(ctx, r, body); err != nil {
		if ve, ok := errors.AsType[*openapi.ValidationError](err); ok {
			if ve.UnsupportedMediaType {
				return viewRequest{}, problem(http.StatusUnsupportedMediaType, "Send the request body as application/json.", nil)
			}
			p := problem(http.StatusBadRequest, "The request does not match the API: see invalidParams.", nil)
			p.InvalidParams = ve.Params
			return viewRequest{}, p
		}
		return viewRequest{}, problem(http.StatusNotFound, "There is no resource at this path.", nil)
	}
	var req viewRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return viewRequest{}, badParam("body", "invalid", "The body must be exactly one JSON object with the documented fields.")
	}
	// More() says false before a stray "}" or "]": ask for the next token.
	if _, err := dec.Token(); err != io.EOF {
		return viewRequest{}, badParam("body", "invalid", "The body must be exactly one JSON object: there is more after it.")
	}
	if !bsn.Valid(req.BSN) {
		return viewRequest{}, badParam("bsn", "elfproef", "Not a valid BSN: it fails the 11-proef.")
	}
	return req, nil
}

func badParam(name, code, reason string) *Problem {
	p := problem(http.StatusBadRequest, "The request is not valid: see invalidParams.", nil)
	p.InvalidParams = []openapi.InvalidParam{{Name: name, Code: code, Reason: reason}}
	return p
}

// newEvent starts the audit event of a request: time, trace and the
// caller's own trace context.
func (g *Gateway) newEvent(r *http.Request, op string) audit.Event {
	ev := audit.Event{Time: g.cfg.Now().UTC(), Operation: op, SpanID: randomHex(8)}
	tp := r.Header.Get("traceparent")
	if trace, ok := traceID(tp); ok {
		ev.TraceID = trace
	} else {
		ev.TraceID = randomHex(16)
	}
	fsc := r.Header.Get("Fsc-Transaction-Id")
	if len(fsc) > 200 {
		fsc = fsc[:200]
	}
	if tp != "" || fsc != "" {
		ev.ForeignOperation = &audit.ForeignOperation{FSCTransactionID: fsc}
		if _, ok := traceID(tp); ok {
			ev.ForeignOperation.Traceparent = tp
		}
	}
	return ev
}

var traceparentPattern = regexp.MustCompile(`^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$`)

// traceID continues the caller's trace when it sent a valid traceparent.
func traceID(tp string) (string, bool) {
	m := traceparentPattern.FindStringSubmatch(tp)
	if m == nil || m[1] == strings.Repeat("0", 32) {
		return "", false
	}
	return m[1], true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
