package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/policies"
)

// Snapshotter is a Decider that can hold its active version for one
// request (*policies.Engine): when Config.Policy is one, every decision of
// a resident view comes from the same version, whatever is activated while
// the request runs.
type Snapshotter interface {
	// Snapshot is the active version, to decide with until let go of.
	Snapshot() policies.Snapshot
}

var (
	_ Snapshotter = (*policies.Engine)(nil)
	_ Decider     = policies.Snapshot{}
)

// PolicyEngine is the purpose policy as the administration endpoints
// change it (*policies.Engine).
type PolicyEngine interface {
	// Snapshot is the active version, held for as long as the caller needs it.
	Snapshot() policies.Snapshot
	// Activate makes b active if it passes policies.Check, atomically:
	// decisions in flight finish with the version they started with.
	// Otherwise the active version stays and the error says why
	// (policies.ErrBundle, *policies.TestFailure, *policies.InvariantError,
	// several joined).
	Activate(ctx context.Context, b policies.Bundle) (policies.Report, error)
	// Swap makes b active without checks; the endpoints use it only to put
	// back the version that was active a moment before. It fails only if b
	// does not compile.
	Swap(ctx context.Context, b policies.Bundle) error
}

var _ PolicyEngine = (*policies.Engine)(nil)

// PolicyStore keeps the policy versions and their activations: the methods
// of audit.PolicyStore the endpoints use, with its errors (every I/O error
// wraps audit.ErrUnavailable).
type PolicyStore interface {
	// PutPolicyVersion stores v unless its id is stored already (then nil,
	// or audit.ErrConflict if the files differ).
	PutPolicyVersion(ctx context.Context, v audit.PolicyVersion) error
	// PolicyVersion is the stored version with that id, or audit.ErrNotFound.
	PolicyVersion(ctx context.Context, id string) (audit.PolicyVersion, error)
	// AddPolicyActivation stores an activation and returns its Seq; it
	// returns audit.ErrConflict when a.Previous is not the version of the
	// latest activation ("" for none): another activation came first.
	AddPolicyActivation(ctx context.Context, a audit.PolicyActivation) (int64, error)
	// PolicyActivations are up to limit activations with Seq > after,
	// oldest first. Seqs are 1, 2, 3, ... without gaps.
	PolicyActivations(ctx context.Context, after int64, limit int) ([]audit.PolicyActivation, error)
	// LatestPolicyActivation is the one with the highest Seq, or
	// audit.ErrNotFound before the first.
	LatestPolicyActivation(ctx context.Context) (audit.PolicyActivation, error)
}

var _ PolicyStore = audit.PolicyStore(nil)

// PolicyAdmin is what the policy administration endpoints work on. Both
// fields are required. Use it by pointer (Config.Policies): it serialises
// this process's activations.
//
// The latest activation in Store is taken to name the version Engine
// runs: an activation is refused (409) while they differ, which is the
// case while this process has yet to follow one made by another process
// sharing the store.
type PolicyAdmin struct {
	// Engine is the purpose policy (*policies.Engine), also Config.Policy.
	Engine PolicyEngine
	// Store keeps every version activated and the activations (the audit
	// store's audit.PolicyStore).
	Store PolicyStore

	// activating is held for the whole of one activation, from reading
	// the history to recording the new entry.
	activating sync.Mutex
}

// Operations of the policy endpoints, as their events name them.
const (
	opPolicyActive   = "GET /v1/policies"
	opPolicyVersion  = "GET /v1/policies/{id}"
	opPolicyHistory  = "GET /v1/policies/history"
	opPolicyActivate = "PUT /v1/policies"
	opPolicyEvaluate = "POST /v1/policies/_evaluate"
)

// Problem types of the policy endpoints, beside the reason codes' (which
// use underscores, never hyphens, so the two cannot meet).
const (
	problemInvariantViolated  = policies.ReasonTypeBase + "invariant-violated"
	problemTestsFailed        = policies.ReasonTypeBase + "policy-tests-failed"
	problemBundleInvalid      = policies.ReasonTypeBase + "bundle-invalid"
	problemVersionUnknown     = policies.ReasonTypeBase + "version-unknown"
	problemAlreadyActive      = policies.ReasonTypeBase + "already-active"
	problemActivationConflict = policies.ReasonTypeBase + "activation-conflict"
)

