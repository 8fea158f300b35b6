package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/openapi"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
	"github.com/klantbeeld/klantbeeld/view/viewtest"
)

const bsn = "999993653"

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// world is a small resident as the fake connectors tell it, fresh for
// every harness (testdata/world.json; times are days before now).
func world(t testing.TB) *viewtest.Answers {
	t.Helper()
	a, err := viewtest.Read(filepath.Join("testdata", "world.json"))
	require.NoError(t, err)
	return a
}

type harness struct {
	t       testing.TB
	signer  *signer
	store   *audittest.Memory
	log     *audit.Log
	sources *viewtest.Answers
	brp     *viewtest.BRP
	zaken   *viewtest.Zaken
	sf      *viewtest.Salesforce
	ki      *viewtest.Klantinteracties
	handler http.Handler
	spec    *openapi.Spec
	logs    *bytes.Buffer
	policy  gateway.Decider
	// contexts verifies zaak and interne taak contexts.
	contexts *fakeContexts
	// configure changes the gateway's Config before it is built.
	configure []func(*gateway.Config)
}

type option func(*harness)

func withPolicy(d gateway.Decider) option { return func(h *harness) { h.policy = d } }

// withConfig changes the gateway's Config before it is built.
func withConfig(f func(*gateway.Config)) option {
	return func(h *harness) { h.configure = append(h.configure, f) }
}

func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	h := &harness{t: t, signer: newSigner(t, "k1"), store: &audittest.Memory{}, logs: &bytes.Buffer{}}
	h.sources = world(t)
	h.brp, h.zaken, h.sf, h.ki = h.sources.BRP, h.sources.Zaken, h.sources.Salesforce, h.sources.Klantinteracties
	engine, err := policies.NewEngine(context.Background(), policies.Embedded())
	require.NoError(t, err)
	h.policy = engine
	for _, o := range opts {
		o(h)
	}
	v, _ := newFileVerifier(t, h.signer.public(t))
	h.spec, err = openapi.Load()
	require.NoError(t, err)
	h.log = audit.NewLog(h.store, audit.LogOptions{})
	t.Cleanup(func() { h.log.Close() })
	key := bytes.Repeat([]byte("k"), 32)
	p, err := audit.NewPseudonymizer(key)
	require.NoError(t, err)
	cfg := gateway.Config{
		Sources:    h.sources.Sources(0),
		Policy:     h.policy,
		Audit:      h.log,
		Pseudonyms: p,
		Auth:       v,
		Spec:       h.spec,
		Logger:     slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        func() time.Time { return now },
	}
	h.contexts = newFakeContexts()
	withContexts(t, &cfg, h.store, h.contexts, now)
	for _, f := range h.configure {
		f(&cfg)
	}
	gw, err := gateway.New(cfg)
	require.NoError(t, err)
	h.handler = gw.Handler()
	return h
}

func (h *harness) sourceCalls() int { return h.sources.Calls() }

type answer struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

// do sends a request and checks the answer against the API document.
func (h *harness) do(method, path, token, contentType, body string, hdr ...string) answer {
	h.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	_ = json.Unmarshal(a.body, &a.json)
	assert.NotEmpty(h.t, a.header.Get("API-Version"), "API-Version on every answer")
	assert.Equal(h.t, "nosniff", a.header.Get("X-Content-Type-Options"))
	assert.Equal(h.t, "DENY", a.header.Get("X-Frame-Options"))
	if a.status >= 400 {
		assert.Equal(h.t, "application/problem+json", a.header.Get("Content-Type"), "errors are problem+json: %s", a.body)
		for _, f := range []string{"status", "title", "detail"} {
			assert.Contains(h.t, a.json, f)
		}
		assert.NotEqual(h.t, http.StatusInternalServerError, a.status, "never a 500 here: %s", a.body)
	}
	if err := h.spec.ValidateResponse(context.Background(), httptest.NewRequest(method, path, nil), a.status, a.header, a.body); err != nil && !errors.Is(err, openapi.ErrNoOperation) {
		h.t.Errorf("answer %d does not match the API document: %v\n%s", a.status, err, a.body)
	}
	return a
}

