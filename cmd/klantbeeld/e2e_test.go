package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/fixtures"
	"github.com/klantbeeld/klantbeeld/fixtures/sources"
	"github.com/klantbeeld/klantbeeld/openapi"
)

// env is the whole system on loopback: the four fake sources, the demo
// identity provider and the gateway built by NewApp (what `serve` and `demo`
// run) on port 0 with a SQLite audit log in a temp folder.
type env struct {
	t     *testing.T
	setup *demoSetup
	app   *App
	spec  *openapi.Spec
	// edit, when set, changes each request before it is sent.
	edit func(*http.Request)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	setup, err := newDemoSetup(t.TempDir(), "127.0.0.1:0", sources.Options{PageSize: 2})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	cfg := setup.Config
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := NewApp(context.Background(), cfg, logger)
	require.NoError(t, err)
	require.NoError(t, app.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		app.Close(ctx)
	})
	spec, err := openapi.Load()
	require.NoError(t, err)
	return &env{t: t, setup: setup, app: app, spec: spec}
}

func (e *env) token(label string) string {
	e.t.Helper()
	tok, err := e.setup.IdP.Token(demoUserByLabel(label), tokenOptions{})
	require.NoError(e.t, err)
	return tok
}

type reply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (e *env) request(method, path, token, contentType, body string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.app.URL()+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if e.edit != nil {
		e.edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	r := reply{status: resp.StatusCode, header: resp.Header, body: b}
	_ = json.Unmarshal(b, &r.json)
	assert.NotEmpty(e.t, r.header.Get("API-Version"))
	if r.status >= 400 {
		assert.Equal(e.t, "application/problem+json", r.header.Get("Content-Type"), "%s", b)
	}
	if err := e.spec.ValidateResponse(context.Background(), req, r.status, r.header, b); err != nil && err != openapi.ErrNoOperation {
		e.t.Errorf("%s %s: answer %d does not match the API document: %v\n%.1500s", method, path, r.status, err, b)
	}
	return r
}

// view asks for a view with the context its purpose requires (justify).
func (e *env) view(token, bsn, purpose string) reply {
	e.t.Helper()
	return e.request(http.MethodPost, "/v1/resident-views", token, "application/json", `{"bsn":"`+bsn+`","purpose":"`+purpose+`"`+e.justify(token, bsn, purpose)+`}`)
}

func (e *env) events() []audit.Event {
	e.t.Helper()
	evs, err := audit.Events(context.Background(), e.app.Store, 0, 10000)
	require.NoError(e.t, err)
	return evs
}

// list returns the values of field in the records of a list in the view.
func list(v map[string]any, path ...string) []map[string]any {
	var cur any = v
	for _, p := range path {
		m, _ := cur.(map[string]any)
		cur = m[p]
	}
	var out []map[string]any
	for _, r := range cur.([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func values(recs []map[string]any, field string) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r[field].(string))
	}
	sort.Strings(out)
	return out
}

// keysWithin checks that every record only has the permitted fields.
func keysWithin(t *testing.T, recs []map[string]any, permitted ...string) {
	t.Helper()
	for _, r := range recs {
		for k := range r {
			if k != "source" {
				assert.Contains(t, permitted, k, "field %q is not permitted", k)
			}
		}
	}
}

var brpAutoDelivered = []string{"geheimhoudingPersoonsgegevens", "opschortingBijhouding", "inOnderzoek", "rni", "verificatie"}

func personKeys(v map[string]any) []string {
	var out []string
	for k := range v["person"].(map[string]any) {
		if !slices.Contains(brpAutoDelivered, k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func signals(v map[string]any) (int, int) {
	s := v["signals"].(map[string]any)
	return int(s["repeatContacts"].(float64)), int(s["overdueCallbacks"].(float64))
}

func sourceStatus(v map[string]any, name string) string {
	return v["sources"].(map[string]any)[name].(map[string]any)["status"].(string)
}

var zaakFields = []string{"identificatie", "omschrijving", "zaaktype", "domain", "status", "startdatum", "einddatum", "einddatumGepland", "vertrouwelijkheidaanduiding"}
var crmFields = []string{"caseNumber", "subject", "status", "origin", "createdAt", "domain", "owner", "due", "reminders", "overdue", "escalated"}

// TestPurposeRows checks, for every row of the purpose matrix, that the view
// of the richest resident holds exactly the permitted records and fields.
func TestPurposeRows(t *testing.T) {
	e := newEnv(t)
	z := fixtures.ZaakID

	t.Run("reisdocumenten", func(t *testing.T) {
		r := e.view(e.token("burgerzaken"), fixtures.BSNSuzanne, "reisdocumenten")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		v := r.json
		assert.Equal(t, []string{"burgerservicenummer", "geboorte", "naam", "nationaliteiten", "verblijfplaats"}, personKeys(v))
		cases := list(v, "cases")
		assert.Equal(t, []string{z(101), z(102)}, values(cases, "identificatie"))
		keysWithin(t, cases, zaakFields...)
		assert.Equal(t, []string{"00001011"}, values(list(v, "crm", "cases"), "caseNumber"))
		assert.Equal(t, []string{"Terugbellen over afhaalmoment paspoort"}, values(list(v, "crm", "callbacks"), "subject"))
		keysWithin(t, list(v, "crm", "cases"), crmFields...)
		contacts := list(v, "contacts")
		assert.Equal(t, []string{"Afhaalmoment paspoort", "Spoedaanvraag paspoort", "Virtuele assistent: openingstijden stadswinkel", "Vraag over verhuizing"}, values(contacts, "subject"))
		keysWithin(t, contacts, "channel", "at", "subject", "domain")
		repeat, overdue := signals(v)
		assert.Equal(t, 2, repeat)
		assert.Equal(t, 0, overdue)
		assert.NotContains(t, v, "withheld")
		for _, s := range []string{"brp", "zaken", "salesforce", "klantinteracties"} {
			assert.Equal(t, "ok", sourceStatus(v, s), s)
		}
	})

	t.Run("bijstand", func(t *testing.T) {
		r := e.view(e.token("sociale-zaken"), fixtures.BSNSuzanne, "bijstand")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		v := r.json
		keys := personKeys(v)
		assert.Subset(t, []string{"burgerservicenummer", "geboorte", "nationaliteiten", "naam", "verblijfplaats", "partners", "kinderen", "ouders"}, keys)
		assert.Contains(t, keys, "partners")
		assert.Contains(t, keys, "ouders")
		assert.Equal(t, []string{z(103), z(104), z(106)}, values(list(v, "cases"), "identificatie"))
		for _, c := range list(v, "cases") {
			assert.Equal(t, "SOCZA", c["domain"])
		}
		assert.Equal(t, []string{"00001012"}, values(list(v, "crm", "cases"), "caseNumber"))
		callbacks := list(v, "crm", "callbacks")
		require.Len(t, callbacks, 1)
		assert.Equal(t, true, callbacks[0]["overdue"])
		contacts := list(v, "contacts")
		assert.Equal(t, []string{"Inkomstenopgave bijstand", "Virtuele assistent: openingstijden stadswinkel", "Vraag over bijstand", "Vraag over verhuizing"}, values(contacts, "subject"))
		keysWithin(t, contacts, "channel", "at", "subject", "content", "domain", "confidential", "tasks")
		repeat, overdue := signals(v)
		assert.Equal(t, 1, repeat)
		assert.Equal(t, 1, overdue)
		assert.NotContains(t, string(r.body), "BURZA", "Sociale Zaken sees no Burgerzaken records")
	})

	t.Run("klantcontact", func(t *testing.T) {
		r := e.view(e.token("kcc"), fixtures.BSNSuzanne, "klantcontact")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		v := r.json
		assert.Equal(t, []string{"adressering", "naam"}, personKeys(v))
		cases := list(v, "cases")
		assert.Equal(t, []string{z(101), z(102), z(105)}, values(cases, "identificatie"))
		keysWithin(t, cases, "identificatie", "zaaktype", "status", "startdatum", "einddatum", "einddatumGepland")
		assert.Equal(t, []any{map[string]any{"source": "zaken", "domain": "SOCZA", "count": float64(1), "note": "contact Sociale Zaken", "code": "existence_only"}}, v["withheld"])
		assert.Equal(t, []string{"00001011"}, values(list(v, "crm", "cases"), "caseNumber"))
		assert.Equal(t, []string{"Terugbellen over afhaalmoment paspoort"}, values(list(v, "crm", "callbacks"), "subject"))
		contacts := list(v, "contacts")
		assert.Equal(t, []string{"Afhaalmoment paspoort", "Spoedaanvraag paspoort", "Telefoongesprek over paspoort", "Virtuele assistent: openingstijden stadswinkel", "Vraag over bijstand"}, values(contacts, "subject"))
		for _, c := range contacts {
			if c["source"] == "salesforce" {
				assert.Equal(t, "telefoon", c["channel"], "a logged call is a phone contact")
			}
		}
		repeat, _ := signals(v)
		assert.Equal(t, 4, repeat)
	})

	t.Run("inzage is only for subject access", func(t *testing.T) {
		r := e.view(e.token("kcc"), fixtures.BSNSuzanne, "inzage")
		assert.Equal(t, http.StatusForbidden, r.status)
	})

	t.Run("overdue callback with three reminders", func(t *testing.T) {
		r := e.view(e.token("burgerzaken"), fixtures.BSNOverdue, "reisdocumenten")
		require.Equal(t, http.StatusOK, r.status)
		callbacks := list(r.json, "crm", "callbacks")
		require.Len(t, callbacks, 1, "the undomained callback is for KCC only")
		assert.Equal(t, true, callbacks[0]["overdue"])
		assert.Equal(t, true, callbacks[0]["escalated"])
		assert.Equal(t, float64(3), callbacks[0]["reminders"])
		assert.Equal(t, "Jan de Vries", callbacks[0]["owner"])
		repeat, overdue := signals(r.json)
		assert.Equal(t, 2, repeat, "three contacts in two weeks")
		assert.Equal(t, 1, overdue)

		k := e.view(e.token("kcc"), fixtures.BSNOverdue, "klantcontact")
		require.Equal(t, http.StatusOK, k.status)
		assert.Len(t, list(k.json, "crm", "callbacks"), 2, "KCC sees open callbacks, also those about no case")
	})

	t.Run("special residents", func(t *testing.T) {
		r := e.view(e.token("burgerzaken"), fixtures.BSNUnknown, "reisdocumenten")
		require.Equal(t, http.StatusOK, r.status)
		assert.Nil(t, r.json["person"])
		assert.Empty(t, r.json["cases"])
		assert.Empty(t, r.json["contacts"])
		assert.Equal(t, "ok", sourceStatus(r.json, "brp"), "an unknown BSN is not an error")

		r = e.view(e.token("burgerzaken"), fixtures.BSNOnlyBRP, "reisdocumenten")
		require.Equal(t, http.StatusOK, r.status)
		assert.NotNil(t, r.json["person"])
		assert.Empty(t, r.json["cases"])
		assert.Empty(t, list(r.json, "crm", "cases"))

		r = e.view(e.token("burgerzaken"), fixtures.BSNDeceased, "reisdocumenten")
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, []any{"the resident is deceased (opschortingBijhouding O)"}, r.json["notes"])
		assert.Contains(t, r.json["person"], "opschortingBijhouding")

		r = e.view(e.token("burgerzaken"), fixtures.BSNSecret, "reisdocumenten")
		require.Equal(t, http.StatusOK, r.status, "employees may see a resident with geheimhouding")
		assert.Equal(t, true, r.json["person"].(map[string]any)["geheimhoudingPersoonsgegevens"])

		r = e.view(e.token("burgerzaken"), fixtures.BSNConfidential, "reisdocumenten")
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, []string{z(1101)}, values(list(r.json, "cases"), "identificatie"), "the confidentieel zaak stays out")

		r = e.view(e.token("sociale-zaken"), fixtures.BSNLevels, "bijstand")
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, []string{z(1201), z(1202), z(1203)}, values(list(r.json, "cases"), "identificatie"), "zeer_geheim is above geheim")
	})
}

// socza collects every marker of a Sociale Zaken record in the scenario.
func soczaMarkers() []string {
	markers := []string{"SOCZA", "Sociale Zaken"}
	for _, zt := range fixtures.Zaaktypen {
		if c, _ := fixtures.CatalogusByUUID(zt.Catalogus); c.Domein == fixtures.SOCZA {
			markers = append(markers, zt.Omschrijving, zt.Identificatie, zt.UUID)
		}
	}
	for _, res := range fixtures.Residents {
		socza := map[string]bool{}
		for _, zk := range res.Zaken {
			zt, _ := fixtures.ZaaktypeByUUID(zk.Zaaktype)
			if c, _ := fixtures.CatalogusByUUID(zt.Catalogus); c.Domein == fixtures.SOCZA {
				socza[zk.UUID] = true
				markers = append(markers, zk.Identificatie, zk.Omschrijving, zk.UUID)
			}
		}
		if res.CRM != nil {
			soczaCases := map[string]bool{}
			for _, c := range res.CRM.Cases {
				if c.Domain == fixtures.SOCZA {
					soczaCases[c.ID] = true
					markers = append(markers, c.CaseNumber, c.Subject)
				}
			}
			for _, tk := range res.CRM.Tasks {
				if soczaCases[tk.CaseID] {
					markers = append(markers, tk.Subject)
				}
			}
		}
		for _, c := range res.Contacts {
			if socza[c.Zaak] {
				markers = append(markers, c.Onderwerp, c.Inhoud, c.UUID)
			}
		}
	}
	return markers
}

// TestBurgerzakenNeverSeesSocialeZaken asks the reisdocumenten view of every
// resident and looks for any Sociale Zaken record, field or marker.
func TestBurgerzakenNeverSeesSocialeZaken(t *testing.T) {
	e := newEnv(t)
	markers := soczaMarkers()
	require.Greater(t, len(markers), 30)
	tok := e.token("burgerzaken")
	for _, res := range fixtures.Residents {
		r := e.view(tok, res.BSN, "reisdocumenten")
		require.Equal(t, http.StatusOK, r.status, "%s: %s", res.BSN, r.body)
		body := string(r.body)
		for _, m := range markers {
			assert.NotContains(t, body, m, "resident %s (%s)", res.BSN, res.Story)
		}
		assert.NotContains(t, r.json, "withheld", "not even the existence of SOCZA records")
	}
	// The audit log says the same: nothing SOCZA disclosed.
	for _, ev := range e.events() {
		raw, _ := json.Marshal(ev)
		assert.NotContains(t, string(raw), "SOCZA")
	}
}

// TestDeniedRequestsReachNoSource checks refusals: problem+json, no request
// to any fake source, and an audit event for each.
func TestDeniedRequestsReachNoSource(t *testing.T) {
	e := newEnv(t)
	idp := e.setup.IdP
	past := time.Now().Add(-time.Hour)
	expired, err := idp.Token(demoUserByLabel("kcc"), tokenOptions{NotAfter: &past})
	require.NoError(t, err)
	wrongAud, err := idp.Token(demoUserByLabel("kcc"), tokenOptions{Audience: "other-api"})
	require.NoError(t, err)
	noExp, err := idp.Token(demoUserByLabel("kcc"), tokenOptions{NoExpiry: true})
	require.NoError(t, err)
	tests := []struct {
		name, token, purpose string
		status               int
	}{
		{"auditor", e.token("auditor"), "reisdocumenten", 403},
		{"privacy officer", e.token("privacy-officer"), "klantcontact", 403},
		{"burgerzaken claiming bijstand", e.token("burgerzaken"), "bijstand", 403},
		{"unknown purpose", e.token("kcc"), "nieuwsgierigheid", 403},
		{"missing token", "", "klantcontact", 401},
		{"expired token", expired, "klantcontact", 401},
		{"wrong audience", wrongAud, "klantcontact", 401},
		{"token without exp", noExp, "klantcontact", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.setup.Sources.Requests()
			eventsBefore := len(e.events())
			r := e.view(tt.token, fixtures.BSNSuzanne, tt.purpose)
			assert.Equal(t, tt.status, r.status, "%s", r.body)
			assert.Equal(t, before, e.setup.Sources.Requests(), "no request reached any source")
			evs := e.events()
			require.Len(t, evs, eventsBefore+1, "the refusal is audited")
			ev := evs[len(evs)-1]
			assert.Equal(t, audit.DecisionDeny, ev.Decision)
			assert.Equal(t, tt.status, ev.Status)
			assert.NotEmpty(t, ev.ProcessingActivity+strings.Join(ev.Reasons, ""))
		})
	}
}

