package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/openapi"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view/viewtest"
)

// Residents of the audit tests: both pass the 11-proef.
const (
	bsnA = "999993653"
	bsnB = "999990019"
)

const (
	employeeIssuer = "https://idp.audit-test.example"
	residentIssuer = "https://digid-broker.audit-test.example"
	apiAudience    = "klantbeeld"
)

// idp is a test identity provider: an ES256 key and the JWKS file holding
// its public half.
type idp struct {
	issuer string
	key    jwk.Key
	jwks   string
}

func newIDP(t *testing.T, issuer, kid string) *idp {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	key, err := jwk.FromRaw(raw)
	require.NoError(t, err)
	require.NoError(t, key.Set(jwk.KeyIDKey, kid))
	require.NoError(t, key.Set(jwk.AlgorithmKey, jwa.ES256))
	pub, err := key.PublicKey()
	require.NoError(t, err)
	set := jwk.NewSet()
	require.NoError(t, set.AddKey(pub))
	b, err := json.Marshal(set)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return &idp{issuer: issuer, key: key, jwks: path}
}

func (p *idp) config() auth.Config {
	return auth.Config{Issuer: p.issuer, Audience: apiAudience, JWKSFile: p.jwks}
}

// token signs claims, with iss, aud, iat and an hour's validity added.
func (p *idp) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok := jwt.New()
	at := time.Now()
	for k, v := range map[string]any{"iss": p.issuer, "aud": []string{apiAudience}, "iat": at.Unix(), "exp": at.Add(time.Hour).Unix()} {
		require.NoError(t, tok.Set(k, v))
	}
	for k, v := range claims {
		require.NoError(t, tok.Set(k, v))
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, p.key))
	require.NoError(t, err)
	return string(b)
}

// auditHarness is a gateway with an in-memory audit store that its
// auditor and subject-access endpoints read, a real checkpoint signer,
// and identity providers for employees and residents.
type auditHarness struct {
	t           *testing.T
	store       *audittest.Memory
	log         *audit.Log
	checkpoints *audit.Checkpointer
	verifierKey string
	pseudonyms  *audit.Pseudonymizer
	employees   *idp
	residents   *idp
	spec        *openapi.Spec
	handler     http.Handler
	logs        *bytes.Buffer

	mu    sync.Mutex
	clock time.Time
}

type auditOption func(*gateway.Config)

func newAuditHarness(t *testing.T, opts ...auditOption) *auditHarness {
	t.Helper()
	ctx := context.Background()
	h := &auditHarness{
		t:         t,
		store:     &audittest.Memory{},
		employees: newIDP(t, employeeIssuer, "emp-1"),
		residents: newIDP(t, residentIssuer, "res-1"),
		logs:      &bytes.Buffer{},
		clock:     time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
	}
	h.log = audit.NewLog(h.store, audit.LogOptions{})
	t.Cleanup(func() { h.log.Close() })

	keyPath := filepath.Join(t.TempDir(), "checkpoint.key")
	signer, err := audit.LoadSigner(keyPath, true, "")
	require.NoError(t, err)
	h.verifierKey, err = audit.VerifierKey(keyPath)
	require.NoError(t, err)
	h.checkpoints = audit.NewCheckpointer(h.store, signer, audit.CheckpointerOptions{Interval: -1})
	t.Cleanup(func() { _ = h.checkpoints.Close() })

	h.pseudonyms, err = audit.NewPseudonymizer(bytes.Repeat([]byte("p"), audit.MinKeySize))
	require.NoError(t, err)
	employees, err := auth.NewVerifier(ctx, h.employees.config())
	require.NoError(t, err)
	residents, err := auth.NewResidentVerifier(ctx, auth.ResidentConfig{Config: h.residents.config(), BSNClaim: "bsn"})
	require.NoError(t, err)
	engine, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)
	h.spec, err = openapi.Load()
	require.NoError(t, err)
	sources, err := viewtest.Read(filepath.Join("testdata", "world.json"))
	require.NoError(t, err)

	cfg := gateway.Config{
		Sources:    sources.Sources(0),
		Policy:     engine,
		Audit:      h.log,
		Pseudonyms: h.pseudonyms,
		Auth:       employees,
		Spec:       h.spec,
		Logger:     slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        h.now,
		AuditLog:   h.store,
		Residents:  residents,
	}
	withContexts(t, &cfg, h.store, newFakeContexts(), h.now())
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := gateway.New(cfg)
	require.NoError(t, err)
	h.handler = gw.Handler()
	return h
}

