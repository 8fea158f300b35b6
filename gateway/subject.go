package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/policies"
)

// subjectAccessRequest is the body of POST /v1/subject-access. A resident
// sends no BSN (or their own); an employee sends the resident's BSN and
// the purpose inzage.
type subjectAccessRequest struct {
	BSN     string `json:"bsn,omitempty"`
	Purpose string `json:"purpose,omitempty"`
	Limit   int    `json:"limit,omitempty"`
	Cursor  string `json:"cursor,omitempty"`
}

// subjectAccessAnswer is one page of a resident's history, newest first,
// with the checkpoint its rows' proofs are against.
type subjectAccessAnswer struct {
	Rows       []accessRow `json:"rows"`
	Next       string      `json:"next,omitempty"`
	Checkpoint string      `json:"checkpoint,omitempty"`
}

// accessRow is one access to a resident's data as the resident may see
// it: which department or organisation, never which employee.
type accessRow struct {
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
	// Requester is employee, organisation or resident.
	Requester    string `json:"requester"`
	Department   string `json:"department,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	Purpose      string `json:"purpose,omitempty"`
	// Description says in plain Dutch what the access was for.
	Description        string      `json:"description,omitempty"`
	ProcessingActivity string      `json:"processingActivity,omitempty"`
	Sources            []rowSource `json:"sources"`
	Decision           string      `json:"decision"`
	// JustifiedBy is the contact or case the access was for: the
	// klantcontact a contact session was wrapped up into, the zaak or the
	// interne taak; a break-glass access says so. Absent when none was given.
	JustifiedBy *justification `json:"justifiedBy,omitempty"`
	// LeafHash is tlog.RecordHash of the stored event, leaf seq-1 of the
	// tree; the stored bytes themselves name the employee and are for
	// auditors only.
	LeafHash tlog.Hash `json:"leafHash"`
	// Proof proves LeafHash in the answer's checkpoint; absent while no
	// checkpoint covers the row yet.
	Proof tlog.RecordProof `json:"proof,omitzero"`
}

// justification is what an access was for (accessRow.JustifiedBy).
type justification struct {
	// Type is klantcontact, contact-session (still in progress), zaak,
	// internetaak or break-glass.
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// justifications resolves the contexts of the rows: a look-up made in a
// contact session is justified by the klantcontact it was wrapped up
// into. Each session is read once.
func (g *Gateway) justifications(ctx context.Context, rows []accessRow, found []storedEvent) error {
	sessions := map[string]*justification{}
	for i, s := range found {
		c := s.Event.Context
		switch {
		case s.Event.BreakGlass != nil:
			rows[i].JustifiedBy = &justification{Type: "break-glass"}
		case c == nil:
		case c.Type == audit.ContextContactSession && g.cfg.Sessions != nil:
			j, ok := sessions[c.ID]
			if !ok {
				sess, err := g.cfg.Sessions.ContactSession(ctx, c.ID)
				switch {
				case errors.Is(err, audit.ErrNotFound):
					j = nil
				case err != nil:
					return err
				case sess.Klantcontact != "":
					j = &justification{Type: ContextKlantcontact, ID: sess.Klantcontact}
				default:
					j = &justification{Type: audit.ContextContactSession}
				}
				sessions[c.ID] = j
			}
			rows[i].JustifiedBy = j
		case c.Type == policies.ContextZaak || c.Type == policies.ContextInterneTaak || c.Type == ContextKlantcontact:
			rows[i].JustifiedBy = &justification{Type: c.Type, ID: c.ID}
		}
	}
	return nil
}

// rowSource is a source that was asked and what it disclosed.
type rowSource struct {
	Source  string   `json:"source"`
	Fields  []string `json:"fields,omitempty"`
	Records int      `json:"records"`
}

// Requesters of an access row.
const (
	requesterEmployee     = "employee"
	requesterOrganisation = "organisation"
	requesterResident     = "resident"
)

// subjectAccess handles POST /v1/subject-access: for a resident's token
// their own history; for an employee with purpose inzage, as the policy
// permits, the history of the BSN in the body. The call is itself recorded
// against the resident.
func (g *Gateway) subjectAccess(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opSubjectAccess)
	ctx := r.Context()
	who, err := g.authAny(ctx, r, &ev)
	if err != nil {
		return err
	}
	body, p := g.readJSON(w, r)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	// Whom and what the request is about, for the event, even if refused:
	// a resident asks about themselves, whatever the body says.
	if who.resident != nil {
		ev.Subject = g.cfg.Pseudonyms.Pseudonym(who.resident.BSN)
	}
	var peek subjectAccessRequest
	if json.Unmarshal(body, &peek) == nil {
		if who.resident == nil && bsn.Valid(peek.BSN) {
			ev.Subject = g.cfg.Pseudonyms.Pseudonym(peek.BSN)
		}
		if purposePattern.MatchString(peek.Purpose) {
			ev.Purpose = peek.Purpose
		}
	}
	var req subjectAccessRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	before, p := parseCursor(req.Cursor)
	if p == nil && req.BSN != "" && !bsn.Valid(req.BSN) {
		p = badParam("bsn", "elfproef", "Not a valid BSN: it fails the 11-proef.")
	}
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	catalog := g.purposes()
	var subject string
	if who.resident != nil {
		subject, err = g.residentSubject(ctx, &ev, who.resident.BSN, req, catalog)
	} else {
		subject, err = g.employeeSubject(ctx, &ev, who.id, req)
	}
	if err != nil {
		return err // refused and recorded
	}

	found, next, err := g.page(ctx, audit.Filter{Subject: subject, Before: before}, pageSize(req.Limit), authenticated)
	if err != nil {
		return g.failed(ctx, &ev, err, "audit log search failed")
	}
	var newest int64
	if len(found) > 0 {
		newest = found[0].Seq
	}
	cp, ok, err := g.latestCheckpoint(ctx, newest)
	if err != nil {
		return g.failed(ctx, &ev, err, "audit checkpoint read failed")
	}
	ans := subjectAccessAnswer{Rows: make([]accessRow, len(found)), Next: formatCursor(next)}
	if ok {
		ans.Checkpoint = string(cp.Note)
	}
	for i, s := range found {
		ans.Rows[i] = accessRowOf(s, catalog)
	}
	if err := g.justifications(ctx, ans.Rows, found); err != nil {
		return g.failed(ctx, &ev, err, "contact sessions could not be read")
	}
	for i, s := range found {
		if ok {
			if ans.Rows[i].Proof, err = g.inclusionProof(ctx, cp, s.Seq); err != nil {
				return g.failed(ctx, &ev, err, "inclusion proof failed")
			}
		}
	}
	return g.recordAndAnswer(ctx, w, &ev, ans)
}

// residentSubject is the pseudonym a resident asks about: their own, in
// ev.Subject already. No employee policy applies: the resident asks about
// themselves.
func (g *Gateway) residentSubject(ctx context.Context, ev *audit.Event, ownBSN string, req subjectAccessRequest, catalog map[string]policies.PurposeInfo) (string, error) {
	if ev.Purpose == "" {
		ev.Purpose = purposeInzage
	}
	ev.ProcessingActivity = catalog[purposeInzage].ProcessingActivity
	switch {
	case req.BSN != "" && req.BSN != ownBSN:
		p := problem(http.StatusForbidden, "A resident can see only their own history.", nil)
		return "", g.refuse(ctx, ev, p, audit.DecisionDeny, []string{"a resident asked for another resident's history"})
	case req.Purpose != "" && req.Purpose != purposeInzage:
		p := problem(http.StatusForbidden, fmt.Sprintf("Not permitted: purpose %q is not for subject-access.", req.Purpose), nil)
		return "", g.refuse(ctx, ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	return ev.Subject, nil
}

// employeeSubject asks the policy whether the employee may see the
// history of the BSN in the body, and gives its pseudonym.
func (g *Gateway) employeeSubject(ctx context.Context, ev *audit.Event, id auth.Identity, req subjectAccessRequest) (string, error) {
	switch {
	case req.BSN == "":
		p := badParam("bsn", "required", "Name the resident whose history is asked (bsn).")
		return "", g.refuse(ctx, ev, p, audit.DecisionDeny, []string{p.Detail})
	case req.Purpose == "":
		p := badParam("purpose", "required", "An employee states the purpose of subject access, inzage.")
		return "", g.refuse(ctx, ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	dec, err := g.decide(ctx, g.cfg.Policy, policies.Input{
		Actor:   policies.Actor{Sub: id.Sub, Department: id.Department, Roles: id.Roles, Organisation: id.Organisation},
		Action:  policies.ActionSubjectAccess,
		Purpose: req.Purpose,
	})
	if err != nil {
		return "", g.failed(ctx, ev, err, "policy evaluation failed")
	}
	recordDecision(ev, dec)
	if !dec.Allow {
		p := policyRefusal(dec)
		return "", g.refuse(ctx, ev, p, audit.DecisionDeny, nil)
	}
	return g.cfg.Pseudonyms.Pseudonym(req.BSN), nil
}

// purposes are the plain-Dutch purpose names of the active policy, or
// nil when the policy has none to give: rows then show the codes.
func (g *Gateway) purposes() map[string]policies.PurposeInfo {
	c, ok := g.cfg.Policy.(PurposeCatalog)
	if !ok {
		return nil
	}
	m, err := c.Purposes()
	if err != nil {
		g.log.Warn("purpose descriptions unavailable", "error", err.Error())
		return nil
	}
	return m
}

// authenticated keeps the events of callers with a valid token. A refusal
// without one says nothing about who asked, and would let anyone write
// into a resident's history.
func authenticated(ev audit.Event) bool {
	a := ev.Actor
	return ev.Status != http.StatusUnauthorized && (a.Sub != "" || a.Department != "" || a.Organisation != "" || len(a.Roles) > 0)
}

func accessRowOf(s storedEvent, catalog map[string]policies.PurposeInfo) accessRow {
	ev := s.Event
	row := accessRow{
		Seq:                s.Seq,
		At:                 ev.Time,
		Purpose:            ev.Purpose,
		ProcessingActivity: ev.ProcessingActivity,
		Decision:           ev.Decision,
		LeafHash:           tlog.RecordHash(s.Data),
		Sources:            []rowSource{},
	}
	switch a := ev.Actor; {
	case a.Organisation != "":
		row.Requester, row.Organisation = requesterOrganisation, a.Organisation
	case a.Sub == "" && slices.Contains(a.Roles, roleResident):
		row.Requester = requesterResident
	default:
		row.Requester, row.Department = requesterEmployee, a.Department
	}
	if info, ok := catalog[ev.Purpose]; ok && info.Description != "" {
		row.Description = info.Description
	} else {
		row.Description = operationDescription(ev.Operation)
	}
	for _, src := range ev.Sources {
		if src.Called {
			row.Sources = append(row.Sources, rowSource{Source: src.Source, Fields: src.Fields, Records: src.Records})
		}
	}
	return row
}

// operationDescription says in plain Dutch what an access without a known
// purpose was.
func operationDescription(op string) string {
	switch op {
	case opResidentView:
		return "Raadplegen van uw gegevens"
	case opSubjectAccess:
		return "Inzage in wie uw gegevens heeft bekeken"
	case opAuditSearch, opAuditEvent:
		return "Controle van het toegangslogboek door een auditor"
	}
	return ""
}
