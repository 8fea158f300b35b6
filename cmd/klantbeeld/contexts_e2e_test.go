package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/fixtures"
)

// openSession opens a contact session with token and returns its id, or
// "" when the gateway refuses (a caller who holds none).
func (e *env) openSession(token, kanaal string) string {
	e.t.Helper()
	r := e.request(http.MethodPost, "/v1/contact-sessions", token, "application/json", `{"kanaal":"`+kanaal+`"}`)
	if r.status != http.StatusCreated {
		return ""
	}
	return r.json["id"].(string)
}

// zaakOf is the first zaak of the resident in domain, from the scenario.
func zaakOf(bsn, domain string) string {
	res, ok := fixtures.ResidentByBSN(bsn)
	if !ok {
		return ""
	}
	for _, z := range res.Zaken {
		zt, _ := fixtures.ZaaktypeByUUID(z.Zaaktype)
		if cat, _ := fixtures.CatalogusByUUID(zt.Catalogus); cat.Domein == domain {
			return z.UUID
		}
	}
	return ""
}

// justify is the "context" member (with its leading comma) a front-office
// app sends for the purpose: bijstand about the resident's SOCZA zaak,
// klantcontact and reisdocumenten (at the balie) in a contact session of
// the token's employee, stored straight into the audit store so that the
// tests' counts of events stay those of the look-ups; "" when there is
// none to give.
func (e *env) justify(token, bsn, purpose string) string {
	e.t.Helper()
	if purpose == "bijstand" {
		if id := zaakOf(bsn, "SOCZA"); id != "" {
			return `,"context":{"type":"zaak","id":"` + id + `"}`
		}
		return ""
	}
	if purpose != "klantcontact" && purpose != "reisdocumenten" {
		return ""
	}
	tok, err := jwt.ParseString(token, jwt.WithVerify(false), jwt.WithValidate(false))
	if err != nil {
		return "" // no token, or not one: nobody to hold a session
	}
	dept, _ := tok.Get("department")
	d, _ := dept.(string)
	if tok.Subject() == "" || d == "" {
		return ""
	}
	id := uuid(e.t)
	require.NoError(e.t, e.app.Store.(audit.ContactSessionStore).AddContactSession(context.Background(), audit.ContactSession{
		ID: id, Owner: tok.Subject(), Department: d, Kanaal: "telefoon", OpenedAt: time.Now(),
	}))
	return `,"context":{"type":"contact-session","id":"` + id + `"}`
}

func uuid(t *testing.T) string {
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// TestLookUpsAreBoundToATask: through the whole system (the real
// connectors against the fakes), a purpose that requires a context is
// refused without one, with a made-up zaak, with another employee's
// session and with a zaak of another resident; the resident's own zaak, an
// interne taak of the department and the caller's own session let it
// through; break-glass with a reason is let through and flagged, and the
// auditor finds it. Every one is an audit event.
func TestLookUpsAreBoundToATask(t *testing.T) {
	e := newEnv(t)
	kcc, burza, socza := e.token("kcc"), e.token("burgerzaken"), e.token("sociale-zaken")
	other := e.openSession(e.token("burgerzaken"), "balie")
	require.NotEmpty(t, other)
	own := e.openSession(kcc, "telefoon")
	require.NotEmpty(t, own)
	body := func(purpose, rest string) string {
		return `{"bsn":"` + fixtures.BSNSuzanne + `","purpose":"` + purpose + `"` + rest + `}`
	}
	tests := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"NoContext", kcc, body("klantcontact", ""), 403, "context_required"},
		{"AnotherEmployeesSession", kcc, body("klantcontact", `,"context":{"type":"contact-session","id":"`+other+`"}`), 403, "contact_session_invalid"},
		{"AMadeUpZaak", burza, body("reisdocumenten", `,"context":{"type":"zaak","id":"a0000000-0000-4000-8000-00000000dead"}`), 403, "zaak_not_betrokkene"},
		{"AnotherResidentsZaak", socza, body("bijstand", `,"context":{"type":"zaak","id":"`+zaakOf(fixtures.BSNFamily, "SOCZA")+`"}`), 403, "zaak_not_betrokkene"},
		{"AnInterneTaakOfAnotherDepartment", socza, body("bijstand", `,"context":{"type":"internetaak","id":"f0000000-0000-4000-8000-000000000303"}`), 403, "internetaak_not_assigned"},
		{"TheCallersOwnSession", kcc, body("klantcontact", `,"context":{"type":"contact-session","id":"`+own+`"}`), 200, ""},
		{"TheResidentsOwnZaak", burza, body("reisdocumenten", `,"context":{"type":"zaak","id":"`+fixtures.ZaakUUID(101)+`"}`), 200, ""},
		{"AnInterneTaakOfTheDepartment", socza, body("bijstand", `,"context":{"type":"internetaak","id":"f0000000-0000-4000-8000-000000000104"}`), 200, ""},
		{"BreakGlassWithAReason", kcc, body("klantcontact", `,"breakGlass":{"reason":"Inwoner meldt zich in nood aan de balie, sessie kan niet worden geopend"}`), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.events())
			r := e.request(http.MethodPost, "/v1/resident-views", tt.token, "application/json", tt.body)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			evs := e.events()
			require.Len(t, evs, before+1, "one audit event")
			ev := evs[len(evs)-1]
			assert.Equal(t, tt.status, ev.Status)
			assert.Len(t, ev.Subject, 64, "recorded against the resident")
			if tt.code != "" {
				assert.Equal(t, "https://klantbeeld.gemeente.example/problems/"+tt.code, r.json["type"])
				assert.Equal(t, audit.DecisionDeny, ev.Decision)
				assert.Contains(t, ev.Reasons, "code:"+tt.code)
				assert.NotContains(t, r.json, "person", "no data")
				for _, s := range ev.Sources {
					assert.False(t, s.Called, "no source was asked: %s", s.Source)
				}
			} else {
				assert.Equal(t, audit.DecisionAllow, ev.Decision)
				assert.Contains(t, r.json, "person")
			}
			assert.Equal(t, tt.name == "BreakGlassWithAReason", ev.Flagged)
		})
	}

	auditor := e.token("auditor")
	s := e.request(http.MethodPost, "/v1/audit/_search", auditor, "application/json", `{"flagged":true}`)
	require.Equal(t, http.StatusOK, s.status, "%s", s.body)
	flagged := list(s.json, "events")
	require.Len(t, flagged, 1)
	assert.Equal(t, "Inwoner meldt zich in nood aan de balie, sessie kan niet worden geopend", flagged[0]["breakGlass"].(map[string]any)["reason"])

	// The session's look-ups are found by its context.
	s = e.request(http.MethodPost, "/v1/audit/_search", auditor, "application/json", `{"context":{"type":"contact-session","id":"`+own+`"},"decision":"allow"}`)
	require.Equal(t, http.StatusOK, s.status, "%s", s.body)
	ops := map[string]int{}
	for _, ev := range list(s.json, "events") {
		ops[ev["operation"].(string)]++
	}
	assert.Equal(t, map[string]int{"POST /v1/contact-sessions": 1, "POST /v1/resident-views": 1}, ops)
}
