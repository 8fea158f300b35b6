package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/workflow"
)

// Workflow is the front office's write side (*workflow.Workflow): the
// wrap-up of a contact and the callbacks that follow from it.
type Workflow interface {
	// WrapUp writes the contact (and its callback) to Klantinteracties
	// and Salesforce, once per key: a repeated key returns the first
	// wrap-up's result and writes nothing.
	WrapUp(ctx context.Context, wu workflow.WrapUp, key string) (*workflow.Result, error)
	// Search is the open callbacks of the owners, most urgent first.
	Search(ctx context.Context, q workflow.SearchQuery) (*workflow.SearchResult, error)
}

var _ Workflow = (*workflow.Workflow)(nil)

// Operations of the workflow endpoints, as their events name them.
const (
	opWrapUp          = "POST /v1/contact-sessions/{id}/wrap-up"
	opSearchCallbacks = "POST /v1/callbacks/_search"
)

// ContextKlantcontact is the Context type of a wrap-up's event: the
// klantcontact it wrote, by its referentienummer (the wrap-up's id).
const ContextKlantcontact = "klantcontact"

// workflowRoutes adds the wrap-up and callback endpoints; without
// Config.Workflow (or, for the wrap-up, Config.Sessions) they do not exist.
func (g *Gateway) workflowRoutes(mux *http.ServeMux) {
	if g.cfg.Workflow == nil {
		return
	}
	if g.cfg.Sessions != nil {
		mux.Handle("POST /v1/contact-sessions/{id}/wrap-up", g.handle(g.wrapUp))
		mux.Handle("/v1/contact-sessions/{id}/wrap-up", methodNotAllowed(http.MethodPost))
	}
	mux.Handle("POST /v1/callbacks/_search", g.handle(g.searchCallbacks))
	mux.Handle("/v1/callbacks/_search", methodNotAllowed(http.MethodPost))
}

// wrapUpRequest is the body of POST /v1/contact-sessions/{id}/wrap-up.
type wrapUpRequest struct {
	BSN           string `json:"bsn"`
	ResidentName  string `json:"residentName,omitempty"`
	Kanaal        string `json:"kanaal,omitempty"`
	Onderwerp     string `json:"onderwerp"`
	Inhoud        string `json:"inhoud"`
	Vertrouwelijk bool   `json:"vertrouwelijk,omitempty"`
	Zaak          string `json:"zaak,omitempty"`
	CRMCase       string `json:"crmCase,omitempty"`
	Callback      *struct {
		GevraagdeHandeling string       `json:"gevraagdeHandeling"`
		Toelichting        string       `json:"toelichting,omitempty"`
		ToegewezenAan      assigneeJSON `json:"toegewezenAan"`
		Due                *time.Time   `json:"due,omitempty"`
	} `json:"callback,omitempty"`
}

// assigneeJSON names who a callback is for.
type assigneeJSON struct {
	// Soort is afdeling, groep or medewerker.
	Soort string `json:"soort"`
	ID    string `json:"id"`
	Naam  string `json:"naam,omitempty"`
}

var assigneeKinds = map[string]string{"afdeling": workflow.Afdeling, "groep": workflow.Groep, "medewerker": workflow.Medewerker}

func (a assigneeJSON) assignee() workflow.Assignee {
	return workflow.Assignee{Kind: assigneeKinds[a.Soort], ID: a.ID, Name: a.Naam}
}

func assigneeOf(a workflow.Assignee) assigneeJSON {
	for soort, kind := range assigneeKinds {
		if kind == a.Kind {
			return assigneeJSON{Soort: soort, ID: a.ID, Naam: a.Name}
		}
	}
	return assigneeJSON{Soort: a.Kind, ID: a.ID, Naam: a.Name}
}

