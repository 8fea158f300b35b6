package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

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
	// BreakGlass stands in for a context where the purpose allows it.
	BreakGlass *breakGlass `json:"breakGlass,omitempty"`
}

const opResidentView = "POST /v1/resident-views"

// residentView handles POST /v1/resident-views. Every outcome, allowed,
// refused or failed, is recorded in the audit log before the answer goes
// out; if that record cannot be made, the answer is 503 without data. The
// body is only read once the caller is authenticated: what it says about a
// resident goes into no event of an anonymous caller.
func (g *Gateway) residentView(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opResidentView)
	ctx := view.WithTrace(r.Context(), ev.TraceID)

	id, err := g.authenticate(ctx, r, &ev)
	if err != nil {
		return err
	}
	body, p := g.readJSON(w, r)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	// Who the request is about, for the event, even if it is refused.
	g.peekViewRequest(&ev, body)
	req, p := g.parseViewRequest(ctx, r, body)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	// From here the event says what was accepted, whatever the peek took.
	ev.Subject = g.cfg.Pseudonyms.Pseudonym(req.BSN)
	ev.Purpose = req.Purpose
	recordJustification(&ev, req)

	// A token issued for some purposes is good for those only.
	if id.Purposes != nil && !slices.Contains(id.Purposes, req.Purpose) {
		p := problem(http.StatusForbidden, fmt.Sprintf("Not permitted: the token was not issued for purpose %q (see its scope).", req.Purpose), nil)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"purpose not in the token's scope"})
	}
	if ok, wait := g.callers.take(id, req.Purpose); !ok {
		p := tooManyRequests(req.Purpose, wait)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"rate limit of the caller for this purpose exceeded"})
	}
	ok, release := g.takeView()
	if !ok {
		return g.refuse(ctx, &ev, atCapacity(), audit.DecisionError, []string{"the gateway was composing as many views as it may at once"})
	}
	defer release()

	in := policies.Input{
		Actor:   policies.Actor{Sub: id.Sub, Department: id.Department, Roles: id.Roles, Organisation: id.Organisation},
		Action:  policies.ActionResidentView,
		Purpose: req.Purpose,
		Context: policyContext(req),
		Sources: req.Sources,
	}
	// Both questions of this request are asked of one version, whatever
	// is activated meanwhile.
	policy := g.cfg.Policy
	if s, ok := policy.(Snapshotter); ok {
		policy = s.Snapshot()
	}
	dec, err := g.decide(ctx, policy, in)
	if err != nil {
		return g.refuse(ctx, &ev, problemFor(err), audit.DecisionError, []string{"policy evaluation failed"})
	}
	recordDecision(&ev, dec)
	if !dec.Allow {
		return g.refuse(ctx, &ev, policyRefusal(dec), audit.DecisionDeny, nil)
	}
	// The context the purpose accepted must hold before any source is asked.
	if req.Context != nil {
		start := time.Now()
		p, err := g.verifyContext(ctx, id, req)
		g.cfg.Metrics.stage(stageContext, start)
		if err != nil || p != nil {
			return g.unverified(ctx, &ev, p, err)
		}
	}

	vreq := view.Request{BSN: req.BSN, Purpose: req.Purpose, Sources: req.Sources, User: view.User{ID: id.Sub, Name: id.Name}}
	start := time.Now()
	f := view.Fetch(ctx, g.cfg.Sources, vreq, dec, g.log)
	g.cfg.Metrics.stage(stageSources, start)

	// What the BRP says about the resident goes into the policy input: ask
	// again with it, and let that decision rule the disclosure.
	if subject := f.Subject(); subject != nil {
		in.Subject = subject
		dec, err = g.decide(ctx, policy, in)
		if err != nil {
			ev.Sources = f.Refused()
			return g.refuse(ctx, &ev, problemFor(err), audit.DecisionError, []string{"policy evaluation failed"})
		}
		recordDecision(&ev, dec)
		if !dec.Allow {
			ev.Sources = f.Refused()
			return g.refuse(ctx, &ev, policyRefusal(dec), audit.DecisionDeny, nil)
		}
	}

	start = time.Now()
	v, access := f.Compose(dec, g.cfg.Now())
	g.cfg.Metrics.stage(stageCompose, start)
	ev.Sources = access
	ev.Decision = audit.DecisionAllow
	ev.Status = http.StatusOK
	start = time.Now()
	seq, err := g.cfg.Audit.Append(ctx, ev)
	g.cfg.Metrics.stage(stageAudit, start)
	if err != nil {
		// No record, no data.
		return err
	}
	v.AuditSeq = seq
	return writeJSON(w, http.StatusOK, v)
}