func TestFailingSourcesDegradeOnlyTheirPart(t *testing.T) {
	e := newEnv(t)
	e.setup.Sources.Salesforce.SetFault(fixtures.Fault{Status: http.StatusInternalServerError})
	require.NoError(t, e.setup.Sources.Klantinteracties.Close()) // down
	r := e.view(e.token("burgerzaken"), fixtures.BSNSuzanne, "reisdocumenten")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "unavailable", sourceStatus(r.json, "salesforce"))
	assert.Equal(t, "unavailable", sourceStatus(r.json, "klantinteracties"))
	assert.Equal(t, "ok", sourceStatus(r.json, "brp"))
	assert.Equal(t, "ok", sourceStatus(r.json, "zaken"))
	assert.NotNil(t, r.json["person"])
	assert.Len(t, list(r.json, "cases"), 2)
	assert.Empty(t, list(r.json, "crm", "cases"))
	assert.Empty(t, list(r.json, "contacts"))

	// A slow source times out within its own budget; garbage is a bad response.
	e.setup.Sources.Salesforce.SetFault(fixtures.Fault{})
	e.setup.Sources.Zaken.SetFault(fixtures.Fault{Garbage: true})
	e.setup.Sources.BRP.SetFault(fixtures.Fault{Delay: 5 * time.Second})
	r = e.view(e.token("burgerzaken"), fixtures.BSNSuzanne, "reisdocumenten")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	// The BRP's own timeout (2 s) ended its part; its 5 s delay did not hold up the view.
	assert.Equal(t, "timeout", r.json["sources"].(map[string]any)["brp"].(map[string]any)["error"])
	assert.Equal(t, "bad_response", r.json["sources"].(map[string]any)["zaken"].(map[string]any)["error"])
	assert.Equal(t, "ok", sourceStatus(r.json, "salesforce"))
	assert.Nil(t, r.json["person"])
}

