package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/openapi"
	"github.com/klantbeeld/klantbeeld/policies"
)

// AuditLog is what the auditor, checkpoint and subject-access endpoints
// read; an audit.Store has it all. Errors wrap audit.ErrUnavailable (the
// answer is then 503) or, for Record and LatestCheckpoint, audit.ErrNotFound.
type AuditLog interface {
	// Record is the stored event seq, or audit.ErrNotFound.
	Record(ctx context.Context, seq int64) (audit.Record, error)
	// Records pages through the log oldest first, for the export.
	Records(ctx context.Context, after int64, limit int) ([]audit.Record, error)
	// Search is the events matching f, newest first.
	Search(ctx context.Context, f audit.Filter) ([]audit.Record, error)
	// ReadHashes reads stored tree hashes, for proofs.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// LatestCheckpoint is the signed checkpoint of the largest tree, or
	// audit.ErrNotFound before the first one.
	LatestCheckpoint(ctx context.Context) (audit.Checkpoint, error)
}

var _ AuditLog = audit.Store(nil)

// ResidentAuthenticator checks a resident's token (DigiD through the
// municipality's broker) for subject access. It returns auth.ErrNoToken
// or an error matching auth.ErrInvalidToken whose text may be shown.
type ResidentAuthenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (auth.Resident, error)
}

var _ ResidentAuthenticator = (*auth.ResidentVerifier)(nil)

// PurposeCatalog names the purposes in plain Dutch for residents. When
// Config.Policy implements it (*policies.Engine does), subject-access rows
// carry each purpose's description; otherwise only its code.
type PurposeCatalog interface {
	Purposes() (map[string]policies.PurposeInfo, error)
}

var _ PurposeCatalog = (*policies.Engine)(nil)

// Operations of the audit endpoints, as their events name them.
const (
	opAuditSearch      = "POST /v1/audit/_search"
	opAuditEvent       = "GET /v1/audit/events/{seq}"
	opAuditCheckpoint  = "GET /v1/audit/checkpoint"
	opAuditConsistency = "GET /v1/audit/consistency"
	opAuditExport      = "POST /v1/audit/_export"
	opSubjectAccess    = "POST /v1/subject-access"
)

const (
	// roleAuditor may search, read and export the log.
	roleAuditor = "auditor"
	// roleResident marks, in an event's actor, a resident who asked
	// about themselves; a resident has no sub or department of ours.
	roleResident = "resident"
	// purposeInzage is the purpose of subject access.
	purposeInzage = "inzage"
	// maxPage bounds a page of search or subject-access results; one more
	// is read to know whether there is a next page.
	maxPage = 500
)

// auditRoutes adds the auditor, checkpoint and subject-access endpoints.
// Without Config.AuditLog they do not exist (404): nothing to read.
func (g *Gateway) auditRoutes(mux *http.ServeMux) {
	if g.cfg.AuditLog == nil {
		return
	}
	for _, rt := range []struct {
		method, path string
		h            handlerFunc
	}{
		{http.MethodPost, "/v1/audit/_search", g.auditSearch},
		{http.MethodGet, "/v1/audit/events/{seq}", g.auditEvent},
		{http.MethodGet, "/v1/audit/checkpoint", g.auditCheckpoint},
		{http.MethodGet, "/v1/audit/consistency", g.auditConsistency},
		{http.MethodPost, "/v1/audit/_export", g.auditExport},
		{http.MethodPost, "/v1/subject-access", g.subjectAccess},
	} {
		mux.Handle(rt.method+" "+rt.path, g.handle(rt.h))
		mux.Handle(rt.path, methodNotAllowed(rt.method))
	}
}

// caller is who asked: an employee or organisation, or a resident.
type caller struct {
	id       auth.Identity
	resident *auth.Resident
}

// authAny authenticates an employee or organisation (as authenticate
// does) or, when residents are configured, a resident, and names them in
// ev: a resident by the role only, as the BSN is no actor's name. A
// failure is recorded (or rate limited) by refuseUnauthenticated and
// returned as it is.
func (g *Gateway) authAny(ctx context.Context, r *http.Request, ev *audit.Event) (caller, error) {
	id, err := g.cfg.Auth.Authenticate(ctx, r)
	if err == nil {
		ev.Actor = actorOf(id)
		return caller{id: id}, nil
	}
	if g.cfg.Residents != nil && errors.Is(err, auth.ErrInvalidToken) {
		res, rerr := g.cfg.Residents.Authenticate(ctx, r)
		if rerr == nil {
			ev.Actor = audit.Actor{Roles: []string{roleResident}}
			return caller{resident: &res}, nil
		}
		// Tell the caller what the identity provider the token seems
		// meant for says: the residents' one unless it does not know it.
		if te, ok := errors.AsType[*auth.TokenError](rerr); ok && te.Reason != auth.ReasonIssuer && te.Reason != auth.ReasonUnknownKey {
			err = rerr
		}
	}
	return caller{}, g.refuseUnauthenticated(ctx, r, ev, err)
}

func isAuditor(id auth.Identity) bool { return slices.Contains(id.Roles, roleAuditor) }

func notAuditor() *Problem {
	return problem(http.StatusForbidden, "Only an auditor may read the audit log.", nil)
}

// decodeBody validates the request and its body (read by readJSON)
// against the API document and decodes the body strictly into dst.
func (g *Gateway) decodeBody(ctx context.Context, r *http.Request, body []byte, dst any) *Problem {
	if p := g.validate(ctx, r, body); p != nil {
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badParam("body", "invalid", "The body must be exactly one JSON object with the documented fields.")
	}
	// More() says false before a stray "}" or "]": ask for the next token.
	if _, err := dec.Token(); err != io.EOF {
		return badParam("body", "invalid", "The body must be exactly one JSON object: there is more after it.")
	}
	return nil
}

