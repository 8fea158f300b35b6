package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// bsn is a test BSN (it passes the elfproef); it must never show up in an
// error or a log line.
const bsn = "999993653"

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// answer is a response a fake transport hands back for r.
func answer(r *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode:    status,
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// countingTransport answers every request with respond and counts them.
type countingTransport struct {
	calls   atomic.Int32
	respond func(*http.Request) (*http.Response, error)
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return c.respond(r)
}

// source is a fake upstream on a loopback port whose API lives under /api.
type source struct {
	srv  *httptest.Server
	base string
	hits atomic.Int32
}

func startSource(t *testing.T, h http.HandlerFunc) *source {
	t.Helper()
	s := &source{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.base = s.srv.URL + "/api"
	return s
}

// url is an address on the source with a BSN in the query, as the BRP and
// Zaken APIs are called.
func (s *source) url() string { return s.base + "/personen?bsn=" + bsn }

// swappable is a handler a test can change between calls.
type swappable struct {
	h atomic.Pointer[http.HandlerFunc]
}

func (s *swappable) set(h http.HandlerFunc) { s.h.Store(&h) }

func (s *swappable) serve(w http.ResponseWriter, r *http.Request) { (*s.h.Load())(w, r) }

func ok(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func always(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }
}

// answers answers with statuses in turn, then 200 {"ok":true}.
func answers(statuses ...int) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if i := int(n.Add(1)) - 1; i < len(statuses) {
			w.WriteHeader(statuses[i])
			return
		}
		ok(w, r)
	}
}

// hang returns a function that blocks a handler until the client gives up
// or the test ends (t.Context is cancelled before the servers are closed).
func hang(t *testing.T) func(*http.Request) {
	done := t.Context().Done()
	return func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
}

// fast is a config whose retries wait milliseconds instead of the defaults.
func fast(base string) upstream.Config {
	return upstream.Config{
		Name:         "zaken",
		BaseURLs:     []string{base},
		Timeout:      5 * time.Second,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 2 * time.Millisecond,
	}
}

func newClient(t *testing.T, cfg upstream.Config) *upstream.Client {
	t.Helper()
	c, err := upstream.New(cfg)
	require.NoError(t, err)
	return c
}

func get(u string) upstream.Request {
	return upstream.Request{Method: http.MethodGet, URL: u, Idempotent: true}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestNew_RejectsBadConfig(t *testing.T) {
	t.Parallel()
	base := func(urls ...string) upstream.Config { return upstream.Config{Name: "zaken", BaseURLs: urls} }
	tests := []struct {
		name string
		cfg  upstream.Config
		want string
	}{
		{"config without a name is refused", upstream.Config{BaseURLs: []string{"https://zaken.example"}}, "upstream: Config.Name is empty"},
		{"config without base URLs is refused", upstream.Config{Name: "zaken"}, "upstream zaken: Config.BaseURLs is empty"},
		{"config with an empty base URL list is refused", base(), "upstream zaken: Config.BaseURLs is empty"},
		{"relative base URL is refused", base("/zaken/api/v1"), "Config.BaseURLs[0]: base URL \"/zaken/api/v1\": want an absolute http or https"},
		{"base URL without a scheme is refused", base("zaken.example/zaken/api/v1"), "Config.BaseURLs[0]: base URL \"zaken.example/zaken/api/v1\": want an absolute http or https"},
		{"base URL without a host is refused", base("https:///zaken/api/v1"), "Config.BaseURLs[0]: base URL \"https:///zaken/api/v1\": want an absolute http or https"},
		{"ftp base URL is refused", base("ftp://zaken.example/pub"), "Config.BaseURLs[0]: base URL \"ftp://zaken.example/pub\": want an absolute http or https"},
		{"base URL with a query is refused", base("https://zaken.example/zaken/api/v1?tenant=1"), "Config.BaseURLs[0]: base URL \"https://zaken.example/zaken/api/v1?tenant=1\": no query, fragment or credentials"},
		{"base URL with a fragment is refused", base("https://zaken.example/zaken/api/v1#top"), "Config.BaseURLs[0]: base URL \"https://zaken.example/zaken/api/v1#top\": no query, fragment or credentials"},
		{"base URL with userinfo is refused", base("https://klantbeeld@zaken.example/zaken/api/v1"), "Config.BaseURLs[0]: base URL \"https://klantbeeld@zaken.example/zaken/api/v1\": no query, fragment or credentials"},
		{"unparsable base URL is refused", base("https://zaken.example:port/zaken/api/v1"), "Config.BaseURLs[0]: base URL: invalid port"},
		{"one bad base URL among good ones is refused", base("https://zaken.example/zaken/api/v1", "ftp://catalogi.example"), "Config.BaseURLs[1]: base URL \"ftp://catalogi.example\": want an absolute http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := upstream.New(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorContains(t, err, tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "upstream"), "error %q names the package", err)
		})
	}
}

// BUG: New echoes a refused base URL in full, so a password put in the
// configured URL ends up in the startup log.
func TestNew_BaseURLErrorDoesNotEchoCredentials(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"https://klantbeeld:geheim-wachtwoord@zaken.example/zaken/api/v1",
		"https://klantbeeld:geheim-wachtwoord@zaken.example:port/zaken/api/v1", // refused by url.Parse itself
	} {
		_, err := upstream.New(upstream.Config{Name: "zaken", BaseURLs: []string{u}})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "geheim-wachtwoord")
	}
}

func TestNew_FillsDefaults(t *testing.T) {
	t.Parallel()
	bases := []string{"https://zaken.example/zaken/api/v1"}
	defaults := upstream.Config{
		Name:             "zaken",
		BaseURLs:         bases,
		Timeout:          upstream.DefaultTimeout,
		Retries:          upstream.DefaultRetries,
		RetryWaitMin:     upstream.DefaultRetryWaitMin,
		RetryWaitMax:     upstream.DefaultRetryWaitMax,
		MaxResponseBytes: upstream.DefaultMaxResponseBytes,
		BreakerFailures:  upstream.DefaultBreakerFailures,
		BreakerCooldown:  upstream.DefaultBreakerCooldown,
	}
	with := func(edit func(*upstream.Config)) upstream.Config {
		c := defaults
		edit(&c)
		return c
	}
	set := upstream.Config{
		Name: "zaken", BaseURLs: bases, Timeout: time.Second, Retries: 5,
		RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 20 * time.Millisecond,
		MaxResponseBytes: 1024, BreakerFailures: 2, BreakerCooldown: time.Minute,
	}
	tests := []struct {
		name string
		in   upstream.Config
		want upstream.Config
	}{
		{"zero values get the defaults", upstream.Config{Name: "zaken", BaseURLs: bases}, defaults},
		{"negative values get the defaults", upstream.Config{
			Name: "zaken", BaseURLs: bases, Timeout: -1, RetryWaitMin: -1, RetryWaitMax: -1,
			MaxResponseBytes: -1, BreakerCooldown: -1,
		}, with(func(c *upstream.Config) { c.Retries = upstream.DefaultRetries })},
		{"negative retries mean none", upstream.Config{Name: "zaken", BaseURLs: bases, Retries: -1},
			with(func(c *upstream.Config) { c.Retries = 0 })},
		{"set values are kept", set, set},
		{"a maximum wait below the minimum becomes the default maximum", upstream.Config{
			Name: "zaken", BaseURLs: bases, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 5 * time.Millisecond,
		}, with(func(c *upstream.Config) { c.RetryWaitMin = 10 * time.Millisecond })},
		{"a minimum wait above the default maximum becomes the maximum too", upstream.Config{
			Name: "zaken", BaseURLs: bases, RetryWaitMin: time.Second,
		}, with(func(c *upstream.Config) { c.RetryWaitMin, c.RetryWaitMax = time.Second, time.Second })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.in)
			assert.Equal(t, tt.want, c.EffectiveConfig())
			assert.Equal(t, "zaken", c.Name())
		})
	}
}