// Limits of the policy endpoints.
const (
	// maxPolicyJSONBytes bounds a JSON body: the files of the largest
	// bundle policies.ParseFiles takes, escaped, and room for the rest.
	maxPolicyJSONBytes = 2*policies.MaxBundleBytes + 64<<10
	// maxPolicyTarballBytes bounds an OPA bundle: policies.ReadTarball
	// takes at most MaxBundleBytes of files; compression seldom makes them
	// larger, and tar headers and padding add up to some 64 KiB more.
	maxPolicyTarballBytes = policies.MaxBundleBytes + 1<<20
	// maxActivationReason is the maxLength of a reason in the API
	// document, in characters.
	maxActivationReason = 500
	// maxBundleDetail bounds how much of a compile error a problem shows.
	maxBundleDetail = 2000
	// maxSummaryLines bounds the diff summary of an activation's event.
	maxSummaryLines = 20
)

// versionPattern is a policy version id: policies.Bundle.Version.
var versionPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// policyRoutes adds the policy administration endpoints. Without
// Config.Policies they do not exist (404).
func (g *Gateway) policyRoutes(mux *http.ServeMux) {
	a := g.cfg.Policies
	if a == nil {
		return
	}
	if a.Engine == nil || a.Store == nil {
		g.log.Error("policy administration not served: Config.Policies needs both an Engine and a Store")
		return
	}
	mux.Handle("GET /v1/policies", g.handle(g.activePolicy))
	mux.Handle("PUT /v1/policies", g.handle(g.activatePolicy))
	mux.Handle("/v1/policies", methodNotAllowed(http.MethodGet+", "+http.MethodPut))
	mux.Handle("GET /v1/policies/history", g.handle(g.policyHistory))
	mux.Handle("/v1/policies/history", methodNotAllowed(http.MethodGet))
	mux.Handle("POST /v1/policies/_evaluate", g.handle(g.evaluatePolicy))
	mux.Handle("/v1/policies/_evaluate", methodNotAllowed(http.MethodPost))
	// Not "GET /v1/policies/{id}": beside the catch-all of _evaluate that
	// pattern would conflict on GET /v1/policies/_evaluate.
	mux.Handle("/v1/policies/{id}", onlyMethod(http.MethodGet, g.handle(g.policyVersion)))
}

// onlyMethod serves method with h and answers every other with 405.
func onlyMethod(method string, h http.Handler) http.Handler {
	refuse := methodNotAllowed(method)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			refuse.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// privacyOfficer authenticates the caller (authenticate's 401 or 429 when
// that fails) and refuses, with a recorded 403, anyone but an employee
// with the role privacy-officer.
func (g *Gateway) privacyOfficer(ctx context.Context, r *http.Request, ev *audit.Event) (auth.Identity, error) {
	id, err := g.authenticate(ctx, r, ev)
	if err != nil {
		return auth.Identity{}, err
	}
	if id.Organisation != "" || !slices.Contains(id.Roles, policies.RolePrivacyOfficer) {
		p := problem(http.StatusForbidden, "Only a privacy officer may read or change the purpose policy.", nil)
		return auth.Identity{}, g.refuse(ctx, ev, p, audit.DecisionDeny, []string{"not a privacy officer"})
	}
	return id, nil
}

// policyVersionAnswer is one policy version: its id, whether it is the
// one in force, its files and its policy data.
type policyVersionAnswer struct {
	ID     string            `json:"id"`
	Active bool              `json:"active"`
	Files  map[string]string `json:"files"`
	// Data is the bundle's data.json as a JSON document; absent when it is
	// not JSON (a stored version that never passed the checks).
	Data json.RawMessage `json:"data,omitempty"`
}

func versionAnswer(id string, files map[string]string, active bool) policyVersionAnswer {
	a := policyVersionAnswer{ID: id, Active: active, Files: files}
	if data := files[policies.DataFile]; json.Valid([]byte(data)) {
		a.Data = json.RawMessage(data)
	}
	return a
}

// activePolicy handles GET /v1/policies: the version in force.
func (g *Gateway) activePolicy(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opPolicyActive)
	ctx := r.Context()
	if _, err := g.privacyOfficer(ctx, r, &ev); err != nil {
		return err
	}
	if p := g.validate(ctx, r, nil); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	s := g.cfg.Policies.Engine.Snapshot()
	ev.PolicyVersion = s.Version()
	return g.recordAndAnswer(ctx, w, &ev, versionAnswer(s.Version(), policies.NewStoredVersion(s.Bundle()).Files, true))
}

