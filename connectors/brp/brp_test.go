package brp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/fixtures"
	fakebrp "github.com/klantbeeld/klantbeeld/fixtures/brp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const apiKey = "test-key"

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is the BRP fake on loopback and a client for it whose log is kept.
type env struct {
	srv    *fixtures.Server
	client *brp.Client
	log    *syncBuffer
}

func start(t *testing.T) *fixtures.Server {
	t.Helper()
	fake, err := fakebrp.New(fakebrp.Options{APIKey: apiKey})
	require.NoError(t, err)
	srv, err := fixtures.Start("brp", fake, "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// newClient makes a client for url with fast retries; tune adjusts the rest.
func newClient(t *testing.T, url, key string, tune func(*upstream.Config)) (*brp.Client, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	hc := upstream.Config{
		Timeout:      2 * time.Second,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
		Logger:       slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tune != nil {
		tune(&hc)
	}
	c, err := brp.New(brp.Config{URL: url, APIKey: key, HTTP: hc})
	require.NoError(t, err)
	return c, log
}

func newEnv(t *testing.T) env {
	t.Helper()
	srv := start(t)
	c, log := newClient(t, srv.URL()+fakebrp.BasePath, apiKey, nil)
	return env{srv: srv, client: c, log: log}
}

// noBSN fails when err or the log mention bsn.
func noBSN(t *testing.T, bsn string, err error, log *syncBuffer) {
	t.Helper()
	if err != nil {
		assert.NotContains(t, err.Error(), bsn, "error mentions the BSN")
	}
	if log != nil {
		assert.NotContains(t, log.String(), bsn, "log mentions the BSN")
	}
}

func TestNewNamesTheMissingSetting(t *testing.T) {
	tests := []struct {
		name string
		cfg  brp.Config
		want string
	}{
		{"no URL", brp.Config{APIKey: apiKey}, "brp: Config.URL is empty"},
		{"no API key", brp.Config{URL: "https://brp.example/haalcentraal/api/brp"}, "brp: Config.APIKey is empty"},
		{"URL not http", brp.Config{URL: "ftp://brp.example/api", APIKey: apiKey}, "brp: Config.URL: "},
		{"URL with a query", brp.Config{URL: "https://brp.example/api?x=1", APIKey: apiKey}, "brp: Config.URL: "},
	}
	for _, tt := range tests {
		t.Run(tt.name+" names the Go field", func(t *testing.T) {
			_, err := brp.New(tt.cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "got %q", err)
		})
	}
}

func TestPersonReturnsOnlyTheRequestedFields(t *testing.T) {
	e := newEnv(t)
	p, err := e.client.Person(context.Background(), fixtures.BSNSuzanne, []string{"naam.voornamen", "geboorte", "verblijfplaats.verblijfadres.postcode"})
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, map[string]any{
		"naam":     map[string]any{"voornamen": "Suzanne"},
		"geboorte": p.Data["geboorte"],
		"verblijfplaats": map[string]any{
			"type":          "Adres",
			"verblijfadres": map[string]any{"postcode": "3077AW"},
		},
	}, p.Data)
	assert.Contains(t, p.Data["geboorte"], "datum")
	assert.Contains(t, p.Data["geboorte"], "land")
	assert.False(t, p.Geheimhouding)
	assert.Empty(t, p.Opschorting)
	assert.EqualValues(t, 1, e.srv.Requests())
}

func TestPersonUnknownToTheBRPIsNil(t *testing.T) {
	e := newEnv(t)
	p, err := e.client.Person(context.Background(), fixtures.BSNUnknown, []string{"naam"})
	require.NoError(t, err)
	assert.Nil(t, p)
}

func TestPersonCarriesSecrecyAndSuspension(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name          string
		bsn           string
		geheimhouding bool
		opschorting   string
	}{
		{"secret person", fixtures.BSNSecret, true, ""},
		{"deceased person", fixtures.BSNDeceased, false, "O"},
		{"ordinary person", fixtures.BSNFamily, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.client.Person(context.Background(), tt.bsn, []string{"burgerservicenummer"})
			require.NoError(t, err)
			require.NotNil(t, p)
			assert.Equal(t, tt.geheimhouding, p.Geheimhouding)
			assert.Equal(t, tt.opschorting, p.Opschorting)
			assert.Equal(t, tt.bsn, p.Data["burgerservicenummer"])
		})
	}
}