// now is a clock that ticks a second per reading, so events differ in time.
func (h *auditHarness) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock = h.clock.Add(time.Second)
	return h.clock
}

func (h *auditHarness) staff(dept string, roles ...string) string {
	if len(roles) == 0 {
		roles = []string{"medewerker"}
	}
	return h.employees.token(h.t, map[string]any{"sub": "emp-" + dept, "name": "Medewerker " + dept, "department": dept, "roles": roles})
}

func (h *auditHarness) auditor() string {
	return h.employees.token(h.t, map[string]any{"sub": "aud-1", "name": "Auditor Een", "department": "audit", "roles": []string{"auditor"}})
}

func (h *auditHarness) resident(bsn string) string {
	return h.residents.token(h.t, map[string]any{"sub": "digid-" + bsn[len(bsn)-3:], "bsn": bsn})
}

// reply is an answer of the gateway.
type reply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

// call sends a request and checks the answer against the API document.
func (h *auditHarness) call(method, path, token, body string) reply {
	h.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	a := reply{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	_ = json.Unmarshal(a.body, &a.json)
	assert.NotEmpty(h.t, a.header.Get("API-Version"), "API-Version on every answer")
	if a.status >= 400 {
		assert.Equal(h.t, "application/problem+json", a.header.Get("Content-Type"), "errors are problem+json: %s", a.body)
	}
	if err := h.spec.ValidateResponse(context.Background(), httptest.NewRequest(method, path, nil), a.status, a.header, a.body); err != nil && !errors.Is(err, openapi.ErrNoOperation) {
		h.t.Errorf("answer %d to %s %s does not match the API document: %v\n%s", a.status, method, path, err, a.body)
	}
	return a
}

// seed appends events straight to the log, as earlier requests would have.
func (h *auditHarness) seed(evs ...audit.Event) []int64 {
	h.t.Helper()
	seqs := make([]int64, len(evs))
	for i, ev := range evs {
		if ev.Time.IsZero() {
			ev.Time = h.now()
		}
		if ev.TraceID == "" {
			ev.TraceID = fmt.Sprintf("%032x", i+1)
			ev.SpanID = fmt.Sprintf("%016x", i+1)
		}
		seq, err := h.log.Append(context.Background(), ev)
		require.NoError(h.t, err)
		seqs[i] = seq
	}
	return seqs
}

// checkpoint signs a checkpoint of the whole log now.
func (h *auditHarness) checkpoint() audit.Checkpoint {
	h.t.Helper()
	cp, err := h.checkpoints.Checkpoint(context.Background())
	require.NoError(h.t, err)
	return cp
}

func (h *auditHarness) events() []audit.Event { return h.store.Events() }

func (h *auditHarness) lastEvent() audit.Event {
	h.t.Helper()
	evs := h.events()
	require.NotEmpty(h.t, evs)
	return evs[len(evs)-1]
}

func (h *auditHarness) pseudonym(bsn string) string { return h.pseudonyms.Pseudonym(bsn) }

// viewEvent is an event like a resident view leaves.
func viewEvent(subject, dept, purpose, decision string, status int) audit.Event {
	return audit.Event{
		Operation: "POST /v1/resident-views",
		Actor:     audit.Actor{Sub: "emp-" + dept, Department: dept, Roles: []string{"medewerker"}},
		Purpose:   purpose, Subject: subject, Decision: decision, Status: status,
	}
}

// seqsOf are the seq fields of a search answer's events.
func seqsOf(t *testing.T, items any) []int64 {
	t.Helper()
	list, ok := items.([]any)
	require.True(t, ok, "a list: %v", items)
	out := []int64{}
	for _, it := range list {
		out = append(out, int64(it.(map[string]any)["seq"].(float64)))
	}
	return out
}

func TestAuditSearchFiltersNewestFirst(t *testing.T) {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		body string
		want []int64
	}{
		{"no filter gives every event", `{}`, []int64{6, 5, 4, 3, 2, 1}},
		{"bsn matches through the pseudonym", `{"bsn":"` + bsnA + `"}`, []int64{5, 3, 1}},
		{"actor", `{"actor":"emp-kcc"}`, []int64{4, 3}},
		{"department", `{"department":"burgerzaken"}`, []int64{5, 2, 1}},
		{"purpose", `{"purpose":"klantcontact"}`, []int64{4, 3}},
		{"decision", `{"decision":"deny"}`, []int64{6, 5}},
		{"from is inclusive", `{"from":"2026-11-01T14:00:00Z"}`, []int64{6, 5, 4, 3}},
		{"to is exclusive", `{"to":"2026-11-01T14:00:00Z"}`, []int64{2, 1}},
		{"filters combine", `{"bsn":"` + bsnA + `","department":"burgerzaken","decision":"allow"}`, []int64{1}},
		{"nothing matches", `{"actor":"nobody"}`, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newAuditHarness(t)
			a, b := h.pseudonym(bsnA), h.pseudonym(bsnB)
			evs := []audit.Event{
				viewEvent(a, "burgerzaken", "reisdocumenten", audit.DecisionAllow, 200),
				viewEvent(b, "burgerzaken", "reisdocumenten", audit.DecisionAllow, 200),
				viewEvent(a, "kcc", "klantcontact", audit.DecisionAllow, 200),
				viewEvent(b, "kcc", "klantcontact", audit.DecisionAllow, 200),
				viewEvent(a, "burgerzaken", "bijstand", audit.DecisionDeny, 403),
				viewEvent("", "sociale-zaken", "bijstand", audit.DecisionDeny, 400),
			}
			for i := range evs {
				evs[i].Time = at.Add(time.Duration(i) * time.Hour)
			}
			h.seed(evs...)

			r := h.call(http.MethodPost, "/v1/audit/_search", h.auditor(), tt.body)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			assert.Equal(t, tt.want, seqsOf(t, r.json["events"]))
			assert.NotContains(t, r.json, "next", "one page holds them all")
		})
	}
}

