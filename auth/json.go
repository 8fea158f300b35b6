package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// errDuplicateKey: a JSON object names a key twice. Parsers disagree on
// which one counts (Go's and jwx's keep the last), so a signed token with
// "department" twice means what the reader wants it to mean.
var errDuplicateKey = errors.New("duplicate key")

// maxJSONDepth bounds nesting; no header or claim set we read is deeper
// than two levels.
const maxJSONDepth = 16

// decodeObject decodes one JSON object strictly: valid UTF-8, no
// duplicate keys at any level, nothing after it. Numbers stay
// json.Number, so a time can be told apart from a string holding one.
func decodeObject(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	obj, err := readObject(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return obj, nil
}

// readObject reads the members of an object whose '{' was just read.
func readObject(dec *json.Decoder, depth int) (map[string]any, error) {
	obj := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		if _, dup := obj[key]; dup {
			// The key itself is left out: it may be personal data.
			return nil, errDuplicateKey
		}
		v, err := readValue(dec, depth)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	return obj, nil
}

// readArray reads the elements of an array whose '[' was just read.
func readArray(dec *json.Decoder, depth int) ([]any, error) {
	arr := []any{}
	for dec.More() {
		v, err := readValue(dec, depth)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, err
	}
	return arr, nil
}

func readValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= maxJSONDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	switch d {
	case '{':
		return readObject(dec, depth+1)
	case '[':
		return readArray(dec, depth+1)
	default: // the decoder hands out a closing delimiter only where one belongs
		return nil, fmt.Errorf("unexpected %q", d)
	}
}
