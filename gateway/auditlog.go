package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/export"
	"github.com/klantbeeld/klantbeeld/bsn"
)

// searchRequest is the body of POST /v1/audit/_search.
type searchRequest struct {
	// BSN is searched through its pseudonym; it is never stored.
	BSN        string `json:"bsn,omitempty"`
	Actor      string `json:"actor,omitempty"`
	Department string `json:"department,omitempty"`
	Purpose    string `json:"purpose,omitempty"`
	Decision   string `json:"decision,omitempty"`
	// Context: the events made with it, e.g. in one contact session.
	Context *audit.Context `json:"context,omitempty"`
	// Flagged: only the events flagged for review (break-glass).
	Flagged bool       `json:"flagged,omitempty"`
	From    *time.Time `json:"from,omitempty"`
	To      *time.Time `json:"to,omitempty"`
	Limit   int        `json:"limit,omitempty"`
	Cursor  string     `json:"cursor,omitempty"`
}

// searchAnswer is one page of events, newest first.
type searchAnswer struct {
	Events []audit.Event `json:"events"`
	Next   string        `json:"next,omitempty"`
}

// auditSearch handles POST /v1/audit/_search. A search by BSN is recorded
// against the resident, so that their subject access shows it.
func (g *Gateway) auditSearch(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opAuditSearch)
	ctx := r.Context()
	id, err := g.authenticate(ctx, r, &ev)
	if err != nil {
		return err
	}
	body, p := g.readJSON(w, r)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	var peek searchRequest
	if json.Unmarshal(body, &peek) == nil && bsn.Valid(peek.BSN) {
		ev.Subject = g.cfg.Pseudonyms.Pseudonym(peek.BSN)
	}
	var req searchRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	f, limit, p := g.searchFilter(req)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	if !isAuditor(id) {
		return g.refuse(ctx, &ev, notAuditor(), audit.DecisionDeny, []string{"not an auditor"})
	}

	found, next, err := g.page(ctx, f, limit, nil)
	if err != nil {
		return g.failed(ctx, &ev, err, "audit log search failed")
	}
	ans := searchAnswer{Events: make([]audit.Event, len(found)), Next: formatCursor(next)}
	for i, s := range found {
		ans.Events[i] = s.Event
	}
	return g.recordAndAnswer(ctx, w, &ev, ans)
}

// searchFilter checks what the API document cannot say.
func (g *Gateway) searchFilter(req searchRequest) (audit.Filter, int, *Problem) {
	f := audit.Filter{Actor: req.Actor, Department: req.Department, Purpose: req.Purpose, Decision: req.Decision, Context: req.Context, Flagged: req.Flagged}
	if req.BSN != "" {
		if !bsn.Valid(req.BSN) {
			return f, 0, badParam("bsn", "elfproef", "Not a valid BSN: it fails the 11-proef.")
		}
		f.Subject = g.cfg.Pseudonyms.Pseudonym(req.BSN)
	}
	if req.From != nil {
		f.From = *req.From
	}
	if req.To != nil {
		f.To = *req.To
	}
	if req.From != nil && req.To != nil && !f.From.Before(f.To) {
		return f, 0, badParam("to", "range", "to must be later than from.")
	}
	var p *Problem
	if f.Before, p = parseCursor(req.Cursor); p != nil {
		return f, 0, p
	}
	return f, pageSize(req.Limit), nil
}

// eventAnswer is one event with what proves it: its stored bytes (base64),
// whose tlog.RecordHash is leaf seq-1 of the tree, the inclusion proof and
// the signed checkpoint of that tree. Proof and checkpoint are left out
// while no checkpoint covers the event yet.
type eventAnswer struct {
	Event      audit.Event      `json:"event"`
	Record     []byte           `json:"record"`
	Proof      tlog.RecordProof `json:"proof,omitzero"`
	Checkpoint string           `json:"checkpoint,omitempty"`
}

// auditEvent handles GET /v1/audit/events/{seq}. It is recorded against
// the event's resident: looking at it is looking at their history.
func (g *Gateway) auditEvent(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opAuditEvent)
	ctx := r.Context()
	id, err := g.authenticate(ctx, r, &ev)
	if err != nil {
		return err
	}
	if p := g.validate(ctx, r, nil); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	if !isAuditor(id) {
		return g.refuse(ctx, &ev, notAuditor(), audit.DecisionDeny, []string{"not an auditor"})
	}
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil {
		// The document says integer; this is what it cannot say.
		p := badParam("seq", "invalid", "Not a sequence number.")
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}

	rec, err := g.cfg.AuditLog.Record(ctx, seq)
	if errors.Is(err, audit.ErrNotFound) {
		p := problem(http.StatusNotFound, "The audit log has no event with that sequence number.", nil)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"no such event"})
	}
	if err != nil {
		return g.failed(ctx, &ev, err, "audit log read failed")
	}
	stored, err := rec.Event()
	if err != nil {
		return g.failed(ctx, &ev, err, "stored event cannot be decoded")
	}
	ev.Subject = stored.Subject
	ans := eventAnswer{Event: stored, Record: rec.Data}
	cp, ok, err := g.latestCheckpoint(ctx, seq)
	if err != nil {
		return g.failed(ctx, &ev, err, "audit checkpoint read failed")
	}
	if ok && seq <= cp.Size {
		if ans.Proof, err = g.inclusionProof(ctx, cp, seq); err != nil {
			return g.failed(ctx, &ev, err, "inclusion proof failed")
		}
		ans.Checkpoint = string(cp.Note)
	}
	return g.recordAndAnswer(ctx, w, &ev, ans)
}

// exportRequest is the body of POST /v1/audit/_export.
type exportRequest struct {
	// Format is export.FormatNDJSON (the default) or export.FormatLDV.
	Format string     `json:"format,omitempty"`
	From   *time.Time `json:"from,omitempty"`
	To     *time.Time `json:"to,omitempty"`
}

// auditExport handles POST /v1/audit/_export: the log as NDJSON, of the
// stored records or of Logboek Dataverwerkingen records. The export is
// recorded before the first byte goes out; a failure while streaming can
// only end the stream early, so it is logged.
func (g *Gateway) auditExport(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opAuditExport)
	ctx := r.Context()
	id, err := g.authenticate(ctx, r, &ev)
	if err != nil {
		return err
	}
	body, p := g.readJSON(w, r)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	var req exportRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	opts := export.Options{Format: req.Format}
	if opts.Format == "" {
		opts.Format = export.FormatNDJSON
	}
	if req.From != nil {
		opts.From = *req.From
	}
	if req.To != nil {
		opts.To = *req.To
	}
	if req.From != nil && req.To != nil && !opts.From.Before(opts.To) {
		p := badParam("to", "range", "to must be later than from.")
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	if !isAuditor(id) {
		return g.refuse(ctx, &ev, notAuditor(), audit.DecisionDeny, []string{"not an auditor"})
	}

	ev.Decision = audit.DecisionAllow
	ev.Status = http.StatusOK
	ev.Reasons = []string{"export as " + opts.Format}
	if _, err := g.cfg.Audit.Append(ctx, ev); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	n, err := export.Write(ctx, g.cfg.AuditLog, w, opts)
	if err != nil && ctx.Err() == nil {
		g.log.Error("audit export ended early", "trace", ev.TraceID, "written", n, "error", err.Error())
	}
	return nil
}
