package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/fixtures"
)

// wrapUpBody is a KCC employee's wrap-up of a call about Suzanne Moulin's
// passport: linked to her BURZA zaak, with a callback for Burgerzaken.
func wrapUpBody(onderwerp string) string {
	return fmt.Sprintf(`{"bsn":%q,"residentName":"Suzanne Moulin","onderwerp":%q,"inhoud":"Vraagt of zij met een verlopen paspoort kan reizen.",`+
		`"zaak":%q,"callback":{"gevraagdeHandeling":"Terugbellen over de aanvraag","toegewezenAan":{"soort":"afdeling","id":"burgerzaken"}}}`,
		fixtures.BSNSuzanne, onderwerp, zaakOf(fixtures.BSNSuzanne, "BURZA"))
}

func (e *env) wrapUp(token, session, body, key string) reply {
	e.t.Helper()
	req := func(r *http.Request) {
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
	}
	return e.requestWith(http.MethodPost, "/v1/contact-sessions/"+session+"/wrap-up", token, body, req)
}

// requestWith is request with extra headers set by edit.
func (e *env) requestWith(method, path, token, body string, edit func(*http.Request)) reply {
	e.t.Helper()
	saved := e.edit
	e.edit = edit
	defer func() { e.edit = saved }()
	return e.request(method, path, token, "application/json", body)
}

// kiContacts are the klantcontacten the Klantinteracties fake holds with
// that referentienummer.
func (e *env) kiContacts(ref string) []map[string]any {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.setup.Sources.KlantinteractiesURL()+"/klantcontacten?referentienummer="+ref, nil)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Token "+e.setup.Sources.Credentials.KlantinteractiesKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	var page struct {
		Results []map[string]any `json:"results"`
	}
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&page))
	return page.Results
}

// sfTasks are the Tasks the Salesforce fake holds for a wrap-up.
func (e *env) sfTasks(key string) []map[string]any {
	var out []map[string]any
	for _, t := range e.setup.Sources.SalesforceFake.Tasks() {
		if t["Klantbeeld_Key__c"] == key {
			out = append(out, t)
		}
	}
	return out
}

