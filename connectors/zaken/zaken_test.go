package zaken_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/fixtures"
	fakezaken "github.com/klantbeeld/klantbeeld/fixtures/zaken"
)

const (
	clientID = "klantbeeld"
	secret   = "een-geheim-van-minstens-32-tekens-lang"
)

var (
	now      = time.Date(2026, 3, 16, 10, 30, 0, 0, time.UTC)
	employee = zaken.User{ID: "m.devries", Representation: "Marieke de Vries (KCC)"}
)

// source is the fake Zaken/Catalogi API behind a handler that counts
// requests per resource, records the token claims and can rewrite answers.
type source struct {
	srv  *fixtures.Server
	fake http.Handler
	// transport is the clients'; closing its idle connections before the
	// server lets the server shut down at once.
	transport *http.Transport

	mu     sync.Mutex
	counts map[string]int
	claims []map[string]any
	// tokens are the bearer tokens, in the order of claims.
	tokens []string
	// rewrite, when set, changes a JSON answer of the given kind.
	rewrite func(kind string, r *http.Request, body map[string]any)
	// dropMax makes the source ignore maximaleVertrouwelijkheidaanduiding.
	dropMax atomic.Bool
	// older makes the source ignore expand, as a Zaken API before 1.5.
	older atomic.Bool
}

