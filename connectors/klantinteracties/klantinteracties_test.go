package klantinteracties_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/fixtures"
	fake "github.com/klantbeeld/klantbeeld/fixtures/klantinteracties"
)

const token = "s3cr3t-token"

var now = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func newFake() *fake.Fake {
	return fake.New(fake.Options{Token: token, PageSize: 2, Now: func() time.Time { return now }})
}

// recorder remembers the query of every request a source got.
type recorder struct {
	mu       sync.Mutex
	requests []*url.URL
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.requests = append(rec.requests, r.URL)
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (rec *recorder) seen(path string) []url.Values {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []url.Values
	for _, u := range rec.requests {
		if u.Path == fake.BasePath+path {
			out = append(out, u.Query())
		}
	}
	return out
}

// count is how many requests had a path starting with prefix.
func (rec *recorder) count(prefix string) int64 {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var n int64
	for _, u := range rec.requests {
		if strings.HasPrefix(u.Path, prefix) {
			n++
		}
	}
	return n
}

// startFake serves the fake on loopback as the demo does.
func startFake(t *testing.T) (*fixtures.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv, err := fixtures.Start("klantinteracties", rec.wrap(newFake()), "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv, rec
}

// logs collects what the client logs.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newClient(t *testing.T, root string, tune ...func(*klantinteracties.Config)) (*klantinteracties.Client, *logs) {
	t.Helper()
	l := &logs{}
	cfg := klantinteracties.Config{
		URL:   root + fake.BasePath,
		Token: token,
		HTTP: upstream.Config{
			Timeout:      3 * time.Second,
			Retries:      1,
			RetryWaitMin: 5 * time.Millisecond,
			RetryWaitMax: 20 * time.Millisecond,
			Logger:       slog.New(slog.NewJSONHandler(l, nil)),
		},
	}
	for _, f := range tune {
		f(&cfg)
	}
	c, err := klantinteracties.New(cfg)
	require.NoError(t, err)
	return c, l
}

// want is what Contacts should return for r.
func want(r fixtures.Resident, includeVertrouwelijk bool) []klantinteracties.Contact {
	out := []klantinteracties.Contact{}
	for _, c := range r.Contacts {
		if c.Vertrouwelijk && !includeVertrouwelijk {
			continue
		}
		k := klantinteracties.Contact{
			UUID: c.UUID, Kanaal: c.Kanaal, Onderwerp: c.Onderwerp, Inhoud: c.Inhoud,
			Vertrouwelijk: c.Vertrouwelijk, At: now.Add(-time.Duration(c.HoursAgo) * time.Hour),
		}
		if c.Zaak != "" {
			k.Zaken = []string{c.Zaak}
		}
		if c.Taak != nil {
			k.Taken = []klantinteracties.Taak{{UUID: c.Taak.UUID, GevraagdeHandeling: c.Taak.GevraagdeHandeling, Status: c.Taak.Status}}
		}
		out = append(out, k)
	}
	slices.SortStableFunc(out, func(a, b klantinteracties.Contact) int {
		if n := b.At.Compare(a.At); n != 0 {
			return n
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	return out
}

func resident(t *testing.T, bsn string) fixtures.Resident {
	t.Helper()
	r, ok := fixtures.ResidentByBSN(bsn)
	require.True(t, ok)
	return r
}

func TestContactsOfEveryResident(t *testing.T) {
	srv, _ := startFake(t)
	c, _ := newClient(t, srv.URL())
	for _, r := range fixtures.Residents {
		for _, include := range []bool{true, false} {
			if r.PartijUUID == "" && !include {
				continue
			}
			name := "contacts of " + r.BSN + " with channel, time, zaken and taken"
			switch {
			case r.PartijUUID == "":
				name = "no partij for " + r.BSN + " gives nil"
			case !include:
				name = "open contacts of " + r.BSN
			}
			t.Run(name, func(t *testing.T) {
				got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: r.BSN, IncludeVertrouwelijk: include})
				require.NoError(t, err)
				if r.PartijUUID == "" {
					assert.Nil(t, got, "no partij: nil, nil")
					return
				}
				assert.Equal(t, want(r, include), got)
			})
		}
	}
}

func TestContactsOutcomes(t *testing.T) {
	srv, _ := startFake(t)
	c, _ := newClient(t, srv.URL())
	suzanne := resident(t, fixtures.BSNSuzanne)
	tests := []struct {
		name  string
		q     klantinteracties.Query
		check func(t *testing.T, got []klantinteracties.Contact)
	}{
		{"all of Suzanne's contacts, newest first, on five channels", klantinteracties.Query{BSN: fixtures.BSNSuzanne, IncludeVertrouwelijk: true}, func(t *testing.T, got []klantinteracties.Contact) {
			require.Len(t, got, len(suzanne.Contacts))
			kanalen := map[string]bool{}
			for i, k := range got {
				kanalen[k.Kanaal] = true
				if i > 0 {
					assert.False(t, k.At.After(got[i-1].At), "newest first")
				}
				assert.Equal(t, time.UTC, k.At.Location())
			}
			assert.Len(t, kanalen, 5)
		}},
		{"no vertrouwelijk contact when not included", klantinteracties.Query{BSN: fixtures.BSNSuzanne}, func(t *testing.T, got []klantinteracties.Contact) {
			require.NotEmpty(t, got)
			for _, k := range got {
				assert.False(t, k.Vertrouwelijk, k.UUID)
			}
		}},
		{"a contact about a zaak names the zaak and its taak", klantinteracties.Query{BSN: fixtures.BSNOverdue}, func(t *testing.T, got []klantinteracties.Contact) {
			require.NotEmpty(t, got)
			assert.Equal(t, fixtures.ContactUUID(303), got[0].UUID)
			assert.Equal(t, fixtures.WhatsApp, got[0].Kanaal)
			assert.Equal(t, []string{fixtures.ZaakUUID(301)}, got[0].Zaken)
			assert.Equal(t, []klantinteracties.Taak{{UUID: "f0000000-0000-4000-8000-000000000303", GevraagdeHandeling: "Terugbellen over rijbewijs", Status: "te_verwerken"}}, got[0].Taken)
		}},
		{"a contact about nothing has no zaken and no taken", klantinteracties.Query{BSN: fixtures.BSNCRMOnly}, func(t *testing.T, got []klantinteracties.Contact) {
			require.Len(t, got, 2)
			for _, k := range got {
				assert.Nil(t, k.Zaken)
				assert.Nil(t, k.Taken)
			}
		}},
		{"a partij whose only contact is vertrouwelijk gives an empty list, not nil", klantinteracties.Query{BSN: fixtures.BSNLevels}, func(t *testing.T, got []klantinteracties.Contact) {
			assert.NotNil(t, got)
			assert.Empty(t, got)
		}},
		{"a BSN no partij has gives nil", klantinteracties.Query{BSN: fixtures.BSNUnknown, IncludeVertrouwelijk: true}, func(t *testing.T, got []klantinteracties.Contact) {
			assert.Nil(t, got)
		}},
		{"a resident without contacts gives nil", klantinteracties.Query{BSN: fixtures.BSNOnlyBRP, IncludeVertrouwelijk: true}, func(t *testing.T, got []klantinteracties.Contact) {
			assert.Nil(t, got)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Contacts(t.Context(), tc.q)
			require.NoError(t, err)
			tc.check(t, got)
		})
	}
}

func TestTheSourceIsAskedForWhatIsNeeded(t *testing.T) {
	srv, rec := startFake(t)
	c, _ := newClient(t, srv.URL())
	suzanne := resident(t, fixtures.BSNSuzanne)

	_, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNSuzanne})
	require.NoError(t, err)
	partijen := rec.seen("/partijen")
	require.Len(t, partijen, 1)
	assert.Equal(t, url.Values{
		"partijIdentificator__codeObjecttype":    {"natuurlijk_persoon"},
		"partijIdentificator__codeSoortObjectId": {"bsn"},
		"partijIdentificator__codeRegister":      {"brp"},
		"partijIdentificator__objectId":          {fixtures.BSNSuzanne},
		"pageSize":                               {"100"},
	}, partijen[0])
	contacten := rec.seen("/klantcontacten")
	require.NotEmpty(t, contacten)
	assert.Equal(t, url.Values{
		"hadBetrokkene__wasPartij__partijIdentificator__codeObjecttype":    {"natuurlijk_persoon"},
		"hadBetrokkene__wasPartij__partijIdentificator__codeSoortObjectId": {"bsn"},
		"hadBetrokkene__wasPartij__partijIdentificator__codeRegister":      {"brp"},
		"hadBetrokkene__wasPartij__partijIdentificator__objectId":          {fixtures.BSNSuzanne},
		"vertrouwelijk": {"false"},
		"expand":        {"gingOverOnderwerpobjecten,leiddeTotInterneTaken,hadBetrokkenen"},
		"pageSize":      {"100"},
	}, contacten[0], "the contacts are asked by the resident's identificator, not by a partij found first")
	for _, q := range contacten[1:] {
		assert.Equal(t, "false", q.Get("vertrouwelijk"), "the fake saw vertrouwelijk=false")
		assert.Equal(t, fixtures.BSNSuzanne, q.Get("hadBetrokkene__wasPartij__partijIdentificator__objectId"))
	}
	assert.Len(t, contacten, 1, "one page of up to 100 contacts")
	assert.NotEmpty(t, suzanne.Contacts)
	assert.Empty(t, rec.seen("/onderwerpobjecten/"+fixtures.ZaakUUID(101)), "expanded objects are not fetched again")

	_, err = c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNSuzanne, IncludeVertrouwelijk: true})
	require.NoError(t, err)
	contacten = rec.seen("/klantcontacten")
	assert.False(t, contacten[len(contacten)-1].Has("vertrouwelijk"), "no filter when vertrouwelijk is included")
}

