package klantinteracties_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/fixtures"
	"github.com/klantbeeld/klantbeeld/fixtures/contract"
	fake "github.com/klantbeeld/klantbeeld/fixtures/klantinteracties"
)

const specFile = "klantinteracties-openapi.yaml"

type writeEnv struct {
	fake   *fake.Fake
	rec    *contract.Recorder
	client *klantinteracties.Client
	base   string
}

func newWriteEnv(t *testing.T) *writeEnv {
	t.Helper()
	e := &writeEnv{fake: newFake()}
	e.rec = &contract.Recorder{Next: e.fake}
	srv := httptest.NewServer(e.rec)
	t.Cleanup(srv.Close)
	e.base = srv.URL + fake.BasePath
	var err error
	e.client, err = klantinteracties.New(klantinteracties.Config{URL: e.base, Token: token,
		HTTP: upstream.Config{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond, BreakerCooldown: time.Millisecond}})
	require.NoError(t, err)
	return e
}

func suzanneZaak(t *testing.T) string {
	t.Helper()
	res, ok := fixtures.ResidentByBSN(fixtures.BSNSuzanne)
	require.True(t, ok)
	require.NotEmpty(t, res.Zaken)
	return res.Zaken[0].UUID
}

// wrapUp writes what a wrap-up with a callback writes, looking before each
// create as a retried write does, and returns the klantcontact and taak.
func wrapUp(t *testing.T, c *klantinteracties.Client, ref string) (*klantinteracties.Klantcontact, *klantinteracties.InterneTaak) {
	t.Helper()
	ctx := context.Background()
	partij, err := c.Partij(ctx, fixtures.BSNSuzanne)
	require.NoError(t, err)
	res, _ := fixtures.ResidentByBSN(fixtures.BSNSuzanne)
	require.Equal(t, res.PartijUUID, partij)

	found, err := c.FindKlantcontact(ctx, ref)
	require.NoError(t, err)
	require.Nil(t, found)
	kc, err := c.CreateKlantcontact(ctx, klantinteracties.NewKlantcontact{
		Referentienummer: ref, Kanaal: "telefoon", Onderwerp: "Paspoort", Inhoud: "Levertijd", At: now.Add(-time.Minute),
	})
	require.NoError(t, err)
	found, err = c.FindKlantcontact(ctx, ref)
	require.NoError(t, err)
	require.NotNil(t, found)
	assert.Equal(t, kc.UUID, found.UUID)

	b, err := c.FindBetrokkene(ctx, kc.UUID, partij)
	require.NoError(t, err)
	require.Empty(t, b)
	b, err = c.CreateBetrokkene(ctx, kc.UUID, partij, "Suzanne Moulin")
	require.NoError(t, err)
	again, err := c.FindBetrokkene(ctx, kc.UUID, partij)
	require.NoError(t, err)
	assert.Equal(t, b, again)

	zaak := suzanneZaak(t)
	o, err := c.FindZaakOnderwerpobject(ctx, kc.UUID, zaak)
	require.NoError(t, err)
	require.Empty(t, o)
	o, err = c.CreateZaakOnderwerpobject(ctx, kc.UUID, zaak)
	require.NoError(t, err)
	againO, err := c.FindZaakOnderwerpobject(ctx, kc.UUID, zaak)
	require.NoError(t, err)
	assert.Equal(t, o, againO)

	actor, err := c.EnsureActor(ctx, klantinteracties.Actor{Kind: klantinteracties.ActorMedewerker, ID: "jdevries", Naam: "J. de Vries"})
	require.NoError(t, err)
	sameActor, err := c.EnsureActor(ctx, klantinteracties.Actor{Kind: klantinteracties.ActorMedewerker, ID: "jdevries"})
	require.NoError(t, err)
	assert.Equal(t, actor, sameActor, "an actor is created once")

	taak, err := c.FindInterneTaak(ctx, kc.UUID)
	require.NoError(t, err)
	require.Nil(t, taak)
	taak, err = c.CreateInterneTaak(ctx, klantinteracties.NewInterneTaak{
		Klantcontact: kc.UUID, GevraagdeHandeling: "Terugbellen", Toelichting: "Na 14:00", Actoren: []string{actor},
	})
	require.NoError(t, err)
	assert.Equal(t, klantinteracties.StatusTeVerwerken, taak.Status)
	assert.Equal(t, []string{actor}, taak.Actoren)
	assert.Equal(t, kc.UUID, taak.Klantcontact)
	assert.Equal(t, now, taak.ToegewezenOp)
	return kc, taak
}

