package upstream_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// answerShape has the shapes the connectors decode answers into: named
// and case-folded fields, pointers, nested slices of structs, maps, any,
// numbers and booleans, an embedded struct and a json.RawMessage.
type answerShape struct {
	Next    *string `json:"next"`
	Count   int     `json:"count"`
	Results []struct {
		URL           string `json:"url"`
		UUID          string `json:"uuid"`
		Identificatie string `json:"identificatie"`
		Embedded
		Status *struct {
			Omschrijving string  `json:"omschrijving"`
			Volgnummer   float64 `json:"volgnummer"`
		} `json:"status"`
		Betrokkenen []struct {
			Rol   string            `json:"rol"`
			Codes []string          `json:"codes"`
			Extra map[string]string `json:"extra"`
		} `json:"betrokkenen"`
		Vertrouwelijk bool            `json:"vertrouwelijk"`
		Data          map[string]any  `json:"data"`
		Body          json.RawMessage `json:"body"`
		Anything      any             `json:"anything"`
	} `json:"results"`
}

type Embedded struct {
	Kanaal string `json:"kanaal"`
}

// answerSeeds are answers in the sources' shapes: a ZGW page with an
// expanded status, a Klantinteracties page, a BRP person, a Salesforce
// composite answer; then the edges of the grammar.
var answerSeeds = []string{
	`{"count":2,"next":"http://zaken.example/zaken/api/v1/zaken?page=2","previous":null,"results":[{"url":"http://zaken.example/zaken/api/v1/zaken/5d9c","uuid":"5d9c6e2a-0d4e-4f0a-9f1b-2d1f3c0e9a11","identificatie":"ZAAK-2024-0001","bronorganisatie":"002220647","zaaktype":"http://catalogi.example/zaaktypen/1","status":{"omschrijving":"In behandeling","volgnummer":2},"vertrouwelijk":false,"_expand":{"status":{"statustype":{"omschrijving":"Ontvangen"}}},"betrokkenen":[{"rol":"initiator","codes":["a","b"],"extra":{"x":"y"}}]},{"url":"u2","UUID":"upper case key","Identificatie":"ZAAK-2","kanaal":"balie","status":null,"anything":[1,"two",{"three":3.5},null,true]}]}`,
	`{"next":null,"results":[{"uuid":"9f0e","kanaal":"telefoon","data":{"onderwerp":"Paspoort aanvragen","inhoud":"Mevrouw belt over \"haar\" paspoort \u00e9n rijbewijs\n","vertrouwelijk":false,"plaatsgevondenOp":"2026-11-30T09:12:00+01:00","nummer":-1.25e3}}]}`,
	`{"type":"RaadpleegMetBurgerservicenummer","personen":[{"burgerservicenummer":"999993653","naam":{"voornamen":"Suzanne","geslachtsnaam":"Moulin"},"geboorte":{"datum":{"type":"Datum","datum":"1983-05-26"}},"geheimhoudingPersoonsgegevens":false,"leeftijd":43}]}`,
	`{"results":[{"uuid":"sf","body":{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Case"},"Id":"500xx","Subject":"Terugbelverzoek"}]},"data":{"httpStatusCode":200,"referenceId":"cases"}}]}`,
	`{"results":[{"uuid":"dup","uuid":"last wins","count":1e400}]}`,
	`{"count":"not a number"}`,
	`{"results":{"not":"an array"}}`,
	`{"results":[{"vertrouwelijk":"ja"}]}`,
	`{"results":[{"body":}]}`,
	`{"results":[{"uuid":"\ud800 lone surrogate","url":"bad utf-8: ` + "\xff\xfe" + `"}]}`,
	`{"next":"a"} trailing`,
	`{"next":"a"}}`,
	`[]`,
	`null`,
	` {"count": 007}`,
	`{"count": 1.0}`,
	`{"results":[{"data":{"deep":[[[[[[[[[[{"a":[]}]]]]]]]]]]}}]}`,
}

// decodeBoth decodes b with DecodeJSON and with encoding/json. Both must
// accept it or both refuse it, and what they accept they must decode to
// the same value.
func decodeBoth(t *testing.T, b []byte) {
	t.Helper()
	var got, want answerShape
	gotErr := upstream.DecodeJSON(b, &got)
	wantErr := json.Unmarshal(b, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("DecodeJSON: %v; encoding/json: %v; on %q", gotErr, wantErr, b)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeJSON decoded %q to\n%+v\nencoding/json to\n%+v", b, got, want)
	}
}

// TestDecodeJSONDecodesAsEncodingJSON holds DecodeJSON to encoding/json's
// outcome on the seeds and on a fixed series of mutations of them: bytes
// changed, cut off, left out, so that most are broken JSON.
func TestDecodeJSONDecodesAsEncodingJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 26))
	for _, seed := range answerSeeds {
		decodeBoth(t, []byte(seed))
		for range 2000 {
			decodeBoth(t, mutate(r, []byte(seed)))
		}
	}
}