func TestPagesAreFollowed(t *testing.T) {
	// The connector asks for 100 a page; a source that gives 2 (its own
	// maximum) still yields everything through its next links.
	srv, asked, rec := ignoring(t, "pageSize")
	c, _ := newClient(t, srv.URL)
	suzanne := resident(t, fixtures.BSNSuzanne)
	got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNSuzanne, IncludeVertrouwelijk: true})
	require.NoError(t, err)
	assert.Equal(t, want(suzanne, true), got)
	assert.Len(t, rec.seen("/klantcontacten"), (len(suzanne.Contacts)+1)/2)
	assert.True(t, asked.Load())
}

// rewrite serves the fake through edit, which may change each answer.
func rewrite(t *testing.T, edit func(r *http.Request, body []byte) []byte) (*httptest.Server, *recorder) {
	t.Helper()
	f := newFake()
	rec := &recorder{}
	srv := httptest.NewServer(rec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := httptest.NewRecorder()
		f.ServeHTTP(out, r)
		for k, vs := range out.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(out.Code)
		_, _ = w.Write(edit(r, out.Body.Bytes()))
	})))
	t.Cleanup(srv.Close)
	return srv, rec
}

// ignoring serves the fake as a source that ignores the query parameters
// params; asked reports whether the connector sent one, rec what it asked.
func ignoring(t *testing.T, params ...string) (srv *httptest.Server, asked *atomic.Bool, rec *recorder) {
	f := newFake()
	asked, rec = &atomic.Bool{}, &recorder{}
	srv = httptest.NewServer(rec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for _, param := range params {
			if q.Has(param) {
				asked.Store(true)
			}
			q.Del(param)
		}
		r.URL.RawQuery = q.Encode()
		f.ServeHTTP(w, r)
	})))
	t.Cleanup(srv.Close)
	return srv, asked, rec
}

