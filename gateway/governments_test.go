package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/gateway"
)

// oinUWV is the organisation the embedded bundle grants
// uwv-werk-en-inkomen.
const oinUWV = "00000001000000000001"

// organisation is a client-credentials token's claims: the OIN as sub
// and client_id, the organisation's name.
func organisation(oin string) claims {
	return claims{"sub": oin, "client_id": oin, "name": "Organisatie " + oin[len(oin)-4:]}
}

const uwvView = `{"bsn":"999993653","purpose":"uwv-werk-en-inkomen"}`

// reisdocumentenView is an employee's look-up for reisdocumenten, in a
// zaak of which the resident is a betrokkene (the purpose requires one).
const reisdocumentenView = `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`

func TestAnOrganisationGetsWhatItsPurposeGrants(t *testing.T) {
	h := newHarness(t)
	tok := organisation(oinUWV)
	tok["act"] = map[string]any{"sub": "uwv-medewerker-17"}
	a := h.view(h.signer.token(t, tok), uwvView)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)

	assert.ElementsMatch(t, []string{"naam", "geboorte", "verblijfplaats"}, h.brp.Fields())
	person := a.json["person"].(map[string]any)
	assert.NotContains(t, person, "partners")
	assert.NotContains(t, person, "adressering")
	assert.NotContains(t, person, "burgerservicenummer")
	for _, s := range []string{"zaken", "salesforce", "klantinteracties"} {
		assert.Equal(t, "denied", a.json["sources"].(map[string]any)[s].(map[string]any)["status"], s)
	}
	assert.Zero(t, h.zaken.Calls()+h.sf.Calls()+h.ki.Calls(), "zaken, CRM and channel contacts are never asked")
	assert.Empty(t, a.json["cases"])
	assert.Empty(t, a.json["contacts"])

	ev := h.lastEvent()
	assert.Equal(t, audit.Actor{Sub: oinUWV, Organisation: oinUWV, Delegate: "uwv-medewerker-17"}, ev.Actor)
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.Equal(t, "https://register.gemeente.example/verwerkingsactiviteiten/verstrekking-uwv-werk-en-inkomen", ev.ProcessingActivity)
}

func TestAnOrganisationWithoutAContractForThePurposeIsRefusedAndAudited(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct{ oin, body string }{
		{oinUWV, `{"bsn":"999993653","purpose":"reisdocumenten"}`},
		{"00000001000000000002", uwvView},
	} {
		before := len(h.store.Events())
		a := h.view(h.signer.token(t, organisation(tt.oin)), tt.body)
		require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
		assert.Contains(t, a.json["codes"], "purpose_not_granted")
		assert.Contains(t, a.json["detail"], "is not granted to organisation \""+tt.oin+"\"")
		assert.Zero(t, h.sourceCalls(), "no source is asked")

		require.Len(t, h.store.Events(), before+1, "the refusal is recorded")
		ev := h.lastEvent()
		assert.Equal(t, audit.DecisionDeny, ev.Decision)
		assert.Equal(t, tt.oin, ev.Actor.Organisation)
		assert.Equal(t, http.StatusForbidden, ev.Status)
		assert.Contains(t, ev.Reasons, "code:purpose_not_granted")
		assert.NotEmpty(t, ev.Subject, "against the resident asked about")
	}
}

func TestGeheimhoudingIsRefusedToOrganisationsNotToEmployees(t *testing.T) {
	secret := func(h *harness) { h.brp.Answer.Geheimhouding = true }
	h := newHarness(t, secret)

	a := h.view(h.signer.token(t, organisation(oinUWV)), uwvView)
	require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
	assert.Equal(t, []any{"geheimhouding_organisation"}, a.json["codes"])
	assert.Contains(t, a.json["detail"], "geheimhoudingPersoonsgegevens", "the reason is given")
	assert.NotContains(t, a.json, "person")
	ev := h.lastEvent()
	assert.Equal(t, audit.DecisionDeny, ev.Decision)
	assert.Contains(t, ev.Reasons, "code:geheimhouding_organisation")

	a = h.view(h.signer.token(t, employee("burgerzaken")), reisdocumentenView)
	require.Equal(t, http.StatusOK, a.status, "an employee whose purpose permits sees the resident: %s", a.body)
	assert.NotNil(t, a.json["person"])
}

