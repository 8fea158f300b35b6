package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/sqlite"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
)

// policyHarness is a gateway whose policy a privacy officer administers:
// a real engine on the embedded bundle, and a policy store that, as at a
// first start of cmd/klantbeeld, holds the embedded version as its first
// activation.
type policyHarness struct {
	*harness
	engine   *policies.Engine
	policies gateway.PolicyStore
	embedded string
}

// sqlitePolicies is a real SQLite store in a temp dir.
func sqlitePolicies(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newPolicyHarness uses store as the policy store (nil: SQLite).
func newPolicyHarness(t *testing.T, store gateway.PolicyStore, opts ...option) *policyHarness {
	t.Helper()
	ctx := context.Background()
	if store == nil {
		store = sqlitePolicies(t)
	}
	engine, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)
	first := policies.NewStoredVersion(policies.Embedded())
	require.NoError(t, store.PutPolicyVersion(ctx, audit.PolicyVersion{ID: first.ID, Files: first.Files}))
	_, err = store.AddPolicyActivation(ctx, audit.PolicyActivation{Version: first.ID, By: "klantbeeld", At: now, Reason: "first start"})
	require.NoError(t, err)
	admin := &gateway.PolicyAdmin{Engine: engine, Store: store}
	opts = append([]option{withPolicy(engine), withConfig(func(c *gateway.Config) { c.Policies = admin })}, opts...)
	return &policyHarness{harness: newHarness(t, opts...), engine: engine, policies: store, embedded: first.ID}
}

func (h *policyHarness) officer() string {
	return h.signer.token(h.t, claims{"sub": "po-1", "name": "Privacy Officer", "department": "privacy", "roles": []string{"privacy-officer"}})
}

// put sends PUT /v1/policies with a JSON body.
func (h *policyHarness) put(body string) answer {
	h.t.Helper()
	return h.do(http.MethodPut, "/v1/policies", h.officer(), "application/json", body)
}

// activation is the JSON body that proposes b for reason.
func activation(t *testing.T, b policies.Bundle, reason string) string {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"files": policies.NewStoredVersion(b).Files, "reason": reason})
	require.NoError(t, err)
	return string(raw)
}

func rollback(t *testing.T, version, reason string) string {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"version": version, "reason": reason})
	require.NoError(t, err)
	return string(raw)
}

