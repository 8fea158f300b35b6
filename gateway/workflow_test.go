package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/workflow"
)

// fakeWorkflow records what the gateway asks and answers as told.
type fakeWorkflow struct {
	mu      sync.Mutex
	wrapUps []workflow.WrapUp
	keys    []string
	err     error
	results map[string]*workflow.Result
	search  []workflow.SearchQuery
}

func (f *fakeWorkflow) WrapUp(_ context.Context, wu workflow.WrapUp, key string) (*workflow.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if r, ok := f.results[key]; ok {
		again := *r
		again.Replayed = true
		return &again, nil
	}
	f.wrapUps, f.keys = append(f.wrapUps, wu), append(f.keys, key)
	r := &workflow.Result{ID: fmt.Sprintf("kb-%d", len(f.wrapUps)),
		Klantinteracties: workflow.KlantinteractiesResult{Status: workflow.StatusWritten, Klantcontact: "1f455b9e-61fc-4528-a5ed-09f8eaa916b3"},
		Salesforce:       workflow.SalesforceResult{Status: workflow.StatusPending, Error: "salesforce: unavailable"}}
	if f.results == nil {
		f.results = map[string]*workflow.Result{}
	}
	f.results[key] = r
	return r, nil
}

func (f *fakeWorkflow) Search(_ context.Context, q workflow.SearchQuery) (*workflow.SearchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.search = append(f.search, q)
	return &workflow.SearchResult{
		Callbacks: []workflow.OpenCallback{{ID: "kb-1", Onderwerp: "Paspoort", ResidentName: "S. Moulin 999993653",
			Assignee: workflow.Assignee{Kind: workflow.Afdeling, ID: "burgerzaken"}, Due: now.Add(-time.Hour), RemindersSent: 1, Overdue: true}},
		Sources: map[string]string{"klantinteracties": "ok", "salesforce": "unavailable"},
	}, nil
}

func workflowHarness(t *testing.T, wf *fakeWorkflow) *harness {
	return newHarness(t, withConfig(func(c *gateway.Config) {
		c.Workflow = wf
		// The look-ups a wrap-up binds are read from the log.
		c.AuditLog = c.Sessions.(gateway.AuditLog)
	}))
}

func (h *harness) openSession(token string) string {
	h.t.Helper()
	a := h.do(http.MethodPost, "/v1/contact-sessions", token, "application/json", `{"kanaal":"telefoon"}`)
	require.Equal(h.t, http.StatusCreated, a.status, "%s", a.body)
	return a.json["id"].(string)
}

const wrapUpJSON = `{"bsn":"999993653","onderwerp":"Paspoort","inhoud":"Verlopen.","callback":{"gevraagdeHandeling":"Terugbellen","toegewezenAan":{"soort":"afdeling","id":"burgerzaken"}}}`

func TestWrapUpClosesTheSessionOnceAndBindsItsLookUps(t *testing.T) {
	wf := &fakeWorkflow{}
	h := workflowHarness(t, wf)
	kcc := h.signer.token(t, employee("kcc"))
	session := h.openSession(kcc)
	look := h.view(kcc, `{"bsn":"999993653","purpose":"klantcontact","context":{"type":"contact-session","id":"`+session+`"}}`)
	require.Equal(t, http.StatusOK, look.status, "%s", look.body)

	a := h.do(http.MethodPost, "/v1/contact-sessions/"+session+"/wrap-up", kcc, "application/json", wrapUpJSON, "Idempotency-Key", "abc")
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	assert.Equal(t, "kb-1", a.json["id"])
	assert.Equal(t, []any{look.json["auditSeq"]}, a.json["boundLookups"])
	assert.Equal(t, "pending", a.json["systems"].(map[string]any)["salesforce"].(map[string]any)["status"])
	require.Len(t, wf.wrapUps, 1)
	assert.Equal(t, "contact-session:"+session, wf.keys[0], "the session is the key")
	assert.Equal(t, "telefoon", wf.wrapUps[0].Kanaal, "the session's channel")
	assert.Equal(t, workflow.Assignee{Kind: workflow.Afdeling, ID: "burgerzaken"}, wf.wrapUps[0].Callback.Toegewezen)
	ev := h.lastEvent()
	assert.Equal(t, "POST /v1/contact-sessions/{id}/wrap-up", ev.Operation)
	assert.Equal(t, &audit.Context{Type: "klantcontact", ID: "kb-1"}, ev.Context)
	assert.NotEmpty(t, ev.Subject, "recorded against the resident")
	assert.NotContains(t, strings.Join(ev.Reasons, " "), "999993653")

	// The session is closed: no more look-ups in it; a retry replays.
	again := h.view(kcc, `{"bsn":"999993653","purpose":"klantcontact","context":{"type":"contact-session","id":"`+session+`"}}`)
	assert.Equal(t, http.StatusForbidden, again.status)
	replay := h.do(http.MethodPost, "/v1/contact-sessions/"+session+"/wrap-up", kcc, "application/json", wrapUpJSON)
	require.Equal(t, http.StatusOK, replay.status, "%s", replay.body)
	assert.Equal(t, true, replay.json["replayed"])
	assert.Len(t, wf.wrapUps, 1, "nothing written twice")
}