func TestNew_DefaultsShowInBehaviour(t *testing.T) {
	t.Parallel()
	t.Run("Bound gives the default timeout", func(t *testing.T) {
		c := newClient(t, upstream.Config{Name: "zaken", BaseURLs: []string{"https://zaken.example"}})
		before := time.Now()
		ctx, cancel := c.Bound(context.Background())
		defer cancel()
		dl, ok := ctx.Deadline()
		require.True(t, ok)
		assert.WithinRange(t, dl, before.Add(upstream.DefaultTimeout), time.Now().Add(upstream.DefaultTimeout))
	})
	t.Run("a read is tried 1+DefaultRetries times", func(t *testing.T) {
		rt := &countingTransport{respond: func(r *http.Request) (*http.Response, error) { return answer(r, 503, ""), nil }}
		c := newClient(t, upstream.Config{Name: "zaken", BaseURLs: []string{"https://zaken.example"}, Transport: rt})
		_, err := c.Do(context.Background(), get("https://zaken.example/x"))
		require.ErrorIs(t, err, upstream.ErrUnavailable)
		assert.EqualValues(t, 1+upstream.DefaultRetries, rt.calls.Load())
	})
	t.Run("the circuit opens after DefaultBreakerFailures failed calls", func(t *testing.T) {
		rt := &countingTransport{respond: func(r *http.Request) (*http.Response, error) { return answer(r, 500, ""), nil }}
		c := newClient(t, upstream.Config{Name: "zaken", BaseURLs: []string{"https://zaken.example"}, Transport: rt, Retries: -1})
		for range upstream.DefaultBreakerFailures {
			_, err := c.Do(context.Background(), get("https://zaken.example/x"))
			require.ErrorIs(t, err, upstream.ErrUnavailable)
			require.NotErrorIs(t, err, upstream.ErrCircuitOpen)
		}
		_, err := c.Do(context.Background(), get("https://zaken.example/x"))
		require.ErrorIs(t, err, upstream.ErrCircuitOpen)
		assert.EqualValues(t, upstream.DefaultBreakerFailures, rt.calls.Load())
	})
	t.Run("answers up to DefaultMaxResponseBytes are read", func(t *testing.T) {
		big := strings.Repeat("x", upstream.DefaultMaxResponseBytes)
		rt := &countingTransport{respond: func(r *http.Request) (*http.Response, error) { return answer(r, 200, big), nil }}
		c := newClient(t, upstream.Config{Name: "zaken", BaseURLs: []string{"https://zaken.example"}, Transport: rt})
		resp, err := c.Do(context.Background(), get("https://zaken.example/x"))
		require.NoError(t, err)
		assert.Len(t, resp.Body, upstream.DefaultMaxResponseBytes)

		rt.respond = func(r *http.Request) (*http.Response, error) { return answer(r, 200, big+"x"), nil }
		_, err = c.Do(context.Background(), get("https://zaken.example/x"))
		require.ErrorIs(t, err, upstream.ErrBadResponse)
	})
}

func TestBound_KeepsAShorterParentDeadline(t *testing.T) {
	t.Parallel()
	c := newClient(t, upstream.Config{Name: "zaken", BaseURLs: []string{"https://zaken.example"}, Timeout: time.Hour})
	parent, cancelParent := context.WithTimeout(context.Background(), time.Minute)
	defer cancelParent()
	ctx, cancel := c.Bound(parent)
	defer cancel()
	want, _ := parent.Deadline()
	got, _ := ctx.Deadline()
	assert.Equal(t, want, got)
}

func TestFollow(t *testing.T) {
	t.Parallel()
	bases := []string{"https://zaken.example/zaken/api/v1/", "https://catalogi.example:8443/catalogi/api/v1"}
	tests := []struct {
		name string
		link string
		want string // "" means ErrForeignLink
	}{
		{"absolute link under the base is allowed", "https://zaken.example/zaken/api/v1/zaken/1", "https://zaken.example/zaken/api/v1/zaken/1"},
		{"the base itself is allowed", "https://zaken.example/zaken/api/v1", "https://zaken.example/zaken/api/v1"},
		{"the base with a trailing slash is allowed", "https://zaken.example/zaken/api/v1/", "https://zaken.example/zaken/api/v1/"},
		{"the query string is kept", "https://zaken.example/zaken/api/v1/zaken?bsn=" + bsn + "&page=2", "https://zaken.example/zaken/api/v1/zaken?bsn=" + bsn + "&page=2"},
		{"host and scheme are compared case-insensitively", "HTTPS://ZAKEN.example/zaken/api/v1/zaken", "https://ZAKEN.example/zaken/api/v1/zaken"},
		{"relative path is resolved against the first base", "/zaken/api/v1/zaken/1?bsn=" + bsn, "https://zaken.example/zaken/api/v1/zaken/1?bsn=" + bsn},
		{"link under the second base is allowed", "https://catalogi.example:8443/catalogi/api/v1/zaaktypen/7", "https://catalogi.example:8443/catalogi/api/v1/zaaktypen/7"},

		{"other host is foreign", "https://evil.example/zaken/api/v1/zaken", ""},
		{"encoded slash is foreign", "https://zaken.example/zaken%2Fapi%2Fv1/zaken", ""},
		{"encoded slash under the base is foreign", "https://zaken.example/zaken/api/v1/zaken%2f..%2fcatalogi", ""},
		{"host that starts with the base host is foreign", "https://zaken.example.evil.example/zaken/api/v1/zaken", ""},
		{"other scheme is foreign", "http://zaken.example/zaken/api/v1/zaken", ""},
		{"other port is foreign", "https://zaken.example:8443/zaken/api/v1/zaken", ""},
		{"second base's host without its port is foreign", "https://catalogi.example/catalogi/api/v1/zaaktypen", ""},
		{"second base's path on the first base's host is foreign", "https://zaken.example/catalogi/api/v1/zaaktypen", ""},
		{"path outside the base path is foreign", "https://zaken.example/brp/personen?bsn=" + bsn, ""},
		{"parent of the base path is foreign", "https://zaken.example/zaken/api", ""},
		{"base path as a name prefix is foreign", "https://zaken.example/zaken/api/v10/zaken", ""},
		{"dot-dot segments are foreign", "https://zaken.example/zaken/api/v1/../../../brp/personen", ""},
		{"dot-dot segments that stay inside the base are foreign", "https://zaken.example/zaken/api/v1/zaken/../zaken", ""},
		{"single-dot segments are foreign", "https://zaken.example/zaken/api/v1/./zaken", ""},
		{"percent-encoded dot-dot segments are foreign", "https://zaken.example/zaken/api/v1/%2e%2e/%2E%2E/brp", ""},
		{"relative dot-dot escaping the base is foreign", "/zaken/api/v1/../../../brp/personen", ""},
		{"relative path under the second base is resolved against the first and foreign", "/catalogi/api/v1/zaaktypen", ""},
		{"userinfo is foreign", "https://klantbeeld:geheim@zaken.example/zaken/api/v1/zaken", ""},
		{"userinfo that hides another host is foreign", "https://zaken.example@evil.example/zaken/api/v1/zaken", ""},
		{"fragment is foreign", "https://zaken.example/zaken/api/v1/zaken#x", ""},
		{"protocol-relative link to another host is foreign", "//evil.example/x", ""},
		{"protocol-relative link to the base host is foreign", "//zaken.example/zaken/api/v1/zaken", ""},
		{"relative link without a leading slash is foreign", "zaken/1", ""},
		{"query-only link is foreign", "?bsn=" + bsn, ""},
		{"empty link is foreign", "", ""},
		{"scheme without a host is foreign", "https:/zaken/api/v1/zaken", ""},
		{"javascript link is foreign", "javascript:alert(1)", ""},
		{"file link is foreign", "file:///etc/passwd", ""},
		{"unparsable link is foreign", "https://zaken.example/zaken/api/v1/%zz?bsn=" + bsn, ""},
		{"backslash host trick is foreign", `https://zaken.example\@evil.example/zaken/api/v1`, ""},
	}
	c := newClient(t, upstream.Config{Name: "zaken", BaseURLs: bases})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Follow(tt.link)
			if tt.want != "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, upstream.ErrForeignLink)
			assert.Empty(t, got)
			assert.Equal(t, "foreign_link", upstream.Reason(err))
			assert.True(t, strings.HasPrefix(err.Error(), "zaken: "), "error %q names the source", err)
			assert.NotContains(t, err.Error(), bsn)
			assert.NotContains(t, err.Error(), "?")
			assert.NotContains(t, err.Error(), "geheim")
		})
	}
}