func TestVertrouwelijkIsDroppedWhenTheSourceIgnoresTheFilter(t *testing.T) {
	srv, asked, _ := ignoring(t, "vertrouwelijk")
	c, _ := newClient(t, srv.URL)
	for _, bsn := range []string{fixtures.BSNSuzanne, fixtures.BSNFamily, fixtures.BSNOnlySOCZA, fixtures.BSNLevels} {
		t.Run("no vertrouwelijk contact of "+bsn, func(t *testing.T) {
			got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: bsn})
			require.NoError(t, err)
			assert.Equal(t, want(resident(t, bsn), false), got)
		})
	}
	assert.True(t, asked.Load())
}

// identificatorFilters are the filters of /klantcontacten by the
// resident's partij-identificator.
var identificatorFilters = []string{
	"hadBetrokkene__wasPartij__partijIdentificator__codeObjecttype",
	"hadBetrokkene__wasPartij__partijIdentificator__codeSoortObjectId",
	"hadBetrokkene__wasPartij__partijIdentificator__codeRegister",
	"hadBetrokkene__wasPartij__partijIdentificator__objectId",
}

func TestOtherResidentsContactsAreDroppedWhenTheSourceIgnoresTheFilters(t *testing.T) {
	tests := []struct {
		name    string
		ignored []string
	}{
		{"the contacts' identificator filter", identificatorFilters},
		{"the BSN of the contacts' filter", identificatorFilters[3:]},
		{"every filter of partijen and contacts", append([]string{
			"partijIdentificator__codeObjecttype", "partijIdentificator__codeSoortObjectId",
			"partijIdentificator__codeRegister", "partijIdentificator__objectId", "vertrouwelijk",
		}, identificatorFilters...)},
	}
	for _, tt := range tests {
		t.Run("a source that ignores "+tt.name, func(t *testing.T) {
			srv, asked, _ := ignoring(t, tt.ignored...) // every resident's contacts come back
			c, _ := newClient(t, srv.URL)
			for _, r := range fixtures.Residents {
				for _, include := range []bool{true, false} {
					got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: r.BSN, IncludeVertrouwelijk: include})
					require.NoError(t, err)
					if r.PartijUUID == "" {
						assert.Nil(t, got, "no partij vouches for any contact of %s", r.BSN)
						continue
					}
					assert.Equal(t, want(r, include), got, "only the contacts of %s", r.BSN)
				}
			}
			assert.True(t, asked.Load())
		})
	}
}

