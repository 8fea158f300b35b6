package gateway_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/policies"
)

func TestDuplicateKeysAre400NamingTheKey(t *testing.T) {
	h := newHarness(t)
	tok := h.signer.token(t, employee("burgerzaken"))
	tests := []struct {
		name string
		body string
		key  string
	}{
		{"a second bsn", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `,"bsn":"999990044"}`, "bsn"},
		{"a second bsn spelt with an escape", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `,"b\u0073n":"999990044"}`, "bsn"},
		{"a second purpose", `{"purpose":"bijstand","bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`, "purpose"},
		{"a second id in the context", `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"klantcontact","id":"k-1","id":"k-2"}}`, "context.id"},
		{"a second context", `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"zaak","id":"z"},"context":{"type":"klantcontact","id":"k"}}`, "context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.store.Events())
			a := h.view(tok, tt.body)
			require.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
			params, _ := a.json["invalidParams"].([]any)
			require.Len(t, params, 1, "%s", a.body)
			assert.Equal(t, tt.key, params[0].(map[string]any)["name"])
			assert.Equal(t, "duplicate", params[0].(map[string]any)["code"])
			assert.Zero(t, h.sourceCalls())
			evs := h.store.Events()
			require.Len(t, evs, before+1, "the refusal is audited")
			assert.Equal(t, http.StatusBadRequest, evs[len(evs)-1].Status)
			assert.Empty(t, evs[len(evs)-1].Subject, "an ambiguous body names no resident")
		})
	}

	t.Run("the same key in different objects is no duplicate", func(t *testing.T) {
		a := h.view(tok, `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"zaak","id":"`+zaakOK+`"},"sources":["brp"]}`)
		assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
	})
}

// contextRequired is the embedded policy bundle with purpose requiring a
// context of one of types.
func contextRequired(t *testing.T, purpose string, types ...string) *policies.Engine {
	t.Helper()
	b := policies.Embedded()
	var data map[string]any
	require.NoError(t, json.Unmarshal(b.Files[policies.DataFile], &data))
	p := data["purposes"].(map[string]any)[purpose].(map[string]any)
	require.Contains(t, p, "requires_context")
	p["requires_context"] = types
	raw, err := json.Marshal(data)
	require.NoError(t, err)
	files := map[string][]byte{}
	for name, f := range b.Files {
		files[name] = f
	}
	files[policies.DataFile] = raw
	e, err := policies.NewEngine(context.Background(), policies.Bundle{Files: files})
	require.NoError(t, err)
	return e
}