// kccView is a klantcontact view by a KCC employee.
func (h *policyHarness) kccView() answer {
	h.t.Helper()
	return h.view(h.signer.token(h.t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`)
}

// eventOf is the audit event an answer names in auditSeq.
func (h *policyHarness) eventOf(a answer) audit.Event {
	h.t.Helper()
	ev, ok := h.findEvent(a)
	require.True(h.t, ok, "an audit event for %s", a.body)
	return ev
}

// findEvent is the audit event an answer names in auditSeq, if any.
func (h *policyHarness) findEvent(a answer) (audit.Event, bool) {
	seq, ok := a.json["auditSeq"].(float64)
	if !ok {
		return audit.Event{}, false
	}
	for _, ev := range h.store.Events() {
		if ev.Seq == int64(seq) {
			return ev, true
		}
	}
	return audit.Event{}, false
}

func hasGeboorte(t testing.TB, a answer) bool {
	t.Helper()
	person, ok := a.json["person"].(map[string]any)
	require.True(t, ok, "a person: %s", a.body)
	_, has := person["geboorte"]
	return has
}

// withData is the embedded bundle with its data.json edited.
func withData(t *testing.T, edit func(d map[string]any)) policies.Bundle {
	t.Helper()
	b := policies.Embedded()
	b.Files = maps.Clone(b.Files)
	var d map[string]any
	require.NoError(t, json.Unmarshal(b.Files[policies.DataFile], &d))
	edit(d)
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	b.Files[policies.DataFile] = raw
	return b
}

// withRego is b with text replaced in one of its files, pairwise.
func withRego(t *testing.T, b policies.Bundle, file string, replace ...string) policies.Bundle {
	t.Helper()
	require.Zero(t, len(replace)%2)
	b.Files = maps.Clone(b.Files)
	src := string(b.Files[file])
	for i := 0; i < len(replace); i += 2 {
		require.Contains(t, src, replace[i])
		src = strings.ReplaceAll(src, replace[i], replace[i+1])
	}
	b.Files[file] = []byte(src)
	return b
}

func purposeOf(d map[string]any, name string) map[string]any {
	return d["purposes"].(map[string]any)[name].(map[string]any)
}

// geboorteData adds geboorte to klantcontact's BRP fields.
func geboorteData(t *testing.T) policies.Bundle {
	return withData(t, func(d map[string]any) {
		purposeOf(d, "klantcontact")["sources"].(map[string]any)["brp"].(map[string]any)["fields"] = []any{"naam", "adressering", "geboorte"}
	})
}

// withGeboorte is geboorteData with the bundle's own test updated: a
// valid change.
func withGeboorte(t *testing.T) policies.Bundle {
	return withRego(t, geboorteData(t), "decision_test.rego",
		`{f | some f in d.sources.brp.fields} == {"naam", "adressering"}`,
		`{f | some f in d.sources.brp.fields} == {"naam", "adressering", "geboorte"}`)
}

func TestPolicyEndpointsAreForPrivacyOfficersOnly(t *testing.T) {
	h := newPolicyHarness(t, nil)
	endpoints := []struct{ method, path, op, body string }{
		{http.MethodGet, "/v1/policies", "GET /v1/policies", ""},
		{http.MethodGet, "/v1/policies/history", "GET /v1/policies/history", ""},
		{http.MethodGet, "/v1/policies/" + h.embedded, "GET /v1/policies/{id}", ""},
		{http.MethodPut, "/v1/policies", "PUT /v1/policies", activation(t, withGeboorte(t), "test")},
		{http.MethodPost, "/v1/policies/_evaluate", "POST /v1/policies/_evaluate", `{"input":{"actor":{"department":"kcc","roles":["medewerker"]},"purpose":"klantcontact",` + kccContext + `}}`},
	}
	callers := []struct {
		name   string
		token  string
		status int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"an employee", h.signer.token(t, employee("kcc")), http.StatusForbidden},
		{"an auditor", h.signer.token(t, claims{"sub": "a1", "department": "audit", "roles": []string{"auditor"}}), http.StatusForbidden},
		{"an organisation claiming the role", h.signer.token(t, claims{"sub": "client-1", "organisation": "00000001234567890000", "roles": []string{"privacy-officer"}}), http.StatusForbidden},
	}
	for _, c := range callers {
		for _, e := range endpoints {
			t.Run(c.name+" "+e.op, func(t *testing.T) {
				before := len(h.store.Events())
				a := h.do(e.method, e.path, c.token, "application/json", e.body)
				assert.Equal(t, c.status, a.status, "%s", a.body)
				evs := h.store.Events()
				require.Len(t, evs, before+1, "one audit event")
				ev := evs[len(evs)-1]
				assert.Equal(t, e.op, ev.Operation)
				assert.Equal(t, audit.DecisionDeny, ev.Decision)
				assert.Equal(t, c.status, ev.Status)
			})
		}
	}
	assert.Equal(t, h.embedded, h.engine.Version(), "nothing was activated")
}

func TestActivationRejectsABundleThatBreaksAnInvariant(t *testing.T) {
	tests := []struct {
		name      string
		bundle    func(t *testing.T) policies.Bundle
		invariant string
		detail    string
	}{
		{"reisdocumenten granted SOCZA in salesforce by data.json", func(t *testing.T) policies.Bundle {
			return withData(t, func(d map[string]any) {
				purposeOf(d, "reisdocumenten")["sources"].(map[string]any)["salesforce"].(map[string]any)["domains"] = []any{"BURZA", "SOCZA"}
			})
		}, policies.InvariantBurgerzakenNoSOCZA, "SOCZA in salesforce.domains"},
		{"an auditor seeing resident data", func(t *testing.T) policies.Bundle {
			return withData(t, func(d map[string]any) { d["no_data_roles"] = []any{} })
		}, policies.InvariantNoDataRoles, "would receive resident data"},
		{"an organisation seeing geheimhouding", func(t *testing.T) policies.Bundle {
			b := withData(t, func(d map[string]any) {
				purposeOf(d, "reisdocumenten")["organisations"] = []any{"00000001234567890000"}
			})
			return withRego(t, b, "decision.rego", `input.subject.geheimhoudingPersoonsgegevens == true`, `false`)
		}, policies.InvariantGeheimhouding, "subject: geheimhouding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPolicyHarness(t, nil)
			b := tt.bundle(t)
			a := h.put(activation(t, b, "proefballon"))
			require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s", a.body)
			assert.Equal(t, "https://klantbeeld.gemeente.example/problems/invariant-violated", a.json["type"])
			assert.Contains(t, a.json["detail"], tt.invariant, "the detail names the invariant")
			var named []string
			for _, v := range a.json["invariants"].([]any) {
				iv := v.(map[string]any)
				named = append(named, iv["invariant"].(string))
				if iv["invariant"] == tt.invariant {
					assert.Contains(t, iv["detail"], tt.detail)
				}
			}
			assert.Contains(t, named, tt.invariant)

			assert.Equal(t, h.embedded, h.engine.Version(), "the active version is unchanged")
			_, err := h.policies.PolicyVersion(context.Background(), b.Version())
			require.ErrorIs(t, err, audit.ErrNotFound, "a rejected bundle is not stored")
			latest, err := h.policies.LatestPolicyActivation(context.Background())
			require.NoError(t, err)
			assert.Equal(t, int64(1), latest.Seq, "no activation recorded")

			ev := h.lastEvent()
			assert.Equal(t, "PUT /v1/policies", ev.Operation)
			assert.Equal(t, audit.DecisionDeny, ev.Decision)
			assert.Equal(t, http.StatusUnprocessableEntity, ev.Status)
			assert.Equal(t, "po-1", ev.Actor.Sub)
			assert.Equal(t, h.embedded, ev.PolicyVersion, "the version in force")
			assert.Contains(t, ev.Reasons, "reason: proefballon")
			assert.Contains(t, strings.Join(ev.Reasons, "\n"), "invariant broken: "+tt.invariant)
		})
	}
}

func TestActivationRejectsABundleThatFailsItsChecks(t *testing.T) {
	noTests := policies.Embedded()
	noTests.Files = maps.Clone(noTests.Files)
	delete(noTests.Files, "decision_test.rego")
	tests := []struct {
		name        string
		bundle      func(t *testing.T) policies.Bundle
		problemType string
		failedTests []any
		detail      string
		reason      string
	}{
		{"its own Rego test fails", geboorteData, "policy-tests-failed",
			[]any{"data.klantbeeld_test.test_klantcontact_row"}, "test_klantcontact_row", "test failed: data.klantbeeld_test.test_klantcontact_row"},
		{"it has no tests", func(*testing.T) policies.Bundle { return noTests }, "policy-tests-failed",
			nil, "no Rego tests", "no Rego tests"},
		{"it does not compile", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego", "allow if count(deny) == 0", "allow if count(deny) ==")
		}, "bundle-invalid", nil, "decision.rego", "decision.rego"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPolicyHarness(t, nil)
			a := h.put(activation(t, tt.bundle(t), "geboortedatum voor KCC"))
			require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s", a.body)
			assert.Equal(t, "https://klantbeeld.gemeente.example/problems/"+tt.problemType, a.json["type"])
			assert.Contains(t, a.json["detail"], tt.detail)
			if tt.failedTests == nil {
				assert.NotContains(t, a.json, "failedTests")
			} else {
				assert.Equal(t, tt.failedTests, a.json["failedTests"])
			}
			assert.NotContains(t, a.json, "invariants", "it keeps every invariant")
			assert.Equal(t, h.embedded, h.engine.Version())
			ev := h.lastEvent()
			assert.Equal(t, http.StatusUnprocessableEntity, ev.Status)
			assert.Contains(t, strings.Join(ev.Reasons, "\n"), tt.reason)
			assert.Contains(t, ev.Reasons, "reason: geboortedatum voor KCC")
		})
	}
}

func TestActivationTakesEffectAtOnceAndRollbackRestoresIt(t *testing.T) {
	h := newPolicyHarness(t, nil)
	ctx := context.Background()
	geboorte := withGeboorte(t)

	before := h.kccView()
	require.Equal(t, http.StatusOK, before.status, "%s", before.body)
	assert.False(t, hasGeboorte(t, before), "klantcontact does not see geboorte yet")

	a := h.put(activation(t, geboorte, "KCC identificeert bellers op geboortedatum"))
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Equal(t, geboorte.Version(), a.json["version"])
	assert.Equal(t, h.embedded, a.json["previous"])
	assert.Equal(t, false, a.json["rollback"])
	assert.Equal(t, float64(2), a.json["activation"])
	assert.Equal(t, float64(3), a.json["changes"])
	assert.Contains(t, a.json["summary"], "gained: kcc/medewerker/klantcontact brp field geboorte (3 combinations)")
	assert.Contains(t, a.json["table"], "+ gains brp field geboorte")
	assert.Equal(t, geboorte.Version(), h.engine.Version())

	ev := h.lastEvent()
	assert.Equal(t, "PUT /v1/policies", ev.Operation)
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.Equal(t, geboorte.Version(), ev.PolicyVersion)
	assert.Contains(t, ev.Reasons, "reason: KCC identificeert bellers op geboortedatum")
	assert.Contains(t, ev.Reasons, "gained: kcc/medewerker/klantcontact brp field geboorte (3 combinations)", "the event carries the diff summary")

	after := h.kccView()
	require.Equal(t, http.StatusOK, after.status, "%s", after.body)
	assert.True(t, hasGeboorte(t, after), "the next request gets the new version, without a restart")
	assert.Contains(t, h.brp.Fields(), "geboorte", "and the BRP is asked for it")
	assert.Equal(t, geboorte.Version(), h.eventOf(after).PolicyVersion)

	r := h.put(rollback(t, h.embedded, "Besluit ingetrokken"))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, h.embedded, r.json["version"])
	assert.Equal(t, geboorte.Version(), r.json["previous"])
	assert.Equal(t, true, r.json["rollback"])
	assert.Contains(t, r.json["summary"], "lost: kcc/medewerker/klantcontact brp field geboorte (3 combinations)")
	ev = h.lastEvent()
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.Contains(t, ev.Reasons, "reason: Besluit ingetrokken")
	assert.Contains(t, ev.Reasons, "rollback to "+h.embedded)

	back := h.kccView()
	require.Equal(t, http.StatusOK, back.status)
	assert.False(t, hasGeboorte(t, back), "the rollback restores the earlier behaviour")
	assert.Equal(t, h.embedded, h.eventOf(back).PolicyVersion)

	// The history says who, when and why, newest first.
	hist := h.do(http.MethodGet, "/v1/policies/history", h.officer(), "", "")
	require.Equal(t, http.StatusOK, hist.status, "%s", hist.body)
	acts := hist.json["activations"].([]any)
	require.Len(t, acts, 3)
	newest := acts[0].(map[string]any)
	assert.Equal(t, map[string]any{"seq": float64(3), "version": h.embedded, "previous": geboorte.Version(), "by": "po-1",
		"at": now.Format(time.RFC3339), "reason": "Besluit ingetrokken", "rollback": true}, newest)
	assert.Equal(t, "KCC identificeert bellers op geboortedatum", acts[1].(map[string]any)["reason"])
	assert.Equal(t, "first start", acts[2].(map[string]any)["reason"])
	assert.NotContains(t, hist.json, "next")

	// Both versions stay readable.
	for _, tt := range []struct {
		id     string
		active bool
	}{{h.embedded, true}, {geboorte.Version(), false}} {
		v := h.do(http.MethodGet, "/v1/policies/"+tt.id, h.officer(), "", "")
		require.Equal(t, http.StatusOK, v.status, "%s", v.body)
		assert.Equal(t, tt.active, v.json["active"])
		assert.Contains(t, v.json["files"], "decision.rego")
	}
	_, err := h.policies.PolicyVersion(ctx, geboorte.Version())
	require.NoError(t, err, "the activated version is stored")
}

func TestActivePolicyShowsVersionFilesAndData(t *testing.T) {
	h := newPolicyHarness(t, nil)
	a := h.do(http.MethodGet, "/v1/policies", h.officer(), "", "")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Equal(t, h.embedded, a.json["id"])
	assert.Equal(t, true, a.json["active"])
	files := a.json["files"].(map[string]any)
	assert.Equal(t, string(policies.Embedded().Files["decision.rego"]), files["decision.rego"])
	data := a.json["data"].(map[string]any)
	assert.Contains(t, data["purposes"], "klantcontact", "the policy data as a document")
	ev := h.lastEvent()
	assert.Equal(t, "GET /v1/policies", ev.Operation)
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.Equal(t, h.embedded, ev.PolicyVersion)
}

func TestPolicyVersionIsFoundByItsIDOnly(t *testing.T) {
	h := newPolicyHarness(t, nil)
	unknown := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name   string
		id     string
		status int
	}{
		{"the active one", h.embedded, http.StatusOK},
		{"an unknown one is not found", unknown, http.StatusNotFound},
		{"not an id", "latest", http.StatusBadRequest},
		{"an id in capitals", strings.ToUpper(h.embedded), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do(http.MethodGet, "/v1/policies/"+tt.id, h.officer(), "", "")
			assert.Equal(t, tt.status, a.status, "%s", a.body)
			ev := h.lastEvent()
			assert.Equal(t, "GET /v1/policies/{id}", ev.Operation)
			assert.Equal(t, tt.status, ev.Status)
		})
	}
	a := h.do(http.MethodDelete, "/v1/policies/"+h.embedded, h.officer(), "", "")
	assert.Equal(t, http.StatusMethodNotAllowed, a.status)
	assert.Equal(t, http.MethodGet, a.header.Get("Allow"))
}

func TestPolicyHistoryPagesNewestFirst(t *testing.T) {
	h := newPolicyHarness(t, nil)
	geboorte := withGeboorte(t)
	for i, body := range []string{
		activation(t, geboorte, "een"),
		rollback(t, h.embedded, "twee"),
	} {
		a := h.put(body)
		require.Equal(t, http.StatusOK, a.status, "activation %d: %s", i, a.body)
	}
	var reasons []string
	cursor := ""
	for range 5 {
		path := "/v1/policies/history?limit=2"
		if cursor == "" {
			path = "/v1/policies/history?limit=1"
		}
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		a := h.do(http.MethodGet, path, h.officer(), "", "")
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		acts := a.json["activations"].([]any)
		assert.NotEmpty(t, acts)
		assert.LessOrEqual(t, len(acts), 2)
		for _, act := range acts {
			reasons = append(reasons, act.(map[string]any)["reason"].(string))
		}
		next, ok := a.json["next"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	assert.Equal(t, []string{"twee", "een", "first start"}, reasons)

	a := h.do(http.MethodGet, "/v1/policies/history?cursor=x", h.officer(), "", "")
	assert.Equal(t, http.StatusBadRequest, a.status)
}

func TestActivationFromAnOPATarball(t *testing.T) {
	h := newPolicyHarness(t, nil)
	var tgz bytes.Buffer
	require.NoError(t, policies.WriteTarball(&tgz, withGeboorte(t)))

	a := h.do(http.MethodPut, "/v1/policies", h.officer(), "application/gzip", tgz.String())
	assert.Equal(t, http.StatusBadRequest, a.status, "the reason is required: %s", a.body)
	assert.Equal(t, h.embedded, h.engine.Version())

	a = h.do(http.MethodPut, "/v1/policies?reason="+url.QueryEscape("opa build uit de repository"), h.officer(), "application/gzip", tgz.String())
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Equal(t, withGeboorte(t).Version(), h.engine.Version())
	assert.Contains(t, h.lastEvent().Reasons, "reason: opa build uit de repository")

	a = h.do(http.MethodPut, "/v1/policies?reason=x", h.officer(), "application/gzip", "not a tarball")
	assert.Equal(t, http.StatusUnprocessableEntity, a.status)
	assert.Equal(t, "https://klantbeeld.gemeente.example/problems/bundle-invalid", a.json["type"])
}

func TestActivationRefusesAnUnclearRequest(t *testing.T) {
	h := newPolicyHarness(t, nil)
	geboorte := withGeboorte(t)
	files, err := json.Marshal(policies.NewStoredVersion(geboorte).Files)
	require.NoError(t, err)
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		status      int
		problemType string
	}{
		{"no reason", "/v1/policies", "application/json", `{"files":` + string(files) + `}`, http.StatusBadRequest, ""},
		{"a blank reason", "/v1/policies", "application/json", `{"files":` + string(files) + `,"reason":"  "}`, http.StatusBadRequest, ""},
		{"files and version", "/v1/policies", "application/json", `{"files":` + string(files) + `,"version":"` + h.embedded + `","reason":"x"}`, http.StatusBadRequest, ""},
		{"the reason in the query of a JSON body", "/v1/policies?reason=x", "application/json", `{"files":` + string(files) + `,"reason":"x"}`, http.StatusBadRequest, ""},
		{"not JSON", "/v1/policies", "application/json", `{"files":`, http.StatusBadRequest, ""},
		{"a file in a folder", "/v1/policies", "application/json", `{"files":{"sub/decision.rego":"package x","data.json":"{}"},"reason":"x"}`, http.StatusUnprocessableEntity, "bundle-invalid"},
		{"an unknown version", "/v1/policies", "application/json", rollback(t, "sha256:"+strings.Repeat("0", 64), "x"), http.StatusUnprocessableEntity, "version-unknown"},
		{"the active version", "/v1/policies", "application/json", rollback(t, h.embedded, "x"), http.StatusConflict, "already-active"},
		{"plain text", "/v1/policies", "text/plain", "files", http.StatusUnsupportedMediaType, ""},
		{"a body over the limit", "/v1/policies", "application/json", `{"reason":"x","files":{"data.json":"` + strings.Repeat("x", 9<<20) + `"}}`, http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.store.Events())
			a := h.do(http.MethodPut, tt.path, h.officer(), tt.contentType, tt.body)
			assert.Equal(t, tt.status, a.status, "%s", a.body)
			if tt.problemType != "" {
				assert.Equal(t, "https://klantbeeld.gemeente.example/problems/"+tt.problemType, a.json["type"])
			}
			assert.Equal(t, h.embedded, h.engine.Version())
			evs := h.store.Events()
			require.Len(t, evs, before+1, "the attempt is audited")
			assert.Equal(t, audit.DecisionDeny, evs[len(evs)-1].Decision)
		})
	}
}

// flakyPolicies is a policy store whose activations fail with err.
type flakyPolicies struct {
	*audittest.Memory
	err error
}

func (f *flakyPolicies) AddPolicyActivation(ctx context.Context, a audit.PolicyActivation) (int64, error) {
	if f.err != nil {
		return 0, fmt.Errorf("add activation: %w", f.err)
	}
	return f.Memory.AddPolicyActivation(ctx, a)
}

func TestActivationTheHistoryCannotRecordIsUndone(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"the store is down", audit.ErrUnavailable, http.StatusServiceUnavailable},
		{"another activation came first", audit.ErrConflict, http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &flakyPolicies{Memory: &audittest.Memory{}}
			h := newPolicyHarness(t, store)
			store.err = tt.err
			a := h.put(activation(t, withGeboorte(t), "x"))
			assert.Equal(t, tt.status, a.status, "%s", a.body)
			assert.Equal(t, h.embedded, h.engine.Version(), "the previous version is in force again")
			v := h.kccView()
			require.Equal(t, http.StatusOK, v.status)
			assert.False(t, hasGeboorte(t, v))
			ev := h.store.Events()[len(h.store.Events())-2]
			assert.Equal(t, "PUT /v1/policies", ev.Operation)
			assert.Equal(t, tt.status, ev.Status)
			assert.NotEqual(t, audit.DecisionAllow, ev.Decision)
		})
	}
}

func TestActivationWaitsForAGatewayThatIsBehindTheHistory(t *testing.T) {
	store := &audittest.Memory{}
	h := newPolicyHarness(t, store)
	// Another process activated geboorte; this one has not followed yet.
	ctx := context.Background()
	other := policies.NewStoredVersion(withGeboorte(t))
	require.NoError(t, store.PutPolicyVersion(ctx, audit.PolicyVersion{ID: other.ID, Files: other.Files}))
	_, err := store.AddPolicyActivation(ctx, audit.PolicyActivation{Version: other.ID, Previous: h.embedded, By: "po-2", At: now, Reason: "elders"})
	require.NoError(t, err)

	mine := withData(t, func(d map[string]any) { purposeOf(d, "inzage")["description"] = "Inzage" })
	a := h.put(activation(t, mine, "x"))
	assert.Equal(t, http.StatusConflict, a.status, "%s", a.body)
	assert.Equal(t, "https://klantbeeld.gemeente.example/problems/activation-conflict", a.json["type"])
	assert.Equal(t, h.embedded, h.engine.Version())
}

func TestEvaluateOfTheGeboorteBundleListsExactlyThatGainForKCC(t *testing.T) {
	h := newPolicyHarness(t, nil)
	geboorte := withGeboorte(t)
	files, err := json.Marshal(policies.NewStoredVersion(geboorte).Files)
	require.NoError(t, err)
	a := h.do(http.MethodPost, "/v1/policies/_evaluate", h.officer(), "application/json",
		`{"input":{"actor":{"sub":"e1","department":"kcc","roles":["medewerker"]},"purpose":"klantcontact",`+kccContext+`},"files":`+string(files)+`}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)

	diff := a.json["difference"].(map[string]any)
	assert.Equal(t, h.embedded, diff["from"])
	assert.Equal(t, geboorte.Version(), diff["to"])
	changes := diff["changes"].([]any)
	require.Len(t, changes, 3, "one per subject fact")
	facts := map[string]bool{}
	for _, c := range changes {
		ch := c.(map[string]any)
		k := ch["case"].(map[string]any)
		assert.Equal(t, "kcc", k["department"])
		assert.Equal(t, "klantcontact", k["purpose"])
		assert.Equal(t, []any{map[string]any{"source": "brp", "aspect": "field", "value": "geboorte"}}, ch["gained"])
		assert.NotContains(t, ch, "lost")
		assert.NotContains(t, ch, "changed")
		facts[k["subject"].(string)] = true
	}
	assert.Len(t, facts, 3)
	assert.Contains(t, a.json["table"], "3 of")
	assert.Regexp(t, `kcc \[medewerker\]\s+klantcontact\s+resident-view\s+none\s+\+ gains brp field geboorte`, a.json["table"])

	active := a.json["active"].(map[string]any)
	assert.Equal(t, h.embedded, active["version"])
	assert.Equal(t, []any{"naam", "adressering"}, active["decision"].(map[string]any)["sources"].(map[string]any)["brp"].(map[string]any)["fields"])
	assert.NotEmpty(t, active["rules"], "which rules decided")
	assert.Contains(t, active["data"], "data.purposes.klantcontact")
	proposed := a.json["proposed"].(map[string]any)
	assert.Equal(t, []any{"naam", "adressering", "geboorte"}, proposed["decision"].(map[string]any)["sources"].(map[string]any)["brp"].(map[string]any)["fields"])

	assert.Equal(t, h.embedded, h.engine.Version(), "a dry run activates nothing")
	latest, err := h.policies.LatestPolicyActivation(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(1), latest.Seq)
	ev := h.lastEvent()
	assert.Equal(t, "POST /v1/policies/_evaluate", ev.Operation)
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.Contains(t, ev.Reasons, "proposed "+geboorte.Version())
	assert.Zero(t, h.sourceCalls(), "no source is asked")
}

func TestEvaluateSaysWhetherPutWouldActivateTheProposal(t *testing.T) {
	h := newPolicyHarness(t, nil)
	evaluate := func(b policies.Bundle) map[string]any {
		t.Helper()
		files, err := json.Marshal(policies.NewStoredVersion(b).Files)
		require.NoError(t, err)
		a := h.do(http.MethodPost, "/v1/policies/_evaluate", h.officer(), "application/json",
			`{"input":{"actor":{"sub":"e1","department":"kcc","roles":["medewerker"]},"purpose":"klantcontact"},"files":`+string(files)+`}`)
		require.Equal(t, http.StatusOK, a.status, "a refused proposal is still shown: %s", a.body)
		return a.json
	}

	ok := evaluate(withGeboorte(t))["check"].(map[string]any)
	assert.Equal(t, true, ok["accepted"])
	assert.NotContains(t, ok, "violations")
	assert.NotContains(t, ok, "failedTests")
	assert.NotEmpty(t, ok["tests"])
	assert.Contains(t, ok["invariants"], policies.InvariantBurgerzakenNoSOCZA)
	assert.Greater(t, ok["cases"], float64(1000), "the guard asked every case")

	// geboorte for klantcontact without updating the Rego test that pins
	// its row, and SOCZA for reisdocumenten: refused twice over.
	bad := withData(t, func(d map[string]any) {
		purposeOf(d, "klantcontact")["sources"].(map[string]any)["brp"].(map[string]any)["fields"] = []any{"naam", "adressering", "geboorte"}
		purposeOf(d, "reisdocumenten")["sources"].(map[string]any)["salesforce"].(map[string]any)["domains"] = []any{"BURZA", "SOCZA"}
	})
	a := evaluate(bad)
	c := a["check"].(map[string]any)
	assert.Equal(t, false, c["accepted"])
	assert.Equal(t, []any{"data.klantbeeld_test.test_klantcontact_row"}, c["failedTests"])
	var broken []any
	for _, v := range c["violations"].([]any) {
		broken = append(broken, v.(map[string]any)["invariant"])
	}
	assert.Contains(t, broken, policies.InvariantBurgerzakenNoSOCZA)
	assert.Contains(t, a["table"], "geboorte", "the difference is shown all the same")
	assert.Equal(t, h.embedded, h.engine.Version(), "a dry run activates nothing")
	assert.Contains(t, h.lastEvent().Reasons, "PUT would refuse it")

	// What the preview said is what PUT does.
	put := h.put(activation(t, bad, "proefballon"))
	assert.Equal(t, http.StatusUnprocessableEntity, put.status)
	assert.Equal(t, "https://klantbeeld.gemeente.example/problems/invariant-violated", put.json["type"])
}

func TestEvaluateShowsTheRuleThatDenied(t *testing.T) {
	h := newPolicyHarness(t, nil)
	a := h.do(http.MethodPost, "/v1/policies/_evaluate", h.officer(), "application/json",
		`{"input":{"actor":{"sub":"e1","department":"burgerzaken","roles":["medewerker"]},"purpose":"bijstand",`+zaakContext+`}}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	active := a.json["active"].(map[string]any)
	dec := active["decision"].(map[string]any)
	assert.Equal(t, false, dec["allow"])
	assert.Equal(t, []any{"purpose_not_granted"}, dec["codes"])
	var denied bool
	for _, r := range active["rules"].([]any) {
		rule := r.(map[string]any)
		if rule["rule"] == "data.klantbeeld.deny" {
			denied = true
			assert.Equal(t, "purpose_not_granted", rule["element"].(map[string]any)["code"])
		}
	}
	assert.True(t, denied, "the deny rule that fired is named: %v", active["rules"])
	assert.NotContains(t, a.json, "difference")

	a = h.do(http.MethodPost, "/v1/policies/_evaluate", h.officer(), "application/json",
		`{"input":{"actor":{"department":"kcc"},"purpose":"klantcontact",`+kccContext+`},"files":{"decision.rego":"package klantbeeld\nbroken if {","data.json":"{}"}}`)
	assert.Equal(t, http.StatusUnprocessableEntity, a.status)
	assert.Equal(t, "https://klantbeeld.gemeente.example/problems/bundle-invalid", a.json["type"])
}

func TestPolicyDenialOfAViewCarriesItsReasonCode(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name  string
		token string
		body  string
		code  string
		title string
	}{
		{"a purpose not granted", h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"bijstand",` + zaakContext + `}`, "purpose_not_granted", "Purpose not granted"},
		{"an unknown purpose", h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"nieuwsgierigheid"}`, "purpose_unknown", "Unknown purpose"},
		{"an auditor", h.signer.token(t, claims{"sub": "a1", "department": "audit", "roles": []string{"auditor"}}), `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`, "no_data_role", "This role never receives resident data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.view(tt.token, tt.body)
			require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
			assert.Equal(t, "https://klantbeeld.gemeente.example/problems/"+tt.code, a.json["type"])
			assert.Equal(t, tt.title, a.json["title"])
			assert.Contains(t, a.json["codes"], tt.code)
			assert.Contains(t, h.lastEvent().Reasons, "code:"+tt.code, "the audit event keeps the code")
		})
	}
}

// swappingSource swaps a bundle in when the gateway asks its source, that
// is, while the request is between its two decisions (the BRP tells of
// geheimhouding, so the policy is asked again).
type swappingSource struct {
	view.Source
	engine *policies.Engine
	bundle policies.Bundle
	once   sync.Once
	err    error
}

func (s *swappingSource) Fetch(ctx context.Context, req view.Request, rule policies.SourceRule) (view.Answer, error) {
	s.once.Do(func() { s.err = s.engine.Swap(ctx, s.bundle) })
	return s.Source.Fetch(ctx, req, rule)
}

func TestAViewDecidesWithOneVersionWhateverIsActivatedMeanwhile(t *testing.T) {
	engine, err := policies.NewEngine(context.Background(), policies.Embedded())
	require.NoError(t, err)
	swapper := &swappingSource{engine: engine, bundle: withGeboorte(t)}
	secret := func(h *harness) { h.brp.Answer.Geheimhouding = true }
	h := newHarness(t, withPolicy(engine), secret, withConfig(func(c *gateway.Config) {
		swapper.Source = c.Sources[0]
		c.Sources[0] = swapper
	}))
	require.Equal(t, view.SourceBRP, swapper.Name())

	a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.NoError(t, swapper.err)
	require.Equal(t, withGeboorte(t).Version(), engine.Version(), "the swap happened during the request")
	assert.False(t, hasGeboorte(t, a), "disclosed as the version the request started with")
	assert.Equal(t, policies.Embedded().Version(), h.lastEvent().PolicyVersion, "and recorded under that version")
}

func TestConcurrentViewsDuringActivationsMatchTheVersionTheyRecord(t *testing.T) {
	h := newPolicyHarness(t, nil)
	geboorte := withGeboorte(t)
	token := h.signer.token(t, employee("kcc"))

	var done atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range 3 {
		wg.Go(func() {
			for !done.Load() {
				a := h.view(token, `{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`)
				if !assert.Equal(t, http.StatusOK, a.status, "%s", a.body) {
					return
				}
				// Not require: this is not the test's goroutine.
				ev, found := h.findEvent(a)
				person, isPerson := a.json["person"].(map[string]any)
				if !assert.True(t, found, "an audit event for %s", a.body) || !assert.True(t, isPerson) {
					return
				}
				_, shown := person["geboorte"]
				version := ev.PolicyVersion
				assert.Equal(t, version == geboorte.Version(), shown, "the answer is what version %s discloses", version)
				mu.Lock()
				seen[version]++
				mu.Unlock()
			}
		})
	}
	// Each activation takes a while (its checks run twice, and the diff):
	// views run meanwhile under the version before it, and under the new
	// one until the next is in.
	for i, body := range []string{
		activation(t, geboorte, "aan"),
		rollback(t, h.embedded, "uit"),
	} {
		a := h.put(body)
		require.Equal(t, http.StatusOK, a.status, "activation %d: %s", i, a.body)
	}
	done.Store(true)
	wg.Wait()
	assert.Positive(t, seen[h.embedded], "views under the embedded version")
	assert.Positive(t, seen[geboorte.Version()], "views under the geboorte version")
	assert.Len(t, seen, 2, "no other version: %v", seen)
}

func TestActivationWhoseEventCannotBeRecordedStandsAndSaysSo(t *testing.T) {
	h := newPolicyHarness(t, nil)
	geboorte := withGeboorte(t)
	h.store.FailNextAppend(errors.New("disk full"))
	a := h.put(activation(t, geboorte, "x"))
	assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
	assert.Contains(t, a.json["detail"], geboorte.Version()+" is active", "the officer is told the version is in force")
	assert.Equal(t, geboorte.Version(), h.engine.Version(), "it stands: it is in the policy history every gateway follows")
	latest, err := h.policies.LatestPolicyActivation(context.Background())
	require.NoError(t, err)
	assert.Equal(t, geboorte.Version(), latest.Version)
	assert.Contains(t, h.logs.String(), "policy activated but its audit event was not recorded")
}
