package gateway

import (
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
)

// auditCheckpoint handles GET /v1/audit/checkpoint: the latest signed
// checkpoint as C2SP signed-note text, for anyone authenticated (a
// witness, an auditor, a resident checking their rows).
func (g *Gateway) auditCheckpoint(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opAuditCheckpoint)
	ctx := r.Context()
	if _, err := g.authAny(ctx, r, &ev); err != nil {
		return err
	}
	if p := g.validate(ctx, r, nil); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	cp, ok, err := g.latestCheckpoint(ctx, 0)
	if err != nil {
		return g.failed(ctx, &ev, err, "audit checkpoint read failed")
	}
	if !ok {
		p := problem(http.StatusNotFound, "No checkpoint of the audit log has been signed yet.", nil)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"no checkpoint yet"})
	}
	ev.Decision = audit.DecisionAllow
	ev.Status = http.StatusOK
	if _, err := g.cfg.Audit.Append(ctx, ev); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(cp.Note)
	return err
}

// consistencyAnswer proves that the tree of size To extends the tree of
// size From: check it with tlog.CheckTree(proof, to, hash of to, from,
// hash of from), the hashes taken from signed checkpoints.
type consistencyAnswer struct {
	From  int64          `json:"from"`
	To    int64          `json:"to"`
	Proof tlog.TreeProof `json:"proof"`
}

// auditConsistency handles GET /v1/audit/consistency?from=N&to=M, for
// anyone authenticated. M may be at most the size of the latest
// checkpoint: only signed trees are worth comparing.
func (g *Gateway) auditConsistency(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opAuditConsistency)
	ctx := r.Context()
	if _, err := g.authAny(ctx, r, &ev); err != nil {
		return err
	}
	if p := g.validate(ctx, r, nil); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	from, p := sizeParam(r, "from")
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	to, p := sizeParam(r, "to")
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	if from > to {
		p := badParam("from", "range", "from may not be larger than to.")
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	cp, ok, err := g.latestCheckpoint(ctx, 0)
	if err != nil {
		return g.failed(ctx, &ev, err, "audit checkpoint read failed")
	}
	if !ok || to > cp.Size {
		p := badParam("to", "range", fmt.Sprintf("to may be at most the size of the latest checkpoint, %d.", cp.Size))
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	proof, err := tlog.ProveTree(to, from, g.hashes(ctx))
	if err != nil {
		return g.failed(ctx, &ev, fmt.Errorf("consistency proof %d to %d: %w", from, to, err), "consistency proof failed")
	}
	if proof == nil {
		proof = tlog.TreeProof{}
	}
	return g.recordAndAnswer(ctx, w, &ev, consistencyAnswer{From: from, To: to, Proof: proof})
}

// sizeParam reads a tree size from the query; the API document has
// already said it is a positive integer, this says what it cannot.
func sizeParam(r *http.Request, name string) (int64, *Problem) {
	n, err := strconv.ParseInt(r.URL.Query().Get(name), 10, 64)
	if err != nil || n < 1 {
		return 0, badParam(name, "invalid", "A tree size: a whole number of at least 1.")
	}
	return n, nil
}