func TestFollow_RootBaseAllowsTheWholeHost(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"http://127.0.0.1:8080", "http://127.0.0.1:8080/"} {
		c := newClient(t, upstream.Config{Name: "brp", BaseURLs: []string{base}})
		for _, link := range []string{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/haalcentraal/api/brp/personen", "/personen"} {
			_, err := c.Follow(link)
			assert.NoError(t, err, "base %s, link %s", base, link)
		}
		_, err := c.Follow("http://127.0.0.1:8081/personen")
		assert.ErrorIs(t, err, upstream.ErrForeignLink)
	}
}

func TestDo_ForeignLinkIsNotCalled(t *testing.T) {
	t.Parallel()
	src := startSource(t, ok)
	c := newClient(t, fast(src.base))
	_, err := c.Do(context.Background(), get(src.srv.URL+"/admin?bsn="+bsn))
	require.ErrorIs(t, err, upstream.ErrForeignLink)
	assert.Zero(t, src.hits.Load())
}

func TestDo_SendsTheResolvedLinkThroughTheConfiguredTransport(t *testing.T) {
	t.Parallel()
	seen := make(chan *http.Request, 1)
	cfg := fast("https://zaken.example/zaken/api/v1")
	cfg.Transport = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		seen <- r
		return answer(r, http.StatusOK, `{"ok":true}`), nil
	})
	c := newClient(t, cfg)
	resp, err := c.Do(context.Background(), upstream.Request{
		Method: http.MethodGet, URL: "/zaken/api/v1/zaken?bsn=" + bsn,
		Header: http.Header{"Accept-Crs": {"EPSG:28992"}},
	})
	require.NoError(t, err)
	assert.Equal(t, `{"ok":true}`, string(resp.Body))
	r := <-seen
	assert.Equal(t, "https://zaken.example/zaken/api/v1/zaken?bsn="+bsn, r.URL.String())
	assert.Equal(t, "EPSG:28992", r.Header.Get("Accept-Crs"))
}

func TestDo_Returns2xxAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    upstream.Request
		status int
		body   string
	}{
		{"GET 200 returns the body", upstream.Request{Method: http.MethodGet, URL: "/personen?bsn=" + bsn, Idempotent: true}, 200, `{"naam":"Jansen"}`},
		{"POST 201 sends body and headers and returns the body", upstream.Request{
			Method: http.MethodPost, URL: "/personen", Body: []byte(`{"type":"RaadpleegMetBurgerservicenummer"}`),
			Header: http.Header{"Content-Type": {"application/json"}, "X-Doelbinding": {"dienstverlening"}},
		}, 201, `{"id":1}`},
		{"204 returns an empty body", upstream.Request{Method: http.MethodDelete, URL: "/personen/1"}, 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			type seen struct {
				method, path, query, doel string
				body                      []byte
			}
			got := make(chan seen, 1)
			src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Doelbinding"), b}
				w.Header().Set("X-Total-Count", "1")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			c := newClient(t, fast(src.base))
			req := tt.req
			req.URL = src.base + req.URL

			resp, err := c.Do(context.Background(), req)
			require.NoError(t, err)
			assert.Equal(t, tt.status, resp.Status)
			assert.Equal(t, tt.body, string(resp.Body))
			assert.Equal(t, "1", resp.Header.Get("X-Total-Count"))

			s := <-got
			assert.Equal(t, tt.req.Method, s.method)
			wantPath, wantQuery, _ := strings.Cut(tt.req.URL, "?")
			assert.Equal(t, "/api"+wantPath, s.path)
			assert.Equal(t, wantQuery, s.query)
			assert.Equal(t, tt.req.Header.Get("X-Doelbinding"), s.doel)
			assert.Equal(t, string(tt.req.Body), string(s.body))
		})
	}
}

func TestDo_NonSuccessIsStatusError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		status          int
		wantUnavailable bool
		wantRejected    bool
		wantReason      string
	}{
		{"400 is rejected", 400, false, true, "rejected"},
		{"401 is rejected", 401, false, true, "rejected"},
		{"403 is rejected", 403, false, true, "rejected"},
		{"404 is rejected", 404, false, true, "rejected"},
		{"422 is rejected", 422, false, true, "rejected"},
		{"429 is unavailable", 429, true, false, "unavailable"},
		{"500 is unavailable", 500, true, false, "unavailable"},
		{"501 is unavailable", 501, true, false, "unavailable"},
		{"502 is unavailable", 502, true, false, "unavailable"},
		{"503 is unavailable", 503, true, false, "unavailable"},
		{"504 is unavailable", 504, true, false, "unavailable"},
		{"300 is rejected: sources are configured with their real URL", 300, false, true, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := startSource(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, `{"title":"nee"}`)
			})
			cfg := fast(src.base)
			cfg.Retries = -1
			c := newClient(t, cfg)

			_, err := c.Do(context.Background(), get(src.url()))
			require.Error(t, err)
			se, ok := errors.AsType[*upstream.StatusError](err)
			require.True(t, ok, "want a *StatusError, got %T: %v", err, err)
			assert.Equal(t, "zaken", se.Source)
			assert.Equal(t, http.MethodGet, se.Method)
			assert.Equal(t, "/api/personen", se.Path)
			assert.Equal(t, tt.status, se.Status)
			assert.Equal(t, `{"title":"nee"}`, string(se.Body))
			assert.Equal(t, "application/problem+json", se.Header.Get("Content-Type"))
			assert.Equal(t, fmt.Sprintf("zaken: GET /api/personen: status %d", tt.status), err.Error())
			assert.Equal(t, tt.wantUnavailable, errors.Is(err, upstream.ErrUnavailable))
			assert.Equal(t, tt.wantRejected, errors.Is(err, upstream.ErrRejected))
			assert.Equal(t, tt.wantReason, upstream.Reason(err))
			assert.EqualValues(t, 1, src.hits.Load())
		})
	}
}