func (h *harness) view(token, body string, hdr ...string) answer {
	h.t.Helper()
	return h.do(http.MethodPost, "/v1/resident-views", token, "application/json", body, hdr...)
}

func (h *harness) lastEvent() audit.Event {
	h.t.Helper()
	evs := h.store.Events()
	require.NotEmpty(h.t, evs, "an audit event")
	return evs[len(evs)-1]
}

func TestReisdocumentenViewFiltersRecordsAndFields(t *testing.T) {
	h := newHarness(t)
	a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`,
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Fsc-Transaction-Id", "fsc-42")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)

	// BRP: asked for exactly the permitted fields; partners not disclosed.
	assert.ElementsMatch(t, []string{"naam", "geboorte", "verblijfplaats", "nationaliteiten", "burgerservicenummer"}, h.brp.Fields())
	person := a.json["person"].(map[string]any)
	assert.Contains(t, person, "naam")
	assert.NotContains(t, person, "partners")
	assert.NotContains(t, person, "adressering")

	// Zaken: only BURZA; the level asked of the source is the policy's.
	assert.Equal(t, "vertrouwelijk", h.zaken.Query().MaxVertrouwelijkheid)
	assert.Equal(t, "emp-burgerzaken", h.zaken.Query().User.ID)
	cases := a.json["cases"].([]any)
	require.Len(t, cases, 1)
	assert.Equal(t, "ZAAK-B", cases[0].(map[string]any)["identificatie"])

	// Salesforce: BURZA asked at the source; only BURZA cases and their callbacks.
	assert.Equal(t, []string{"BURZA"}, h.sf.Query().CaseDomains)
	assert.False(t, h.sf.Query().UndomainedTasks)
	crm := a.json["crm"].(map[string]any)
	require.Len(t, crm["cases"], 1)
	require.Len(t, crm["callbacks"], 1)
	cb := crm["callbacks"].([]any)[0].(map[string]any)
	assert.Equal(t, true, cb["overdue"])
	assert.Equal(t, true, cb["escalated"])

	// Klantinteracties: BURZA and undomained, not vertrouwelijk; the
	// SOCZA-linked contacts are gone, the one with an unknown zaak withheld.
	assert.False(t, h.ki.Query().IncludeVertrouwelijk)
	var subjects []string
	for _, c := range a.json["contacts"].([]any) {
		subjects = append(subjects, c.(map[string]any)["subject"].(string))
		assert.NotContains(t, c, "content", "reisdocumenten does not see contact content")
	}
	assert.Equal(t, []string{"Algemene vraag", "Paspoort opnieuw", "Paspoort"}, subjects)
	src := a.json["sources"].(map[string]any)
	assert.Equal(t, "partial", src["klantinteracties"].(map[string]any)["status"])

	assert.Equal(t, map[string]any{"openCallbacks": float64(1), "repeatContacts": float64(2), "overdueCallbacks": float64(1)}, a.json["signals"])
	assert.NotContains(t, a.json, "withheld")
	assert.NotContains(t, string(a.body), "SOCZA")
	assert.NotContains(t, string(a.body), "Bijstand")
	assert.NotContains(t, string(a.body), "uitkering")

	ev := h.lastEvent()
	assert.Equal(t, int64(ev.Seq), int64(a.json["auditSeq"].(float64)))
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", ev.TraceID, "the caller's trace is continued")
	assert.Equal(t, "fsc-42", ev.ForeignOperation.FSCTransactionID)
	assert.Equal(t, &audit.Context{Type: "zaak", ID: zaakOK}, ev.Context)
	assert.NotContains(t, ev.Subject, bsn)
	assert.Len(t, ev.Subject, 64)
	assert.Equal(t, "https://register.gemeente.example/verwerkingsactiviteiten/burza-reisdocumenten", ev.ProcessingActivity)
	byName := map[string]audit.SourceAccess{}
	for _, s := range ev.Sources {
		byName[s.Source] = s
	}
	assert.Equal(t, 1, byName["zaken"].Records)
	assert.Equal(t, 2, byName["salesforce"].Records)
	assert.Equal(t, 3, byName["klantinteracties"].Records)
	assert.Equal(t, 1, byName["klantinteracties"].Withheld)
	assert.NotContains(t, h.logs.String(), bsn, "no BSN in any log line")
}

func TestKlantcontactGetsSOCZAExistenceOnly(t *testing.T) {
	h := newHarness(t)
	a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	cases := a.json["cases"].([]any)
	require.Len(t, cases, 1)
	c := cases[0].(map[string]any)
	assert.NotContains(t, c, "omschrijving", "metadata only")
	assert.Equal(t, []any{map[string]any{"source": "zaken", "domain": "SOCZA", "count": float64(1), "note": "contact Sociale Zaken", "code": "existence_only"}}, a.json["withheld"],
		"the geheim SOCZA zaak is above zaakvertrouwelijk and not even counted")
	// Undomained callbacks and calls for KCC come from the source.
	assert.True(t, h.sf.Query().UndomainedTasks)
	assert.True(t, h.sf.Query().Calls)
}

func TestDeniedRequestsCallNoSourceAndAreAudited(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		token  string
		body   string
		status int
	}{
		{"auditor", h.signer.token(t, claims{"sub": "a1", "department": "audit", "roles": []string{"auditor"}}), `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`, 403},
		{"privacy officer", h.signer.token(t, claims{"sub": "p1", "department": "privacy", "roles": []string{"privacy-officer"}}), `{"bsn":"999993653","purpose":"klantcontact",` + kccContext + `}`, 403},
		{"burgerzaken claiming bijstand", h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"bijstand",` + zaakContext + `}`, 403},
		{"unknown purpose", h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"nieuwsgierigheid"}`, 403},
		{"inzage is not for views", h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"inzage"}`, 403},
		{"missing token", "", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`, 401},
		{"expired token", h.signer.token(t, claims{"sub": "x", "department": "kcc", "roles": []string{"medewerker"}, "exp": now.Add(-time.Hour).Unix()}), `{"bsn":"999993653","purpose":"klantcontact",` + kccContext + `}`, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.store.Events())
			a := h.view(tt.token, tt.body)
			assert.Equal(t, tt.status, a.status, "%s", a.body)
			assert.Zero(t, h.sourceCalls(), "no source is called")
			evs := h.store.Events()
			require.Len(t, evs, before+1, "one audit event")
			ev := evs[len(evs)-1]
			assert.Equal(t, audit.DecisionDeny, ev.Decision)
			assert.Equal(t, tt.status, ev.Status)
			assert.NotEmpty(t, ev.Reasons)
			if tt.status == http.StatusUnauthorized {
				assert.Empty(t, ev.Subject, "an unauthenticated request writes into no resident's history")
			} else {
				assert.NotEmpty(t, ev.Subject, "the refused look-up is recorded against the resident")
			}
			if tt.status == 401 {
				assert.NotEmpty(t, a.header.Get("WWW-Authenticate"), "%v %s", a.header, a.body)
			}
		})
	}
}

func TestAuditFailureMeansNoData(t *testing.T) {
	h := newHarness(t)
	h.store.Fail(errors.New("disk full"))
	a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
	assert.Equal(t, http.StatusServiceUnavailable, a.status)
	assert.NotEmpty(t, a.header.Get("Retry-After"))
	assert.NotContains(t, string(a.body), "Moulin")
	assert.NotContains(t, string(a.body), "ZAAK-B")
	assert.NotContains(t, string(a.body), bsn)

	rz := h.do(http.MethodGet, "/readyz", "", "", "")
	assert.Equal(t, http.StatusServiceUnavailable, rz.status)

	// Refusals cannot be recorded either, so they are 503 too.
	a = h.view("", `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
	assert.Equal(t, http.StatusServiceUnavailable, a.status)

	h.store.Fail(nil)
	a = h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
	assert.Equal(t, http.StatusOK, a.status, "recovers when the store does")
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, "/readyz", "", "", "").status)
}