// policyVersion handles GET /v1/policies/{id}: a stored version, or the
// one in force.
func (g *Gateway) policyVersion(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opPolicyVersion)
	ctx := r.Context()
	if _, err := g.privacyOfficer(ctx, r, &ev); err != nil {
		return err
	}
	if p := g.validate(ctx, r, nil); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	id := r.PathValue("id")
	if !versionPattern.MatchString(id) {
		// The document says so too; this holds if it ever does not.
		p := badParam("id", "pattern", "Not a policy version id: sha256: and 64 lower-case hex digits.")
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	s := g.cfg.Policies.Engine.Snapshot()
	ev.PolicyVersion = s.Version()
	if id == s.Version() {
		return g.recordAndAnswer(ctx, w, &ev, versionAnswer(id, policies.NewStoredVersion(s.Bundle()).Files, true))
	}
	v, err := g.cfg.Policies.Store.PolicyVersion(ctx, id)
	if errors.Is(err, audit.ErrNotFound) {
		p := problem(http.StatusNotFound, "No policy version with that id is stored.", nil)
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"no such policy version"})
	}
	if err != nil {
		return g.failed(ctx, &ev, err, "policy version read failed")
	}
	return g.recordAndAnswer(ctx, w, &ev, versionAnswer(v.ID, v.Files, false))
}

// historyAnswer is one page of activations, newest first.
type historyAnswer struct {
	Activations []activationEntry `json:"activations"`
	Next        string            `json:"next,omitempty"`
}