// FuzzDecodeJSON is that test under the fuzzer:
// go test -fuzz FuzzDecodeJSON ./connectors/upstream/
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range answerSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(decodeBoth)
}

func mutate(r *rand.Rand, b []byte) []byte {
	const grammar = `{}[]":,\ -.e0tfn`
	b = append([]byte(nil), b...)
	for range 1 + r.IntN(3) {
		if len(b) == 0 {
			return b
		}
		i := r.IntN(len(b))
		switch r.IntN(4) {
		case 0:
			b[i] = byte(r.IntN(256))
		case 1:
			b[i] = grammar[r.IntN(len(grammar))]
		case 2:
			b = b[:i]
		default:
			b = append(b[:i], b[i+1:]...)
		}
	}
	return b
}

type panicking struct{}

func (panicking) UnmarshalJSON(b []byte) error { panic("decoder bug at " + string(b)) }

func TestDecodeJSONTurnsAPanicIntoAnError(t *testing.T) {
	t.Parallel()
	var v struct {
		P panicking `json:"p"`
	}
	var err error
	require.NotPanics(t, func() { err = upstream.DecodeJSON([]byte(`{"p":"`+bsn+`"}`), &v) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "decoder bug")
	assert.NotContains(t, err.Error(), bsn, "what the panic quoted of the answer is redacted")
}

func TestDecodeJSONPassesOnAnUnmarshalersError(t *testing.T) {
	t.Parallel()
	var v struct {
		F failing `json:"f"`
	}
	assert.ErrorIs(t, upstream.DecodeJSON([]byte(`{"f":1}`), &v), errFailing)
}

var errFailing = errors.New("refused by UnmarshalJSON")

type failing struct{}

func (*failing) UnmarshalJSON([]byte) error { return errFailing }

// BenchmarkDecodeJSON decodes a page of 40 zaken with an expanded status,
// most of whose members the type does not name, as a ZGW answer is.
func BenchmarkDecodeJSON(b *testing.B) {
	zaak := `{"url":"http://zaken.example/zaken/api/v1/zaken/5d9c","uuid":"5d9c6e2a-0d4e-4f0a-9f1b-2d1f3c0e9a11","identificatie":"ZAAK-2024-0001","bronorganisatie":"002220647","omschrijving":"Aanvraag paspoort","toelichting":"","zaaktype":"http://catalogi.example/zaaktypen/1","registratiedatum":"2026-11-02","startdatum":"2026-11-02","einddatum":null,"vertrouwelijkheidaanduiding":"openbaar","status":{"omschrijving":"In behandeling","volgnummer":2},"_expand":{"status":{"url":"http://zaken.example/statussen/1","statustoelichting":"","datumStatusGezet":"2026-11-03T10:00:00Z","statustype":{"omschrijving":"Ontvangen","volgnummer":1,"isEindstatus":false}}}}`
	page := []byte(`{"count":40,"next":null,"previous":null,"results":[` + strings.Repeat(zaak+",", 39) + zaak + `]}`)
	for _, c := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"DecodeJSON", upstream.DecodeJSON}, {"encoding-json", json.Unmarshal}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			for b.Loop() {
				var v answerShape
				if err := c.decode(page, &v); err != nil || len(v.Results) != 40 {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDecodeJSONKeepsNothingOfItsInput: what DecodeJSON decodes must not
// share memory with the answer it was given, nor with the decoder's own
// buffers, which serve the next call: the connectors keep the values
// after the answer and the next decode.
func TestDecodeJSONKeepsNothingOfItsInput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 3000)
	in := `{"next":"` + long + `","results":[{"uuid":"` + long + `","kanaal":"` + long +
		`","status":{"omschrijving":"` + long + `"},"betrokkenen":[{"rol":"` + long + `","codes":["` + long + `"],"extra":{"` + long + `":"` + long + `"}}],` +
		`"data":{"` + long + `":"` + long + `"},"body":{"x":"` + long + `"},"anything":["` + long + `",{"q":"` + long + `"}]}]}`
	first := []byte(in)
	var got answerShape
	require.NoError(t, upstream.DecodeJSON(first, &got))
	want, err := json.Marshal(got)
	require.NoError(t, err)
	require.Equal(t, 13, strings.Count(string(want), long), "every long string was decoded")

	for i := range first {
		if first[i] == 'a' {
			first[i] = 'Z'
		}
	}
	var other answerShape
	require.NoError(t, upstream.DecodeJSON([]byte(strings.ReplaceAll(in, "a", "b")), &other))
	after, err := json.Marshal(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(after), "a decoded value changed with its input or with the next decode")
}