func TestAnOrganisationTokenIsGoodForTheScopesPurposesOnly(t *testing.T) {
	h := newHarness(t)
	tok := organisation(oinUWV)
	tok["scope"] = "uwv-leefsituatie"
	a := h.view(h.signer.token(t, tok), uwvView)
	require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
	assert.Contains(t, a.json["detail"], "not issued for purpose \"uwv-werk-en-inkomen\"")
	assert.Zero(t, h.sourceCalls())
	ev := h.lastEvent()
	assert.Equal(t, audit.DecisionDeny, ev.Decision)
	assert.Equal(t, oinUWV, ev.Actor.Organisation)

	tok["scope"] = "uwv-leefsituatie uwv-werk-en-inkomen"
	a = h.view(h.signer.token(t, tok), uwvView)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
}

func TestFSCAuthorizationAndTransactionID(t *testing.T) {
	h := newHarness(t)
	a := h.view("", uwvView, "Fsc-Authorization", h.signer.token(t, organisation(oinUWV)), "Fsc-Transaction-Id", "01JD8Z8W6R4ZK4T3W6G5QH0A9B")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Equal(t, "01JD8Z8W6R4ZK4T3W6G5QH0A9B", a.header.Get("Fsc-Transaction-Id"), "returned")
	ev := h.lastEvent()
	assert.Equal(t, oinUWV, ev.Actor.Organisation, "the FSC token is the token")
	require.NotNil(t, ev.ForeignOperation)
	assert.Equal(t, "01JD8Z8W6R4ZK4T3W6G5QH0A9B", ev.ForeignOperation.FSCTransactionID, "recorded as the foreign operation")

	// Refusals return it too.
	a = h.view("", uwvView, "Fsc-Authorization", "garbage", "Fsc-Transaction-Id", "tx-2")
	require.Equal(t, http.StatusUnauthorized, a.status)
	assert.Equal(t, "tx-2", a.header.Get("Fsc-Transaction-Id"))
	assert.Equal(t, "tx-2", h.lastEvent().ForeignOperation.FSCTransactionID)
}

var traceparentPattern = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