// failingPolicy errs like a broken bundle would.
type failingPolicy struct{}

func (failingPolicy) Decide(context.Context, policies.Input) (policies.Decision, error) {
	return policies.Decision{}, policies.ErrEvaluation
}

func TestPolicyErrorFailsClosed(t *testing.T) {
	h := newHarness(t, withPolicy(failingPolicy{}))
	r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", strings.NewReader(`{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`))
	r.Header.Set("Authorization", "Bearer "+h.signer.token(t, employee("burgerzaken")))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	assert.Zero(t, h.sourceCalls())
	assert.Equal(t, audit.DecisionError, h.lastEvent().Decision)
}

func TestSourceFailuresDegradeOnlyTheirPart(t *testing.T) {
	h := newHarness(t)
	h.zaken.Err = "timeout"
	h.sf.Err = "unavailable"
	a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
	require.Equal(t, http.StatusOK, a.status)
	src := a.json["sources"].(map[string]any)
	assert.Equal(t, map[string]any{"status": "unavailable", "error": "timeout", "ms": src["zaken"].(map[string]any)["ms"]}, src["zaken"])
	assert.Equal(t, "unavailable", src["salesforce"].(map[string]any)["status"])
	assert.Equal(t, "ok", src["brp"].(map[string]any)["status"])
	assert.NotNil(t, a.json["person"])
	assert.Empty(t, a.json["cases"])
	// Contacts linking zaken cannot be placed without Zaken: withheld.
	assert.Equal(t, "partial", src["klantinteracties"].(map[string]any)["status"])
}

