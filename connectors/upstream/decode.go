package upstream

import (
	"errors"
	"fmt"

	gojson "github.com/goccy/go-json"

	"github.com/klantbeeld/klantbeeld/bsn"
)

// DecodeJSON decodes exactly one JSON value from b into out: anything but
// white space after it (a second value, a stray "}") is an error.
//
// It decodes as encoding/json.Unmarshal does: the same Go types, the same
// field matching, an error for the same inputs (TestDecodeJSONDecodesAs-
// EncodingJSON and FuzzDecodeJSON hold it to that). It does so with
// github.com/goccy/go-json, because decoding the sources' answers is the
// largest part of a view's CPU and that decoder takes a sixth to a ninth
// of encoding/json's time on them (BenchmarkDecodeJSON). What it decodes
// shares no memory with b or with the decoder's pooled buffers
// (TestDecodeJSONKeepsNothingOfItsInput). A panic inside
// the decoder, on an answer nobody foresaw, is returned as an error: the
// sources are decoded on goroutines of their own, where a panic would end
// the process; what the panic said is redacted, as it may quote the answer.
func DecodeJSON(b []byte, out any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("decoding the answer failed: " + bsn.Redact(fmt.Sprint(r)))
		}
	}()
	return gojson.Unmarshal(b, out)
}
