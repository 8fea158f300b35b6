package auth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeObject(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		dup      bool // refused as a duplicate
		bad      bool // refused otherwise
	}{
		{name: "distinct keys are read", in: `{"a":1,"b":"x","c":[true,null],"d":{"e":1.5}}`},
		{name: "the same key in sibling objects is no duplicate", in: `{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}`},
		{name: "a top-level duplicate is refused", in: `{"department":"burgerzaken","department":"kcc"}`, dup: true},
		{name: "a duplicate with the same value is refused", in: `{"a":1,"a":1}`, dup: true},
		{name: "a duplicate spelled with an escape is refused", in: `{"sub":"a","s\u0075b":"b"}`, dup: true},
		{name: "a duplicate in a nested object is refused", in: `{"a":{"b":{"c":1,"c":2}}}`, dup: true},
		{name: "a duplicate in an object in an array is refused", in: `{"a":[1,{"b":1,"b":2}]}`, dup: true},
		{name: "an array is not an object", in: `[{"a":1}]`, bad: true},
		{name: "a string is not an object", in: `"a"`, bad: true},
		{name: "an empty input is refused", in: ``, bad: true},
		{name: "a trailing value is refused", in: `{"a":1} {"a":2}`, bad: true},
		{name: "a trailing comma is refused", in: `{"a":1,}`, bad: true},
		{name: "a non-string key is refused", in: `{1:2}`, bad: true},
		{name: "invalid UTF-8 is refused", in: "{\"a\":\"\xc3\x28\"}", bad: true},
		{name: "deep nesting is refused", in: `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, bad: true},
		{name: "an unclosed object is refused", in: `{"a":1`, bad: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeObject([]byte(tt.in))
			switch {
			case tt.dup:
				require.ErrorIs(t, err, errDuplicateKey)
			case tt.bad:
				require.Error(t, err)
				assert.NotErrorIs(t, err, errDuplicateKey)
			default:
				require.NoError(t, err)
				assert.Equal(t, stdDecode(t, []byte(tt.in)), got)
			}
		})
	}
}

func TestDecodeObjectKeepsNumbersApartFromStrings(t *testing.T) {
	got, err := decodeObject([]byte(`{"exp":1700000000,"nbf":"1700000000"}`))
	require.NoError(t, err)
	assert.Equal(t, json.Number("1700000000"), got["exp"])
	assert.Equal(t, "1700000000", got["nbf"])
}

// stdDecode is what encoding/json makes of b.
func stdDecode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	return m
}

// FuzzDecodeObject: never a panic, and whatever is accepted is valid JSON
// that encoding/json reads the same way.
func FuzzDecodeObject(f *testing.F) {
	for _, seed := range []string{
		`{"a":1}`, `{"a":{"a":[{"a":null}]}}`, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`,
		`{"a":"\ud800"}`, `{"a":1e999}`, `{}`, `{"a":[]}`, `[]`, `{"a":1}x`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeObject(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if want := stdDecode(t, b); !assert.Equal(t, want, got) {
			t.Fatalf("decoded %q differently from encoding/json", b)
		}
	})
}