func TestContactsWithoutAPartijAreNotTheResidents(t *testing.T) {
	// The listing by identificator finds contacts, but the partij look-up
	// finds no partij with the BSN: nobody vouches for them.
	srv, _ := rewrite(t, func(r *http.Request, body []byte) []byte {
		if r.URL.Path == fake.BasePath+"/partijen" {
			return []byte(`{"count":0,"next":null,"previous":null,"results":[]}`)
		}
		return body
	})
	c, _ := newClient(t, srv.URL)
	got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNSuzanne, IncludeVertrouwelijk: true})
	require.NoError(t, err)
	assert.Nil(t, got)
}

func TestPartijAndContactsAreAskedAtTheSameTime(t *testing.T) {
	// Each of the two requests is held until the other has arrived: a
	// client that waited for the partij before asking for the contacts
	// would see its partij request fail.
	f := newFake()
	arrived := map[string]chan struct{}{"/partijen": make(chan struct{}), "/klantcontacten": make(chan struct{})}
	other := map[string]string{"/partijen": "/klantcontacten", "/klantcontacten": "/partijen"}
	var once sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, fake.BasePath)
		if ch, ok := arrived[p]; ok {
			if _, done := once.LoadOrStore(p, true); !done {
				close(ch)
			}
			select {
			case <-arrived[other[p]]:
			case <-time.After(5 * time.Second):
				http.Error(w, "the other request never came while this one was open", http.StatusConflict)
				return
			}
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, _ := newClient(t, srv.URL, func(c *klantinteracties.Config) { c.HTTP.Timeout = 10 * time.Second })
	got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNSuzanne, IncludeVertrouwelijk: true})
	require.NoError(t, err)
	assert.Equal(t, want(resident(t, fixtures.BSNSuzanne), true), got)
}