func TestAuditSearchPagesWithACursorNewestFirst(t *testing.T) {
	h := newAuditHarness(t)
	for range 7 {
		h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	}
	tok := h.auditor()
	var pages [][]int64
	body := `{"bsn":"` + bsnA + `","limit":3}`
	for range 5 {
		r := h.call(http.MethodPost, "/v1/audit/_search", tok, body)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		pages = append(pages, seqsOf(t, r.json["events"]))
		next, ok := r.json["next"].(string)
		if !ok {
			break
		}
		body = `{"bsn":"` + bsnA + `","limit":3,"cursor":"` + next + `"}`
	}
	// The searches are recorded against the resident too, but after the
	// page that found them: the first page is 7, 6, 5.
	assert.Equal(t, [][]int64{{7, 6, 5}, {4, 3, 2}, {1}}, pages)
}

func TestAuditSearchRefusesBadInput(t *testing.T) {
	h := newAuditHarness(t)
	tests := []struct {
		name   string
		body   string
		status int
		param  string
	}{
		{"BSN failing the 11-proef", `{"bsn":"123456789"}`, 400, "bsn"},
		{"unknown field", `{"employee":"emp-kcc"}`, 400, "body"},
		{"unknown decision", `{"decision":"maybe"}`, 400, "decision"},
		{"to before from", `{"from":"2026-11-02T00:00:00Z","to":"2026-11-01T00:00:00Z"}`, 400, "to"},
		{"not a time", `{"from":"yesterday"}`, 400, "from"},
		{"limit too large", `{"limit":100000}`, 400, "limit"},
		{"cursor not given out", `{"cursor":"-3"}`, 400, "cursor"},
		{"trailing data", `{} {}`, 400, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.events())
			r := h.call(http.MethodPost, "/v1/audit/_search", h.auditor(), tt.body)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			params, _ := r.json["invalidParams"].([]any)
			require.NotEmpty(t, params, "400 says what is wrong")
			assert.Equal(t, tt.param, params[0].(map[string]any)["name"])
			require.Len(t, h.events(), before+1, "the refusal is an event")
			assert.Equal(t, audit.DecisionDeny, h.lastEvent().Decision)
			assert.Equal(t, 400, h.lastEvent().Status)
		})
	}
}