// validate checks the request (path, query, body) against the API document.
func (g *Gateway) validate(ctx context.Context, r *http.Request, body []byte) *Problem {
	err := g.cfg.Spec.ValidateRequest(ctx, r, body)
	if err == nil {
		return nil
	}
	if ve, ok := errors.AsType[*openapi.ValidationError](err); ok {
		if ve.UnsupportedMediaType {
			return problem(http.StatusUnsupportedMediaType, "Send the request body as application/json.", nil)
		}
		p := problem(http.StatusBadRequest, "The request does not match the API: see invalidParams.", nil)
		p.InvalidParams = ve.Params
		return p
	}
	return problem(http.StatusNotFound, "There is no resource at this path.", nil)
}

// parseCursor reads a page cursor: the seq below which the page starts.
func parseCursor(s string) (int64, *Problem) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, badParam("cursor", "invalid", "Not a cursor this API gave out.")
	}
	return n, nil
}

func formatCursor(seq int64) string {
	if seq == 0 {
		return ""
	}
	return strconv.FormatInt(seq, 10)
}

// pageSize is a request's limit with the default applied.
func pageSize(limit int) int {
	if limit <= 0 {
		return audit.DefaultSearchLimit
	}
	return min(limit, maxPage)
}

// storedEvent is a record and its decoded event.
type storedEvent struct {
	audit.Record
	Event audit.Event
}

// maxScans bounds how many store pages one answer reads when keep drops
// events, so that a flood of dropped events cannot make one request read
// the whole log.
const maxScans = 4

// page reads, newest first, up to limit events matching f that keep
// accepts (nil: every one) and returns the cursor of the next page: 0
// when there is none.
func (g *Gateway) page(ctx context.Context, f audit.Filter, limit int, keep func(audit.Event) bool) ([]storedEvent, int64, error) {
	var out []storedEvent
	f.Limit = limit + 1
	for range maxScans {
		recs, err := g.cfg.AuditLog.Search(ctx, f)
		if err != nil {
			return nil, 0, err
		}
		for _, rec := range recs {
			ev, err := rec.Event()
			if err != nil {
				return nil, 0, fmt.Errorf("audit event %d: %w", rec.Seq, err)
			}
			if keep != nil && !keep(ev) {
				continue
			}
			if len(out) == limit {
				return out, out[limit-1].Seq, nil
			}
			out = append(out, storedEvent{Record: rec, Event: ev})
		}
		if len(recs) < f.PageSize() {
			return out, 0, nil
		}
		f.Before = recs[len(recs)-1].Seq
	}
	return out, f.Before, nil
}

// Checkpointer signs a checkpoint of the audit log's tree on demand
// (audit.Checkpointer): it returns the latest one when the tree has not
// grown since, audit.ErrNotFound when the log is empty.
type Checkpointer interface {
	Checkpoint(ctx context.Context) (audit.Checkpoint, error)
}

// latestCheckpoint is the latest signed checkpoint that covers event seq
// (0: any); ok is false before the first. When the latest stored one is
// older than seq and Config.Checkpoints is set, a new one is signed now, so
// that an event can be proved as soon as it is written.
func (g *Gateway) latestCheckpoint(ctx context.Context, seq int64) (cp audit.Checkpoint, ok bool, err error) {
	cp, err = g.cfg.AuditLog.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, audit.ErrNotFound):
		cp = audit.Checkpoint{}
	case err != nil:
		return audit.Checkpoint{}, false, err
	}
	if cp.Size < max(seq, 1) && g.cfg.Checkpoints != nil {
		fresh, err := g.cfg.Checkpoints.Checkpoint(ctx)
		switch {
		case errors.Is(err, audit.ErrNotFound):
		case err != nil:
			return audit.Checkpoint{}, false, err
		default:
			cp = fresh
		}
	}
	return cp, cp.Size > 0, nil
}

// hashes reads the store's tree hashes for tlog.
func (g *Gateway) hashes(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return g.cfg.AuditLog.ReadHashes(ctx, indexes)
	})
}

// inclusionProof proves event seq in the tree of cp, or is nil when cp
// does not cover it yet: check it with tlog.CheckRecord(proof, cp's size,
// cp's hash, seq-1, tlog.RecordHash(record bytes)).
func (g *Gateway) inclusionProof(ctx context.Context, cp audit.Checkpoint, seq int64) (tlog.RecordProof, error) {
	if seq < 1 || seq > cp.Size {
		return nil, nil
	}
	proof, err := tlog.ProveRecord(cp.Size, seq-1, g.hashes(ctx))
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of event %d in tree %d: %w", seq, cp.Size, err)
	}
	if proof == nil {
		proof = tlog.RecordProof{} // a tree of one: an empty proof, not none
	}
	return proof, nil
}

// recordAndAnswer records ev as allowed and only then writes v.
func (g *Gateway) recordAndAnswer(ctx context.Context, w http.ResponseWriter, ev *audit.Event, v any) error {
	ev.Decision = audit.DecisionAllow
	ev.Status = http.StatusOK
	if _, err := g.cfg.Audit.Append(ctx, *ev); err != nil {
		return err // no record, no data
	}
	return writeJSON(w, http.StatusOK, v)
}

// failed records a request that failed on our side and returns its problem.
func (g *Gateway) failed(ctx context.Context, ev *audit.Event, err error, reason string) error {
	return g.refuse(ctx, ev, problemFor(err), audit.DecisionError, []string{reason})
}
