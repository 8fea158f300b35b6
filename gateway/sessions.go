package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/policies"
)

// DefaultSessionIdle is how long a contact session may go unused before it
// times out (Config.SessionIdle).
const DefaultSessionIdle = 30 * time.Minute

// Operations of the contact-session endpoints, as their events name them.
const (
	opOpenSession = "POST /v1/contact-sessions"
	opGetSession  = "GET /v1/contact-sessions/{id}"
)

// openSessionRequest is the body of POST /v1/contact-sessions.
type openSessionRequest struct {
	Kanaal string `json:"kanaal"`
}

// sessionAnswer is a contact session as its owner sees it.
type sessionAnswer struct {
	ID         string `json:"id"`
	Kanaal     string `json:"kanaal"`
	Owner      string `json:"owner"`
	Department string `json:"department,omitempty"`
	// Status is audit.SessionOpen, SessionExpired or SessionClosed.
	Status         string    `json:"status"`
	OpenedAt       time.Time `json:"openedAt"`
	LastActivityAt time.Time `json:"lastActivityAt"`
	// ExpiresAt is when an open session times out unless used before.
	ExpiresAt    *time.Time `json:"expiresAt,omitempty"`
	ClosedAt     *time.Time `json:"closedAt,omitempty"`
	Klantcontact string     `json:"klantcontact,omitempty"`
}

func (g *Gateway) sessionAnswer(s audit.ContactSession) sessionAnswer {
	a := sessionAnswer{
		ID: s.ID, Kanaal: s.Kanaal, Owner: s.Owner, Department: s.Department,
		Status: s.State(g.cfg.Now(), g.cfg.SessionIdle), OpenedAt: s.OpenedAt, LastActivityAt: s.LastActivity,
		Klantcontact: s.Klantcontact,
	}
	switch a.Status {
	case audit.SessionOpen:
		exp := s.ExpiresAt(g.cfg.SessionIdle)
		a.ExpiresAt = &exp
	case audit.SessionClosed:
		closed := s.ClosedAt
		a.ClosedAt = &closed
	}
	return a
}

// sessionRoutes adds the contact-session endpoints; without
// Config.Sessions they do not exist (404).
func (g *Gateway) sessionRoutes(mux *http.ServeMux) {
	if g.cfg.Sessions == nil {
		return
	}
	mux.Handle("POST /v1/contact-sessions", g.handle(g.openSession))
	mux.Handle("/v1/contact-sessions", methodNotAllowed(http.MethodPost))
	mux.Handle("GET /v1/contact-sessions/{id}", g.handle(g.getSession))
	mux.Handle("/v1/contact-sessions/{id}", methodNotAllowed(http.MethodGet))
}

// isEmployee: a token of an employee of ours, who can hold a contact
// session (not an organisation, not a resident, not a role that never
// sees resident data on its own).
func isEmployee(id auth.Identity) bool {
	return id.Organisation == "" && id.Sub != "" && id.Department != "" && slices.Contains(id.Roles, policies.RoleEmployee)
}

// openSession handles POST /v1/contact-sessions: it opens a contact session
// for the calling employee, stores it where every gateway on the database
// sees it, records the opening and answers 201 with the session and its
// Location. The session is stored before its event: if the event cannot
// be recorded the caller gets 503 and never learns the id, so the session
// is never used.
func (g *Gateway) openSession(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opOpenSession)
	ctx := r.Context()
	id, err := g.authenticate(ctx, r, &ev)
	if err != nil {
		return err
	}
	body, p := g.readJSON(w, r)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	var req openSessionRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	if !isEmployee(id) {
		p := problem(http.StatusForbidden, "Only an employee (a token with sub, department and the role medewerker) holds contact sessions.", nil)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"not an employee"})
	}
	s := audit.ContactSession{ID: newUUID(), Owner: id.Sub, Department: id.Department, Kanaal: req.Kanaal, OpenedAt: g.cfg.Now()}
	if err := g.cfg.Sessions.AddContactSession(ctx, s); err != nil {
		return g.failed(ctx, &ev, err, "contact session could not be stored")
	}
	stored, err := g.cfg.Sessions.ContactSession(ctx, s.ID)
	if err != nil {
		return g.failed(ctx, &ev, err, "contact session could not be read back")
	}
	ev.Context = &audit.Context{Type: audit.ContextContactSession, ID: s.ID}
	ev.Decision, ev.Status = audit.DecisionAllow, http.StatusCreated
	ev.Reasons = []string{"contact session opened, kanaal " + s.Kanaal}
	if _, err := g.cfg.Audit.Append(ctx, ev); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/contact-sessions/"+s.ID)
	return writeJSON(w, http.StatusCreated, g.sessionAnswer(stored))
}

// getSession handles GET /v1/contact-sessions/{id}: the caller's own
// session; someone else's is 404, as one that does not exist.
func (g *Gateway) getSession(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opGetSession)
	ctx := r.Context()
	id, err := g.authenticate(ctx, r, &ev)
	if err != nil {
		return err
	}
	if p := g.validate(ctx, r, nil); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	sessionID := r.PathValue("id")
	if utf8.RuneCountInString(sessionID) <= maxContextID {
		// What the caller asked about, as far as a context can be.
		ev.Context = &audit.Context{Type: audit.ContextContactSession, ID: sessionID}
	}
	s, p, err := g.ownSession(ctx, id, sessionID)
	if err != nil {
		return g.failed(ctx, &ev, err, "contact session could not be read")
	}
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"no contact session of the caller's with this id"})
	}
	return g.recordAndAnswer(ctx, w, &ev, g.sessionAnswer(s))
}

// ownSession reads the contact session sessionID of the caller: a 404
// problem when there is none with that id or it is someone else's (one
// answer for both, so that nobody learns which ids exist), an error when
// the store could not be read. Its state is the caller's to judge
// (audit.ContactSession.State with Config.SessionIdle).
func (g *Gateway) ownSession(ctx context.Context, id auth.Identity, sessionID string) (audit.ContactSession, *Problem, error) {
	notFound := problem(http.StatusNotFound, "You have no contact session with this id.", nil)
	s, err := g.cfg.Sessions.ContactSession(ctx, sessionID)
	switch {
	case errors.Is(err, audit.ErrNotFound):
		return audit.ContactSession{}, notFound, nil
	case err != nil:
		return audit.ContactSession{}, nil, err
	case !isEmployee(id) || s.Owner != id.Sub:
		return audit.ContactSession{}, notFound, nil
	}
	return s, nil, nil
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