func TestAuditSearchByBSNIsRecordedAgainstTheResident(t *testing.T) {
	h := newAuditHarness(t)
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	r := h.call(http.MethodPost, "/v1/audit/_search", h.auditor(), `{"bsn":"`+bsnA+`"}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)

	ev := h.lastEvent()
	assert.Equal(t, "POST /v1/audit/_search", ev.Operation)
	assert.Equal(t, audit.Actor{Sub: "aud-1", Department: "audit", Roles: []string{"auditor"}}, ev.Actor)
	assert.Equal(t, h.pseudonym(bsnA), ev.Subject)
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.Equal(t, http.StatusOK, ev.Status)
	recs, err := h.store.Records(context.Background(), 0, 100)
	require.NoError(t, err)
	for _, rec := range recs {
		assert.NotContains(t, string(rec.Data), bsnA, "the BSN is never stored, only its pseudonym")
	}
	assert.NotContains(t, string(r.body), bsnA)
	assert.NotContains(t, h.logs.String(), bsnA, "no BSN in any log line")
}

// auditorCalls are the endpoints only an auditor may use.
var auditorCalls = []struct {
	name, method, path, body string
}{
	{"search", http.MethodPost, "/v1/audit/_search", `{}`},
	{"event", http.MethodGet, "/v1/audit/events/1", ""},
	{"export", http.MethodPost, "/v1/audit/_export", `{}`},
}

func TestAuditorEndpointsRefuseOthers(t *testing.T) {
	h := newAuditHarness(t)
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	h.checkpoint()
	callers := []struct {
		name   string
		token  string
		status int
	}{
		{"an employee", h.staff("burgerzaken"), http.StatusForbidden},
		{"a privacy officer", h.staff("privacy", "privacy-officer"), http.StatusForbidden},
		{"a resident", h.resident(bsnA), http.StatusUnauthorized},
		{"nobody", "", http.StatusUnauthorized},
	}
	for _, c := range auditorCalls {
		for _, who := range callers {
			t.Run(c.name+" by "+who.name, func(t *testing.T) {
				before := len(h.events())
				r := h.call(c.method, c.path, who.token, c.body)
				assert.Equal(t, who.status, r.status, "%s", r.body)
				assert.NotContains(t, r.json, "events")
				assert.NotContains(t, string(r.body), h.pseudonym(bsnA), "no event leaks")
				require.Len(t, h.events(), before+1, "the refusal is an event")
				ev := h.lastEvent()
				assert.Equal(t, audit.DecisionDeny, ev.Decision)
				assert.Equal(t, who.status, ev.Status)
				if who.status == http.StatusUnauthorized {
					assert.NotEmpty(t, r.header.Get("WWW-Authenticate"))
					assert.Empty(t, ev.Actor.Sub)
				} else {
					assert.NotEmpty(t, ev.Actor.Sub)
				}
			})
		}
	}
}

func TestEveryAuditCallIsAnEvent(t *testing.T) {
	h := newAuditHarness(t)
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	h.checkpoint()
	tests := []struct {
		name, method, path, token, body, operation string
		subject                                    string
	}{
		{"search", http.MethodPost, "/v1/audit/_search", h.auditor(), `{"purpose":"klantcontact",` + kccContext + `}`, "POST /v1/audit/_search", ""},
		{"event", http.MethodGet, "/v1/audit/events/1", h.auditor(), "", "GET /v1/audit/events/{seq}", h.pseudonym(bsnA)},
		{"checkpoint", http.MethodGet, "/v1/audit/checkpoint", h.staff("kcc"), "", "GET /v1/audit/checkpoint", ""},
		{"consistency", http.MethodGet, "/v1/audit/consistency?from=1&to=1", h.resident(bsnB), "", "GET /v1/audit/consistency", ""},
		{"export", http.MethodPost, "/v1/audit/_export", h.auditor(), `{"format":"ldv"}`, "POST /v1/audit/_export", ""},
		{"subject access by a resident", http.MethodPost, "/v1/subject-access", h.resident(bsnA), `{}`, "POST /v1/subject-access", h.pseudonym(bsnA)},
		{"subject access by an employee", http.MethodPost, "/v1/subject-access", h.staff("kcc"), `{"bsn":"` + bsnB + `","purpose":"inzage"}`, "POST /v1/subject-access", h.pseudonym(bsnB)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.events())
			r := h.call(tt.method, tt.path, tt.token, tt.body)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			require.Len(t, h.events(), before+1, "one event per call")
			ev := h.lastEvent()
			assert.Equal(t, tt.operation, ev.Operation)
			assert.Equal(t, audit.DecisionAllow, ev.Decision)
			assert.Equal(t, http.StatusOK, ev.Status)
			assert.Equal(t, tt.subject, ev.Subject)
			assert.NotEmpty(t, ev.Actor.Roles, "the caller is named")
		})
	}
}

func TestAuditStoreFailureMeansNoData(t *testing.T) {
	calls := []struct{ name, method, path, body string }{
		{"search", http.MethodPost, "/v1/audit/_search", `{}`},
		{"event", http.MethodGet, "/v1/audit/events/1", ""},
		{"checkpoint", http.MethodGet, "/v1/audit/checkpoint", ""},
		{"consistency", http.MethodGet, "/v1/audit/consistency?from=1&to=2", ""},
		{"export", http.MethodPost, "/v1/audit/_export", `{}`},
		{"subject access", http.MethodPost, "/v1/subject-access", `{"bsn":"` + bsnA + `","purpose":"inzage"}`},
	}
	failures := []struct {
		name string
		fail func(h *auditHarness)
	}{
		// Reads work, the event of the call cannot be written.
		{"append fails", func(h *auditHarness) { h.store.FailNextAppend(errors.New("disk full")) }},
		// Nothing works.
		{"store down", func(h *auditHarness) { h.store.Fail(errors.New("database down")) }},
	}
	for _, f := range failures {
		for _, c := range calls {
			t.Run(f.name+": "+c.name, func(t *testing.T) {
				h := newAuditHarness(t)
				h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200),
					viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
				h.checkpoint()
				tok := h.auditor()
				if c.name == "subject access" {
					tok = h.staff("kcc")
				}
				before := len(h.events())
				f.fail(h)
				r := h.call(c.method, c.path, tok, c.body)
				assert.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
				assert.NotEmpty(t, r.header.Get("Retry-After"))
				for _, leak := range []string{h.pseudonym(bsnA), "klantbeeld/audit", "emp-kcc", `"rows"`, `"proof"`} {
					assert.NotContains(t, string(r.body), leak, "no data without its record")
				}
				h.store.Fail(nil)
				assert.Len(t, h.events(), before, "nothing was recorded")
			})
		}
	}
}

func TestAuditEventNotFoundOrNotANumber(t *testing.T) {
	h := newAuditHarness(t)
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	tests := []struct {
		name   string
		path   string
		status int
	}{
		{"unknown seq is 404", "/v1/audit/events/999", 404},
		{"letters are 400", "/v1/audit/events/abc", 400},
		{"zero is 400", "/v1/audit/events/0", 400},
		{"too large for int64 is 400", "/v1/audit/events/99999999999999999999", 400},
		{"trailing slash is 404", "/v1/audit/events/1/", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.call(http.MethodGet, tt.path, h.auditor(), "")
			assert.Equal(t, tt.status, r.status, "%s", r.body)
			assert.NotContains(t, r.json, "event")
			if tt.status == 400 {
				params, _ := r.json["invalidParams"].([]any)
				require.NotEmpty(t, params)
				assert.Equal(t, "seq", params[0].(map[string]any)["name"])
			}
		})
	}
}

func TestAuditEndpointsAnswerOnlyTheirMethod(t *testing.T) {
	h := newAuditHarness(t)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, "/v1/audit/_search", "POST"},
		{http.MethodDelete, "/v1/audit/events/1", "GET"},
		{http.MethodPost, "/v1/audit/checkpoint", "GET"},
		{http.MethodPut, "/v1/audit/consistency", "GET"},
		{http.MethodGet, "/v1/audit/_export", "POST"},
		{http.MethodGet, "/v1/subject-access", "POST"},
	} {
		r := h.call(c.method, c.path, h.auditor(), "")
		assert.Equal(t, http.StatusMethodNotAllowed, r.status, "%s %s", c.method, c.path)
		assert.Equal(t, c.allow, r.header.Get("Allow"))
	}
}

func TestExportStreamsTheLog(t *testing.T) {
	h := newAuditHarness(t)
	h.seed(
		viewEvent(h.pseudonym(bsnA), "burgerzaken", "reisdocumenten", audit.DecisionAllow, 200),
		viewEvent(h.pseudonym(bsnB), "kcc", "klantcontact", audit.DecisionDeny, 403),
	)
	lines := func(body []byte) []string {
		var out []string
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		require.NoError(t, sc.Err())
		return out
	}

	t.Run("ndjson is the stored records byte for byte", func(t *testing.T) {
		r := h.call(http.MethodPost, "/v1/audit/_export", h.auditor(), `{"format":"ndjson"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "application/x-ndjson", r.header.Get("Content-Type"))
		recs, err := h.store.Records(context.Background(), 0, 100)
		require.NoError(t, err)
		got := lines(r.body)
		require.Len(t, got, len(recs), "the export's own event is recorded first, and exported")
		for i, rec := range recs {
			assert.Equal(t, string(rec.Data), got[i])
		}
		assert.Contains(t, got[len(got)-1], `"operation":"POST /v1/audit/_export"`)
	})

	t.Run("ldv has no employee identity", func(t *testing.T) {
		r := h.call(http.MethodPost, "/v1/audit/_export", h.auditor(), `{"format":"ldv"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "application/x-ndjson", r.header.Get("Content-Type"))
		got := lines(r.body)
		require.GreaterOrEqual(t, len(got), 3)
		var first map[string]any
		require.NoError(t, json.Unmarshal([]byte(got[0]), &first))
		assert.Equal(t, strings.Repeat("0", 31)+"1", first["trace_id"])
		assert.Contains(t, got[0], h.pseudonym(bsnA), "the pseudonymised data subject")
		for _, l := range got {
			assert.NotContains(t, l, "emp-burgerzaken")
			assert.NotContains(t, l, "aud-1")
		}
	})

	t.Run("from and to bound the time", func(t *testing.T) {
		evs := h.events()
		from := evs[1].Time.Format(time.RFC3339)
		to := evs[2].Time.Format(time.RFC3339)
		r := h.call(http.MethodPost, "/v1/audit/_export", h.auditor(), `{"from":"`+from+`","to":"`+to+`"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		got := lines(r.body)
		require.Len(t, got, 1)
		assert.Contains(t, got[0], `{"seq":2,`)
	})

	t.Run("unknown format is 400", func(t *testing.T) {
		r := h.call(http.MethodPost, "/v1/audit/_export", h.auditor(), `{"format":"csv"}`)
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.NotEmpty(t, r.json["invalidParams"])
	})
}