func TestFieldsTheBRPRefusesAreNotSent(t *testing.T) {
	e := newEnv(t)
	many := make([]string, 131)
	for i := range many {
		many[i] = "naam"
	}
	tests := []struct {
		name   string
		fields []string
	}{
		{"no fields", nil},
		{"empty fields", []string{}},
		{"geheimhoudingPersoonsgegevens", []string{"naam", "geheimhoudingPersoonsgegevens"}},
		{"inOnderzoek", []string{"inOnderzoek"}},
		{"inOnderzoek of a group", []string{"naam.inOnderzoek.voornamen"}},
		{"opschortingBijhouding", []string{"opschortingBijhouding.reden.code"}},
		{"rni", []string{"rni"}},
		{"verificatie", []string{"verificatie.datum"}},
		{"indicatieVastgesteldVerblijftNietOpAdres", []string{"verblijfplaats.indicatieVastgesteldVerblijftNietOpAdres"}},
		{"bad character", []string{"a*nummer"}},
		{"empty path", []string{""}},
		{"empty name in a path", []string{"naam..voornamen"}},
		{"leading dot", []string{".naam"}},
		{"too many", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.client.Person(context.Background(), fixtures.BSNSuzanne, tt.fields)
			assert.Nil(t, p)
			require.ErrorIs(t, err, brp.ErrFields)
			noBSN(t, fixtures.BSNSuzanne, err, nil)
		})
	}
	assert.Zero(t, e.srv.Requests(), "refused fields must not reach the BRP")
}

func TestBadBSNIsNotSent(t *testing.T) {
	e := newEnv(t)
	for _, in := range []string{"", "12345678", "1234567890", "99999365a", " 99999365", "999 93653", "999993654"} {
		t.Run(in, func(t *testing.T) {
			p, err := e.client.Person(context.Background(), in, []string{"naam"})
			assert.Nil(t, p)
			require.ErrorIs(t, err, bsn.ErrInvalid)
			assert.NotErrorIs(t, err, brp.ErrFields)
			if in != "" {
				assert.NotContains(t, err.Error(), in)
			}
		})
	}
	assert.Zero(t, e.srv.Requests())
}

func TestUpstreamFailuresMapToSentinels(t *testing.T) {
	bsn := fixtures.BSNSuzanne
	tests := []struct {
		name     string
		key      string
		fields   []string
		fault    *fixtures.Fault
		closed   bool
		timeout  time.Duration
		want     error
		contains string // in the error
		retried  bool
	}{
		{name: "wrong API key is rejected", key: "wrong", want: upstream.ErrRejected, contains: "401"},
		{name: "unknown field is rejected with the BRP's reason", fields: []string{"naam", "bestaatniet"}, want: upstream.ErrRejected,
			contains: "fields[1]: Parameter bevat een niet bestaande veldnaam."},
		{name: "500 is unavailable after retries", fault: &fixtures.Fault{Status: http.StatusInternalServerError}, want: upstream.ErrUnavailable, retried: true},
		{name: "503 is unavailable after retries", fault: &fixtures.Fault{Status: http.StatusServiceUnavailable}, want: upstream.ErrUnavailable, retried: true},
		{name: "delay beyond the timeout is a timeout", fault: &fixtures.Fault{Delay: 600 * time.Millisecond}, timeout: 100 * time.Millisecond, want: upstream.ErrTimeout},
		{name: "garbage is a bad response", fault: &fixtures.Fault{Garbage: true}, want: upstream.ErrBadResponse},
		{name: "dropped connection is unavailable", fault: &fixtures.Fault{Drop: true}, want: upstream.ErrUnavailable, retried: true},
		{name: "closed server is unavailable", closed: true, want: upstream.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t)
			key := apiKey
			if tt.key != "" {
				key = tt.key
			}
			c, log := newClient(t, srv.URL()+fakebrp.BasePath, key, func(hc *upstream.Config) {
				if tt.timeout > 0 {
					hc.Timeout = tt.timeout
				}
			})
			if tt.fault != nil {
				srv.SetFault(*tt.fault)
			}
			if tt.closed {
				require.NoError(t, srv.Close())
			}
			fields := tt.fields
			if fields == nil {
				fields = []string{"naam"}
			}
			p, err := c.Person(context.Background(), bsn, fields)
			assert.Nil(t, p)
			require.ErrorIs(t, err, tt.want)
			if tt.contains != "" {
				assert.Contains(t, err.Error(), tt.contains)
			}
			if tt.retried {
				assert.Greater(t, srv.Requests(), int64(1), "a read is retried")
			}
			noBSN(t, bsn, err, log)
		})
	}
}

func TestFailingBRPOpensTheCircuit(t *testing.T) {
	srv := start(t)
	c, _ := newClient(t, srv.URL()+fakebrp.BasePath, apiKey, func(hc *upstream.Config) {
		hc.Retries = -1
		hc.BreakerFailures = 2
	})
	srv.SetFault(fixtures.Fault{Status: http.StatusBadGateway})
	for range 2 {
		_, err := c.Person(context.Background(), fixtures.BSNSuzanne, []string{"naam"})
		require.ErrorIs(t, err, upstream.ErrUnavailable)
	}
	_, err := c.Person(context.Background(), fixtures.BSNSuzanne, []string{"naam"})
	require.ErrorIs(t, err, upstream.ErrCircuitOpen)
	assert.EqualValues(t, 2, srv.Requests())
}

