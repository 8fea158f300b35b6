package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
)

// The contexts the harnesses know. The views of the tests name the one
// their purpose requires: kccSession is an open contact session of
// emp-kcc; zaakOK a zaak in which every resident is a betrokkene; taakOK an
// interne taak assigned to Sociale Zaken.
const (
	kccSession = "5e551000-0000-4000-8000-0000000000cc"
	zaakOK     = "a0000000-0000-4000-8000-0000000000b1"
	taakOK     = "f0000000-0000-4000-8000-0000000000b1"

	kccContext    = `"context":{"type":"contact-session","id":"` + kccSession + `"}`
	zaakContext   = `"context":{"type":"zaak","id":"` + zaakOK + `"}`
	socialeZakenT = "sociale-zaken"
)

// fakeContexts verifies zaak and interne taak contexts from maps.
type fakeContexts struct {
	mu sync.Mutex
	// zaken: the betrokkenen (BSNs) of each zaak id; "*": every resident.
	zaken map[string]string
	// taken: the department or employee each taak id is assigned to.
	taken map[string]string
	// err, when set, is every answer.
	err   error
	calls int
}

func newFakeContexts() *fakeContexts {
	return &fakeContexts{zaken: map[string]string{zaakOK: "*"}, taken: map[string]string{taakOK: socialeZakenT}}
}

var _ gateway.ContextVerifier = (*fakeContexts)(nil)

func (f *fakeContexts) ZaakBetrokkene(_ context.Context, id, bsn string, _ view.User) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return false, f.err
	}
	who, ok := f.zaken[id]
	return ok && (who == "*" || who == bsn), nil
}

func (f *fakeContexts) InterneTaakAssigned(_ context.Context, id string, u view.User, department string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return false, f.err
	}
	who, ok := f.taken[id]
	return ok && (who == u.ID || who == department), nil
}