func TestContextIDLengthCountsCharactersAndTheContextIsAudited(t *testing.T) {
	h := newHarness(t, withPolicy(contextRequired(t, "reisdocumenten", "klantcontact")))
	tok := h.signer.token(t, employee("burgerzaken"))
	body := func(id string) string {
		b, err := json.Marshal(map[string]any{"bsn": bsn, "purpose": "reisdocumenten", "context": map[string]string{"type": "klantcontact", "id": id}})
		require.NoError(t, err)
		return string(b)
	}

	t.Run("without the context the policy refuses", func(t *testing.T) {
		a := h.view(tok, `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
		require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
	})
	for _, tt := range []struct {
		name string
		id   string
	}{
		{"200 two-byte letters (400 bytes) are accepted and audited", strings.Repeat("é", 200)},
		{"200 four-byte characters (800 bytes) are accepted and audited", strings.Repeat("𝔷", 200)},
		{"200 ASCII letters are accepted and audited", strings.Repeat("k", 200)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := h.view(tok, body(tt.id))
			require.Equal(t, http.StatusOK, a.status, "%s", a.body)
			ev := h.lastEvent()
			assert.Equal(t, int64(ev.Seq), int64(a.json["auditSeq"].(float64)))
			assert.Equal(t, &audit.Context{Type: "klantcontact", ID: tt.id}, ev.Context, "every accepted context is in its event")
		})
	}
	t.Run("201 characters are refused naming context.id", func(t *testing.T) {
		a := h.view(tok, body(strings.Repeat("é", 201)))
		require.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
		params, _ := a.json["invalidParams"].([]any)
		require.NotEmpty(t, params)
		assert.Equal(t, "context.id", params[0].(map[string]any)["name"])
		assert.Nil(t, h.lastEvent().Context, "a context the API refuses is not recorded")
	})
	t.Run("a context of a look-up the policy refuses is audited too", func(t *testing.T) {
		id := strings.Repeat("é", 200)
		a := h.view(h.signer.token(t, employee("kcc")), body(id))
		require.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
		assert.Equal(t, &audit.Context{Type: "klantcontact", ID: id}, h.lastEvent().Context)
	})
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.String()
}

func TestContentEncodingOtherThanIdentityIs415(t *testing.T) {
	h := newHarness(t)
	tok := h.signer.token(t, employee("burgerzaken"))
	body := `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`
	tests := []struct {
		name     string
		method   string
		path     string
		encoding string
		body     string
		status   int
	}{
		{"gzip", "POST", "/v1/resident-views", "gzip", gzipped(t, body), 415},
		{"gzip with a body that is not gzip", "POST", "/v1/resident-views", "gzip", body, 415},
		{"gzip after identity", "POST", "/v1/resident-views", "identity, gzip", gzipped(t, body), 415},
		{"br in upper case", "POST", "/v1/resident-views", "BR", body, 415},
		{"on an endpoint without a body", "GET", "/healthz", "deflate", "", 415},
		{"identity", "POST", "/v1/resident-views", "identity", body, 200},
		{"identity in upper case", "POST", "/v1/resident-views", "IDENTITY", body, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.sourceCalls()
			a := h.do(tt.method, tt.path, tok, "application/json", tt.body, "Content-Encoding", tt.encoding)
			require.Equal(t, tt.status, a.status, "%s", a.body)
			if tt.status == http.StatusUnsupportedMediaType {
				assert.Equal(t, "identity", a.header.Get("Accept-Encoding"))
				assert.Equal(t, before, h.sourceCalls(), "no source is called")
			}
		})
	}
}

func TestNonCanonicalPathsAre404NotRedirects(t *testing.T) {
	h := newHarness(t)
	tok := h.signer.token(t, employee("burgerzaken"))
	body := `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`
	for _, path := range []string{
		"//v1/resident-views",
		"/v1//resident-views",
		"/v1/./resident-views",
		"/v1/resident-views/.",
		"/v1/resident-views/../resident-views",
		"/v1/x/../resident-views",
		"/v1/%2e/resident-views",
		"/v1/%2E%2E/v1/resident-views",
		"/v1%2Fresident-views",
		"/v1/resident%2Dviews",
		"/v1/resident-views/",
		"//healthz",
		"/./readyz",
	} {
		t.Run(path, func(t *testing.T) {
			before := len(h.store.Events())
			a := h.do(http.MethodPost, path, tok, "application/json", body)
			assert.Equal(t, http.StatusNotFound, a.status, "%s", a.body)
			assert.Empty(t, a.header.Get("Location"), "no redirect")
			assert.Zero(t, h.sourceCalls())
			assert.Len(t, h.store.Events(), before, "no operation was reached")
		})
	}
	t.Run("the canonical path works", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, h.do(http.MethodPost, "/v1/resident-views", tok, "application/json", body).status)
		assert.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", "", "", "").status)
	})
}

// panickingPolicy fails like a bug would, naming a BSN.
type panickingPolicy struct{}

func (panickingPolicy) Decide(context.Context, policies.Input) (policies.Decision, error) {
	panic("policy bug deciding about 999990044")
}

var nineDigits = regexp.MustCompile(`(^|[^0-9])[0-9]{9}([^0-9]|$)`)

func TestLogsNameTheRouteNeverThePathOrQuery(t *testing.T) {
	const other = "999990044" // a BSN, in URLs where it does not belong
	body := `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`
	tests := []struct {
		name   string
		policy gateway.Decider
		method string
		target string
		status int
		route  string
		logged string
	}{
		{"a BSN as a path segment of the view", nil, "GET", "/v1/resident-views/" + other, 404, `route=/ `, "msg=request "},
		{"a BSN posted to a path", nil, "POST", "/v1/resident-views/" + other, 404, `route=/ `, "msg=request "},
		{"a BSN in the query of a view", nil, "POST", "/v1/resident-views?bsn=" + other, 200, `route="POST /v1/resident-views"`, "msg=request "},
		{"a BSN in the query of the document", nil, "GET", "/v1/openapi.json?bsn=" + other, 200, `route="GET /v1/openapi.json"`, "msg=request "},
		{"a BSN in a non-canonical path", nil, "GET", "//v1/" + other, 404, `route=-`, "msg=request "},
		{"a failure of ours", failingPolicy{}, "POST", "/v1/resident-views?bsn=" + other, 500, `route="POST /v1/resident-views"`, `msg="request failed"`},
		{"a panic", panickingPolicy{}, "POST", "/v1/resident-views?bsn=" + other, 500, `route="POST /v1/resident-views"`, "msg=panic "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []option
			if tt.policy != nil {
				opts = append(opts, withPolicy(tt.policy))
			}
			h := newHarness(t, opts...)
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+h.signer.token(t, employee("burgerzaken")))
			r.Header.Set("Content-Type", "application/json")
			a := h.serve(r)
			require.Equal(t, tt.status, a.status, "%s", a.body)

			logs := h.logs.String()
			require.NotEmpty(t, logs)
			assert.Contains(t, logs, tt.logged)
			for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
				assert.NotRegexp(t, nineDigits, line, "no nine-digit run in a log line")
				if strings.Contains(line, `msg=request `) || strings.Contains(line, `msg="request failed"`) || strings.Contains(line, `msg=panic `) {
					assert.Contains(t, line+" ", tt.route, "the line names the route")
					assert.NotContains(t, line, "path=")
				}
			}
		})
	}
}

func TestInvalidTraceparentIsIgnoredAndANewTraceStarted(t *testing.T) {
	h := newHarness(t)
	tok := h.signer.token(t, employee("burgerzaken"))
	body := `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`
	const trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name        string
		traceparent []string
		continues   bool
		kept        string
	}{
		{"garbage", []string{"not a traceparent"}, false, ""},
		{"upper-case hex", []string{"00-" + strings.ToUpper(trace) + "-" + parent + "-01"}, false, ""},
		{"a trace id of zeros", []string{"00-" + strings.Repeat("0", 32) + "-" + parent + "-01"}, false, ""},
		{"a parent id of zeros", []string{"00-" + trace + "-" + strings.Repeat("0", 16) + "-01"}, false, ""},
		{"version ff", []string{"ff-" + trace + "-" + parent + "-01"}, false, ""},
		{"version 00 with more after it", []string{"00-" + trace + "-" + parent + "-01-what"}, false, ""},
		{"too short", []string{"00-" + trace[:31] + "-" + parent + "-01"}, false, ""},
		{"two headers", []string{"00-" + trace + "-" + parent + "-01", "00-" + trace + "-" + parent + "-00"}, false, ""},
		{"version 00", []string{"00-" + trace + "-" + parent + "-01"}, true, "00-" + trace + "-" + parent + "-01"},
		{"a later version with more fields is read as 00", []string{"01-" + trace + "-" + parent + "-01-more-to-come"}, true, "01-" + trace + "-" + parent + "-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("Content-Type", "application/json")
			r.Header["Traceparent"] = tt.traceparent
			w := httptest.NewRecorder()
			h.handler.ServeHTTP(w, r)
			require.Equal(t, http.StatusOK, w.Code, "%s", w.Body)
			err := h.spec.ValidateResponse(context.Background(), httptest.NewRequest(http.MethodPost, "/v1/resident-views", nil), w.Code, w.Header(), w.Body.Bytes())
			require.NoError(t, err, "the answer matches the API document")
			ev := h.lastEvent()
			assert.Regexp(t, hex32, ev.TraceID)
			if !tt.continues {
				assert.NotEqual(t, trace, ev.TraceID, "a new trace")
				assert.Nil(t, ev.ForeignOperation, "nothing of the caller's to keep")
				return
			}
			assert.Equal(t, trace, ev.TraceID, "the caller's trace is continued")
			require.NotNil(t, ev.ForeignOperation)
			assert.Equal(t, tt.kept, ev.ForeignOperation.Traceparent)
		})
	}
}

func TestFSCTransactionIDIsKeptWholeUpToItsLengthInCharacters(t *testing.T) {
	h := newHarness(t)
	tok := h.signer.token(t, employee("burgerzaken"))
	id := strings.Repeat("é", 200)
	a := h.view(tok, `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`, "Fsc-Transaction-Id", id)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.NotNil(t, h.lastEvent().ForeignOperation)
	assert.Equal(t, id, h.lastEvent().ForeignOperation.FSCTransactionID)
}