// answering is a BRP that answers every request with body.
func answering(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + fakebrp.BasePath
}

func TestAnswerNotAboutTheAskedPersonIsBad(t *testing.T) {
	bsn := fixtures.BSNSuzanne
	tests := []struct {
		name string
		body string
	}{
		{"another person's BSN", `{"type":"RaadpleegMetBurgerservicenummer","personen":[{"burgerservicenummer":"999990020"}]}`},
		{"two persons", `{"type":"RaadpleegMetBurgerservicenummer","personen":[{"burgerservicenummer":"999993653"},{"burgerservicenummer":"999993653"}]}`},
		{"another answer type", `{"type":"ZoekMetGeslachtsnaamEnGeboortedatum","personen":[]}`},
		{"no answer type", `{"personen":[]}`},
		{"person not an object", `{"type":"RaadpleegMetBurgerservicenummer","personen":["999993653"]}`},
		{"BSN not a string", `{"type":"RaadpleegMetBurgerservicenummer","personen":[{"burgerservicenummer":999993653}]}`},
		{"secrecy not a boolean", `{"type":"RaadpleegMetBurgerservicenummer","personen":[{"geheimhoudingPersoonsgegevens":"1"}]}`},
		{"suspension without reason", `{"type":"RaadpleegMetBurgerservicenummer","personen":[{"opschortingBijhouding":{"datum":{}}}]}`},
		{"type echoing the BSN", `{"type":"999993653","personen":[]}`},
		{"not JSON", `<html>999993653</html>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, log := newClient(t, answering(t, tt.body), apiKey, nil)
			p, err := c.Person(context.Background(), bsn, []string{"burgerservicenummer"})
			assert.Nil(t, p)
			require.ErrorIs(t, err, upstream.ErrBadResponse)
			noBSN(t, bsn, err, log)
		})
	}
}

func TestAnswerWithoutBSNIsAccepted(t *testing.T) {
	c, _ := newClient(t, answering(t, `{"type":"RaadpleegMetBurgerservicenummer","personen":[{"naam":{"voornamen":"Suzanne"}}]}`), apiKey, nil)
	p, err := c.Person(context.Background(), fixtures.BSNSuzanne, []string{"naam.voornamen"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"naam": map[string]any{"voornamen": "Suzanne"}}, p.Data)
}

func TestRejectionDoesNotQuoteTheBSN(t *testing.T) {
	bsn := fixtures.BSNSuzanne
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"status":400,"invalidParams":[{"name":"burgerservicenummer[0]","code":"pattern","reason":"999993653 is onjuist."}]}`)
	}))
	t.Cleanup(srv.Close)
	c, log := newClient(t, srv.URL+fakebrp.BasePath, apiKey, nil)
	_, err := c.Person(context.Background(), bsn, []string{"naam"})
	require.ErrorIs(t, err, upstream.ErrRejected)
	assert.Contains(t, err.Error(), "burgerservicenummer[0]")
	noBSN(t, bsn, err, log)
}

func TestRequestIsTheBRPQuery(t *testing.T) {
	type seen struct {
		method, path, query string
		header              http.Header
		body                map[string]any
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"type":"RaadpleegMetBurgerservicenummer","personen":[]}`)
	}))
	t.Cleanup(srv.Close)
	c, _ := newClient(t, srv.URL+fakebrp.BasePath+"/", apiKey, nil)
	ctx := upstream.WithTrace(context.Background(), "0af7651916cd43dd8448eb211c80319c")
	_, err := c.Person(ctx, fixtures.BSNSuzanne, []string{"naam", "geboorte.datum"})
	require.NoError(t, err)
	s := <-got
	assert.Equal(t, http.MethodPost, s.method)
	assert.Equal(t, fakebrp.BasePath+"/personen", s.path)
	assert.Empty(t, s.query)
	assert.NotContains(t, s.path, fixtures.BSNSuzanne)
	assert.Equal(t, apiKey, s.header.Get("X-API-KEY"))
	assert.Equal(t, "application/json", s.header.Get("Content-Type"))
	assert.Equal(t, "application/json", s.header.Get("Accept"))
	assert.True(t, strings.HasPrefix(s.header.Get("traceparent"), "00-0af7651916cd43dd8448eb211c80319c-"))
	assert.Equal(t, map[string]any{
		"type":                "RaadpleegMetBurgerservicenummer",
		"burgerservicenummer": []any{fixtures.BSNSuzanne},
		"fields":              []any{"naam", "geboorte.datum"},
	}, s.body)
}

func TestCanceledContextIsNotUnavailable(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.client.Person(ctx, fixtures.BSNSuzanne, []string{"naam"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "got %v", err)
}