func (f *fakeContexts) set(fn func(*fakeContexts)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// withContexts gives cfg the sessions of store, with kccSession opened at
// opened, and the contexts of verifier.
func withContexts(t testing.TB, cfg *gateway.Config, store *audittest.Memory, verifier gateway.ContextVerifier, opened time.Time) {
	t.Helper()
	require.NoError(t, store.AddContactSession(context.Background(), audit.ContactSession{
		ID: kccSession, Owner: "emp-kcc", Department: "kcc", Kanaal: "telefoon", OpenedAt: opened,
	}))
	cfg.Sessions, cfg.Contexts = store, verifier
}

// --- purpose binding to a task, end to end through the gateway -------------

const problemBase = "https://klantbeeld.gemeente.example/problems/"

// refusedForContext checks a 403 whose type is the reason code, that no
// source was asked, and that the refusal is the last audit event.
func refusedForContext(t *testing.T, h *harness, a answer, code string) audit.Event {
	t.Helper()
	require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
	assert.Equal(t, problemBase+code, a.json["type"])
	assert.Equal(t, []any{code}, a.json["codes"])
	assert.Zero(t, h.sourceCalls(), "no source is asked before the context holds")
	for _, k := range []string{"person", "cases", "contacts"} {
		assert.NotContains(t, a.json, k)
	}
	ev := h.lastEvent()
	assert.Equal(t, audit.DecisionDeny, ev.Decision)
	assert.Equal(t, http.StatusForbidden, ev.Status)
	assert.Contains(t, ev.Reasons, "code:"+code)
	assert.Len(t, ev.Subject, 64, "recorded against the resident")
	return ev
}

func TestAPurposeThatRequiresAContextIsRefusedWithoutOne(t *testing.T) {
	tests := []struct{ dept, purpose string }{
		{"kcc", "klantcontact"}, {"burgerzaken", "reisdocumenten"}, {"sociale-zaken", "bijstand"},
	}
	for _, tt := range tests {
		t.Run(tt.purpose, func(t *testing.T) {
			h := newHarness(t)
			a := h.view(h.signer.token(t, employee(tt.dept)), `{"bsn":"999993653","purpose":"`+tt.purpose+`"}`)
			ev := refusedForContext(t, h, a, "context_required")
			assert.Nil(t, ev.Context)
			assert.False(t, ev.Flagged)
		})
	}
	t.Run("AContextOfATypeThePurposeDoesNotAccept", func(t *testing.T) {
		h := newHarness(t)
		a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact",`+zaakContext+`}`)
		ev := refusedForContext(t, h, a, "context_required")
		assert.Equal(t, &audit.Context{Type: "zaak", ID: zaakOK}, ev.Context, "the context given is recorded")
	})
}

func TestAZaakContextMustHaveTheResidentAsBetrokkene(t *testing.T) {
	t.Run("AMadeUpZaakId", func(t *testing.T) {
		h := newHarness(t)
		a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"zaak","id":"a0000000-0000-4000-8000-00000000dead"}}`)
		ev := refusedForContext(t, h, a, "zaak_not_betrokkene")
		assert.Equal(t, &audit.Context{Type: "zaak", ID: "a0000000-0000-4000-8000-00000000dead"}, ev.Context)
	})
	t.Run("AnotherResidentsZaak", func(t *testing.T) {
		h := newHarness(t)
		h.contexts.set(func(f *fakeContexts) { f.zaken["a0000000-0000-4000-8000-0000000000b2"] = "999990068" })
		a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"zaak","id":"a0000000-0000-4000-8000-0000000000b2"}}`)
		refusedForContext(t, h, a, "zaak_not_betrokkene")
	})
	t.Run("TheResidentsOwnZaak", func(t *testing.T) {
		h := newHarness(t)
		h.contexts.set(func(f *fakeContexts) { f.zaken["a0000000-0000-4000-8000-0000000000b3"] = bsn })
		a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"zaak","id":"a0000000-0000-4000-8000-0000000000b3"}}`)
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		assert.Equal(t, audit.DecisionAllow, h.lastEvent().Decision)
	})
	t.Run("AZaaksysteemThatCannotBeAskedIs503WithoutData", func(t *testing.T) {
		h := newHarness(t)
		h.contexts.set(func(f *fakeContexts) { f.err = errors.New("zaken: unavailable") })
		a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
		require.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
		assert.Zero(t, h.sourceCalls())
		ev := h.lastEvent()
		assert.Equal(t, audit.DecisionError, ev.Decision)
		assert.Equal(t, http.StatusServiceUnavailable, ev.Status)
	})
	t.Run("NoWayToVerifyIsRefused", func(t *testing.T) {
		h := newHarness(t, withConfig(func(c *gateway.Config) { c.Contexts = nil }))
		a := h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
		refusedForContext(t, h, a, "context_unverifiable")
	})
}

func TestAnInterneTaakContextMustBeAssignedToTheCallerOrTheirDepartment(t *testing.T) {
	h := newHarness(t)
	h.contexts.set(func(f *fakeContexts) { f.taken["f0000000-0000-4000-8000-0000000000b2"] = "emp-other" })
	a := h.view(h.signer.token(t, employee("sociale-zaken")), `{"bsn":"999993653","purpose":"bijstand","context":{"type":"internetaak","id":"`+taakOK+`"}}`)
	require.Equal(t, http.StatusOK, a.status, "assigned to the department: %s", a.body)

	h = newHarness(t)
	h.contexts.set(func(f *fakeContexts) { f.taken["f0000000-0000-4000-8000-0000000000b2"] = "emp-other" })
	a = h.view(h.signer.token(t, employee("sociale-zaken")), `{"bsn":"999993653","purpose":"bijstand","context":{"type":"internetaak","id":"f0000000-0000-4000-8000-0000000000b2"}}`)
	refusedForContext(t, h, a, "internetaak_not_assigned")
}

func TestAContactSessionContextMustBeOpenAndTheCallersOwn(t *testing.T) {
	t.Run("AnotherEmployeesSession", func(t *testing.T) {
		h := newHarness(t)
		// kccSession is emp-kcc's; a colleague of the same department asks.
		a := h.view(h.signer.token(t, claims{"sub": "emp-kcc-2", "name": "Collega", "department": "kcc", "roles": []string{"medewerker"}}),
			`{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`)
		ev := refusedForContext(t, h, a, "contact_session_invalid")
		assert.Equal(t, &audit.Context{Type: "contact-session", ID: kccSession}, ev.Context)
	})
	t.Run("AMadeUpSession", func(t *testing.T) {
		h := newHarness(t)
		a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact","context":{"type":"contact-session","id":"5e551000-0000-4000-8000-00000000dead"}}`)
		refusedForContext(t, h, a, "contact_session_invalid")
	})
	t.Run("AClosedSession", func(t *testing.T) {
		h := newHarness(t)
		_, err := h.store.CloseContactSession(context.Background(), kccSession, "kc-1", now)
		require.NoError(t, err)
		a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`)
		refusedForContext(t, h, a, "contact_session_invalid")
	})
	t.Run("ASessionLeftIdleTooLong", func(t *testing.T) {
		later := now.Add(31 * time.Minute)
		h := newHarness(t, withConfig(func(c *gateway.Config) { c.Now = func() time.Time { return later } }))
		a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`)
		refusedForContext(t, h, a, "contact_session_invalid")
	})
	t.Run("TheIdleTimeoutIsConfigurable", func(t *testing.T) {
		later := now.Add(31 * time.Minute)
		h := newHarness(t, withConfig(func(c *gateway.Config) {
			c.Now = func() time.Time { return later }
			c.SessionIdle = time.Hour
		}))
		a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`)
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	})
}

func TestBreakGlassLetsTheLookUpThroughAndFlagsIt(t *testing.T) {
	reason := "Melding van de politie: inwoner vermist, geen contact mogelijk"
	h := newHarness(t, withConfig(func(c *gateway.Config) { c.AuditLog = c.Sessions.(*audittest.Memory) }))
	a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact","breakGlass":{"reason":"  `+reason+` "}}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Contains(t, a.json, "person")
	ev := h.lastEvent()
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.True(t, ev.Flagged, "flagged for review")
	assert.Equal(t, &audit.BreakGlass{Reason: reason}, ev.BreakGlass)
	assert.Nil(t, ev.Context)

	// A plain look-up in between, then the auditor's search for the flag.
	require.Equal(t, http.StatusOK, h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact",`+kccContext+`}`).status)
	s := h.do(http.MethodPost, "/v1/audit/_search", h.signer.token(t, claims{"sub": "a1", "department": "audit", "roles": []string{"auditor"}}), "application/json", `{"flagged":true}`)
	require.Equal(t, http.StatusOK, s.status, "%s", s.body)
	events := s.json["events"].([]any)
	require.Len(t, events, 1, "only the flagged event")
	found := events[0].(map[string]any)
	assert.Equal(t, float64(ev.Seq), found["seq"])
	assert.Equal(t, map[string]any{"reason": reason}, found["breakGlass"])
}