// TestAWrapUpIsVisibleEverywhere: a KCC employee opens a contact session,
// looks the resident up in it and wraps up, linked to her BURZA zaak, with
// a callback to Burgerzaken. Both systems hold the records once, even
// after a retry; the next Burgerzaken look-up shows the new contact and
// the open callback; Burgerzaken's callback list has it with the
// resident's name; and the audit log binds the KCC look-up to the
// klantcontact, for auditors and for the resident.
func TestAWrapUpIsVisibleEverywhere(t *testing.T) {
	e := newEnv(t)
	kcc, burza := e.token("kcc"), e.token("burgerzaken")
	session := e.openSession(kcc, "telefoon")
	require.NotEmpty(t, session)
	look := e.request(http.MethodPost, "/v1/resident-views", kcc, "application/json",
		`{"bsn":"`+fixtures.BSNSuzanne+`","purpose":"klantcontact","context":{"type":"contact-session","id":"`+session+`"}}`)
	require.Equal(t, http.StatusOK, look.status, "%s", look.body)
	lookSeq := int64(look.json["auditSeq"].(float64))

	w := e.wrapUp(kcc, session, wrapUpBody("Paspoort verlopen"), "call-1")
	require.Equal(t, http.StatusCreated, w.status, "%s", w.body)
	id := w.json["id"].(string)
	systems := w.json["systems"].(map[string]any)
	assert.Equal(t, "written", systems["klantinteracties"].(map[string]any)["status"], "%s", w.body)
	assert.Equal(t, "written", systems["salesforce"].(map[string]any)["status"], "%s", w.body)
	assert.Equal(t, []any{float64(lookSeq)}, w.json["boundLookups"], "the look-up made in the session is bound")
	assert.Equal(t, "closed", w.json["session"].(map[string]any)["status"])
	assert.Equal(t, id, w.json["session"].(map[string]any)["klantcontact"])
	assert.NotContains(t, string(w.body), fixtures.BSNSuzanne, "the answer names no BSN")

	// A retry, with the same key or none, replays: nothing is written twice.
	for _, key := range []string{"call-1", ""} {
		again := e.wrapUp(kcc, session, wrapUpBody("Paspoort verlopen"), key)
		require.Equal(t, http.StatusOK, again.status, "%s", again.body)
		assert.Equal(t, true, again.json["replayed"])
		assert.Equal(t, id, again.json["id"])
	}
	other := e.wrapUp(kcc, session, wrapUpBody("Iets anders"), "call-2")
	assert.Equal(t, http.StatusConflict, other.status, "a session is wrapped up once: %s", other.body)
	require.Len(t, e.kiContacts(id), 1, "one klantcontact in Klantinteracties")
	tasks := e.sfTasks(id)
	require.Len(t, tasks, 1, "one Task in Salesforce")
	assert.Equal(t, "Terugbellen: Terugbellen over de aanvraag", tasks[0]["Subject"])
	assert.Equal(t, true, tasks[0]["IsReminderSet"])
	assert.EqualValues(t, 0, tasks[0]["Reminders__c"])
	assert.NotEmpty(t, tasks[0]["WhoId"], "about the resident's Contact")

	// Another employee cannot wrap up someone else's session.
	assert.Equal(t, http.StatusNotFound, e.wrapUp(burza, session, wrapUpBody("Paspoort verlopen"), "").status)

	// The next Burgerzaken look-up shows the new contact and the callback.
	bz := e.request(http.MethodPost, "/v1/resident-views", burza, "application/json",
		`{"bsn":"`+fixtures.BSNSuzanne+`","purpose":"reisdocumenten","context":{"type":"zaak","id":"`+zaakOf(fixtures.BSNSuzanne, "BURZA")+`"}}`)
	require.Equal(t, http.StatusOK, bz.status, "%s", bz.body)
	assert.Contains(t, values(list(bz.json, "contacts"), "subject"), "Paspoort verlopen", "the KCC's contact is visible to Burgerzaken: %s", bz.body)
	var callback bool
	for _, c := range list(bz.json, "contacts") {
		if c["subject"] != "Paspoort verlopen" {
			continue
		}
		for _, task := range c["tasks"].([]any) {
			callback = callback || task.(map[string]any)["action"] == "Terugbellen over de aanvraag" && task.(map[string]any)["status"] == "te_verwerken"
		}
	}
	assert.True(t, callback, "and the open callback: %s", bz.body)
	assert.EqualValues(t, 2, bz.json["signals"].(map[string]any)["openCallbacks"], "the scenario's and the new one")

	// Burgerzaken's callback list holds it, with the resident's name.
	cbs := e.request(http.MethodPost, "/v1/callbacks/_search", burza, "application/json", `{"owner":"department"}`)
	require.Equal(t, http.StatusOK, cbs.status, "%s", cbs.body)
	var found map[string]any
	for _, c := range list(cbs.json, "callbacks") {
		if c["id"] == id {
			found = c
		}
	}
	require.NotNil(t, found, "%s", cbs.body)
	assert.Equal(t, "Suzanne Moulin", found["residentName"])
	assert.Equal(t, float64(0), found["remindersSent"])
	assert.Equal(t, false, found["escalated"])
	assert.NotContains(t, string(cbs.body), fixtures.BSNSuzanne)

	// The audit log binds the look-up to the klantcontact.
	var wrapEvent *audit.Event
	for _, ev := range e.events() {
		if ev.Operation == "POST /v1/contact-sessions/{id}/wrap-up" && ev.Status == http.StatusCreated {
			wrapEvent = &ev
		}
	}
	require.NotNil(t, wrapEvent)
	assert.Equal(t, &audit.Context{Type: "klantcontact", ID: id}, wrapEvent.Context)
	assert.Contains(t, wrapEvent.Reasons, fmt.Sprintf("binds look-ups %d", lookSeq))
	inSession := e.request(http.MethodPost, "/v1/audit/_search", e.token("auditor"), "application/json",
		`{"context":{"type":"contact-session","id":"`+session+`"}}`)
	require.Equal(t, http.StatusOK, inSession.status, "%s", inSession.body)
	assert.NotEmpty(t, list(inSession.json, "events"), "the auditor finds the session's look-ups")

	// The resident sees which contact justified the KCC's look-up.
	rtok, err := e.setup.Residents.Token(demoUser{Sub: fixtures.BSNSuzanne}, tokenOptions{Audience: demoResidentAudience})
	require.NoError(t, err)
	sa := e.request(http.MethodPost, "/v1/subject-access", rtok, "application/json", `{}`)
	require.Equal(t, http.StatusOK, sa.status, "%s", sa.body)
	var justified bool
	for _, row := range list(sa.json, "rows") {
		if row["seq"] == float64(lookSeq) {
			assert.Equal(t, map[string]any{"type": "klantcontact", "id": id}, row["justifiedBy"])
			justified = true
		}
	}
	assert.True(t, justified, "the look-up is in the resident's access history: %s", sa.body)
}

// TestAWrapUpWithSalesforceDownIsFinishedLater: with Salesforce down the
// Klantinteracties records are written and the answer says Salesforce is
// pending; once it is back the Task is made, once.
func TestAWrapUpWithSalesforceDownIsFinishedLater(t *testing.T) {
	e := newEnv(t)
	kcc := e.token("kcc")
	session := e.openSession(kcc, "telefoon")
	require.NotEmpty(t, session)
	e.setup.Sources.SalesforceFake.SetDown(true)
	w := e.wrapUp(kcc, session, wrapUpBody("Paspoort kwijt"), "k")
	require.Equal(t, http.StatusCreated, w.status, "%s", w.body)
	id := w.json["id"].(string)
	systems := w.json["systems"].(map[string]any)
	assert.Equal(t, "written", systems["klantinteracties"].(map[string]any)["status"])
	assert.Equal(t, "pending", systems["salesforce"].(map[string]any)["status"])
	require.Len(t, e.kiContacts(id), 1)
	assert.Empty(t, e.sfTasks(id))

	e.setup.Sources.SalesforceFake.SetDown(false)
	require.Eventually(t, func() bool { return len(e.sfTasks(id)) == 1 }, 30*time.Second, 100*time.Millisecond, "the Task is made once Salesforce is back")
	again := e.wrapUp(kcc, session, wrapUpBody("Paspoort kwijt"), "k")
	require.Equal(t, http.StatusOK, again.status, "%s", again.body)
	assert.Equal(t, "written", again.json["systems"].(map[string]any)["salesforce"].(map[string]any)["status"])
	assert.Len(t, e.sfTasks(id), 1, "not twice")
	require.Len(t, e.kiContacts(id), 1, "not twice")
}