func TestDo_StatusErrorKeepsAtMostMaxErrorBody(t *testing.T) {
	t.Parallel()
	// Letters: a digit run the limit cuts through is dropped (see the test below).
	body := strings.Repeat("abcdefghij", upstream.MaxErrorBody) // 10x the limit
	src := startSource(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, body)
	})
	c := newClient(t, fast(src.base))
	_, err := c.Do(context.Background(), get(src.url()))
	se, ok := errors.AsType[*upstream.StatusError](err)
	require.True(t, ok, "got %v", err)
	assert.Len(t, se.Body, upstream.MaxErrorBody)
	assert.Equal(t, body[:upstream.MaxErrorBody], string(se.Body))
}

func TestDo_StatusErrorKeepsTheBodyWithBSNsMasked(t *testing.T) {
	t.Parallel()
	pad := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name, body, want string
	}{
		{"an echoed BSN is masked", `{"detail":"` + bsn + ` is onbekend"}`, `{"detail":"[BSN] is onbekend"}`},
		{"any nine-digit number is masked", `{"a":"999990020","b":"x123456789y"}`, `{"a":"[BSN]","b":"x[BSN]y"}`},
		{"shorter and longer digit runs stay", `{"date":"20261116","count":1234567890}`, `{"date":"20261116","count":1234567890}`},
		{"a BSN cut by the size limit is dropped", pad(upstream.MaxErrorBody-4) + bsn, pad(upstream.MaxErrorBody - 4)},
		{"a BSN that ends at the size limit is masked", pad(upstream.MaxErrorBody-9) + bsn + "x", pad(upstream.MaxErrorBody-9) + "[BSN]"},
		{"a long number cut by the size limit is dropped", pad(upstream.MaxErrorBody-12) + "12345678901234567890", pad(upstream.MaxErrorBody - 12)},
		{"a BSN behind an escape cut by the size limit is dropped", pad(upstream.MaxErrorBody-10) + "%27" + bsn, pad(upstream.MaxErrorBody-10) + "%"},
		{"a URL-encoded echo is masked", `{"instance":"/query?q=BSN__c+%3D+%27` + bsn + `%27"}`, `{"instance":"/query?q=BSN__c+%3D+%27[BSN]%27"}`},
		{"a JSON-escaped echo is masked", `{"detail":"\u0027` + bsn + `\u0027 is onjuist"}`, `{"detail":"\u0027[BSN]\u0027 is onjuist"}`},
		{"a BSN after a percent sign that is no escape is masked", `{"detail":"100%` + bsn + `"}`, `{"detail":"100%[BSN]"}`},
		{"escapes without a BSN stay", `{"q":"%20%2712345678%27\u00e9"}`, `{"q":"%20%2712345678%27\u00e9"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := startSource(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, tt.body)
			})
			_, err := newClient(t, fast(src.base)).Do(context.Background(), get(src.url()))
			se, ok := errors.AsType[*upstream.StatusError](err)
			require.True(t, ok, "got %v", err)
			assert.Equal(t, tt.want, string(se.Body))
		})
	}
}

func TestDo_DoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprintf("%d comes back as a StatusError", status), func(t *testing.T) {
			t.Parallel()
			var followed atomic.Int32
			elsewhere := startSource(t, ok)
			src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/api/nieuw":
					followed.Add(1)
					ok(w, r)
				case "/api/oud":
					// Redirect inside the base; still not followed.
					http.Redirect(w, r, "/api/nieuw?bsn="+bsn, status)
				default:
					http.Redirect(w, r, elsewhere.url(), status)
				}
			})
			c := newClient(t, fast(src.base))
			for _, path := range []string{"/oud", "/weg"} {
				_, err := c.Do(context.Background(), get(src.base+path+"?bsn="+bsn))
				se, ok := errors.AsType[*upstream.StatusError](err)
				require.True(t, ok, "got %v", err)
				assert.Equal(t, status, se.Status)
				assert.NotEmpty(t, se.Header.Get("Location"))
				assert.NotErrorIs(t, err, upstream.ErrUnavailable)
				assert.ErrorIs(t, err, upstream.ErrRejected, "a redirect is a refusal, not an outage")
			}
			assert.Zero(t, followed.Load(), "redirect target inside the base was called")
			assert.Zero(t, elsewhere.hits.Load(), "redirect target outside the base was called")
			assert.EqualValues(t, 2, src.hits.Load(), "a redirect is not retried")
		})
	}
}

func TestDo_RetryPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		idempotent bool
		retries    int
		statuses   []int // answered in turn, then 200
		wantHits   int32
		wantStatus int // 0: success
	}{
		{"idempotent GET is retried on 503 and succeeds", http.MethodGet, true, 2, []int{503}, 2, 0},
		{"idempotent GET succeeds on the last allowed attempt", http.MethodGet, true, 2, []int{503, 502}, 3, 0},
		{"idempotent GET is retried on 500", http.MethodGet, true, 2, []int{500}, 2, 0},
		{"idempotent GET is retried on 504", http.MethodGet, true, 2, []int{504}, 2, 0},
		{"idempotent GET is retried on 429", http.MethodGet, true, 2, []int{429}, 2, 0},
		{"idempotent GET gives up after Retries with the last status", http.MethodGet, true, 2, []int{503, 503, 504}, 3, 504},
		{"idempotent POST (a search) is retried", http.MethodPost, true, 2, []int{503}, 2, 0},
		{"non-idempotent POST is not retried on 503", http.MethodPost, false, 2, []int{503}, 1, 503},
		{"GET not marked idempotent is not retried", http.MethodGet, false, 2, []int{503}, 1, 503},
		{"400 is not retried", http.MethodGet, true, 2, []int{400}, 1, 400},
		{"404 is not retried", http.MethodGet, true, 2, []int{404}, 1, 404},
		{"501 is not retried", http.MethodGet, true, 2, []int{501}, 1, 501},
		{"negative Retries turns retries off", http.MethodGet, true, -1, []int{503}, 1, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := startSource(t, answers(tt.statuses...))
			cfg := fast(src.base)
			cfg.Retries = tt.retries
			c := newClient(t, cfg)

			resp, err := c.Do(context.Background(), upstream.Request{Method: tt.method, URL: src.url(), Idempotent: tt.idempotent})
			if tt.wantStatus == 0 {
				require.NoError(t, err)
				assert.Equal(t, `{"ok":true}`, string(resp.Body))
			} else {
				se, ok := errors.AsType[*upstream.StatusError](err)
				require.True(t, ok, "got %v", err)
				assert.Equal(t, tt.wantStatus, se.Status)
			}
			assert.Equal(t, tt.wantHits, src.hits.Load())
		})
	}
}

func TestDo_RetrySendsTheBodyAgain(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	next := answers(503)
	src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		next(w, r)
	})
	c := newClient(t, fast(src.base))
	_, err := c.Do(context.Background(), upstream.Request{Method: http.MethodPut, URL: src.url(), Body: []byte(`{"v":1}`), Idempotent: true})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{`{"v":1}`, `{"v":1}`}, bodies)
}

func TestDo_RetryAfterIsHonouredUpToRetryWaitMax(t *testing.T) {
	t.Parallel()
	const waitMax = 150 * time.Millisecond
	var mu sync.Mutex
	var arrivals []time.Time
	next := answers(429)
	src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		w.Header().Set("Retry-After", "3600")
		next(w, r)
	})
	cfg := fast(src.base)
	cfg.RetryWaitMin, cfg.RetryWaitMax = time.Millisecond, waitMax
	c := newClient(t, cfg)

	start := time.Now()
	_, err := c.Do(context.Background(), get(src.url()))
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "Retry-After of an hour was not capped")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, arrivals, 2)
	// Without Retry-After the jittered wait would be at most RetryWaitMin (1ms).
	assert.GreaterOrEqual(t, arrivals[1].Sub(arrivals[0]), waitMax, "Retry-After was not honoured")
}

func TestDo_ConnectionRefusedIsUnavailable(t *testing.T) {
	t.Parallel()
	base := "http://" + closedAddr(t) + "/api"
	c := newClient(t, fast(base))
	_, err := c.Do(context.Background(), get(base+"/personen?bsn="+bsn))
	require.ErrorIs(t, err, upstream.ErrUnavailable)
	assert.NotErrorIs(t, err, upstream.ErrTimeout)
	assert.Equal(t, "unavailable", upstream.Reason(err))
	assert.Contains(t, err.Error(), "connection refused")
	assert.Contains(t, err.Error(), "zaken: GET /api/personen")
}

func TestDo_TransportErrors(t *testing.T) {
	t.Parallel()
	reset := errors.New("read: connection reset by peer")
	tests := []struct {
		name      string
		failures  int32 // transport fails this often, then answers 200
		req       upstream.Request
		wantCalls int32
		wantErr   bool
	}{
		{"idempotent read is retried after connection errors and succeeds", 2, get("https://zaken.example/x"), 3, false},
		{"idempotent read gives up after Retries", 10, get("https://zaken.example/x"), 3, true},
		{"non-idempotent write is not retried", 1, upstream.Request{Method: http.MethodPost, URL: "https://zaken.example/x"}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt := &countingTransport{}
			rt.respond = func(r *http.Request) (*http.Response, error) {
				if rt.calls.Load() <= tt.failures {
					return nil, reset
				}
				return answer(r, 200, `{}`), nil
			}
			cfg := fast("https://zaken.example")
			cfg.Transport = rt
			c := newClient(t, cfg)
			_, err := c.Do(context.Background(), tt.req)
			assert.Equal(t, tt.wantCalls, rt.calls.Load())
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, upstream.ErrUnavailable)
			assert.Contains(t, err.Error(), "connection reset by peer")
		})
	}
}

func TestDo_StopsRetryingWhenTheDeadlineLeavesNoRoom(t *testing.T) {
	t.Parallel()
	src := startSource(t, always(503))
	cfg := fast(src.base)
	// The shortest possible wait (RetryWaitMin/2) plus RetryWaitMin does not
	// fit in the timeout, so there is no room for a retry.
	cfg.Timeout, cfg.RetryWaitMin, cfg.RetryWaitMax = time.Second, 2*time.Second, 4*time.Second
	c := newClient(t, cfg)
	ctx, cancel := c.Bound(context.Background())
	defer cancel()

	_, err := c.Do(ctx, get(src.url()))
	require.Error(t, err)
	assert.True(t, errors.Is(err, upstream.ErrTimeout) || errors.Is(err, upstream.ErrUnavailable), "got %v", err)
	assert.Contains(t, err.Error(), "status 503")
	assert.EqualValues(t, 1, src.hits.Load(), "retried although the wait did not fit")
	assert.NoError(t, ctx.Err(), "waited into the deadline instead of giving up at once")
}

func TestDo_DeadlineDuringARetryNamesTheLastStatus(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	wait := hang(t)
	src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		wait(r)
	})
	cfg := fast(src.base)
	cfg.Timeout = 500 * time.Millisecond
	c := newClient(t, cfg)
	ctx, cancel := c.Bound(context.Background())
	defer cancel()

	_, err := c.Do(ctx, get(src.url()))
	require.ErrorIs(t, err, upstream.ErrTimeout)
	assert.Equal(t, "timeout", upstream.Reason(err))
	assert.Contains(t, err.Error(), "after 2 attempt(s)")
	assert.Contains(t, err.Error(), "(last answer: status 503)")
	assert.EqualValues(t, 2, src.hits.Load())
}

func TestDo_Timeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(wait func(*http.Request)) http.HandlerFunc
	}{
		{"source slow to answer times out", func(wait func(*http.Request)) http.HandlerFunc {
			return func(_ http.ResponseWriter, r *http.Request) { wait(r) }
		}},
		{"source slow to send the body times out", func(wait func(*http.Request)) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "100")
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, `{"naam":`)
				w.(http.Flusher).Flush()
				wait(r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := startSource(t, tt.handler(hang(t)))
			cfg := fast(src.base)
			cfg.Timeout = 200 * time.Millisecond
			c := newClient(t, cfg)
			ctx, cancel := c.Bound(context.Background())
			defer cancel()

			start := time.Now()
			_, err := c.Do(ctx, get(src.url()))
			require.ErrorIs(t, err, upstream.ErrTimeout)
			assert.NotErrorIs(t, err, upstream.ErrUnavailable)
			assert.Equal(t, "timeout", upstream.Reason(err))
			assert.Contains(t, err.Error(), "zaken: GET /api/personen")
			assert.Less(t, time.Since(start), 5*time.Second)
			assert.EqualValues(t, 1, src.hits.Load(), "a timed-out attempt was retried past the deadline")
		})
	}
}

func TestDo_CallerCancelIsCanceledAndSparesTheBreaker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		preCancel bool
		first     func(wait func(*http.Request)) http.HandlerFunc // answer to the cancelled call
	}{
		{"cancelled before the call", true, nil},
		{"cancelled while the source is answering", false, func(wait func(*http.Request)) http.HandlerFunc {
			return func(_ http.ResponseWriter, r *http.Request) { wait(r) }
		}},
		{"cancelled while waiting to retry", false, func(func(*http.Request)) http.HandlerFunc {
			return always(http.StatusServiceUnavailable)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{}, 1)
			var sw swappable
			if tt.first != nil {
				first := tt.first(hang(t))
				sw.set(func(w http.ResponseWriter, r *http.Request) {
					arrived <- struct{}{}
					first(w, r)
				})
			} else {
				sw.set(ok)
			}
			src := startSource(t, sw.serve)
			var logs bytes.Buffer
			cfg := fast(src.base)
			cfg.BreakerFailures = 1
			// A long wait that always fits in the timeout (the retry is
			// only tried when the deadline leaves the wait plus
			// RetryWaitMin), so the retry is really waited for and the
			// cancel lands during it.
			cfg.RetryWaitMin, cfg.RetryWaitMax = 3*time.Second, 3*time.Second
			cfg.Timeout = 10 * time.Second
			cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newClient(t, cfg)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			if tt.preCancel {
				cancel()
			}
			go func() {
				_, err := c.Do(ctx, get(src.url()))
				errc <- err
			}()
			if !tt.preCancel {
				<-arrived
				cancel()
			}
			var err error
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("Do did not return after the caller cancelled")
			}
			require.ErrorIs(t, err, context.Canceled)
			assert.NotErrorIs(t, err, upstream.ErrUnavailable)
			assert.NotErrorIs(t, err, upstream.ErrTimeout)
			assert.Equal(t, "canceled", upstream.Reason(err))
			assert.Empty(t, logs.String(), "a caller who hung up is not the source's failure")

			sw.set(ok)
			before := src.hits.Load()
			_, err = c.Do(context.Background(), get(src.url()))
			require.NoError(t, err, "the cancelled call opened the circuit")
			assert.Equal(t, before+1, src.hits.Load())
		})
	}
}

func TestDo_AnswerSizeLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		chunked bool
		wantErr bool
	}{
		{"answer of exactly MaxResponseBytes is read", strings.Repeat("x", 16), false, false},
		{"answer one byte over MaxResponseBytes is a bad response", strings.Repeat("x", 17), false, true},
		{"chunked answer over MaxResponseBytes is a bad response", strings.Repeat("x", 1000), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := startSource(t, func(w http.ResponseWriter, _ *http.Request) {
				if !tt.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(tt.body)))
				}
				for i := range len(tt.body) {
					_, _ = io.WriteString(w, tt.body[i:i+1])
					if tt.chunked {
						w.(http.Flusher).Flush()
					}
				}
			})
			cfg := fast(src.base)
			cfg.MaxResponseBytes = 16
			c := newClient(t, cfg)
			resp, err := c.Do(context.Background(), get(src.url()))
			if !tt.wantErr {
				require.NoError(t, err)
				assert.Equal(t, tt.body, string(resp.Body))
				return
			}
			require.ErrorIs(t, err, upstream.ErrBadResponse)
			assert.Equal(t, "bad_response", upstream.Reason(err))
			assert.Contains(t, err.Error(), "larger than 16 bytes")
			assert.EqualValues(t, 1, src.hits.Load(), "a bad response is not retried")
		})
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	type person struct {
		Naam string `json:"naam"`
		Age  int    `json:"leeftijd"`
	}
	tests := []struct {
		name       string
		status     int
		body       string
		want       person
		wantErr    error
		wantReason string
	}{
		{"JSON answer is decoded", 200, `{"naam":"Jansen","leeftijd":42}`, person{"Jansen", 42}, nil, ""},
		{"unknown fields are ignored", 200, `{"naam":"Jansen","extra":true}`, person{Naam: "Jansen"}, nil, ""},
		{"garbage is a bad response", 200, `<html><body>502 Bad Gateway</body></html>{"not":`, person{}, upstream.ErrBadResponse, "bad_response"},
		{"truncated JSON is a bad response", 200, `{"naam":"Jan`, person{}, upstream.ErrBadResponse, "bad_response"},
		{"two values are a bad response", 200, `{"naam":"a"} {"naam":"b"}`, person{}, upstream.ErrBadResponse, "bad_response"},
		{"wrong type is a bad response", 200, `{"leeftijd":"oud"}`, person{}, upstream.ErrBadResponse, "bad_response"},
		{"empty answer is a bad response", 200, ``, person{}, upstream.ErrBadResponse, "bad_response"},
		{"non-2xx stays a StatusError", 404, `{"title":"niet gevonden"}`, person{}, upstream.ErrRejected, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := startSource(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			c := newClient(t, fast(src.base))
			var got person
			resp, err := c.JSON(context.Background(), get(src.url()), &got)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				assert.Equal(t, tt.body, string(resp.Body))
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.Nil(t, resp)
			assert.Equal(t, tt.wantReason, upstream.Reason(err))
			assert.True(t, strings.HasPrefix(err.Error(), "zaken: "), "error %q names the source", err)
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"one object is accepted", `{"a":1}`, false},
		{"trailing whitespace is accepted", "{\"a\":1} \n\t", false},
		{"one array is accepted", `[1,2]`, false},
		{"one number is accepted", `42`, false},
		{"two values are rejected", `{"a":1}{"a":2}`, true},
		{"two values with whitespace between are rejected", `{"a":1} {"a":2}`, true},
		{"trailing garbage is rejected", `{"a":1}x`, true},
		{"empty input is rejected", ``, true},
		{"truncated input is rejected", `{"a":`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			err := upstream.DecodeJSON([]byte(tt.in), &v)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// BUG: DecodeJSON checks for trailing data with Decoder.More, which reports
// false when the next token is '}' or ']', so a stray closing bracket after
// the value is accepted.
func TestDecodeJSON_RejectsATrailingClosingBracket(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{"a":1}}`, `[1]]`, `{"a":1}]`, `{"a":1} }`} {
		var v any
		assert.Error(t, upstream.DecodeJSON([]byte(in), &v), "%s", in)
	}
}

// openCircuit makes failures failing calls and checks the circuit is open.
func openCircuit(t *testing.T, c *upstream.Client, u string, failures int) {
	t.Helper()
	for i := range failures {
		_, err := c.Do(context.Background(), get(u))
		require.ErrorIs(t, err, upstream.ErrUnavailable, "call %d", i+1)
		require.NotErrorIs(t, err, upstream.ErrCircuitOpen, "call %d", i+1)
	}
	_, err := c.Do(context.Background(), get(u))
	require.ErrorIs(t, err, upstream.ErrCircuitOpen)
}

func TestBreaker_OpensAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		respond func(*http.Request) (*http.Response, error)
	}{
		{"5xx answers open it", func(r *http.Request) (*http.Response, error) { return answer(r, 503, ""), nil }},
		{"429 answers open it", func(r *http.Request) (*http.Response, error) { return answer(r, 429, ""), nil }},
		{"connection errors open it", func(*http.Request) (*http.Response, error) { return nil, errors.New("connect: connection refused") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt := &countingTransport{respond: tt.respond}
			cfg := fast("https://zaken.example")
			cfg.Transport, cfg.BreakerFailures, cfg.Retries = rt, 3, -1
			c := newClient(t, cfg)

			openCircuit(t, c, "https://zaken.example/x", 3)
			_, err := c.Do(context.Background(), get("https://zaken.example/x"))
			require.ErrorIs(t, err, upstream.ErrCircuitOpen)
			assert.Equal(t, "circuit_open", upstream.Reason(err))
			assert.Equal(t, "zaken: source circuit open", err.Error())
			assert.EqualValues(t, 3, rt.calls.Load(), "the source was called while the circuit was open")
		})
	}
}

func TestBreaker_TimeoutsOpenIt(t *testing.T) {
	t.Parallel()
	wait := hang(t)
	src := startSource(t, func(_ http.ResponseWriter, r *http.Request) { wait(r) })
	cfg := fast(src.base)
	cfg.Timeout, cfg.BreakerFailures = 100*time.Millisecond, 2
	c := newClient(t, cfg)
	for range 2 {
		ctx, cancel := c.Bound(context.Background())
		_, err := c.Do(ctx, get(src.url()))
		cancel()
		require.ErrorIs(t, err, upstream.ErrTimeout)
	}
	_, err := c.Do(context.Background(), get(src.url()))
	require.ErrorIs(t, err, upstream.ErrCircuitOpen)
	assert.EqualValues(t, 2, src.hits.Load())
}

func TestBreaker_StaysClosedOnRejections(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 403, 404, 409, 422} {
		t.Run(fmt.Sprintf("%d does not open it", status), func(t *testing.T) {
			t.Parallel()
			rt := &countingTransport{respond: func(r *http.Request) (*http.Response, error) { return answer(r, status, ""), nil }}
			cfg := fast("https://zaken.example")
			cfg.Transport, cfg.BreakerFailures = rt, 2
			c := newClient(t, cfg)
			for range 6 {
				_, err := c.Do(context.Background(), get("https://zaken.example/x"))
				require.ErrorIs(t, err, upstream.ErrRejected)
			}
			assert.EqualValues(t, 6, rt.calls.Load())
		})
	}
}

func TestBreaker_SuccessResetsTheFailureCount(t *testing.T) {
	t.Parallel()
	src := startSource(t, answers(503, 503, 200, 503, 503, 503))
	cfg := fast(src.base)
	cfg.BreakerFailures, cfg.Retries = 3, -1
	c := newClient(t, cfg)
	for i, wantOK := range []bool{false, false, true, false, false, false} {
		_, err := c.Do(context.Background(), get(src.url()))
		if wantOK {
			require.NoError(t, err, "call %d", i+1)
		} else {
			require.ErrorIs(t, err, upstream.ErrUnavailable, "call %d", i+1)
			require.NotErrorIs(t, err, upstream.ErrCircuitOpen, "call %d", i+1)
		}
	}
	_, err := c.Do(context.Background(), get(src.url()))
	require.ErrorIs(t, err, upstream.ErrCircuitOpen)
	assert.EqualValues(t, 6, src.hits.Load())
}

// probe calls Do until the circuit lets a call through and returns that
// call's error.
func probe(ctx context.Context, c *upstream.Client, req upstream.Request) error {
	give := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Do(ctx, req)
		if !errors.Is(err, upstream.ErrCircuitOpen) {
			return err
		}
		if time.Now().After(give) {
			return fmt.Errorf("circuit still open after 5s: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBreaker_HalfOpen(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T, cooldown time.Duration) (*upstream.Client, *source, *swappable) {
		sw := &swappable{}
		sw.set(always(http.StatusInternalServerError))
		src := startSource(t, sw.serve)
		cfg := fast(src.base)
		cfg.BreakerFailures, cfg.BreakerCooldown, cfg.Retries = 2, cooldown, -1
		c := newClient(t, cfg)
		openCircuit(t, c, src.url(), 2)
		return c, src, sw
	}

	t.Run("a successful probe after the cooldown closes it", func(t *testing.T) {
		t.Parallel()
		c, src, sw := setup(t, 50*time.Millisecond)
		sw.set(ok)
		require.NoError(t, probe(context.Background(), c, get(src.url())))
		for range 3 {
			_, err := c.Do(context.Background(), get(src.url()))
			require.NoError(t, err)
		}
		assert.EqualValues(t, 2+1+3, src.hits.Load())
	})

	t.Run("a failed probe opens it again", func(t *testing.T) {
		t.Parallel()
		// The cooldown is the window in which the next call must see the
		// circuit open again; generous for a noisy machine.
		c, src, _ := setup(t, 500*time.Millisecond)
		err := probe(context.Background(), c, get(src.url()))
		require.ErrorIs(t, err, upstream.ErrUnavailable)
		require.NotErrorIs(t, err, upstream.ErrCircuitOpen)
		_, err = c.Do(context.Background(), get(src.url()))
		require.ErrorIs(t, err, upstream.ErrCircuitOpen)
		assert.EqualValues(t, 3, src.hits.Load())
	})

	t.Run("other calls are refused while the probe is in flight", func(t *testing.T) {
		t.Parallel()
		c, src, sw := setup(t, 50*time.Millisecond)
		arrived, release := make(chan struct{}, 1), make(chan struct{})
		sw.set(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-release
			ok(w, r)
		})
		errc := make(chan error, 1)
		go func() { errc <- probe(context.Background(), c, get(src.url())) }()
		<-arrived

		_, err := c.Do(context.Background(), get(src.url()))
		require.ErrorIs(t, err, upstream.ErrCircuitOpen)
		assert.EqualValues(t, 3, src.hits.Load())

		sw.set(ok)
		close(release)
		require.NoError(t, <-errc)
		_, err = c.Do(context.Background(), get(src.url()))
		require.NoError(t, err)
	})

	t.Run("a cancelled probe lets the next call probe", func(t *testing.T) {
		t.Parallel()
		c, src, sw := setup(t, 50*time.Millisecond)
		arrived := make(chan struct{}, 1)
		wait := hang(t)
		sw.set(func(_ http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			wait(r)
		})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- probe(ctx, c, get(src.url())) }()
		<-arrived
		sw.set(ok)
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)

		_, err := c.Do(context.Background(), get(src.url()))
		require.NoError(t, err, "the circuit stayed half-open after a cancelled probe")
	})
}

func TestPrivacy_ErrorsAndLogsNeverCarryTheQuery(t *testing.T) {
	t.Parallel()
	client := func(t *testing.T, base string, log *slog.Logger, edit func(*upstream.Config)) *upstream.Client {
		cfg := fast(base)
		cfg.Logger = log
		if edit != nil {
			edit(&cfg)
		}
		return newClient(t, cfg)
	}
	failWith := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, `{"detail":"persoon %s niet gevonden","instance":%q}`, bsn, r.URL.String())
		}
	}
	tests := []struct {
		name    string
		run     func(t *testing.T, log *slog.Logger) error
		wantLog bool
	}{
		{"refused connection", func(t *testing.T, log *slog.Logger) error {
			base := "http://" + closedAddr(t) + "/api"
			_, err := client(t, base, log, nil).Do(context.Background(), get(base+"/personen?bsn="+bsn))
			return err
		}, true},
		{"timeout", func(t *testing.T, log *slog.Logger) error {
			wait := hang(t)
			src := startSource(t, func(_ http.ResponseWriter, r *http.Request) { wait(r) })
			c := client(t, src.base, log, func(c *upstream.Config) { c.Timeout = 100 * time.Millisecond })
			ctx, cancel := c.Bound(context.Background())
			defer cancel()
			_, err := c.Do(ctx, get(src.url()))
			return err
		}, true},
		{"deadline after a 503", func(t *testing.T, log *slog.Logger) error {
			var n atomic.Int32
			wait := hang(t)
			src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					failWith(503)(w, r)
					return
				}
				wait(r)
			})
			c := client(t, src.base, log, func(c *upstream.Config) { c.Timeout = 300 * time.Millisecond })
			ctx, cancel := c.Bound(context.Background())
			defer cancel()
			_, err := c.Do(ctx, get(src.url()))
			return err
		}, true},
		{"500 echoing the BSN", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, failWith(500))
			_, err := client(t, src.base, log, nil).Do(context.Background(), get(src.url()))
			return err
		}, true},
		{"400 on a POST", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, failWith(400))
			_, err := client(t, src.base, log, nil).Do(context.Background(), upstream.Request{
				Method: http.MethodPost, URL: src.url(), Body: []byte(`{"burgerservicenummer":["` + bsn + `"]}`),
			})
			return err
		}, false},
		{"redirect to a URL with the BSN", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/api/elders?bsn="+bsn, http.StatusFound)
			})
			_, err := client(t, src.base, log, nil).Do(context.Background(), get(src.url()))
			return err
		}, false},
		{"dropped connection", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, func(w http.ResponseWriter, _ *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			})
			_, err := client(t, src.base, log, nil).Do(context.Background(), get(src.url()))
			return err
		}, true},
		{"answer too large", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, strings.Repeat(bsn, 10))
			})
			c := client(t, src.base, log, func(c *upstream.Config) { c.MaxResponseBytes = 20 })
			_, err := c.Do(context.Background(), get(src.url()))
			return err
		}, true},
		{"garbage JSON", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, `{"bsn":`+bsn+`,`)
			})
			var v any
			_, err := client(t, src.base, log, nil).JSON(context.Background(), get(src.url()), &v)
			return err
		}, false},
		{"circuit open", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, failWith(503))
			c := client(t, src.base, log, func(c *upstream.Config) { c.BreakerFailures, c.Retries = 1, -1 })
			_, _ = c.Do(context.Background(), get(src.url()))
			_, err := c.Do(context.Background(), get(src.url()))
			require.ErrorIs(t, err, upstream.ErrCircuitOpen)
			return err
		}, true},
		{"foreign link", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, ok)
			_, err := client(t, src.base, log, nil).Do(context.Background(), get(src.srv.URL+"/brp/personen?bsn="+bsn))
			return err
		}, false},
		{"foreign link with the BSN in its path", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, ok)
			_, err := client(t, src.base, log, nil).Do(context.Background(), get("https://elders.example/personen/"+bsn))
			return err
		}, false},
		{"relative link with the BSN in its path", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, ok)
			_, err := client(t, src.base, log, nil).Do(context.Background(), get("personen/"+bsn))
			return err
		}, false},
		{"500 on a path with the BSN", func(t *testing.T, log *slog.Logger) error {
			src := startSource(t, failWith(500))
			_, err := client(t, src.base, log, nil).Do(context.Background(), get(src.base+"/personen/"+bsn))
			return err
		}, true},
		{"timeout on a path with the BSN", func(t *testing.T, log *slog.Logger) error {
			wait := hang(t)
			src := startSource(t, func(_ http.ResponseWriter, r *http.Request) { wait(r) })
			c := client(t, src.base, log, func(c *upstream.Config) { c.Timeout = 100 * time.Millisecond })
			_, err := c.Do(context.Background(), get(src.base+"/personen/"+bsn))
			return err
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			err := tt.run(t, log)
			require.Error(t, err)
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%v", errors.Unwrap(err))} {
				assert.NotContains(t, s, bsn)
				assert.NotContains(t, s, "?")
			}
			if se, ok := errors.AsType[*upstream.StatusError](err); ok {
				assert.NotContains(t, se.Path, bsn)
				assert.NotContains(t, string(se.Body), bsn, "not even in the kept error answer")
			}
			assert.NotContains(t, logs.String(), bsn)
			if tt.wantLog {
				assert.Contains(t, logs.String(), `"source":"zaken"`)
			}
		})
	}
}

func TestTraceparent(t *testing.T) {
	t.Parallel()
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name string
		ctx  context.Context
		want *regexp.Regexp // nil: no header
	}{
		{"a trace id is sent with a fresh span per request", upstream.WithTrace(context.Background(), traceID),
			regexp.MustCompile(`^00-` + traceID + `-[0-9a-f]{16}-01$`)},
		{"no trace id sends no header", context.Background(), nil},
		{"an empty trace id sends no header", upstream.WithTrace(context.Background(), ""), nil},
		{"a short trace id sends no header", upstream.WithTrace(context.Background(), traceID[:31]), nil},
		{"a long trace id sends no header", upstream.WithTrace(context.Background(), traceID+"0"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			seen := make(chan []string, 2)
			src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Header.Values("Traceparent")
				ok(w, r)
			})
			c := newClient(t, fast(src.base))
			var spans []string
			for range 2 {
				_, err := c.Do(tt.ctx, get(src.url()))
				require.NoError(t, err)
				got := <-seen
				if tt.want == nil {
					assert.Empty(t, got)
					continue
				}
				require.Len(t, got, 1)
				assert.Regexp(t, tt.want, got[0])
				spans = append(spans, strings.Split(got[0], "-")[2])
			}
			if tt.want != nil {
				assert.NotEqual(t, spans[0], spans[1], "span id reused across requests")
			}
		})
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("brp: %w", fmt.Errorf("zaken: %w", err)) }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil has no reason", nil, ""},
		{"ErrTimeout is timeout", upstream.ErrTimeout, "timeout"},
		{"wrapped ErrTimeout is timeout", wrap(upstream.ErrTimeout), "timeout"},
		{"context deadline is timeout", context.DeadlineExceeded, "timeout"},
		{"wrapped context deadline is timeout", wrap(context.DeadlineExceeded), "timeout"},
		{"ErrCircuitOpen is circuit_open", upstream.ErrCircuitOpen, "circuit_open"},
		{"wrapped ErrCircuitOpen is circuit_open", wrap(upstream.ErrCircuitOpen), "circuit_open"},
		{"ErrBadResponse is bad_response", upstream.ErrBadResponse, "bad_response"},
		{"wrapped ErrBadResponse is bad_response", wrap(upstream.ErrBadResponse), "bad_response"},
		{"ErrForeignLink is foreign_link", upstream.ErrForeignLink, "foreign_link"},
		{"wrapped ErrForeignLink is foreign_link", wrap(upstream.ErrForeignLink), "foreign_link"},
		{"ErrRejected is rejected", upstream.ErrRejected, "rejected"},
		{"wrapped 404 StatusError is rejected", wrap(&upstream.StatusError{Status: 404}), "rejected"},
		{"ErrUnavailable is unavailable", upstream.ErrUnavailable, "unavailable"},
		{"wrapped 503 StatusError is unavailable", wrap(&upstream.StatusError{Status: 503}), "unavailable"},
		{"429 StatusError is unavailable", &upstream.StatusError{Status: 429}, "unavailable"},
		{"3xx StatusError is a refusal", &upstream.StatusError{Status: 302}, "rejected"},
		{"context canceled is canceled", context.Canceled, "canceled"},
		{"wrapped context canceled is canceled", wrap(context.Canceled), "canceled"},
		{"timeout wins over unavailable", errors.Join(upstream.ErrUnavailable, upstream.ErrTimeout), "timeout"},
		{"other errors are error", errors.New("boom"), "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, upstream.Reason(tt.err))
		})
	}
}

func TestStatusError_Is(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status                    int
		wantUnavailable, wantRejd bool
	}{
		{302, false, true},
		{399, false, true},
		{400, false, true},
		{404, false, true},
		{428, false, true},
		{429, true, false},
		{430, false, true},
		{499, false, true},
		{500, true, false},
		{503, true, false},
		{599, true, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			err := &upstream.StatusError{Source: "brp", Method: "POST", Path: "/personen", Status: tt.status}
			assert.Equal(t, tt.wantUnavailable, errors.Is(err, upstream.ErrUnavailable))
			assert.Equal(t, tt.wantRejd, errors.Is(err, upstream.ErrRejected))
			assert.NotErrorIs(t, err, upstream.ErrTimeout)
			assert.NotErrorIs(t, err, upstream.ErrBadResponse)
			assert.Equal(t, fmt.Sprintf("brp: POST /personen: status %d", tt.status), err.Error())
		})
	}
}

func TestClient_IsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	// One 503 among the calls: whichever call gets it retries and succeeds.
	src := startSource(t, answers(503))
	cfg := fast(src.base)
	c := newClient(t, cfg)
	ctx := upstream.WithTrace(context.Background(), "4bf92f3577b34da6a3ce929d0e0e4736")
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			req := get(src.url())
			if i%2 == 1 {
				req = upstream.Request{Method: http.MethodPost, URL: src.url(), Body: []byte(`{}`), Idempotent: true}
			}
			_, err := c.Do(ctx, req)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}