func TestSourcesLeftOutAreNotRequestedNotDenied(t *testing.T) {
	h := newHarness(t)
	a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`,"sources":["brp","zaken"]}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	src := a.json["sources"].(map[string]any)
	assert.Equal(t, map[string]any{"status": "not_requested"}, src["salesforce"])
	assert.Equal(t, map[string]any{"status": "not_requested"}, src["klantinteracties"])
	assert.Equal(t, "ok", src["zaken"].(map[string]any)["status"])
	assert.Zero(t, h.sf.Calls()+h.ki.Calls(), "sources left out are not called")
	for _, s := range h.lastEvent().Sources {
		switch s.Source {
		case "salesforce", "klantinteracties":
			assert.Equal(t, audit.SourceAccess{Source: s.Source, Status: "not_requested"}, s)
		default:
			assert.Equal(t, "ok", s.Status, s.Source)
		}
	}
}

func TestAConnectorPanicTakesOutOnlyItsPart(t *testing.T) {
	h := newHarness(t)
	h.zaken.Panic = "zaken connector bug"
	var a answer
	assert.NotPanics(t, func() {
		a = h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
	})
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	zk := a.json["sources"].(map[string]any)["zaken"].(map[string]any)
	assert.Equal(t, "unavailable", zk["status"])
	assert.Equal(t, "connector_error", zk["error"])
	assert.NotNil(t, a.json["person"])
	assert.Contains(t, h.logs.String(), "connector panic")
}

func TestBadInputIsA4xxProblem(t *testing.T) {
	h := newHarness(t)
	tok := h.signer.token(t, employee("burgerzaken"))
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		param       string
	}{
		{"malformed JSON", "POST", "/v1/resident-views", "application/json", `{"bsn":"999993653",`, 400, ""},
		{"not an object", "POST", "/v1/resident-views", "application/json", `["999993653"]`, 400, ""},
		{"trailing data", "POST", "/v1/resident-views", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `} {}`, 400, ""},
		{"trailing bracket", "POST", "/v1/resident-views", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}}`, 400, ""},
		{"trailing square bracket", "POST", "/v1/resident-views", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}]`, 400, ""},
		{"unknown field", "POST", "/v1/resident-views", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `,"why":"curious"}`, 400, ""},
		{"BSN failing the 11-proef", "POST", "/v1/resident-views", "application/json", `{"bsn":"123456789","purpose":"reisdocumenten",` + zaakContext + `}`, 400, "bsn"},
		{"BSN of letters", "POST", "/v1/resident-views", "application/json", `{"bsn":"99999365a","purpose":"reisdocumenten",` + zaakContext + `}`, 400, "bsn"},
		{"empty body", "POST", "/v1/resident-views", "application/json", ``, 400, ""},
		{"form body", "POST", "/v1/resident-views", "application/x-www-form-urlencoded", `bsn=999993653`, 415, ""},
		{"1 MB body", "POST", "/v1/resident-views", "application/json", `{"bsn":"999993653","purpose":"` + strings.Repeat("a", 1<<20) + `"}`, 413, ""},
		{"trailing slash", "POST", "/v1/resident-views/", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`, 404, ""},
		{"unknown path", "GET", "/v1/residents", "", ``, 404, ""},
		{"wrong method", "GET", "/v1/resident-views", "", ``, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do(tt.method, tt.path, tok, tt.contentType, tt.body)
			assert.Equal(t, tt.status, a.status, "%s", a.body)
			if tt.param != "" {
				params, _ := a.json["invalidParams"].([]any)
				require.NotEmpty(t, params)
				assert.Equal(t, tt.param, params[0].(map[string]any)["name"])
			}
			if tt.status == 400 {
				assert.NotEmpty(t, a.json["invalidParams"], "400 says what is wrong")
			}
			assert.Zero(t, h.sourceCalls())
			assert.NotContains(t, string(a.body), strings.Repeat("a", 100))
		})
	}
}