// wrapUpAnswer says what was written where, and which look-ups of the
// session the contact now justifies.
type wrapUpAnswer struct {
	ID           string                `json:"id"`
	Replayed     bool                  `json:"replayed"`
	Session      sessionAnswer         `json:"session"`
	Systems      map[string]systemJSON `json:"systems"`
	CallbackDue  *time.Time            `json:"callbackDue,omitempty"`
	BoundLookups []int64               `json:"boundLookups"`
	AuditSeq     int64                 `json:"auditSeq"`
}

// systemJSON is one system's part of a wrap-up: written, pending (it is
// retried until it succeeds) or failed (the system refused it).
type systemJSON struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Records are the ids of what was written, by kind.
	Records map[string]string `json:"records,omitempty"`
}

// idempotencyKeyPattern: what an Idempotency-Key may be (printable ASCII).
var idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)

// wrapUp handles POST /v1/contact-sessions/{id}/wrap-up. The caller's own
// session is wrapped up once: the workflow's idempotency key is the
// session, so a retry (with or without the same Idempotency-Key) gets the
// first wrap-up's result and writes nothing twice, and different content
// for a session already wrapped up is a 409. What could be written is
// written; a system that is down is pending and retried until it
// succeeds. The session is then closed into the klantcontact (its
// referentienummer, the wrap-up's id), which binds every look-up made in
// it; this call's audit event names them.
func (g *Gateway) wrapUp(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opWrapUp)
	ctx := r.Context()
	id, err := g.authenticate(ctx, r, &ev)
	if err != nil {
		return err
	}
	sessionID := r.PathValue("id")
	if len(sessionID) <= maxContextID {
		ev.Context = &audit.Context{Type: audit.ContextContactSession, ID: sessionID}
	}
	body, p := g.readJSON(w, r)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	var req wrapUpRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	if !bsn.Valid(req.BSN) {
		p := badParam("bsn", "elfproef", "Not a valid BSN: it fails the 11-proef.")
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	ev.Subject = g.cfg.Pseudonyms.Pseudonym(req.BSN)
	if key := r.Header.Get("Idempotency-Key"); key != "" && !idempotencyKeyPattern.MatchString(key) {
		p := problem(http.StatusBadRequest, "The Idempotency-Key header is 1 to 200 printable ASCII characters.", nil)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	s, p, err := g.ownSession(ctx, id, sessionID)
	if err != nil {
		return g.failed(ctx, &ev, err, "contact session could not be read")
	}
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"no contact session of the caller's with this id"})
	}
	if req.Zaak != "" {
		// The contact is linked to the zaak in Klantinteracties: only to
		// one the resident is a betrokkene of.
		if p, err := g.verifyContext(ctx, id, viewRequest{BSN: req.BSN, Context: &policies.Context{Type: policies.ContextZaak, ID: req.Zaak}}); err != nil || p != nil {
			return g.unverified(ctx, &ev, p, err)
		}
	}

	wu := workflow.WrapUp{
		BSN: req.BSN, ResidentName: strings.TrimSpace(req.ResidentName), Kanaal: s.Kanaal,
		Onderwerp: req.Onderwerp, Inhoud: req.Inhoud, Vertrouwelijk: req.Vertrouwelijk,
		Zaak: req.Zaak, Case: req.CRMCase,
		Employee: workflow.Employee{Sub: id.Sub, Department: id.Department, Name: id.Name},
		At:       g.cfg.Now(),
	}
	if req.Kanaal != "" {
		wu.Kanaal = req.Kanaal
	}
	if c := req.Callback; c != nil {
		wu.Callback = &workflow.Callback{GevraagdeHandeling: c.GevraagdeHandeling, Toelichting: c.Toelichting, Toegewezen: c.ToegewezenAan.assignee()}
		if c.Due != nil {
			wu.Callback.Due = *c.Due
		}
	}
	res, err := g.cfg.Workflow.WrapUp(ctx, wu, "contact-session:"+s.ID)
	if err != nil {
		return g.wrapUpFailed(ctx, &ev, err)
	}

	// From here on nothing stops halfway because the client hung up: what
	// was written is bound to its session.
	ctx = context.WithoutCancel(ctx)
	closed, err := g.cfg.Sessions.CloseContactSession(ctx, s.ID, res.ID, g.cfg.Now())
	if err != nil {
		return g.failed(ctx, &ev, err, "wrap-up "+res.ID+" written, but its contact session could not be closed")
	}
	bound, err := g.sessionLookups(ctx, s.ID)
	if err != nil {
		return g.failed(ctx, &ev, err, "wrap-up "+res.ID+" written, but the session's look-ups could not be read")
	}

	ans := wrapUpAnswer{ID: res.ID, Replayed: res.Replayed, Session: g.sessionAnswer(closed), BoundLookups: bound, Systems: map[string]systemJSON{
		"klantinteracties": {Status: res.Klantinteracties.Status, Error: res.Klantinteracties.Error, Records: nonEmpty(map[string]string{
			"klantcontact": res.Klantinteracties.Klantcontact, "betrokkene": res.Klantinteracties.Betrokkene,
			"onderwerpobject": res.Klantinteracties.Onderwerpobject, "interneTaak": res.Klantinteracties.InterneTaak,
		})},
		"salesforce": {Status: res.Salesforce.Status, Error: res.Salesforce.Error, Records: nonEmpty(map[string]string{"task": res.Salesforce.Task})},
	}}
	if !res.CallbackDue.IsZero() {
		due := res.CallbackDue
		ans.CallbackDue = &due
	}
	ev.Context = &audit.Context{Type: ContextKlantcontact, ID: res.ID}
	ev.Reasons = []string{
		"contact session " + s.ID + " wrapped up into klantcontact " + res.ID,
		"binds look-ups " + joinSeqs(bound),
		"klantinteracties " + res.Klantinteracties.Status + ", salesforce " + res.Salesforce.Status,
	}
	if res.Replayed {
		ev.Reasons = append(ev.Reasons, "replayed: written before, nothing written again")
	}
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
	}
	ev.Decision, ev.Status = audit.DecisionAllow, status
	seq, err := g.cfg.Audit.Append(ctx, ev)
	if err != nil {
		// Written and bound; only this call's record is missing, and a
		// retry replays the result and records it.
		return err
	}
	ans.AuditSeq = seq
	w.Header().Set("Location", "/v1/contact-sessions/"+s.ID)
	return writeJSON(w, status, ans)
}