func TestBreakGlassNeedsAReasonAndThePolicysLeave(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"AReasonTooShort", `{"bsn":"999993653","purpose":"klantcontact","breakGlass":{"reason":"dringend"}}`, 400, ""},
		{"AReasonOfSpaces", `{"bsn":"999993653","purpose":"klantcontact","breakGlass":{"reason":"  dringend                   "}}`, 400, ""},
		{"BothAContextAndBreakGlass", `{"bsn":"999993653","purpose":"klantcontact",` + kccContext + `,"breakGlass":{"reason":"Melding van de politie over deze inwoner"}}`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			a := h.view(h.signer.token(t, employee("kcc")), tt.body)
			require.Equal(t, tt.status, a.status, "%s", a.body)
			assert.Zero(t, h.sourceCalls())
			assert.Equal(t, audit.DecisionDeny, h.lastEvent().Decision)
		})
	}
	t.Run("APurposeThatDoesNotAllowIt", func(t *testing.T) {
		engine, err := policies.NewEngine(context.Background(), withData(t, func(d map[string]any) {
			d["purposes"].(map[string]any)["klantcontact"].(map[string]any)["break_glass"] = false
		}))
		require.NoError(t, err)
		h := newHarness(t, withPolicy(engine))
		a := h.view(h.signer.token(t, employee("kcc")), `{"bsn":"999993653","purpose":"klantcontact","breakGlass":{"reason":"Melding van de politie over deze inwoner"}}`)
		ev := refusedForContext(t, h, a, "break_glass_not_allowed")
		assert.True(t, ev.Flagged, "an attempt is flagged for review too")
	})
}