func TestOneRoundTrip(t *testing.T) {
	// With room for every contact on one page, a resident's contacts take
	// one request for the partij and one for the contacts, side by side.
	for _, r := range fixtures.Residents {
		f := fake.New(fake.Options{Token: token, Now: func() time.Time { return now }})
		rec := &recorder{}
		srv := httptest.NewServer(rec.wrap(f))
		c, _ := newClient(t, srv.URL)
		_, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: r.BSN, IncludeVertrouwelijk: true})
		srv.Close()
		require.NoError(t, err)
		assert.EqualValues(t, 2, rec.count(fake.BasePath), r.BSN)
		assert.Len(t, rec.seen("/partijen"), 1, r.BSN)
		assert.Len(t, rec.seen("/klantcontacten"), 1, r.BSN)
	}
}

func TestSeveralPartijenAreJoinedWithoutDuplicates(t *testing.T) {
	suzanne := resident(t, fixtures.BSNSuzanne)
	overdue := resident(t, fixtures.BSNOverdue)
	const twin = "90000000-0000-4000-8000-0000000000aa"
	var moved string // the contact whose betrokkene is the twin partij
	srv, _ := rewrite(t, func(r *http.Request, body []byte) []byte {
		var p struct {
			Count    int              `json:"count"`
			Next     *string          `json:"next"`
			Previous *string          `json:"previous"`
			Results  []map[string]any `json:"results"`
		}
		if err := json.Unmarshal(body, &p); err != nil || len(p.Results) == 0 {
			return body // the test then fails on the result
		}
		switch r.URL.Path {
		case fake.BasePath + "/partijen":
			// Suzanne's partij twice, once more under another UUID, and a
			// partij of someone else as if the filter were ignored.
			second := map[string]any{}
			for k, v := range p.Results[0] {
				second[k] = v
			}
			second["uuid"] = twin
			other := map[string]any{"uuid": overdue.PartijUUID, "partijIdentificatoren": []any{
				map[string]any{"partijIdentificator": map[string]any{"codeSoortObjectId": "bsn", "objectId": overdue.BSN}},
			}}
			p.Results = append(p.Results, second, p.Results[0], other)
		case fake.BasePath + "/klantcontacten":
			// The first contact twice, and the last one of the twin partij.
			last := p.Results[len(p.Results)-1]
			b := last["_expand"].(map[string]any)["hadBetrokkenen"].([]any)[0].(map[string]any)
			b["wasPartij"] = map[string]any{"uuid": twin, "url": "http://" + r.Host + fake.BasePath + "/partijen/" + twin}
			moved = last["uuid"].(string)
			p.Results = append(p.Results, p.Results[0])
		default:
			return body
		}
		p.Count = len(p.Results)
		out, err := json.Marshal(p)
		if err != nil {
			return body
		}
		return out
	})
	c, _ := newClient(t, srv.URL)
	got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNSuzanne, IncludeVertrouwelijk: true})
	require.NoError(t, err)
	assert.Equal(t, want(suzanne, true), got)
	assert.NotEmpty(t, moved)
}

func TestUnexpandedObjectsAreFetched(t *testing.T) {
	srv, _, rec := ignoring(t, "expand")
	c, _ := newClient(t, srv.URL)
	suzanne := resident(t, fixtures.BSNSuzanne)
	got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNSuzanne, IncludeVertrouwelijk: true})
	require.NoError(t, err)
	assert.Equal(t, want(suzanne, true), got)
	assert.NotEmpty(t, rec.seen("/internetaken/f0000000-0000-4000-8000-000000000104"))
}

