package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
)

// ContextVerifier checks the zaak or interne taak a look-up names as its
// context against the sources that hold them (view.Contexts). Both return
// view.ErrUnverifiable when no source can tell, and a source's error when
// it could not be asked.
type ContextVerifier interface {
	// ZaakBetrokkene reports whether the resident is a betrokkene of the
	// zaak with UUID id.
	ZaakBetrokkene(ctx context.Context, id, bsn string, u view.User) (bool, error)
	// InterneTaakAssigned reports whether the interne taak with UUID id is
	// assigned to the employee or to their department.
	InterneTaakAssigned(ctx context.Context, id string, u view.User, department string) (bool, error)
}

var _ ContextVerifier = view.Contexts{}

// breakGlass is a look-up without a context: the reason stands in for
// one where the purpose allows it, and the event is flagged for review.
type breakGlass struct {
	Reason string `json:"reason"`
}

// Bounds of a break-glass reason, in characters, not counting the spaces
// around it (the API document says the same of the whole string).
const (
	minBreakGlassReason = 20
	maxBreakGlassReason = 500
)

// checkJustification checks what the API document cannot say of a view
// request's context and break-glass.
func checkJustification(req viewRequest) *Problem {
	if req.BreakGlass == nil {
		return nil
	}
	if req.Context != nil {
		return badParam("breakGlass", "exclusive", "Give either a context or breakGlass, not both.")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(req.BreakGlass.Reason)); n < minBreakGlassReason {
		return badParam("breakGlass.reason", "too_short", "State the reason for break-glass in at least 20 characters.")
	}
	return nil
}

// policyContext is the justification as the policy is told it: the
// request's context, or for break-glass the context type
// policies.ContextBreakGlass (the reason itself is for the audit log).
func policyContext(req viewRequest) *policies.Context {
	if req.BreakGlass != nil {
		return &policies.Context{Type: policies.ContextBreakGlass, ID: "reason"}
	}
	return req.Context
}

// recordJustification puts the request's context, or its break-glass
// reason (any BSN in it redacted; flagged for review), into ev.
func recordJustification(ev *audit.Event, req viewRequest) {
	ev.Context, ev.BreakGlass, ev.Flagged = nil, nil, false
	if c := req.Context; c != nil {
		ev.Context = &audit.Context{Type: c.Type, ID: c.ID}
	}
	if req.BreakGlass != nil {
		ev.BreakGlass = &audit.BreakGlass{Reason: bsn.Redact(strings.TrimSpace(req.BreakGlass.Reason))}
		ev.Flagged = true
	}
}

// errVerifierDown: a source that verifies contexts could not be asked.
var errVerifierDown = errors.New("gateway: the context could not be verified")

// verifyContext checks the context a look-up names before any data leaves:
// a contact session must be open and the caller's own; a zaak must have
// the resident as a betrokkene; an interne taak must be assigned to the
// caller or their department. A context of another type (klantcontact) is
// recorded only: no purpose may require it (policies.VerifiableContexts).
// It returns nil when the context holds, the 403 to answer when it does
// not, or an error wrapping errVerifierDown (or the audit store's) when it
// could not be checked.
func (g *Gateway) verifyContext(ctx context.Context, id auth.Identity, req viewRequest) (*Problem, error) {
	c := req.Context
	if c == nil {
		return nil, nil
	}
	u := view.User{ID: id.Sub, Name: id.Name}
	switch c.Type {
	case policies.ContextContactSession:
		if g.cfg.Sessions == nil {
			return verified(false, view.ErrUnverifiable, "", "")
		}
		s, p, err := g.ownSession(ctx, id, c.ID)
		if err != nil {
			return nil, err
		}
		if p != nil || s.State(g.cfg.Now(), g.cfg.SessionIdle) != audit.SessionOpen {
			// Unknown, someone else's, closed or timed out: one answer.
			return contextRefusal(policies.CodeContactSessionInvalid, "No open contact session of yours has this id (it may have been closed or timed out): open one with POST /v1/contact-sessions."), nil
		}
		return nil, nil
	case policies.ContextZaak:
		ok, err := g.contexts().ZaakBetrokkene(ctx, c.ID, req.BSN, u)
		return verified(ok, err, policies.CodeZaakNotBetrokkene, "No zaak with this id has the resident as a betrokkene.")
	case policies.ContextInterneTaak:
		if id.Organisation != "" {
			return contextRefusal(policies.CodeInterneTaakNotAssigned, "No interne taak with this id is assigned to you or your department."), nil
		}
		ok, err := g.contexts().InterneTaakAssigned(ctx, c.ID, u, id.Department)
		return verified(ok, err, policies.CodeInterneTaakNotAssigned, "No interne taak with this id is assigned to you or your department.")
	}
	return nil, nil
}

// contexts is Config.Contexts, or one that can verify nothing.
func (g *Gateway) contexts() ContextVerifier {
	if g.cfg.Contexts == nil {
		return view.Contexts{}
	}
	return g.cfg.Contexts
}

// verified turns a verifier's answer into verifyContext's.
func verified(ok bool, err error, code, detail string) (*Problem, error) {
	switch {
	case errors.Is(err, view.ErrUnverifiable):
		return contextRefusal(policies.CodeContextUnverifiable, "This gateway cannot verify a context of this type, so it does not let the look-up through."), nil
	case err != nil:
		return nil, errors.Join(errVerifierDown, err)
	case !ok:
		return contextRefusal(code, detail), nil
	}
	return nil, nil
}

// contextRefusal is the 403 of a context that does not hold: its type
// names the reason code, as the policy's refusals do.
func contextRefusal(code, detail string) *Problem {
	p := problem(http.StatusForbidden, detail, nil)
	p.Type, p.Title, p.Codes = policies.ReasonTypeURI(code), policies.ReasonTitle(code), []string{code}
	return p
}

// unverified records and answers a context verifyContext did not let
// through: its refusal p (403 with its reason code) or its error (503 when
// the verifying system is down, else a failure of ours).
func (g *Gateway) unverified(ctx context.Context, ev *audit.Event, p *Problem, err error) error {
	if err != nil {
		if errors.Is(err, errVerifierDown) {
			return g.refuse(ctx, ev, verifierDown(err), audit.DecisionError, []string{"context could not be verified"})
		}
		return g.failed(ctx, ev, err, "context could not be verified")
	}
	ev.Reasons = append(ev.Reasons, "code:"+p.Codes[0])
	return g.refuse(ctx, ev, p, audit.DecisionDeny, []string{p.Detail})
}

// verifierDown is the 503 of a context that could not be checked.
func verifierDown(err error) *Problem {
	p := problem(http.StatusServiceUnavailable, "The system that holds the context could not be asked, so no data is sent. Try again shortly.", err)
	p.header = http.Header{"Retry-After": {"5"}}
	return p
}