// wrapUpFailed maps the workflow's errors: the caller's (400, 409) or ours.
func (g *Gateway) wrapUpFailed(ctx context.Context, ev *audit.Event, err error) error {
	var ve *workflow.ValidationError
	switch {
	case errors.As(err, &ve):
		name := ve.Field
		if name == "case" {
			name = "crmCase"
		}
		if strings.HasPrefix(name, "callback.toegewezen") {
			name = "callback.toegewezenAan"
		}
		p := badParam(name, "invalid", ve.Reason)
		return g.refuse(ctx, ev, p, audit.DecisionDeny, []string{name + ": " + ve.Reason})
	case errors.Is(err, workflow.ErrUnknownAssignee):
		p := badParam("callback.toegewezenAan", "unknown", "Nobody with this id can be assigned callbacks.")
		return g.refuse(ctx, ev, p, audit.DecisionDeny, []string{p.InvalidParams[0].Reason})
	case errors.Is(err, workflow.ErrKeyReused):
		p := problem(http.StatusConflict, "This contact session was wrapped up already with other content; nothing was written. Open a new contact session for another contact.", nil)
		return g.refuse(ctx, ev, p, audit.DecisionDeny, []string{"session wrapped up before with other content"})
	}
	return g.failed(ctx, ev, err, "wrap-up could not be recorded")
}

// sessionLookups are the seqs of the resident look-ups made in session
// id, oldest first.
func (g *Gateway) sessionLookups(ctx context.Context, id string) ([]int64, error) {
	out := []int64{}
	if g.cfg.AuditLog == nil {
		return out, nil
	}
	evs, err := audit.SessionEvents(ctx, g.cfg.AuditLog, id)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		if ev.Operation == opResidentView && ev.Decision == audit.DecisionAllow {
			out = append(out, ev.Seq)
		}
	}
	slices.Sort(out)
	return out, nil
}