func TestZaakReferences(t *testing.T) {
	zaak := fixtures.ZaakUUID(301)
	tests := []struct {
		name    string
		replace string // the onderwerpobjectidentificator's codeSoortObjectId and objectId
		zaken   []string
		err     error
	}{
		{"a zaak URL gives its UUID", `"codeSoortObjectId":"url","objectId":"https://openzaak.example/zaken/api/v1/zaken/` + strings.ToUpper(zaak) + `"`, []string{zaak}, nil},
		{"a zaak URL with a trailing slash gives its UUID", `"codeSoortObjectId":"url","objectId":"https://openzaak.example/zaken/api/v1/zaken/` + zaak + `/"`, []string{zaak}, nil},
		{"a zaak by identificatie is a bad response, not a contact without domain", `"codeSoortObjectId":"identificatie","objectId":"ZAAK-2026-0000301"`, nil, upstream.ErrBadResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := rewrite(t, func(_ *http.Request, body []byte) []byte {
				// The last of two equal keys counts in JSON as Go reads it,
				// so the replacement's objectId overrides the fake's.
				return bytes.ReplaceAll(body, []byte(`"codeSoortObjectId":"uuid"`), []byte(tc.replace))
			})
			c, _ := newClient(t, srv.URL)
			got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNOverdue})
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.NotContains(t, err.Error(), fixtures.BSNOverdue)
				return
			}
			require.NoError(t, err)
			for _, k := range got {
				assert.Equal(t, tc.zaken, k.Zaken, k.UUID)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	suzanne := fixtures.BSNSuzanne
	plaats := regexp.MustCompile(`"plaatsgevondenOp":"[^"]*"`)
	tests := []struct {
		name string
		// source starts the source and returns its root URL and a counter
		// of requests that must stay zero.
		source func(t *testing.T) (root string, untouched func() int64)
		tune   func(*klantinteracties.Config)
		bsn    string
		want   error
	}{
		{"wrong token is rejected", func(t *testing.T) (string, func() int64) {
			srv, _ := startFake(t)
			return srv.URL(), nil
		}, func(c *klantinteracties.Config) { c.Token = "wrong" }, suzanne, upstream.ErrRejected},
		{"500 is unavailable", func(t *testing.T) (string, func() int64) {
			srv, _ := startFake(t)
			srv.SetFault(fixtures.Fault{Status: http.StatusInternalServerError})
			return srv.URL(), nil
		}, nil, suzanne, upstream.ErrUnavailable},
		{"a slow source times out", func(t *testing.T) (string, func() int64) {
			srv, _ := startFake(t)
			srv.SetFault(fixtures.Fault{Delay: 5 * time.Second})
			return srv.URL(), nil
		}, func(c *klantinteracties.Config) { c.HTTP.Timeout = 200 * time.Millisecond }, suzanne, upstream.ErrTimeout},
		{"garbage is a bad response", func(t *testing.T) (string, func() int64) {
			srv, _ := startFake(t)
			srv.SetFault(fixtures.Fault{Garbage: true})
			return srv.URL(), nil
		}, nil, suzanne, upstream.ErrBadResponse},
		{"a dropped connection is unavailable", func(t *testing.T) (string, func() int64) {
			srv, _ := startFake(t)
			srv.SetFault(fixtures.Fault{Drop: true})
			return srv.URL(), nil
		}, nil, suzanne, upstream.ErrUnavailable},
		{"a closed source is unavailable", func(t *testing.T) (string, func() int64) {
			srv, _ := startFake(t)
			root := srv.URL()
			require.NoError(t, srv.Close())
			return root, nil
		}, nil, suzanne, upstream.ErrUnavailable},
		{"an unparsable plaatsgevondenOp is a bad response", func(t *testing.T) (string, func() int64) {
			srv, _ := rewrite(t, func(_ *http.Request, body []byte) []byte {
				return plaats.ReplaceAll(body, []byte(`"plaatsgevondenOp":"vorige week dinsdag"`))
			})
			return srv.URL, nil
		}, nil, suzanne, upstream.ErrBadResponse},
		{"a missing plaatsgevondenOp is a bad response", func(t *testing.T) (string, func() int64) {
			srv, _ := rewrite(t, func(_ *http.Request, body []byte) []byte {
				return plaats.ReplaceAll(body, []byte(`"plaatsgevondenOp":null`))
			})
			return srv.URL, nil
		}, nil, suzanne, upstream.ErrBadResponse},
		{"a missing vertrouwelijk is a bad response", func(t *testing.T) (string, func() int64) {
			srv, _ := rewrite(t, func(_ *http.Request, body []byte) []byte {
				body = bytes.ReplaceAll(body, []byte(`"vertrouwelijk":false,`), nil)
				return bytes.ReplaceAll(body, []byte(`"vertrouwelijk":true,`), nil)
			})
			return srv.URL, nil
		}, nil, suzanne, upstream.ErrBadResponse},
		{"a list without results is a bad response", func(t *testing.T) (string, func() int64) {
			srv, _ := rewrite(t, func(_ *http.Request, _ []byte) []byte { return []byte(`{"count":0,"next":null}`) })
			return srv.URL, nil
		}, nil, suzanne, upstream.ErrBadResponse},
		{"a next link to itself is a bad response", func(t *testing.T) (string, func() int64) {
			srv, _ := rewrite(t, func(r *http.Request, body []byte) []byte {
				self := "http://" + r.Host + r.URL.RequestURI()
				return regexp.MustCompile(`"next":(null|"[^"]*")`).ReplaceAll(body, []byte(`"next":"`+self+`"`))
			})
			return srv.URL, nil
		}, nil, suzanne, upstream.ErrBadResponse},
		{"a next link to another host is foreign and never requested", func(t *testing.T) (string, func() int64) {
			other, count := counter(t)
			srv, _ := rewrite(t, func(_ *http.Request, body []byte) []byte {
				return bytes.Replace(body, []byte(`"next":null`), []byte(`"next":"`+other+fake.BasePath+`/partijen?page=2&partijIdentificator__objectId=`+suzanne+`"`), 1)
			})
			return srv.URL, count
		}, nil, suzanne, upstream.ErrForeignLink},
		{"a foreign link with the BSN in its path is reported without it", func(t *testing.T) (string, func() int64) {
			other, count := counter(t)
			srv, _ := rewrite(t, func(_ *http.Request, body []byte) []byte {
				return bytes.Replace(body, []byte(`"next":null`), []byte(`"next":"`+other+`/personen/`+suzanne+`"`), 1)
			})
			return srv.URL, count
		}, nil, suzanne, upstream.ErrForeignLink},
		{"a next link outside the API root is foreign", func(t *testing.T) (string, func() int64) {
			srv, rec := rewrite(t, func(r *http.Request, body []byte) []byte {
				return bytes.Replace(body, []byte(`"next":null`), []byte(`"next":"http://`+r.Host+`/admin/partijen?page=2"`), 1)
			})
			return srv.URL, func() int64 { return rec.count("/admin/") }
		}, nil, suzanne, upstream.ErrForeignLink},
		{"an error answer that echoes the BSN is kept out of the error", func(t *testing.T) (string, func() int64) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"code":"invalid","title":"Ongeldige invoer.","status":400,"detail":"","instance":"urn:uuid:1","invalidParams":[{"name":"partijIdentificator__objectId","code":"invalid","reason":"` + r.URL.Query().Get("partijIdentificator__objectId") + ` is ongeldig"}]}`))
			}))
			t.Cleanup(srv.Close)
			return srv.URL, nil
		}, nil, suzanne, upstream.ErrRejected},
		{"an onderwerpobject neither expanded nor linked is a bad response", func(t *testing.T) (string, func() int64) {
			srv, _ := rewrite(t, func(r *http.Request, body []byte) []byte {
				if r.URL.Path != fake.BasePath+"/klantcontacten" {
					return body
				}
				var p map[string]any
				if json.Unmarshal(body, &p) != nil {
					return body
				}
				for _, res := range p["results"].([]any) {
					kc := res.(map[string]any)
					delete(kc, "_expand")
					for _, o := range kc["gingOverOnderwerpobjecten"].([]any) {
						o.(map[string]any)["url"] = ""
					}
				}
				out, _ := json.Marshal(p)
				return out
			})
			return srv.URL, nil
		}, nil, suzanne, upstream.ErrBadResponse},
		{"a BSN of 8 digits is refused before any request", func(t *testing.T) (string, func() int64) {
			srv, _ := startFake(t)
			return srv.URL(), srv.Requests
		}, nil, "99999365", bsn.ErrInvalid},
		{"a BSN with letters is refused before any request", func(t *testing.T) (string, func() int64) {
			srv, _ := startFake(t)
			return srv.URL(), srv.Requests
		}, nil, "99999365a", bsn.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, untouched := tc.source(t)
			var tune []func(*klantinteracties.Config)
			if tc.tune != nil {
				tune = append(tune, tc.tune)
			}
			c, logged := newClient(t, root, tune...)
			got, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: tc.bsn})
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, got)
			assert.NotContains(t, err.Error(), tc.bsn, "errors never contain the BSN")
			if se, ok := errors.AsType[*upstream.StatusError](err); ok {
				assert.NotContains(t, string(se.Body), tc.bsn, "not even the error answer kept in the error")
			}
			assert.NotContains(t, logged.String(), tc.bsn, "logs never contain the BSN")
			if untouched != nil {
				assert.Zero(t, untouched(), "no request where none may go")
			}
		})
	}
}

// counter is a server that counts the requests it gets.
func counter(t *testing.T) (string, func() int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"count":0,"next":null,"results":[]}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, n.Load
}

func TestRetriesAndRejections(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   error
		max    int64 // requests per path; the first failure may cancel the other path's
	}{
		{"a 5xx read is retried", http.StatusServiceUnavailable, upstream.ErrUnavailable, 2},
		{"a 401 is not retried", http.StatusUnauthorized, upstream.ErrRejected, 1},
	}
	for _, tc := range tests {
		for _, failing := range []string{"/partijen", "/klantcontacten"} {
			t.Run(tc.name+" on "+failing, func(t *testing.T) {
				f := newFake()
				rec := &recorder{}
				srv := httptest.NewServer(rec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == fake.BasePath+failing {
						w.Header().Set("Content-Type", "application/problem+json")
						w.WriteHeader(tc.status)
						_, _ = fmt.Fprintf(w, `{"status":%d,"title":%q}`, tc.status, http.StatusText(tc.status))
						return
					}
					f.ServeHTTP(w, r)
				})))
				t.Cleanup(srv.Close)
				c, _ := newClient(t, srv.URL)
				_, err := c.Contacts(t.Context(), klantinteracties.Query{BSN: fixtures.BSNSuzanne})
				require.ErrorIs(t, err, tc.want)
				assert.Len(t, rec.seen(failing), int(tc.max), "Retries is 1")
				if se, ok := errors.AsType[*upstream.StatusError](err); ok {
					assert.NotContains(t, se.Path, "?")
				}
			})
		}
	}
}

func TestCanceledContext(t *testing.T) {
	srv, _ := startFake(t)
	c, _ := newClient(t, srv.URL())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Contacts(ctx, klantinteracties.Query{BSN: fixtures.BSNSuzanne})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
}

func TestNewNamesTheBadKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  klantinteracties.Config
		key  string
	}{
		{"no URL", klantinteracties.Config{Token: token}, "URL"},
		{"a relative URL", klantinteracties.Config{URL: "/klantinteracties/api/v1", Token: token}, "URL"},
		{"a URL with a query", klantinteracties.Config{URL: "https://openklant.example/klantinteracties/api/v1?x=1", Token: token}, "URL"},
		{"no token", klantinteracties.Config{URL: "https://openklant.example/klantinteracties/api/v1"}, "Token"},
		{"a token with a space", klantinteracties.Config{URL: "https://openklant.example/klantinteracties/api/v1", Token: "a b"}, "Token"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is refused naming the Go field", func(t *testing.T) {
			_, err := klantinteracties.New(tc.cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "klantinteracties: Config."+tc.key+": "), "got %q", err)
		})
	}
	t.Run("a trailing slash is accepted", func(t *testing.T) {
		_, err := klantinteracties.New(klantinteracties.Config{URL: "https://openklant.example/klantinteracties/api/v1/", Token: token})
		require.NoError(t, err)
	})
}
