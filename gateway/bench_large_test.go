package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// grow makes every slice in v (a pointer to a slice or a struct) n times
// as long, repeating its records: a resident with a long history.
func grow(v any, n int) {
	growValue(reflect.ValueOf(v).Elem(), n)
}

func growValue(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() == 0 {
			return
		}
		out := reflect.MakeSlice(v.Type(), 0, v.Len()*n)
		for range n {
			out = reflect.AppendSlice(out, v)
		}
		v.Set(out)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() && f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct {
				growValue(f, n)
			}
		}
	}
}

// BenchmarkResidentViewLarge is BenchmarkResidentView for a resident with
// 50 times the records in every source (hundreds of cases, contacts and
// callbacks): composing, filtering and encoding a large view.
func BenchmarkResidentViewLarge(b *testing.B) {
	h := newHarness(b)
	grow(&h.zaken.Answer, 50)
	grow(&h.ki.Answer, 50)
	grow(h.sf.Answer, 50)
	tok := h.signer.token(b, employee("kcc"))
	// A KCC look-up, in the contact session it requires.
	body := `{"bsn":"999993653","purpose":"klantcontact","context":{"type":"contact-session","id":"` + h.openSession(tok) + `"}}`
	r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	size := w.Body.Len()
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
	b.ReportMetric(float64(size), "view-bytes")
}
