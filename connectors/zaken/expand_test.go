package zaken_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/fixtures"
	fakezaken "github.com/klantbeeld/klantbeeld/fixtures/zaken"
)

// suzanne is what the connector should make of the scenario's first resident.
func suzanne(src *source) []zaken.Zaak {
	r, _ := fixtures.ResidentByBSN(fixtures.BSNSuzanne)
	var out []zaken.Zaak
	for _, z := range r.Zaken {
		out = append(out, want(src.srv.URL(), z))
	}
	return out
}

// TestOneRequestOnceTheCatalogiAreCached: the listing asks for the status
// and its statustype expanded, so with the catalogi cached a resident's
// zaken are one request, with the statussen a request per zaak would give.
func TestOneRequestOnceTheCatalogiAreCached(t *testing.T) {
	src := newSource(t, 0)
	var mu sync.Mutex
	var expand []string
	src.setRewrite(func(kind string, r *http.Request, body map[string]any) {
		if kind == "list" {
			mu.Lock()
			expand = append(expand, r.URL.Query()["expand"]...)
			mu.Unlock()
		}
	})
	c := src.client(t)
	_, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)

	src.reset()
	got, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)
	assert.Equal(t, suzanne(src), got)
	assert.Equal(t, map[string]int{"list": 1}, snapshot(src), "one request")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"status,status.statustype", "status,status.statustype"}, expand)
}

// TestOlderSourceWithoutExpand: a source that ignores expand answers
// without _expand; the connector reads each status and statustype itself.
func TestOlderSourceWithoutExpand(t *testing.T) {
	src := newSource(t, 2)
	src.older.Store(true)
	got, err := src.client(t).Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)
	assert.Equal(t, suzanne(src), got)
	assert.Equal(t, 6, src.count("status"))
	assert.Equal(t, 6, src.count("statustype"))
}

// TestInclusionsTheConnectorDoesNotTrust: an inclusion that is not the
// resource the zaak links, or one without what the connector reads, is not
// used: the connector reads the status or statustype itself.
func TestInclusionsTheConnectorDoesNotTrust(t *testing.T) {
	each := func(edit func(z, inc, st map[string]any)) func(kind string, r *http.Request, body map[string]any) {
		return func(kind string, r *http.Request, body map[string]any) {
			if kind != "list" {
				return
			}
			for _, z := range results(body) {
				z := z.(map[string]any)
				inc := z["_expand"].(map[string]any)
				edit(z, inc, inc["status"].(map[string]any))
			}
		}
	}
	tests := []struct {
		name                string
		rewrite             func(kind string, r *http.Request, body map[string]any)
		status, statustypen int
	}{
		{"another status than the linked one", each(func(z, inc, st map[string]any) {
			st["url"] = z["url"].(string) + "/status"
			st["statustype"] = "http://elders.example/statustypen/x"
		}), 6, 6},
		{"no status in _expand", each(func(z, inc, st map[string]any) { delete(inc, "status") }), 6, 6},
		{"the status without its statustype", each(func(z, inc, st map[string]any) { delete(st, "_expand") }), 0, 6},
		{"another statustype than the status links", each(func(z, inc, st map[string]any) {
			stt := st["_expand"].(map[string]any)["statustype"].(map[string]any)
			stt["url"], stt["omschrijving"] = "http://elders.example/statustypen/x", "Vervalst"
		}), 0, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t, 0)
			src.setRewrite(tt.rewrite)
			got, err := src.client(t).Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
			require.NoError(t, err)
			assert.Equal(t, suzanne(src), got)
			assert.Equal(t, tt.status, src.count("status"))
			assert.Equal(t, tt.statustypen, src.count("statustype"))
		})
	}
}

func TestExpandedStatusWithoutWhatTheConnectorNeeds(t *testing.T) {
	for name, edit := range map[string]func(st, stt map[string]any){
		"a status without statustype":       func(st, stt map[string]any) { st["statustype"] = "" },
		"a statustype without omschrijving": func(st, stt map[string]any) { stt["omschrijving"] = "" },
	} {
		t.Run(name, func(t *testing.T) {
			src := newSource(t, 0)
			src.setRewrite(func(kind string, r *http.Request, body map[string]any) {
				if kind == "list" {
					st := results(body)[0].(map[string]any)["_expand"].(map[string]any)["status"].(map[string]any)
					edit(st, st["_expand"].(map[string]any)["statustype"].(map[string]any))
				}
			})
			_, err := src.client(t).Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
			require.ErrorIs(t, err, upstream.ErrBadResponse)
		})
	}
}

// TestZaakWithoutStatus: a zaak without a status yet has an empty _expand
// and no status.
func TestZaakWithoutStatus(t *testing.T) {
	src := newSource(t, 0)
	src.setRewrite(func(kind string, r *http.Request, body map[string]any) {
		if kind == "list" {
			z := results(body)[0].(map[string]any)
			z["status"], z["_expand"] = nil, map[string]any{}
		}
	})
	got, err := src.client(t).Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)
	exp := suzanne(src)
	exp[0].Status = ""
	assert.Equal(t, exp, got)
	assert.Zero(t, src.count("status"))
}

// TestNextLinkAndExpand: a next link may drop the expand (that page's
// statussen are then read one by one), not change it.
func TestNextLinkAndExpand(t *testing.T) {
	next := func(expand string) func(kind string, r *http.Request, body map[string]any) {
		return func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" && body["next"] != nil {
				body["next"] = "http://" + r.Host + fakezaken.ZakenPath + "/zaken?page=2&maximaleVertrouwelijkheidaanduiding=zeer_geheim&rol__betrokkeneIdentificatie__natuurlijkPersoon__inpBsn=" + fixtures.BSNSuzanne + expand
			}
		}
	}
	src := newSource(t, 4)
	src.setRewrite(next(""))
	got, err := src.client(t).Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)
	assert.Equal(t, suzanne(src), got)
	assert.Equal(t, 2, src.count("status"), "the two zaken of the second page")

	src = newSource(t, 4)
	src.setRewrite(next("&expand=zaaktype"))
	_, err = src.client(t).Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.ErrorIs(t, err, upstream.ErrBadResponse)
	assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
}