func newSource(t *testing.T, pageSize int) *source {
	t.Helper()
	s := &source{
		fake:   fakezaken.New(fakezaken.Options{ClientID: clientID, Secret: secret, PageSize: pageSize, Now: func() time.Time { return now }}),
		counts: map[string]int{},
	}
	srv, err := fixtures.Start("zaken", s, "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	s.srv = srv
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(s.transport.CloseIdleConnections)
	return s
}

// kind names the resource a path asks for.
func kind(path string) string {
	switch {
	case path == fakezaken.ZakenPath+"/zaken":
		return "list"
	case strings.HasPrefix(path, fakezaken.ZakenPath+"/zaken/"):
		return "zaak"
	case strings.HasPrefix(path, fakezaken.ZakenPath+"/statussen/"):
		return "status"
	case strings.HasPrefix(path, fakezaken.CatalogiPath+"/zaaktypen/"):
		return "zaaktype"
	case strings.HasPrefix(path, fakezaken.CatalogiPath+"/catalogussen/"):
		return "catalogus"
	case strings.HasPrefix(path, fakezaken.CatalogiPath+"/statustypen/"):
		return "statustype"
	}
	return "other"
}

func (s *source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := kind(r.URL.Path)
	var claims map[string]any
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if t, err := jwt.ParseInsecure([]byte(tok)); err == nil {
			claims, _ = t.AsMap(context.Background())
		}
	}
	s.mu.Lock()
	s.counts[k]++
	s.claims = append(s.claims, claims)
	s.tokens = append(s.tokens, r.Header.Get("Authorization"))
	rewrite := s.rewrite
	s.mu.Unlock()

	if s.dropMax.Load() || s.older.Load() {
		q := r.URL.Query()
		if s.dropMax.Load() {
			q.Del("maximaleVertrouwelijkheidaanduiding")
		}
		if s.older.Load() {
			q.Del("expand")
		}
		r.URL.RawQuery = q.Encode()
	}
	if rewrite == nil {
		s.fake.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.fake.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	rewrite(k, r, body)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (s *source) count(k string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[k]
}

func (s *source) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

func (s *source) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.claims = nil
}

func (s *source) setRewrite(f func(kind string, r *http.Request, body map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rewrite = f
}

func (s *source) config() zaken.Config {
	return zaken.Config{
		ZakenURL:    s.srv.URL() + fakezaken.ZakenPath,
		CatalogiURL: s.srv.URL() + fakezaken.CatalogiPath,
		ClientID:    clientID,
		Secret:      secret,
		HTTP: upstream.Config{
			Timeout:      3 * time.Second,
			RetryWaitMin: 2 * time.Millisecond,
			RetryWaitMax: 10 * time.Millisecond,
			Transport:    s.transport,
		},
	}
}

func (s *source) client(t *testing.T) *zaken.Client {
	t.Helper()
	c, err := zaken.New(s.config())
	require.NoError(t, err)
	return c
}

func query(bsn, max string) zaken.Query {
	return zaken.Query{BSN: bsn, MaxVertrouwelijkheid: max, User: employee}
}

// want is what the connector should make of a scenario zaak.
func want(srvURL string, z fixtures.Zaak) zaken.Zaak {
	zt, _ := fixtures.ZaaktypeByUUID(z.Zaaktype)
	cat, _ := fixtures.CatalogusByUUID(zt.Catalogus)
	out := zaken.Zaak{
		UUID:              z.UUID,
		URL:               srvURL + fakezaken.ZakenPath + "/zaken/" + z.UUID,
		Identificatie:     z.Identificatie,
		Omschrijving:      z.Omschrijving,
		Zaaktype:          zt.Omschrijving,
		Domain:            cat.Domein,
		Vertrouwelijkheid: z.Vertrouwelijkheid,
		Status:            fixtures.Statussen[z.Status-1],
		Startdatum:        now.AddDate(0, 0, -z.StartDaysAgo).Format(time.DateOnly),
		EinddatumGepland:  now.AddDate(0, 0, -z.StartDaysAgo+56).Format(time.DateOnly),
	}
	if z.EndDaysAgo != 0 {
		out.Einddatum = now.AddDate(0, 0, -z.EndDaysAgo).Format(time.DateOnly)
	}
	return out
}

func TestZakenResolvesEveryScenarioZaak(t *testing.T) {
	src := newSource(t, 2)
	c := src.client(t)
	for _, r := range fixtures.Residents {
		t.Run(r.BSN, func(t *testing.T) {
			got, err := c.Zaken(t.Context(), query(r.BSN, "zeer_geheim"))
			require.NoError(t, err)
			var exp []zaken.Zaak
			for _, z := range r.Zaken {
				exp = append(exp, want(src.srv.URL(), z))
			}
			assert.Equal(t, exp, got)
		})
	}
}

func TestZakenFiltersOnLevel(t *testing.T) {
	src := newSource(t, 2)
	c := src.client(t)
	tests := []struct {
		name string
		bsn  string
		max  string
		want []int
	}{
		{"geheim zaak left out up to vertrouwelijk", fixtures.BSNSuzanne, "vertrouwelijk", []int{101, 102, 103, 105, 106}},
		{"only openbaar", fixtures.BSNSuzanne, "openbaar", []int{105}},
		{"confidentieel zaak left out up to vertrouwelijk", fixtures.BSNConfidential, "vertrouwelijk", []int{1101}},
		{"everything up to geheim but zeer_geheim", fixtures.BSNLevels, "geheim", []int{1201, 1202, 1203}},
		{"only intern", fixtures.BSNLevels, "intern", []int{1201}},
		{"nothing under openbaar", fixtures.BSNLevels, "openbaar", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Zaken(t.Context(), query(tt.bsn, tt.max))
			require.NoError(t, err)
			assert.Equal(t, tt.want, numbers(got))
			for _, z := range got {
				assert.LessOrEqual(t, zaken.Level(z.Vertrouwelijkheid), zaken.Level(tt.max))
			}
		})
	}
}

// numbers are the scenario numbers of zaken (ZAAK-2026-0000101 → 101).
func numbers(zs []zaken.Zaak) []int {
	var out []int
	for _, z := range zs {
		n, _ := strconv.Atoi(strings.TrimLeft(strings.TrimPrefix(z.Identificatie, "ZAAK-2026-"), "0"))
		out = append(out, n)
	}
	return out
}

func TestZakenFollowsEveryPage(t *testing.T) {
	src := newSource(t, 2)
	c := src.client(t)
	got, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)
	assert.Equal(t, []int{101, 102, 103, 104, 105, 106}, numbers(got))
	assert.Equal(t, 3, src.count("list"), "six zaken at two per page")
}