func TestContactSessions(t *testing.T) {
	h := newHarness(t)
	kcc := h.signer.token(t, employee("kcc"))
	a := h.do(http.MethodPost, "/v1/contact-sessions", kcc, "application/json", `{"kanaal":"whatsapp"}`)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	id := a.json["id"].(string)
	assert.Equal(t, "/v1/contact-sessions/"+id, a.header.Get("Location"))
	assert.Equal(t, "open", a.json["status"])
	assert.Equal(t, "whatsapp", a.json["kanaal"])
	assert.Equal(t, "emp-kcc", a.json["owner"])
	assert.Equal(t, now.Add(30*time.Minute).Format(time.RFC3339), a.json["expiresAt"])
	ev := h.lastEvent()
	assert.Equal(t, "POST /v1/contact-sessions", ev.Operation)
	assert.Equal(t, &audit.Context{Type: "contact-session", ID: id}, ev.Context)
	assert.Equal(t, audit.DecisionAllow, ev.Decision)
	assert.Equal(t, http.StatusCreated, ev.Status)

	got := h.do(http.MethodGet, "/v1/contact-sessions/"+id, kcc, "", "")
	require.Equal(t, http.StatusOK, got.status, "%s", got.body)
	assert.Equal(t, id, got.json["id"])

	view := h.view(kcc, `{"bsn":"999993653","purpose":"klantcontact","context":{"type":"contact-session","id":"`+id+`"}}`)
	require.Equal(t, http.StatusOK, view.status, "a view in the session: %s", view.body)

	t.Run("SomeoneElsesIs404LikeOneThatDoesNotExist", func(t *testing.T) {
		other := h.do(http.MethodGet, "/v1/contact-sessions/"+id, h.signer.token(t, claims{"sub": "emp-kcc-2", "department": "kcc", "roles": []string{"medewerker"}}), "", "")
		none := h.do(http.MethodGet, "/v1/contact-sessions/5e551000-0000-4000-8000-00000000dead", kcc, "", "")
		require.Equal(t, http.StatusNotFound, other.status)
		require.Equal(t, http.StatusNotFound, none.status)
		assert.Equal(t, none.json["detail"], other.json["detail"])
		assert.Equal(t, audit.DecisionDeny, h.lastEvent().Decision)
	})
	t.Run("OrganisationsAndNoDataRolesCannotOpenOne", func(t *testing.T) {
		for _, c := range []claims{
			{"sub": "svc", "organisation": "00000001234567890000"},
			{"sub": "a1", "department": "audit", "roles": []string{"auditor"}},
		} {
			a := h.do(http.MethodPost, "/v1/contact-sessions", h.signer.token(t, c), "application/json", `{"kanaal":"telefoon"}`)
			require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
			assert.Equal(t, audit.DecisionDeny, h.lastEvent().Decision)
		}
	})
	t.Run("AKanaalThatIsNotOneIs400", func(t *testing.T) {
		a := h.do(http.MethodPost, "/v1/contact-sessions", kcc, "application/json", `{"kanaal":"postduif"}`)
		require.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
	})
	t.Run("AnIdThatIsNoUUIDIsNoSession", func(t *testing.T) {
		a := h.do(http.MethodGet, "/v1/contact-sessions/not-a-uuid", kcc, "", "")
		require.Equal(t, http.StatusNotFound, a.status, "%s", a.body)
		a = h.do(http.MethodGet, "/v1/contact-sessions/"+strings.Repeat("x", 300), kcc, "", "")
		require.Equal(t, http.StatusNotFound, a.status, "%s", a.body)
		assert.Nil(t, h.lastEvent().Context, "an id longer than any context is not recorded as one")
	})
}

// A view in a session keeps it open: its idle time counts from the last
// look-up, not from the opening.
func TestAViewKeepsTheSessionOpen(t *testing.T) {
	clock := now
	h := newHarness(t, withConfig(func(c *gateway.Config) { c.Now = func() time.Time { return clock } }))
	kcc := h.signer.token(t, employee("kcc"))
	body := `{"bsn":"999993653","purpose":"klantcontact",` + kccContext + `}`
	clock = now.Add(20 * time.Minute)
	require.Equal(t, http.StatusOK, h.view(kcc, body).status)
	clock = now.Add(45 * time.Minute) // 45 after opening, 25 after the view
	require.Equal(t, http.StatusOK, h.view(kcc, body).status)
	got := h.do(http.MethodGet, "/v1/contact-sessions/"+kccSession, kcc, "", "")
	assert.Equal(t, now.Add(75*time.Minute).Format(time.RFC3339), got.json["expiresAt"])
	clock = now.Add(76 * time.Minute)
	a := h.view(kcc, body)
	require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
	assert.Equal(t, problemBase+"contact_session_invalid", a.json["type"])
	got = h.do(http.MethodGet, "/v1/contact-sessions/"+kccSession, kcc, "", "")
	assert.Equal(t, "expired", got.json["status"])
}