var (
	purposePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
	contextTypes   = map[string]bool{"contact-session": true, "klantcontact": true, "zaak": true, "internetaak": true}
)

// maxContextID is the maxLength of LookupContext.id in the API document:
// characters (code points), not bytes, as JSON Schema counts.
const maxContextID = 200

// peekViewRequest puts into ev who and what a body that has yet to be
// validated says the request is about, so that a refused look-up is
// recorded against the resident too. It takes only values the API
// document would accept; a body it cannot decode gives nothing.
func (g *Gateway) peekViewRequest(ev *audit.Event, body []byte) {
	var peek viewRequest
	if json.Unmarshal(body, &peek) != nil {
		return
	}
	if bsn.Valid(peek.BSN) {
		ev.Subject = g.cfg.Pseudonyms.Pseudonym(peek.BSN)
	}
	if purposePattern.MatchString(peek.Purpose) {
		ev.Purpose = peek.Purpose
	}
	if c := peek.Context; c != nil && contextTypes[c.Type] && c.ID != "" && utf8.RuneCountInString(c.ID) <= maxContextID {
		ev.Context = &audit.Context{Type: c.Type, ID: c.ID}
	}
}

// recordDecision puts the decision into ev: its reasons and notes, and
// its reason codes as "code:…".
func recordDecision(ev *audit.Event, dec policies.Decision) {
	ev.ProcessingActivity = dec.ProcessingActivity
	ev.PolicyVersion = dec.BundleVersion
	ev.Reasons = append(append([]string(nil), dec.Reasons...), dec.Notes...)
	for _, c := range dec.Codes {
		ev.Reasons = append(ev.Reasons, "code:"+c)
	}
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

// parseViewRequest validates the request and its body (read by readJSON)
// against the API document, decodes the body strictly and checks what the
// document cannot say (the 11-proef).
func (g *Gateway) parseViewRequest(ctx context.Context, r *http.Request, body []byte) (viewRequest, *Problem) {
	var req viewRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return viewRequest{}, p
	}
	if !bsn.Valid(req.BSN) {
		return viewRequest{}, badParam("bsn", "elfproef", "Not a valid BSN: it fails the 11-proef.")
	}
	if p := checkJustification(req); p != nil {
		return viewRequest{}, p
	}
	return req, nil
}

func badParam(name, code, reason string) *Problem {
	p := problem(http.StatusBadRequest, "The request is not valid: see invalidParams.", nil)
	p.InvalidParams = []openapi.InvalidParam{{Name: name, Code: code, Reason: reason}}
	return p
}

// newEvent starts the audit event of a request: time, and the trace
// common started (the caller's continued, or a new one) with the caller's
// own trace context and FSC transaction id as the foreign operation.
func (g *Gateway) newEvent(r *http.Request, op string) audit.Event {
	t := traceOf(r)
	ev := audit.Event{Time: g.cfg.Now().UTC(), Operation: op, TraceID: t.ID, SpanID: t.Span}
	fsc := fscTransactionID(r)
	if t.Parent != "" || fsc != "" {
		ev.ForeignOperation = &audit.ForeignOperation{Traceparent: t.Parent, FSCTransactionID: fsc}
	}
	return ev
}

// maxFSCTransactionID is the maxLength of the Fsc-Transaction-Id header in
// the API document, in characters.
const maxFSCTransactionID = 200

// truncateRunes is s cut to at most n characters, never inside one.
func truncateRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