func TestTraceContextIsContinuedRecordedAndReturned(t *testing.T) {
	h := newHarness(t)
	const in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	a := h.view(h.signer.token(t, employee("burgerzaken")), reisdocumentenView, "traceparent", in)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	m := traceparentPattern.FindStringSubmatch(a.header.Get("traceparent"))
	require.NotNil(t, m, "a traceparent comes back: %q", a.header.Get("traceparent"))
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", m[1], "the caller's trace")
	assert.NotEqual(t, "00f067aa0ba902b7", m[2], "the gateway's own span")
	assert.Equal(t, "01", m[3])
	ev := h.lastEvent()
	assert.Equal(t, m[1], ev.TraceID)
	assert.Equal(t, m[2], ev.SpanID, "the span the audit event names is the one returned")
	assert.Equal(t, in, ev.ForeignOperation.Traceparent)

	// A problem names the trace too, and so does its event.
	a = h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"bijstand",`+zaakContext+`}`, "traceparent", in)
	require.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", a.json["traceId"])
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", h.lastEvent().TraceID)

	// Without one, or with an invalid one, a new trace starts: returned,
	// in the problem and in the event alike.
	for _, hdr := range [][]string{nil, {"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}} {
		a = h.view("not-a-token", `{}`, hdr...)
		require.Equal(t, http.StatusUnauthorized, a.status)
		m = traceparentPattern.FindStringSubmatch(a.header.Get("traceparent"))
		require.NotNil(t, m)
		assert.NotEqual(t, "4bf92f3577b34da6a3ce929d0e0e4736", m[1])
		assert.Equal(t, m[1], a.json["traceId"])
		assert.Equal(t, m[1], h.lastEvent().TraceID)
		assert.Nil(t, h.lastEvent().ForeignOperation)
	}

	// Answers no handler gives carry it as well.
	a = h.do(http.MethodGet, "/v1/nowhere", "", "", "", "traceparent", in)
	require.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", a.json["traceId"])
	assert.True(t, strings.HasPrefix(a.header.Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-"))
}

func TestCallersAreRateLimitedPerPurposeAndEachRefusalIsAudited(t *testing.T) {
	h := newHarness(t, withConfig(func(c *gateway.Config) {
		c.CallerLimits = map[string]gateway.RateLimit{
			"uwv-werk-en-inkomen": {Burst: 2, Every: time.Minute},
			"*":                   {Burst: 1, Every: time.Hour},
		}
	}))
	uwv := h.signer.token(t, organisation(oinUWV))
	// Another client of the same organisation shares its budget.
	other := organisation(oinUWV)
	other["sub"] = "uwv-batch"
	uwvBatch := h.signer.token(t, other)

	require.Equal(t, http.StatusOK, h.view(uwv, uwvView).status)
	require.Equal(t, http.StatusOK, h.view(uwvBatch, uwvView).status)
	before := len(h.store.Events())
	a := h.view(uwv, uwvView)
	require.Equal(t, http.StatusTooManyRequests, a.status, "%s", a.body)
	assert.Equal(t, "60", a.header.Get("Retry-After"))
	assert.Contains(t, a.json["detail"], "uwv-werk-en-inkomen")
	require.Len(t, h.store.Events(), before+1, "the refusal is recorded")
	ev := h.lastEvent()
	assert.Equal(t, audit.DecisionDeny, ev.Decision)
	assert.Equal(t, http.StatusTooManyRequests, ev.Status)
	assert.Equal(t, oinUWV, ev.Actor.Organisation)
	assert.Equal(t, "uwv-werk-en-inkomen", ev.Purpose)
	assert.NotEmpty(t, ev.Subject)

	// Employees each have their own budget under "*".
	bz := h.signer.token(t, employee("burgerzaken"))
	require.Equal(t, http.StatusOK, h.view(bz, reisdocumentenView).status)
	a = h.view(bz, reisdocumentenView)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	secs, err := strconv.Atoi(a.header.Get("Retry-After"))
	require.NoError(t, err)
	assert.InDelta(t, 3600, secs, 1)
	assert.Equal(t, "emp-burgerzaken", h.lastEvent().Actor.Sub)
	require.Equal(t, http.StatusOK, h.view(h.signer.token(t, employee("sociale-zaken")), `{"bsn":"999993653","purpose":"bijstand",`+zaakContext+`}`).status)
}

func TestCallerLimitsAreChecked(t *testing.T) {
	for _, limits := range []map[string]gateway.RateLimit{
		{"Not A Purpose": {}},
		{"bijstand": {Burst: -1}},
	} {
		_, err := newGateway(t, func(c *gateway.Config) { c.CallerLimits = limits })
		assert.Error(t, err)
	}
}

func TestCORS(t *testing.T) {
	const app = "https://klantbeeld.gemeente.example"
	h := newHarness(t, withConfig(func(c *gateway.Config) { c.CORSOrigins = []string{app, "http://localhost:5173"} }))
	preflight := func(path, origin, method string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodOptions, path, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, r)
		return w
	}

	w := preflight("/v1/resident-views", app, http.MethodPost)
	require.Equal(t, http.StatusNoContent, w.Code, "%s", w.Body)
	assert.Equal(t, app, w.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, http.MethodPost, w.Header().Get("Access-Control-Allow-Methods"))
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Headers"), "Authorization")
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Headers"), "Content-Type")
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Credentials"), "tokens, not cookies")
	assert.Contains(t, w.Header().Values("Vary"), "Origin")

	for _, origin := range []string{"https://evil.example", "https://klantbeeld.gemeente.example.evil.example", "null"} {
		w = preflight("/v1/resident-views", origin, http.MethodPost)
		assert.Equal(t, http.StatusForbidden, w.Code, origin)
		assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), origin)
		assert.Empty(t, w.Header().Get("Access-Control-Allow-Methods"), origin)
		assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	}
	w = preflight("/v1/resident-views", app, http.MethodDelete)
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
	assert.Empty(t, w.Header().Get("Access-Control-Allow-Origin"))
	w = preflight("/v1/nowhere", app, http.MethodGet)
	assert.Equal(t, http.StatusNotFound, w.Code, "no route, no preflight")
	assert.Zero(t, len(h.store.Events()), "a preflight is no access")

	// The request itself: allowed origins may read the answer.
	a := h.view(h.signer.token(t, employee("burgerzaken")), reisdocumentenView, "Origin", app)
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, app, a.header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, a.header.Get("Access-Control-Expose-Headers"), "traceparent")
	a = h.view(h.signer.token(t, employee("burgerzaken")), reisdocumentenView, "Origin", "https://evil.example")
	assert.Empty(t, a.header.Get("Access-Control-Allow-Origin"))

	// The API document, and only it, is open to every origin.
	for _, path := range []string{"/v1/openapi.json", "/v1/openapi.yaml"} {
		w = preflight(path, "https://evil.example", http.MethodGet)
		require.Equal(t, http.StatusNoContent, w.Code, path)
		assert.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"), path)
		a = h.do(http.MethodGet, path, "", "", "", "Origin", "https://evil.example")
		require.Equal(t, http.StatusOK, a.status)
		assert.Equal(t, "*", a.header.Get("Access-Control-Allow-Origin"), path)
	}
}

func TestCORSOriginsAreChecked(t *testing.T) {
	for _, origins := range [][]string{{"*"}, {"https://app.example/"}, {"app.example"}, {"https://App.example"}, {"ftp://app.example"}, {"https://app.example?x=1"}} {
		_, err := newGateway(t, func(c *gateway.Config) { c.CORSOrigins = origins })
		assert.Error(t, err, "%q", origins)
	}
	_, err := newGateway(t, func(c *gateway.Config) { c.CORSOrigins = []string{"https://app.example:8443", "http://localhost:5173"} })
	assert.NoError(t, err)
}

func TestTheAPIDocumentIsServedAsYAML(t *testing.T) {
	h := newHarness(t)
	a := h.do(http.MethodGet, "/v1/openapi.yaml", "", "", "")
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, "application/yaml", a.header.Get("Content-Type"))
	assert.Equal(t, h.spec.YAML(), a.body)
	assert.True(t, strings.HasPrefix(string(a.body), "openapi: 3."))
	a = h.do(http.MethodPost, "/v1/openapi.yaml", "", "", "")
	assert.Equal(t, http.StatusMethodNotAllowed, a.status)
}

// withClientCertificate is a resident-view request over mutual TLS with a
// client certificate whose subject serialNumber is serial.
func withClientCertificate(token, serial string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", strings.NewReader(uwvView))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{SerialNumber: serial, Organization: []string{"UWV"}}}}}
	return r
}

func TestAClientCertificateOfAnotherOrganisationIsRefused(t *testing.T) {
	h := newHarness(t)
	tok := h.signer.token(t, organisation(oinUWV))

	a := h.serve(withClientCertificate(tok, "00000001000000000002"))
	require.Equal(t, http.StatusUnauthorized, a.status, "%s", a.body)
	assert.Contains(t, a.json["detail"], "client certificate")
	assert.Zero(t, h.sourceCalls())
	ev := h.lastEvent()
	assert.Equal(t, audit.DecisionDeny, ev.Decision)
	assert.Equal(t, http.StatusUnauthorized, ev.Status)
	assert.Empty(t, ev.Subject, "an unauthenticated request is about nobody")

	a = h.serve(withClientCertificate(tok, oinUWV))
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
}

// newGateway builds a gateway of the harness's parts with edit applied
// to its Config.
func newGateway(t *testing.T, edit func(*gateway.Config)) (*gateway.Gateway, error) {
	t.Helper()
	var gw *gateway.Gateway
	var err error
	newHarness(t, withConfig(func(c *gateway.Config) {
		edit(c)
		gw, err = gateway.New(*c)
		// The harness's own build must succeed: give it what it can take.
		c.CallerLimits, c.CORSOrigins, c.MaxViewsInFlight = nil, nil, 0
	}))
	return gw, err
}