func TestWrapUpRefusesBadInputAndOthersSessions(t *testing.T) {
	wf := &fakeWorkflow{}
	h := workflowHarness(t, wf)
	kcc := h.signer.token(t, employee("kcc"))
	session := h.openSession(kcc)
	path := "/v1/contact-sessions/" + session + "/wrap-up"
	for _, tt := range []struct {
		name, token, path, body string
		hdr                     []string
		status                  int
	}{
		{"no token", "", path, wrapUpJSON, nil, http.StatusUnauthorized},
		{"someone else's session", h.signer.token(t, employee("burgerzaken")), path, wrapUpJSON, nil, http.StatusNotFound},
		{"no such session", kcc, "/v1/contact-sessions/6f1a8f4e-2b7c-4d0a-9a35-0c6a1b2e3d4f/wrap-up", wrapUpJSON, nil, http.StatusNotFound},
		{"a BSN failing the 11-proef", kcc, path, strings.Replace(wrapUpJSON, "999993653", "999993654", 1), nil, http.StatusBadRequest},
		{"an unknown assignee kind", kcc, path, strings.Replace(wrapUpJSON, `"afdeling"`, `"team"`, 1), nil, http.StatusBadRequest},
		{"no onderwerp", kcc, path, `{"bsn":"999993653","inhoud":"x"}`, nil, http.StatusBadRequest},
		{"an unknown field", kcc, path, strings.Replace(wrapUpJSON, `"inhoud"`, `"extra":1,"inhoud"`, 1), nil, http.StatusBadRequest},
		{"a bad Idempotency-Key", kcc, path, wrapUpJSON, []string{"Idempotency-Key", "with space"}, http.StatusBadRequest},
		{"a zaak the resident is no betrokkene of", kcc, path, strings.Replace(wrapUpJSON, `"inhoud"`, `"zaak":"6f1a8f4e-2b7c-4d0a-9a35-0c6a1b2e3d4f","inhoud"`, 1), nil, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do(http.MethodPost, tt.path, tt.token, "application/json", tt.body, tt.hdr...)
			assert.Equal(t, tt.status, a.status, "%s", a.body)
			assert.Empty(t, wf.wrapUps, "nothing written")
			assert.Equal(t, tt.status, h.lastEvent().Status, "audited")
		})
	}

	wf.err = &workflow.ValidationError{Field: "callback.toegewezen", Reason: "not in the directory (no Salesforce owner)"}
	a := h.do(http.MethodPost, path, kcc, "application/json", wrapUpJSON)
	require.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
	assert.Equal(t, "callback.toegewezenAan", a.json["invalidParams"].([]any)[0].(map[string]any)["name"])
	wf.err = fmt.Errorf("%w: 2nd", workflow.ErrKeyReused)
	assert.Equal(t, http.StatusConflict, h.do(http.MethodPost, path, kcc, "application/json", wrapUpJSON).status)
	wf.err = errors.Join(audit.ErrUnavailable, errors.New("jobs database gone"))
	assert.Equal(t, http.StatusServiceUnavailable, h.do(http.MethodPost, path, kcc, "application/json", wrapUpJSON).status)
	got := h.do(http.MethodGet, "/v1/contact-sessions/"+session, kcc, "", "")
	assert.Equal(t, "open", got.json["status"], "a failed wrap-up leaves the session open")
}

func TestCallbackSearchIsTheCallersAndTheirDepartments(t *testing.T) {
	wf := &fakeWorkflow{}
	h := workflowHarness(t, wf)
	bz := h.signer.token(t, employee("burgerzaken"))
	a := h.do(http.MethodPost, "/v1/callbacks/_search", bz, "application/json", `{}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.Len(t, wf.search, 1)
	assert.Equal(t, []workflow.Assignee{
		{Kind: workflow.Medewerker, ID: "emp-burgerzaken", Department: "burgerzaken"},
		{Kind: workflow.Afdeling, ID: "burgerzaken", Department: "burgerzaken"},
	}, wf.search[0].Owners)
	cb := a.json["callbacks"].([]any)[0].(map[string]any)
	assert.Equal(t, true, cb["overdue"])
	assert.Equal(t, map[string]any{"soort": "afdeling", "id": "burgerzaken"}, cb["toegewezenAan"])
	assert.NotContains(t, string(a.body), "999993653", "never a BSN, even one a name field carries")
	assert.Equal(t, "unavailable", a.json["sources"].(map[string]any)["salesforce"].(map[string]any)["status"])

	h.do(http.MethodPost, "/v1/callbacks/_search", bz, "application/json", `{"owner":"mine"}`)
	assert.Equal(t, []workflow.Assignee{{Kind: workflow.Medewerker, ID: "emp-burgerzaken", Department: "burgerzaken"}}, wf.search[1].Owners)
	assert.Equal(t, http.StatusForbidden, h.do(http.MethodPost, "/v1/callbacks/_search", h.signer.token(t, claims{"sub": "aud-1", "department": "audit", "roles": []string{"auditor"}}), "application/json", `{}`).status)
	assert.Equal(t, http.StatusBadRequest, h.do(http.MethodPost, "/v1/callbacks/_search", bz, "application/json", `{"owner":"everyone"}`).status)
	assert.Len(t, wf.search, 2)
}