func TestEveryRequestCarriesTheEmployee(t *testing.T) {
	src := newSource(t, 2)
	c := src.client(t)
	_, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)
	n := src.total()
	_, err = c.Domain(t.Context(), fixtures.ZaakUUID(801), zaken.User{ID: "i.bakker", Representation: "Ingrid Bakker"})
	require.NoError(t, err)

	src.mu.Lock()
	defer src.mu.Unlock()
	require.Len(t, src.claims, n+1)
	for i, cl := range src.claims {
		require.NotNil(t, cl, "request %d has no readable token", i)
		assert.Equal(t, clientID, cl["iss"])
		assert.Equal(t, clientID, cl["client_id"])
		assert.Contains(t, cl, "iat")
		u := employee
		if i >= n {
			u = zaken.User{ID: "i.bakker", Representation: "Ingrid Bakker"}
		}
		assert.Equal(t, u.ID, cl["user_id"], "request %d", i)
		assert.Equal(t, u.Representation, cl["user_representation"], "request %d", i)
	}
}

// TestAnEmployeesTokenIsSignedOnceAndNotSharedWithAnother: the requests of
// one employee within the reuse window carry one token; another
// employee's carry their own.
func TestAnEmployeesTokenIsSignedOnceAndNotSharedWithAnother(t *testing.T) {
	src := newSource(t, 2)
	c := src.client(t)
	other := zaken.User{ID: "i.bakker", Representation: "Ingrid Bakker"}
	for i := range 2 {
		if i > 0 {
			// A token signed anew now would have another iat (seconds).
			time.Sleep(1100 * time.Millisecond)
		}
		_, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
		require.NoError(t, err)
		_, err = c.Domain(t.Context(), fixtures.ZaakUUID(801), other)
		require.NoError(t, err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	tokens := map[string]map[string]bool{}
	for i, cl := range src.claims {
		id := cl["user_id"].(string)
		if tokens[id] == nil {
			tokens[id] = map[string]bool{}
		}
		tokens[id][src.tokens[i]] = true
	}
	require.Len(t, tokens, 2)
	assert.Len(t, tokens[employee.ID], 1, "one token for all of the employee's requests")
	assert.Len(t, tokens[other.ID], 1)
}

// TestCacheKeepsCatalogiButNotZakenOrStatussen: with the catalogi cached,
// a source that expands the statussen is asked only for the listing; an
// older one for the listing and each status.
func TestCacheKeepsCatalogiButNotZakenOrStatussen(t *testing.T) {
	for _, tc := range []struct {
		name          string
		older         bool
		first, second map[string]int
	}{
		{"expanded", false, map[string]int{"list": 3, "zaaktype": 6, "catalogus": 3}, map[string]int{"list": 3}},
		{"older source", true, map[string]int{"list": 3, "status": 6, "zaaktype": 6, "catalogus": 3, "statustype": 6}, map[string]int{"list": 3, "status": 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, 2)
			src.older.Store(tc.older)
			c := src.client(t)
			_, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
			require.NoError(t, err)
			assert.Equal(t, tc.first, snapshot(src))

			src.reset()
			_, err = c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
			require.NoError(t, err)
			assert.Equal(t, tc.second, snapshot(src), "the second call reads only zaken (and statussen)")
		})
	}
	src := newSource(t, 2)
	c := src.client(t)
	_, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)

	src.reset()
	d, err := c.Domain(t.Context(), fixtures.ZaakUUID(103), employee)
	require.NoError(t, err)
	assert.Equal(t, fixtures.SOCZA, d)
	assert.Equal(t, map[string]int{"zaak": 1}, snapshot(src), "Domain reuses the cached zaaktype and catalogus")
}

func TestConcurrentMissesFetchOnce(t *testing.T) {
	src := newSource(t, 0)
	src.older.Store(true) // statustypen are looked up too
	c := src.client(t)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := c.Zaken(context.Background(), query(fixtures.BSNSuzanne, "zeer_geheim"))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	got := snapshot(src)
	assert.Equal(t, 6, got["zaaktype"], "six zaaktypen, each fetched once")
	assert.Equal(t, 3, got["catalogus"], "three catalogi, each fetched once")
	assert.Equal(t, 6, got["statustype"])
	assert.Equal(t, 10, got["list"])
	assert.Equal(t, 60, got["status"])
}