func TestOperatorAndDocumentEndpoints(t *testing.T) {
	h := newHarness(t)
	a := h.do(http.MethodGet, "/v1/openapi.json", "", "", "")
	assert.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "*", a.header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "3.0.3", a.json["openapi"])
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", "", "", "").status)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, "/readyz", "", "", "").status)
	assert.Equal(t, http.StatusMethodNotAllowed, h.do(http.MethodPost, "/v1/openapi.json", "", "", "").status)
}

func TestSubjectFactsGoIntoASecondDecision(t *testing.T) {
	rec := &recordingPolicy{}
	h := newHarness(t, withPolicy(rec))
	rec.engine, _ = policies.NewEngine(context.Background(), policies.Embedded())
	h.brp.Answer.Opschorting = "O"
	a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
	require.Equal(t, http.StatusOK, a.status)
	require.Len(t, rec.inputs, 2)
	assert.Nil(t, rec.inputs[0].Subject)
	assert.Equal(t, &policies.Subject{Opschorting: "O"}, rec.inputs[1].Subject)
	assert.Equal(t, []any{"the resident is deceased (opschortingBijhouding O)"}, a.json["notes"])
}

type recordingPolicy struct {
	mu     sync.Mutex
	engine *policies.Engine
	inputs []policies.Input
}

func (r *recordingPolicy) Decide(ctx context.Context, in policies.Input) (policies.Decision, error) {
	r.mu.Lock()
	r.inputs = append(r.inputs, in)
	r.mu.Unlock()
	return r.engine.Decide(ctx, in)
}

func TestClientHangUpStillRecordsTheAccess(t *testing.T) {
	h := newHarness(t)
	h.store.Delay(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/resident-views", strings.NewReader(`{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`))
	r.Header.Set("Authorization", "Bearer "+h.signer.token(t, employee("burgerzaken")))
	r.Header.Set("Content-Type", "application/json")
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.handler.ServeHTTP(httptest.NewRecorder(), r)
	}()
	time.Sleep(5 * time.Millisecond)
	cancel()
	<-done
	require.Len(t, h.store.Events(), 1, "the event is written although the client left")
}

func TestResponseBodyIsValidJSON(t *testing.T) {
	h := newHarness(t)
	a := h.view(h.signer.token(t, employee("sociale-zaken")), `{"bsn":"999993653","purpose":"bijstand",`+zaakContext+`}`)
	require.Equal(t, http.StatusOK, a.status)
	var v view.View
	require.NoError(t, json.NewDecoder(io.NopCloser(bytes.NewReader(a.body))).Decode(&v))
	for _, c := range v.Cases {
		assert.Equal(t, "SOCZA", c.Domain)
	}
	var person map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(v.Person, &person))
	assert.Contains(t, person, "partners", "bijstand sees partners")
}
