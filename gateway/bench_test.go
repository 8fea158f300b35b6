package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkResidentView is the gateway's own work for one view (JWT,
// validation, policy, fan-out, filtering, JSON, audit through the Log)
// with sources that answer at once: the overhead on top of the slowest source.
func BenchmarkResidentView(b *testing.B) {
	h := newHarness(b)
	tok := h.signer.token(b, employee("burgerzaken"))
	body := `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.handler.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