func TestWritesAreReadBack(t *testing.T) {
	e := newWriteEnv(t)
	ctx := context.Background()
	kc, taak := wrapUp(t, e.client, "kbtest0001")

	contacts, err := e.client.Contacts(ctx, klantinteracties.Query{BSN: fixtures.BSNSuzanne})
	require.NoError(t, err)
	var got *klantinteracties.Contact
	for i := range contacts {
		if contacts[i].UUID == kc.UUID {
			got = &contacts[i]
		}
	}
	require.NotNil(t, got, "the view finds the written contact on the resident")
	assert.Equal(t, contacts[0].UUID, kc.UUID, "newest first")
	assert.Equal(t, []string{suzanneZaak(t)}, got.Zaken)
	require.Len(t, got.Taken, 1)
	assert.Equal(t, taak.UUID, got.Taken[0].UUID)

	open, err := e.client.OpenInterneTakenFor(ctx, klantinteracties.Actor{Kind: klantinteracties.ActorMedewerker, ID: "jdevries"})
	require.NoError(t, err)
	require.Len(t, open, 1)
	assert.Equal(t, taak.UUID, open[0].UUID)

	// Reassigned to a groep, then handled: no longer open for anyone.
	groep, err := e.client.EnsureActor(ctx, klantinteracties.Actor{Kind: klantinteracties.ActorGroep, ID: "burgerzaken-queue"})
	require.NoError(t, err)
	updated, err := e.client.UpdateInterneTaak(ctx, taak.UUID, klantinteracties.TaakUpdate{Actoren: []string{groep}})
	require.NoError(t, err)
	assert.Equal(t, []string{groep}, updated.Actoren)
	open, err = e.client.OpenInterneTakenFor(ctx, klantinteracties.Actor{Kind: klantinteracties.ActorMedewerker, ID: "jdevries"})
	require.NoError(t, err)
	assert.Empty(t, open)
	open, err = e.client.OpenInterneTaken(ctx, groep)
	require.NoError(t, err)
	assert.Len(t, open, 1)
	done := klantinteracties.StatusVerwerkt
	_, err = e.client.UpdateInterneTaak(ctx, taak.UUID, klantinteracties.TaakUpdate{Status: &done})
	require.NoError(t, err)
	open, err = e.client.OpenInterneTaken(ctx, groep)
	require.NoError(t, err)
	assert.Empty(t, open)
	read, err := e.client.InterneTaak(ctx, taak.UUID)
	require.NoError(t, err)
	assert.Equal(t, klantinteracties.StatusVerwerkt, read.Status)

	// An actor nobody has assigned anything to has no taken.
	none, err := e.client.OpenInterneTakenFor(ctx, klantinteracties.Actor{Kind: klantinteracties.ActorAfdeling, ID: "onbekend"})
	require.NoError(t, err)
	assert.Empty(t, none)
}