// activationEntry is one activation: which version, what it replaced,
// who, when and why.
type activationEntry struct {
	Seq      int64     `json:"seq"`
	Version  string    `json:"version"`
	Previous string    `json:"previous,omitempty"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
	Rollback bool      `json:"rollback"`
}

// policyHistory handles GET /v1/policies/history: the activations, newest
// first, a page at a time; the cursor is the seq below which a page starts.
func (g *Gateway) policyHistory(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opPolicyHistory)
	ctx := r.Context()
	if _, err := g.privacyOfficer(ctx, r, &ev); err != nil {
		return err
	}
	if p := g.validate(ctx, r, nil); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	q := r.URL.Query()
	before, p := parseCursor(q.Get("cursor"))
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			p := badParam("limit", "invalid", "Not a page size.")
			return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
		}
		limit = n
	}
	limit = pageSize(limit)
	ev.PolicyVersion = g.cfg.Policies.Engine.Snapshot().Version()

	store := g.cfg.Policies.Store
	ans := historyAnswer{Activations: []activationEntry{}}
	latest, err := store.LatestPolicyActivation(ctx)
	switch {
	case errors.Is(err, audit.ErrNotFound):
		return g.recordAndAnswer(ctx, w, &ev, ans)
	case err != nil:
		return g.failed(ctx, &ev, err, "policy history read failed")
	}
	// Seqs have no gaps, so the page below before is one range.
	if before == 0 || before > latest.Seq+1 {
		before = latest.Seq + 1
	}
	after := max(0, before-1-int64(limit))
	acts, err := store.PolicyActivations(ctx, after, int(before-1-after))
	if err != nil {
		return g.failed(ctx, &ev, err, "policy history read failed")
	}
	for _, a := range slices.Backward(acts) {
		if a.Seq >= before {
			continue
		}
		ans.Activations = append(ans.Activations, activationEntry{
			Seq: a.Seq, Version: a.Version, Previous: a.Previous, By: a.By, At: a.At.UTC(), Reason: a.Reason, Rollback: a.Rollback,
		})
	}
	if n := len(ans.Activations); n > 0 && ans.Activations[n-1].Seq > 1 {
		ans.Next = formatCursor(ans.Activations[n-1].Seq)
	}
	return g.recordAndAnswer(ctx, w, &ev, ans)
}

// activationRequest is the JSON body of PUT /v1/policies: a new bundle
// (files) or a stored version to go back to (version), and why.
type activationRequest struct {
	Files   json.RawMessage `json:"files,omitempty"`
	Version string          `json:"version,omitempty"`
	Reason  string          `json:"reason"`
}

// upload is a PUT /v1/policies request as read: a bundle or the id of a
// stored version, and the reason.
type upload struct {
	bundle  policies.Bundle
	version string
	reason  string
}

// activationAnswer is what an activation did.
type activationAnswer struct {
	// Version is now in force; Previous is the version it replaced.
	Version  string `json:"version"`
	Previous string `json:"previous"`
	// Rollback: the request named a stored version.
	Rollback bool `json:"rollback"`
	// Activation is the entry's seq in the policy history.
	Activation int64     `json:"activation"`
	At         time.Time `json:"at"`
	// Tests are how many of the bundle's own Rego tests ran (all passed);
	// Invariants are the guard invariants it keeps.
	Tests      int      `json:"tests"`
	Invariants []string `json:"invariants"`
	// Cases are how many combinations the difference compared; Changes
	// how many of them are decided differently now.
	Cases   int      `json:"cases"`
	Changes int      `json:"changes"`
	Summary []string `json:"summary"`
	Table   string   `json:"table"`
}

// activatePolicy handles PUT /v1/policies. The bundle (or stored
// version) is checked by policies.Check, stored, swapped in and its
// activation recorded in the policy history, one activation at a time; if
// the history cannot take the entry the previous version is put back.
// Every attempt is an audit event with the officer's reason; a refused one
// lists the broken invariants or failing tests, an activation the
// difference it made.
func (g *Gateway) activatePolicy(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opPolicyActivate)
	ctx := r.Context()
	id, err := g.privacyOfficer(ctx, r, &ev)
	if err != nil {
		return err
	}
	admin := g.cfg.Policies
	ev.PolicyVersion = admin.Engine.Snapshot().Version()
	up, p := g.readUpload(ctx, w, r)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	ev.Reasons = []string{"reason: " + up.reason}
	b := up.bundle
	if up.version != "" {
		ev.Reasons = append(ev.Reasons, "rollback to "+up.version)
		if b, err = g.storedBundle(ctx, up.version); err != nil {
			return g.reject(ctx, &ev, err, "policy version read failed")
		}
	} else {
		ev.Reasons = append(ev.Reasons, "proposed "+b.Version())
	}

	admin.activating.Lock()
	defer admin.activating.Unlock()
	active := admin.Engine.Snapshot()
	ev.PolicyVersion = active.Version()
	if b.Version() == active.Version() {
		p := problem(http.StatusConflict, "This version is active already; nothing was changed.", nil)
		p.Type = problemAlreadyActive
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	previous := ""
	latest, err := admin.Store.LatestPolicyActivation(ctx)
	switch {
	case err == nil:
		previous = latest.Version
	case !errors.Is(err, audit.ErrNotFound):
		return g.failed(ctx, &ev, err, "policy history read failed")
	}
	if previous != "" && previous != active.Version() {
		p := problem(http.StatusConflict, "This gateway does not run the latest activated version yet: another activation is being taken up. Try again shortly.", nil)
		p.Type = problemActivationConflict
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{"the latest activation is " + previous + ", this gateway runs " + active.Version()})
	}

	proposed, _, err := policies.CheckCompiled(ctx, b)
	if err != nil {
		return g.reject(ctx, &ev, err, "policy check failed")
	}
	diff, err := policies.DiffVersions(ctx, active, proposed)
	if err != nil {
		return g.reject(ctx, &ev, err, "policy difference failed")
	}

	// From here on nothing stops halfway because the client hung up.
	ctx = context.WithoutCancel(ctx)
	stored := policies.NewStoredVersion(b)
	if err := admin.Store.PutPolicyVersion(ctx, audit.PolicyVersion{ID: stored.ID, Files: stored.Files}); err != nil {
		return g.failed(ctx, &ev, err, "storing the policy version failed")
	}
	rep, err := admin.Engine.Activate(ctx, b)
	if err != nil {
		return g.reject(ctx, &ev, err, "policy activation failed")
	}
	at := g.cfg.Now().UTC()
	seq, err := admin.Store.AddPolicyActivation(ctx, audit.PolicyActivation{
		Version: b.Version(), Previous: previous, By: id.Sub, At: at, Reason: up.reason, Rollback: up.version != "",
	})
	if err != nil {
		// Not in the history, so not in force: the previous version is.
		if serr := admin.Engine.Swap(ctx, active.Bundle()); serr != nil {
			g.log.Error("policy activation not recorded and the previous version could not be put back", "version", b.Version(), "previous", active.Version(), "error", serr.Error())
		}
		if errors.Is(err, audit.ErrConflict) {
			p := problem(http.StatusConflict, "Another activation came first, so this one was undone. Read the active version and decide again.", err)
			p.Type = problemActivationConflict
			return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
		}
		return g.failed(ctx, &ev, err, "recording the activation failed; the previous version is active again")
	}

	summary := diffSummary(diff)
	ev.PolicyVersion = b.Version()
	ev.Reasons = append(ev.Reasons, fmt.Sprintf("activated %s replacing %s (activation %d)", b.Version(), rep.Previous, seq))
	ev.Reasons = append(ev.Reasons, summary...)
	ev.Decision, ev.Status = audit.DecisionAllow, http.StatusOK
	if _, err := g.cfg.Audit.Append(ctx, ev); err != nil {
		// The activation stands: it is in the policy history, which every
		// gateway process follows. Only this call's event is missing.
		g.log.Error("policy activated but its audit event was not recorded", "version", b.Version(), "activation", seq, "error", err.Error())
		p := problemFor(err)
		p.Detail = fmt.Sprintf("Version %s is active (activation %d of the policy history), but the access log could not record this call.", b.Version(), seq)
		return p
	}
	return writeJSON(w, http.StatusOK, activationAnswer{
		Version: b.Version(), Previous: rep.Previous, Rollback: up.version != "", Activation: seq, At: at,
		Tests: len(rep.Tests), Invariants: rep.Invariants,
		Cases: diff.Cases, Changes: len(diff.Changes), Summary: summary, Table: diff.Table(),
	})
}

// readUpload reads and checks a PUT /v1/policies request: a JSON body
// with files or a version, or an OPA bundle (application/gzip) with the
// reason in the query.
func (g *Gateway) readUpload(ctx context.Context, w http.ResponseWriter, r *http.Request) (upload, *Problem) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/gzip" {
		body, p := g.readPolicyBody(w, r, maxPolicyTarballBytes)
		if p != nil {
			return upload{}, p
		}
		if p := g.validate(ctx, r, body); p != nil {
			return upload{}, p
		}
		reason, p := checkReason(r.URL.Query().Get("reason"))
		if p != nil {
			return upload{}, p
		}
		b, err := policies.ReadTarball(bytes.NewReader(body))
		if err != nil {
			return upload{}, bundleProblem(err)
		}
		return upload{bundle: b, reason: reason}, nil
	}

	body, p := g.readPolicyBody(w, r, maxPolicyJSONBytes)
	if p != nil {
		return upload{}, p
	}
	var req activationRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return upload{}, p
	}
	if r.URL.Query().Has("reason") {
		return upload{}, badParam("reason", "ambiguous", "With a JSON body the reason goes in the body, not the query.")
	}
	reason, p := checkReason(req.Reason)
	if p != nil {
		return upload{}, p
	}
	switch {
	case len(req.Files) > 0 && req.Version != "":
		return upload{}, badParam("body", "oneOf", "Send either files (a new bundle) or version (a stored one), not both.")
	case req.Version != "":
		if !versionPattern.MatchString(req.Version) {
			return upload{}, badParam("version", "pattern", "Not a policy version id: sha256: and 64 lower-case hex digits.")
		}
		return upload{version: req.Version, reason: reason}, nil
	case len(req.Files) > 0:
		b, err := policies.ParseFiles(req.Files)
		if err != nil {
			return upload{}, bundleProblem(err)
		}
		return upload{bundle: b, reason: reason}, nil
	}
	return upload{}, badParam("body", "oneOf", "Send files (a new bundle) or version (a stored one).")
}

// checkReason is an activation's reason, trimmed, or the 400 of one that
// is missing or too long.
func checkReason(reason string) (string, *Problem) {
	reason = strings.TrimSpace(reason)
	switch n := len([]rune(reason)); {
	case n == 0:
		return "", badParam("reason", "required", "Say why the policy changes (reason); it is kept with the activation. No personal data.")
	case n > maxActivationReason:
		return "", badParam("reason", "maxLength", fmt.Sprintf("The reason has more than %d characters.", maxActivationReason))
	}
	return reason, nil
}

// storedBundle is a stored version as a bundle, its files checked against
// its id: a 422 problem when no version has that id or it was altered.
func (g *Gateway) storedBundle(ctx context.Context, id string) (policies.Bundle, error) {
	v, err := g.cfg.Policies.Store.PolicyVersion(ctx, id)
	if errors.Is(err, audit.ErrNotFound) {
		p := problem(http.StatusUnprocessableEntity, "No policy version with that id is stored; nothing was changed.", err)
		p.Type, p.Title = problemVersionUnknown, "Unknown policy version"
		return policies.Bundle{}, p
	}
	if err != nil {
		return policies.Bundle{}, err
	}
	return policies.StoredVersion{ID: v.ID, Files: v.Files}.Bundle()
}

// evaluateRequest is the body of POST /v1/policies/_evaluate.
type evaluateRequest struct {
	Input policies.Input `json:"input"`
	// Files are a proposed bundle, as PUT takes them.
	Files json.RawMessage `json:"files,omitempty"`
}

// evaluation is a dry run: the active version's decision and the rules
// that made it; with a proposed bundle also its decision and what it would
// decide differently over every case, as JSON and as a table.
type evaluation struct {
	Active     policies.Explanation  `json:"active"`
	Proposed   *policies.Explanation `json:"proposed,omitempty"`
	Difference *policies.Difference  `json:"difference,omitempty"`
	Table      string                `json:"table,omitempty"`
	// Check is what PUT would find: the proposed bundle's own tests and
	// the guard invariants.
	Check *checkPreview `json:"check,omitempty"`
}

// checkPreview is policies.Check of a proposed bundle as the dry run shows
// it: whether PUT would activate it, and if not, why (the same invariants
// and test names its 422 would carry).
type checkPreview struct {
	Accepted    bool                       `json:"accepted"`
	Tests       []testOutcome              `json:"tests"`
	Invariants  []string                   `json:"invariants"`
	Violations  []*policies.InvariantError `json:"violations,omitempty"`
	FailedTests []string                   `json:"failedTests,omitempty"`
	Cases       int                        `json:"cases"`
}

type testOutcome struct {
	Name string `json:"name"`
	Pass bool   `json:"pass"`
}

func newCheckPreview(rep policies.Report, err error) *checkPreview {
	c := &checkPreview{Accepted: err == nil, Invariants: rep.Invariants, Violations: rep.Violations, Cases: rep.Cases, Tests: []testOutcome{}}
	for _, t := range rep.Tests {
		c.Tests = append(c.Tests, testOutcome{Name: t.FullName(), Pass: t.Pass || t.Skip})
		if !t.Pass && !t.Skip {
			c.FailedTests = append(c.FailedTests, t.FullName())
		}
	}
	return c
}

// evaluatePolicy handles POST /v1/policies/_evaluate. It activates
// nothing and asks no source.
func (g *Gateway) evaluatePolicy(w http.ResponseWriter, r *http.Request) error {
	ev := g.newEvent(r, opPolicyEvaluate)
	ctx := r.Context()
	if _, err := g.privacyOfficer(ctx, r, &ev); err != nil {
		return err
	}
	body, p := g.readPolicyBody(w, r, maxPolicyJSONBytes)
	if p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	var req evaluateRequest
	if p := g.decodeBody(ctx, r, body, &req); p != nil {
		return g.refuse(ctx, &ev, p, audit.DecisionDeny, []string{p.Detail})
	}
	in := req.Input
	if in.Action == "" {
		in.Action = policies.ActionResidentView
	}
	active := g.cfg.Policies.Engine.Snapshot()
	ev.PolicyVersion = active.Version()
	ev.Reasons = []string{"dry run"}

	var ans evaluation
	var err error
	if ans.Active, err = active.Explain(ctx, in); err != nil {
		return g.reject(ctx, &ev, err, "policy evaluation failed")
	}
	if len(req.Files) > 0 {
		b, err := policies.ParseFiles(req.Files)
		if err != nil {
			return g.reject(ctx, &ev, err, "reading the proposed bundle failed")
		}
		ev.Reasons = append(ev.Reasons, "proposed "+b.Version())
		proposed, rep, err := policies.CheckCompiled(ctx, b)
		if !proposed.Valid() {
			return g.reject(ctx, &ev, err, "checking the proposed bundle failed")
		}
		ans.Check = newCheckPreview(rep, err)
		if !ans.Check.Accepted {
			ev.Reasons = append(ev.Reasons, "PUT would refuse it")
		}
		ex, err := proposed.Explain(ctx, in)
		if err != nil {
			return g.reject(ctx, &ev, proposedError(err), "evaluating the proposed bundle failed")
		}
		diff, err := policies.DiffVersions(ctx, active, proposed)
		if err != nil {
			return g.reject(ctx, &ev, proposedError(err), "comparing the versions failed")
		}
		ans.Proposed, ans.Difference, ans.Table = &ex, &diff, diff.Table()
	}
	return g.recordAndAnswer(ctx, w, &ev, ans)
}

// proposedError makes a proposed bundle's failure to decide a fault of
// the bundle (422), not of the gateway.
func proposedError(err error) error {
	if errors.Is(err, policies.ErrEvaluation) {
		return fmt.Errorf("%w: %w", policies.ErrBundle, err)
	}
	return err
}

// readPolicyBody is readJSON with the policy endpoints' own limit: a
// bundle is far larger than any other request.
func (g *Gateway) readPolicyBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Problem) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than %d bytes.", limit), nil)
		}
		return nil, problem(http.StatusBadRequest, "The request body could not be read.", err)
	}
	if p := duplicateKeyProblem(r, body); p != nil {
		return nil, p
	}
	return body, nil
}

// reject records err as what it is, a refusal (4xx, the caller's doing:
// the reasons name what was wrong) or a failure of ours, and returns its
// problem.
func (g *Gateway) reject(ctx context.Context, ev *audit.Event, err error, failure string) error {
	p := problemFor(err)
	if p.Status >= http.StatusInternalServerError || p.Status == statusClientClosed {
		return g.failed(ctx, ev, err, failure)
	}
	var reasons []string
	for _, ie := range p.Invariants {
		reasons = append(reasons, "invariant broken: "+ie.Invariant+": "+ie.Detail)
	}
	for _, name := range p.FailedTests {
		reasons = append(reasons, "test failed: "+name)
	}
	if len(reasons) == 0 {
		reasons = []string{p.Detail}
	}
	return g.refuse(ctx, ev, p, audit.DecisionDeny, reasons)
}

// bundleProblem is the 422 of a bundle that cannot be activated, or nil
// for an error that is not about a bundle: its invariants (with the failed
// tests, if also some) before its tests, before any other fault of its
// content (policies.ErrBundle: it does not compile, a file is not allowed).
func bundleProblem(err error) *Problem {
	var invariants []*policies.InvariantError
	var tests *policies.TestFailure
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case *policies.InvariantError:
			invariants = append(invariants, x)
		case *policies.TestFailure:
			tests = x
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	p := &Problem{Status: http.StatusUnprocessableEntity, cause: err}
	switch {
	case len(invariants) > 0:
		names := make([]string, len(invariants))
		for i, ie := range invariants {
			names[i] = ie.Invariant
		}
		p.Type, p.Title = problemInvariantViolated, "The policy bundle breaks an invariant"
		p.Detail = "Not activated: the bundle breaks " + strings.Join(names, ", ") + " (see invariants). The active version is unchanged."
		p.Invariants = invariants
		if tests != nil {
			p.FailedTests = tests.Names
		}
	case tests != nil && len(tests.Names) == 0:
		p.Type, p.Title = problemTestsFailed, "The policy bundle's tests fail"
		p.Detail = "Not activated: the bundle has no Rego tests (*_test.rego). The active version is unchanged."
	case tests != nil:
		p.Type, p.Title = problemTestsFailed, "The policy bundle's tests fail"
		p.Detail = "Not activated: its own Rego tests fail: " + strings.Join(tests.Names, ", ") + ". The active version is unchanged."
		p.FailedTests = tests.Names
	case errors.Is(err, policies.ErrBundle):
		p.Type, p.Title = problemBundleInvalid, "The policy bundle is not valid"
		p.Detail = "Not activated: " + truncateRunes(err.Error(), maxBundleDetail)
	default:
		return nil
	}
	return p
}

// diffSummary says in a few lines what a difference changes, for the
// audit event and the answer: first the counts, then one line per actor,
// purpose and grant, e.g. "gained: kcc/medewerker/klantcontact brp field
// geboorte (3 combinations)", the combinations being the subject facts
// it holds for. The action is named when it is not resident-view. At most
// maxSummaryLines grant lines; the table has them all.
func diffSummary(d policies.Difference) []string {
	type line struct{ change, scope, grant string }
	counts := map[line]int{}
	var order []line
	add := func(l line) {
		if counts[l] == 0 {
			order = append(order, l)
		}
		counts[l]++
	}
	for _, c := range d.Changes {
		scope := caseScope(c.Case)
		for _, g := range c.Gained {
			add(line{"gained", scope, g.String()})
		}
		for _, g := range c.Lost {
			add(line{"lost", scope, g.String()})
		}
		for _, g := range c.Changed {
			add(line{"changed", scope, g.String()})
		}
	}
	out := []string{fmt.Sprintf("difference: %d of %d cases decided differently", len(d.Changes), d.Cases)}
	for i, l := range order {
		if i == maxSummaryLines {
			out = append(out, fmt.Sprintf("… and %d more lines: see the table", len(order)-i))
			break
		}
		unit := "combinations"
		if counts[l] == 1 {
			unit = "combination"
		}
		out = append(out, fmt.Sprintf("%s: %s %s (%d %s)", l.change, l.scope, l.grant, counts[l], unit))
	}
	return out
}

// caseScope names a case's actor, purpose and (unless resident-view)
// action: "kcc/medewerker/klantcontact", "organisation 0000…/reisdocumenten".
func caseScope(k policies.Case) string {
	who := "organisation " + k.Organisation
	if k.Organisation == "" {
		dept, roles := k.Department, strings.Join(k.Roles, "+")
		if dept == "" {
			dept = "(no department)"
		}
		if roles == "" {
			roles = "(no roles)"
		}
		who = dept + "/" + roles
	}
	s := who + "/" + k.Purpose
	if k.Action != policies.ActionResidentView {
		s += " " + k.Action
	}
	return s
}
