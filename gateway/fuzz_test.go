package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzResidentViewRequest sends arbitrary bodies and content types: the
// answer is never a panic or a 5xx, and every refusal is problem+json.
func FuzzResidentViewRequest(f *testing.F) {
	h := newHarness(f)
	tok := h.signer.token(f, employee("burgerzaken"))
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`},
		{"application/json", `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"zaak","id":"ZAAK-1"},"sources":["brp"]}`},
		{"application/json", `{"bsn":999993653}`},
		{"application/json", `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}}`},
		{"application/json", `[]`},
		{"application/json", `{"bsn":"\u0000","purpose":"\ud800"}`},
		{"application/json; charset=utf-8", `{"bsn":"999993653","purpose":"x","sources":["brp","brp"]}`},
		{"application/json", `{"bsn":"999993653","purpose":"reisdocumenten","bsn":"999990044","context":{"id":"a","id":"b"}}`},
		{"text/plain", `hello`},
		{"", ``},
		{"multipart/form-data; boundary=x", "--x\r\n\r\n--x--"},
	} {
		f.Add(seed.ct, seed.body)
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q %q: %s", w.Code, contentType, body, w.Body)
		}
		if w.Code != http.StatusOK {
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("refusal with content type %q", ct)
			}
			var p map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p["status"] == nil || p["detail"] == nil {
				t.Fatalf("refusal is not a problem: %s", w.Body)
			}
		}
	})
}