func joinSeqs(seqs []int64) string {
	if len(seqs) == 0 {
		return "none"
	}
	parts := make([]string, len(seqs))
	for i, s := range seqs {
		parts[i] = fmt.Sprint(s)
	}
	return strings.Join(parts, ", ")
}

func nonEmpty(m map[string]string) map[string]string {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// searchCallbacksRequest is the body of POST /v1/callbacks/_search.
type searchCallbacksRequest struct {
	// Owner is "mine", "department" or "" (both).
	Owner string `json:"owner,omitempty"`
}

// callbackJSON is one open callback as the search lists it: never a BSN.
type callbackJSON struct {
	ID                 string       `json:"id"`
	Onderwerp          string       `json:"onderwerp"`
	GevraagdeHandeling string       `json:"gevraagdeHandeling,omitempty"`
	ResidentName       string       `json:"residentName,omitempty"`
	ToegewezenAan      assigneeJSON `json:"toegewezenAan"`
	Due                *time.Time   `json:"due,omitempty"`
	RemindersSent      int          `json:"remindersSent"`
	Overdue            bool         `json:"overdue"`
	Escalated          bool         `json:"escalated"`
	InterneTaak        string       `json:"interneTaak,omitempty"`
	SalesforceTask     string       `json:"salesforceTask,omitempty"`
}

type callbacksAnswer struct {
	Callbacks []callbackJSON      `json:"callbacks"`
	Sources   map[string]sourceOK `json:"sources"`
}

type sourceOK struct {
	Status string `json:"status"`
}

// searchCallbacks handles POST /v1/callbacks/_search: the open callbacks
// of the calling employee, of their department, or both, from
// Klantinteracties and Salesforce together, most urgent first.
func (g *Gateway) searchCallbacks(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opSearchCallbacks)
	ctx := r.Context()
	id, err := g.authenticate(ctx, r, &ev)
	if err != nil {
		return err
	}
	body, p := g.readJSON(w, r)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	var req searchCallbacksRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	if !isEmployee(id) {
		p := problem(http.StatusForbidden, "Only an employee (a token with sub, department and the role medewerker) has callbacks.", nil)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"not an employee"})
	}
	var q workflow.SearchQuery
	if req.Owner != "department" {
		q.Owners = append(q.Owners, workflow.Assignee{Kind: workflow.Medewerker, ID: id.Sub, Department: id.Department})
	}
	if req.Owner != "mine" {
		q.Owners = append(q.Owners, workflow.Assignee{Kind: workflow.Afdeling, ID: id.Department, Department: id.Department})
	}
	res, err := g.cfg.Workflow.Search(ctx, q)
	if err != nil {
		return g.failed(ctx, &ev, err, "callbacks could not be searched")
	}
	ans := callbacksAnswer{Callbacks: make([]callbackJSON, 0, len(res.Callbacks)), Sources: map[string]sourceOK{}}
	for name, status := range res.Sources {
		ans.Sources[name] = sourceOK{Status: status}
	}
	for _, c := range res.Callbacks {
		cb := callbackJSON{
			ID: c.ID, Onderwerp: c.Onderwerp, GevraagdeHandeling: c.GevraagdeHandeling,
			ResidentName: bsn.Redact(c.ResidentName), ToegewezenAan: assigneeOf(c.Assignee),
			RemindersSent: c.RemindersSent, Overdue: c.Overdue, Escalated: c.Escalated,
			InterneTaak: c.InterneTaak, SalesforceTask: c.SalesforceTask,
		}
		if !c.Due.IsZero() {
			due := c.Due
			cb.Due = &due
		}
		ans.Callbacks = append(ans.Callbacks, cb)
	}
	ev.Reasons = []string{fmt.Sprintf("%d open callbacks", len(ans.Callbacks))}
	return g.recordAndAnswer(ctx, w, &ev, ans)
}