func TestAuditStoreDownMeansNoData(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.app.Store.Close())
	r := e.request(http.MethodPost, "/v1/resident-views", e.token("burgerzaken"), "application/json", `{"bsn":"`+fixtures.BSNSuzanne+`","purpose":"reisdocumenten","context":{"type":"zaak","id":"`+fixtures.ZaakUUID(101)+`"}}`)
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	body := string(r.body)
	for _, personal := range []string{"Moulin", "Suzanne", fixtures.BSNSuzanne, fixtures.ZaakID(101), "paspoort"} {
		assert.NotContains(t, body, personal)
	}
	ready := e.request(http.MethodGet, "/readyz", "", "", "")
	assert.Equal(t, http.StatusServiceUnavailable, ready.status)
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	tok := e.token("burgerzaken")
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"malformed JSON", "/v1/resident-views", `{"bsn": "999993653", "purpose": `, 400},
		{"unknown field", "/v1/resident-views", `{"bsn":"999993653","purpose":"reisdocumenten","reason":"nieuwsgierig"}`, 400},
		{"BSN failing the 11-proef", "/v1/resident-views", `{"bsn":"999993654","purpose":"reisdocumenten"}`, 400},
		{"1 MB body", "/v1/resident-views", `{"bsn":"999993653","purpose":"reisdocumenten","x":"` + strings.Repeat("x", 1<<20) + `"}`, 413},
		{"trailing slash", "/v1/resident-views/", `{"bsn":"999993653","purpose":"reisdocumenten"}`, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.setup.Sources.Requests()
			r := e.request(http.MethodPost, tt.path, tok, "application/json", tt.body)
			assert.Equal(t, tt.status, r.status, "%s", r.body)
			assert.Equal(t, before, e.setup.Sources.Requests())
		})
	}
}