// TestWriteContract checks every request the write side sends, and the
// fake's answer to it, against the official spec.
func TestWriteContract(t *testing.T) {
	contract.Load(t, specFile)
	e := newWriteEnv(t)
	checker := contract.New(t, specFile, e.base)
	ctx := context.Background()
	_, taak := wrapUp(t, e.client, "kbcontract")
	done := klantinteracties.StatusVerwerkt
	_, err := e.client.UpdateInterneTaak(ctx, taak.UUID, klantinteracties.TaakUpdate{Status: &done, Actoren: taak.Actoren})
	require.NoError(t, err)
	_, err = e.client.InterneTaak(ctx, taak.UUID)
	require.NoError(t, err)
	_, err = e.client.OpenInterneTakenFor(ctx, klantinteracties.Actor{Kind: klantinteracties.ActorAfdeling, ID: "burgerzaken"})
	require.NoError(t, err)

	methods := map[string]int{}
	for _, ex := range e.rec.Exchanges() {
		methods[ex.Request.Method]++
		checker.CheckRequest(t, ex.Request, ex.RequestBody)
		checker.Check(t, ex.Request, ex.Status, ex.Header, ex.ResponseBody)
	}
	assert.Equal(t, 5, methods[http.MethodPost], "klantcontact, betrokkene, onderwerpobject, actor, interne taak")
	assert.Equal(t, 1, methods[http.MethodPatch])

	// The check has teeth: a body the spec does not allow is caught.
	for _, body := range []string{
		`{"kanaal": "` + strings.Repeat("x", 51) + `", "onderwerp": "x", "taal": "nld", "vertrouwelijk": false}`,
		`{"kanaal": "telefoon", "onderwerp": "x", "taal": "nld", "vertrouwelijk": "nee"}`,
	} {
		req := httptest.NewRequest(http.MethodPost, e.base+"/klantcontacten", nil)
		req.Header.Set("Content-Type", "application/json")
		assert.Error(t, checker.ValidateRequest(req, []byte(body)), body)
	}
}

func TestWriteErrors(t *testing.T) {
	e := newWriteEnv(t)
	ctx := context.Background()

	// Refused by the source: a klantcontact that does not exist.
	_, err := e.client.CreateBetrokkene(ctx, "00000000-0000-4000-8000-000000000000", "", "")
	require.ErrorIs(t, err, upstream.ErrRejected)
	se, ok := errors.AsType[*upstream.StatusError](err)
	require.True(t, ok)
	assert.Equal(t, http.StatusBadRequest, se.Status)
	var fout struct {
		Code          string
		InvalidParams []struct{ Name, Code string }
	}
	require.NoError(t, json.Unmarshal(se.Body, &fout))
	assert.Equal(t, "invalid", fout.Code)
	require.Len(t, fout.InvalidParams, 1)
	assert.Equal(t, "hadKlantcontact.uuid", fout.InvalidParams[0].Name)
	assert.Equal(t, "does_not_exist", fout.InvalidParams[0].Code)

	_, err = e.client.UpdateInterneTaak(ctx, "00000000-0000-4000-8000-000000000000", klantinteracties.TaakUpdate{})
	require.ErrorIs(t, err, upstream.ErrRejected)

	// Refused before sending.
	before := len(e.rec.Exchanges())
	_, err = e.client.CreateKlantcontact(ctx, klantinteracties.NewKlantcontact{Referentienummer: "12345678901", Kanaal: "telefoon", Onderwerp: "x", At: now})
	assert.ErrorIs(t, err, klantinteracties.ErrInvalidWrite)
	_, err = e.client.CreateKlantcontact(ctx, klantinteracties.NewKlantcontact{Referentienummer: "kb1", Kanaal: "", Onderwerp: "x", At: now})
	assert.ErrorIs(t, err, klantinteracties.ErrInvalidWrite)
	_, err = e.client.EnsureActor(ctx, klantinteracties.Actor{Kind: "team", ID: "x"})
	assert.ErrorIs(t, err, klantinteracties.ErrInvalidWrite)
	bad := "open"
	_, err = e.client.UpdateInterneTaak(ctx, "00000000-0000-4000-8000-000000000000", klantinteracties.TaakUpdate{Status: &bad})
	assert.ErrorIs(t, err, klantinteracties.ErrInvalidWrite)
	assert.Len(t, e.rec.Exchanges(), before, "nothing sent")

	// Down: unavailable, and nothing written.
	e.fake.SetDown(true)
	_, err = e.client.CreateKlantcontact(ctx, klantinteracties.NewKlantcontact{Referentienummer: "kbdown", Kanaal: "telefoon", Onderwerp: "x", At: now})
	require.ErrorIs(t, err, upstream.ErrUnavailable)
	_, err = e.client.Partij(ctx, fixtures.BSNSuzanne)
	require.ErrorIs(t, err, upstream.ErrUnavailable)
	assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
	e.fake.SetDown(false)
	time.Sleep(5 * time.Millisecond) // the breaker's cooldown
	found, err := e.client.FindKlantcontact(ctx, "kbdown")
	require.NoError(t, err)
	assert.Nil(t, found)
}