func snapshot(s *source) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.counts {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func TestDomain(t *testing.T) {
	src := newSource(t, 0)
	c := src.client(t)
	tests := []struct {
		name     string
		id       string
		want     string
		err      error
		requests int
	}{
		{"BURZA for a paspoort", fixtures.ZaakUUID(101), fixtures.BURZA, nil, 3},
		{"SOCZA for bijstand", fixtures.ZaakUUID(103), fixtures.SOCZA, nil, 3},
		{"KCC for a melding", fixtures.ZaakUUID(105), fixtures.KCC, nil, 3},
		{"not found for an unknown zaak", "a0000000-0000-4000-8000-999999999999", "", zaken.ErrNotFound, 1},
		{"not found without a request for an id that is no UUID", "../statussen/x", "", zaken.ErrNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src.reset()
			got, err := c.Domain(t.Context(), tt.id, employee)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.requests, src.total())
		})
	}
}

// elsewhere is another host that must never be asked.
func elsewhere(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"count":0,"next":null,"previous":null,"results":[],"omschrijving":"x","catalogus":"x","domein":"BURZA","statustype":"x"}`))
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func results(body map[string]any) []any {
	rs, _ := body["results"].([]any)
	return rs
}

func TestLinksOutsideTheSourceAreNeverFollowed(t *testing.T) {
	evil, hits := elsewhere(t)
	tests := []struct {
		name    string
		rewrite func(kind string, r *http.Request, body map[string]any)
		err     error
	}{
		{"next to another host", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" {
				body["next"] = evil.URL + fakezaken.ZakenPath + "/zaken?page=2"
			}
		}, upstream.ErrForeignLink},
		{"next to another scheme", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" && body["next"] != nil {
				body["next"] = strings.Replace(body["next"].(string), "http://", "https://", 1)
			}
		}, upstream.ErrForeignLink},
		{"zaaktype on another host", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" {
				results(body)[0].(map[string]any)["zaaktype"] = evil.URL + fakezaken.CatalogiPath + "/zaaktypen/x"
			}
		}, upstream.ErrForeignLink},
		{"catalogus on another host", func(kind string, r *http.Request, body map[string]any) {
			if kind == "zaaktype" {
				body["catalogus"] = evil.URL + "/catalogussen/x"
			}
		}, upstream.ErrForeignLink},
		{"status on another host", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" {
				results(body)[0].(map[string]any)["status"] = evil.URL + fakezaken.ZakenPath + "/statussen/x"
			}
		}, upstream.ErrForeignLink},
		{"statustype escaping the base with dot segments", func(kind string, r *http.Request, body map[string]any) {
			if kind == "status" {
				body["statustype"] = strings.Replace(body["statustype"].(string), "/catalogi/api/v1/", "/catalogi/api/v1/../../../admin/", 1)
			}
		}, upstream.ErrForeignLink},
		{"expanded status on another host", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" {
				z := results(body)[0].(map[string]any)
				z["status"] = evil.URL + fakezaken.ZakenPath + "/statussen/x"
				z["_expand"].(map[string]any)["status"].(map[string]any)["url"] = z["status"]
			}
		}, upstream.ErrForeignLink},
		{"expanded statustype escaping the base with dot segments", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" {
				st := results(body)[0].(map[string]any)["_expand"].(map[string]any)["status"].(map[string]any)
				link := strings.Replace(st["statustype"].(string), "/catalogi/api/v1/", "/catalogi/api/v1/../../../admin/", 1)
				st["statustype"] = link
				st["_expand"].(map[string]any)["statustype"].(map[string]any)["url"] = link
			}
		}, upstream.ErrForeignLink},
		{"next that drops the BSN filter", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" && body["next"] != nil {
				body["next"] = "http://" + r.Host + fakezaken.ZakenPath + "/zaken?page=2&maximaleVertrouwelijkheidaanduiding=zeer_geheim"
			}
		}, upstream.ErrBadResponse},
		{"next to another listing on the source", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" && body["next"] != nil {
				body["next"] = "http://" + r.Host + fakezaken.ZakenPath + "/rollen?" + r.URL.RawQuery
			}
		}, upstream.ErrBadResponse},
		{"next that loops forever", func(kind string, r *http.Request, body map[string]any) {
			if kind == "list" {
				body["next"] = "http://" + r.Host + r.URL.RequestURI()
			}
		}, upstream.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t, 2)
			// A rewritten status is read only from a source that does not expand.
			src.older.Store(strings.HasPrefix(tt.name, "statustype"))
			src.setRewrite(tt.rewrite)
			_, err := src.client(t).Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
			require.ErrorIs(t, err, tt.err)
			assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
			assert.Zero(t, hits.Load(), "the other host got a request")
		})
	}
}

func TestZakenAboveTheMaximumAreDroppedEvenIfTheSourceSendsThem(t *testing.T) {
	// One page: the source drops the filter from the request, so its next
	// links would lack it too, which the connector refuses on its own.
	src := newSource(t, 0)
	src.dropMax.Store(true)
	c := src.client(t)
	got, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "vertrouwelijk"))
	require.NoError(t, err)
	assert.Equal(t, []int{101, 102, 103, 105, 106}, numbers(got), "the geheim zaak 104 is dropped")
	assert.Equal(t, 5, src.count("zaaktype"), "a dropped zaak (of a zaaktype of its own) is not even resolved")

	src.dropMax.Store(false)
	src.setRewrite(func(kind string, r *http.Request, body map[string]any) {
		if kind == "list" {
			for _, z := range results(body) {
				if z := z.(map[string]any); z["uuid"] == fixtures.ZaakUUID(101) {
					z["vertrouwelijkheidaanduiding"] = "staatsgeheim"
				}
			}
		}
	})
	got, err = c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
	require.NoError(t, err)
	assert.Equal(t, []int{102, 103, 104, 105, 106}, numbers(got), "a zaak with an unknown aanduiding is dropped")
}

func TestSourceFailures(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(src *source, cfg *zaken.Config)
		err         error
		listingOnly bool
	}{
		{"500 is unavailable", func(src *source, cfg *zaken.Config) { src.srv.SetFault(fixtures.Fault{Status: 500}) }, upstream.ErrUnavailable, false},
		{"503 is unavailable", func(src *source, cfg *zaken.Config) { src.srv.SetFault(fixtures.Fault{Status: 503}) }, upstream.ErrUnavailable, false},
		{"slow is a timeout", func(src *source, cfg *zaken.Config) {
			src.srv.SetFault(fixtures.Fault{Delay: 2 * time.Second})
			cfg.HTTP.Timeout = 150 * time.Millisecond
		}, upstream.ErrTimeout, false},
		{"garbage is a bad response", func(src *source, cfg *zaken.Config) { src.srv.SetFault(fixtures.Fault{Garbage: true}) }, upstream.ErrBadResponse, false},
		{"a dropped connection is unavailable", func(src *source, cfg *zaken.Config) { src.srv.SetFault(fixtures.Fault{Drop: true}) }, upstream.ErrUnavailable, false},
		{"a closed source is unavailable", func(src *source, cfg *zaken.Config) { require.NoError(t, src.srv.Close()) }, upstream.ErrUnavailable, false},
		{"a wrong secret is rejected", func(src *source, cfg *zaken.Config) { cfg.Secret = "not-the-secret-but-long-enough-!!" }, upstream.ErrRejected, false},
		{"another client id is rejected", func(src *source, cfg *zaken.Config) { cfg.ClientID = "someone-else" }, upstream.ErrRejected, false},
		{"a page without results is a bad response", func(src *source, cfg *zaken.Config) {
			src.setRewrite(func(kind string, r *http.Request, body map[string]any) { delete(body, "results") })
		}, upstream.ErrBadResponse, true},
		{"a zaak without zaaktype is a bad response", func(src *source, cfg *zaken.Config) {
			src.setRewrite(func(kind string, r *http.Request, body map[string]any) {
				if kind == "list" {
					delete(results(body)[0].(map[string]any), "zaaktype")
				}
			})
		}, upstream.ErrBadResponse, true},
		{"a catalogus without domein is a bad response", func(src *source, cfg *zaken.Config) {
			src.setRewrite(func(kind string, r *http.Request, body map[string]any) {
				if kind == "catalogus" {
					body["domein"] = ""
				}
			})
		}, upstream.ErrBadResponse, false},
		{"a malformed date is a bad response", func(src *source, cfg *zaken.Config) {
			src.setRewrite(func(kind string, r *http.Request, body map[string]any) {
				if kind == "list" {
					results(body)[0].(map[string]any)["startdatum"] = "16-03-2026"
				}
			})
		}, upstream.ErrBadResponse, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			src := newSource(t, 2)
			cfg := src.config()
			cfg.HTTP.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			tt.setup(src, &cfg)
			c, err := zaken.New(cfg)
			require.NoError(t, err)

			got, err := c.Zaken(t.Context(), query(fixtures.BSNSuzanne, "zeer_geheim"))
			require.ErrorIs(t, err, tt.err)
			assert.Nil(t, got)
			assert.NotContains(t, err.Error(), fixtures.BSNSuzanne, "the error names the BSN")
			assert.NotContains(t, logs.String(), fixtures.BSNSuzanne, "the log names the BSN")

			// Domain fails alike, unless the fault is one of the listing only.
			_, err = c.Domain(t.Context(), fixtures.ZaakUUID(101), employee)
			if tt.listingOnly {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.err)
			}
		})
	}
}

func TestInvalidQueriesMakeNoRequest(t *testing.T) {
	src := newSource(t, 0)
	c := src.client(t)
	tests := []struct {
		name       string
		q          zaken.Query
		invalidBSN bool
	}{
		{"BSN of 8 digits", query("99999365", "geheim"), true},
		{"BSN of 10 digits", query("9999936530", "geheim"), true},
		{"BSN with letters", query("99999365a", "geheim"), true},
		{"BSN failing the 11-proef", query("999993654", "geheim"), true},
		{"BSN with a query string", query("999993653&x=1", "geheim"), true},
		{"no maximum", query(fixtures.BSNSuzanne, ""), false},
		{"unknown maximum", query(fixtures.BSNSuzanne, "staatsgeheim"), false},
		{"maximum in capitals", query(fixtures.BSNSuzanne, "GEHEIM"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Zaken(t.Context(), tt.q)
			require.Error(t, err)
			assert.Equal(t, tt.invalidBSN, errors.Is(err, bsn.ErrInvalid), "%v", err)
			assert.Nil(t, got)
			assert.NotContains(t, err.Error(), tt.q.BSN[:min(len(tt.q.BSN), 8)])
			assert.Zero(t, src.total())
		})
	}
}

func TestUnknownResidentHasNoZaken(t *testing.T) {
	src := newSource(t, 0)
	got, err := src.client(t).Zaken(t.Context(), query(fixtures.BSNUnknown, "zeer_geheim"))
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, map[string]int{"list": 1}, snapshot(src))
}

func TestCanceledContext(t *testing.T) {
	src := newSource(t, 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := src.client(t).Zaken(ctx, query(fixtures.BSNSuzanne, "geheim"))
	require.ErrorIs(t, err, context.Canceled)
}

func TestNewChecksTheConfig(t *testing.T) {
	good := zaken.Config{ZakenURL: "https://zaken.gemeente.example/zaken/api/v1", CatalogiURL: "https://zaken.gemeente.example/catalogi/api/v1", ClientID: clientID, Secret: secret}
	tests := []struct {
		name  string
		edit  func(*zaken.Config)
		field string
	}{
		{"no zaken URL", func(c *zaken.Config) { c.ZakenURL = "" }, "ZakenURL: "},
		{"relative zaken URL", func(c *zaken.Config) { c.ZakenURL = "/zaken/api/v1" }, "ZakenURL: "},
		{"catalogi URL with a query", func(c *zaken.Config) { c.CatalogiURL = "https://x.example/catalogi/api/v1?a=b" }, "CatalogiURL: "},
		{"no client id", func(c *zaken.Config) { c.ClientID = "" }, "ClientID is empty"},
		{"no secret", func(c *zaken.Config) { c.Secret = "" }, "Secret is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" names the Go field", func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := zaken.New(cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "zaken: Config."+tt.field), "got %q", err)
		})
	}
	_, err := zaken.New(good)
	require.NoError(t, err)
}

func TestLevel(t *testing.T) {
	tests := []struct {
		v    string
		want int
	}{
		{"openbaar", 1}, {"beperkt_openbaar", 2}, {"intern", 3}, {"zaakvertrouwelijk", 4},
		{"vertrouwelijk", 5}, {"confidentieel", 6}, {"geheim", 7}, {"zeer_geheim", 8},
		{"", 0}, {"Geheim", 0}, {"staatsgeheim", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, zaken.Level(tt.v), tt.v)
	}
}
