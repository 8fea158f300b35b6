package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// refuseRequest is the problem of a request no route should see, or nil:
//
//   - a path not in its one canonical form is 404, not the ServeMux's
//     redirect to the cleaned path: two spellings of one resource would
//     let a request slip past whatever looks at paths, and ADR wants 404;
//   - a request body with a content coding other than identity is 415:
//     it would be read as if it were not encoded.
//
// Neither is an audit event (as a 405 is not): the request reached no
// operation, and nothing it carries can be read as being about a resident.
func refuseRequest(r *http.Request) *Problem {
	if !canonicalPath(r) {
		return problem(http.StatusNotFound, "There is no resource at this path.", nil)
	}
	if p := contentEncodingProblem(r); p != nil {
		return p
	}
	return nil
}

// canonicalPath reports whether r's path is the one spelling of what it
// names: it starts with "/", has no empty, "." or ".." segment (so no
// "//", no trailing "/" but on the root) and is escaped the way Go
// escapes it (RawPath is empty), so there is no %2e for "." and no %2F
// for "/".
func canonicalPath(r *http.Request) bool {
	p := r.URL.Path
	if r.URL.RawPath != "" || !strings.HasPrefix(p, "/") {
		return false
	}
	if p == "/" {
		return true
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// contentEncodingProblem is the 415 of a request whose Content-Encoding
// names a coding other than identity, or nil.
func contentEncodingProblem(r *http.Request) *Problem {
	for _, v := range r.Header.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(v, ",") {
			coding = strings.TrimSpace(coding)
			if coding == "" || strings.EqualFold(coding, "identity") {
				continue
			}
			p := problem(http.StatusUnsupportedMediaType, "Send the request body without a content coding (Content-Encoding).", nil)
			// RFC 9110 §12.5.3: say which codings would have done.
			p.header = http.Header{"Accept-Encoding": {"identity"}}
			return p
		}
	}
	return nil
}

// withTraceparent is r as the handlers see it: an invalid traceparent
// header is ignored, as W3C Trace Context says (the request starts a new
// trace), so it is removed rather than refused by the API document's
// pattern; a valid one of a later version is cut to the fields of
// version 00, which are all we read. r itself is not changed.
func withTraceparent(r *http.Request) *http.Request {
	vs, present := r.Header["Traceparent"]
	if !present {
		return r
	}
	tp, ok := "", len(vs) == 1
	if ok {
		tp, ok = parseTraceparent(vs[0])
	}
	if ok && tp == vs[0] {
		return r
	}
	r = r.Clone(r.Context())
	if ok {
		r.Header.Set("Traceparent", tp)
	} else {
		r.Header.Del("Traceparent")
	}
	return r
}

// parseTraceparent checks a traceparent header by W3C Trace Context level
// 1 and returns its version-00 form: version-traceid-parentid-flags, all
// lowercase hex, trace and parent id not all zeros, version not ff; a
// version above 00 may carry more after a "-", which is dropped.
func parseTraceparent(v string) (string, bool) {
	const n = 55 // len("00-" + 32 + "-" + 16 + "-" + 2)
	if len(v) < n || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", false
	}
	version := v[:2]
	if !lowerHex(version) || version == "ff" {
		return "", false
	}
	switch {
	case version == "00" && len(v) != n:
		return "", false
	case len(v) > n && v[n] != '-':
		return "", false
	}
	trace, parent, flags := v[3:35], v[36:52], v[53:55]
	if !lowerHex(trace) || !lowerHex(parent) || !lowerHex(flags) ||
		trace == strings.Repeat("0", 32) || parent == strings.Repeat("0", 16) {
		return "", false
	}
	return v[:n], true
}

func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// readJSON reads a request body meant to be JSON: more than MaxBodyBytes
// is 413, a body that cannot be read 400, and a JSON body naming a key
// twice in one object 400 (duplicateKeyProblem). Handlers call it after
// authentication, so that the refusal is an audit event with its actor.
func (g *Gateway) readJSON(w http.ResponseWriter, r *http.Request) ([]byte, *Problem) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than %d bytes.", g.cfg.MaxBodyBytes), nil)
		}
		return nil, problem(http.StatusBadRequest, "The request body could not be read.", err)
	}
	if p := duplicateKeyProblem(r, body); p != nil {
		return nil, p
	}
	return body, nil
}

// duplicateKeyProblem is the 400 of a JSON body (by its Content-Type)
// that names a key twice in one object, at any depth, or nil. Parsers
// disagree on which of the two counts (encoding/json takes the last, a
// validator may look at the first): the request is ambiguous, so it is
// refused before anything decodes it. A body of another type, or that is
// not JSON, is left to the validation to describe.
func duplicateKeyProblem(r *http.Request, body []byte) *Problem {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil
	}
	key, ok := duplicateKey(body)
	if !ok {
		return nil
	}
	return badParam(key, "duplicate", "This key appears more than once in its object; send it once.")
}

// jsonFrame is an object or array open during duplicateKey's walk.
type jsonFrame struct {
	object bool
	// path is the dotted name of the container ("" for the top level).
	path string
	// keys seen so far (objects); wantKey: the next token is a key.
	keys    map[string]bool
	wantKey bool
	key     string
	// index of the next element (arrays).
	index int
}

// element is the dotted name of the container's current element.
func (f *jsonFrame) element() string {
	name := f.key
	if !f.object {
		name = strconv.Itoa(f.index)
	}
	if f.path == "" {
		return name
	}
	return f.path + "." + name
}

// valueDone moves the container past the element just read.
func (f *jsonFrame) valueDone() {
	if f.object {
		f.wantKey = true
	} else {
		f.index++
	}
}

// duplicateKey walks the first JSON value in body token by token and
// returns the dotted path of the first key that repeats in its object
// ("bsn", "context.id", "sources.0.x"). Keys are compared as decoded, so
// "b\u0073n" repeats "bsn". It reports false for text that is not one
// JSON value: the validation says what is wrong with that.
func duplicateKey(body []byte) (string, bool) {
	if !json.Valid(body) {
		return "", false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number too large for float64 is not an error here
	var stack []*jsonFrame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false // cannot happen after json.Valid
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
			} else {
				k, _ := tok.(string) // the decoder gives nothing else here
				if top.keys[k] {
					top.key = k
					return top.element(), true
				}
				if top.keys == nil {
					top.keys = map[string]bool{}
				}
				top.keys[k] = true
				top.key, top.wantKey = k, false
				continue
			}
		} else {
			switch tok {
			case json.Delim('{'), json.Delim('['):
				path := ""
				if top != nil {
					path = top.element()
				}
				stack = append(stack, &jsonFrame{object: tok == json.Delim('{'), path: path, wantKey: true})
				continue
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		// A value ended: a scalar, or the container just closed.
		if len(stack) == 0 {
			return "", false // the one value is read
		}
		stack[len(stack)-1].valueDone()
	}
}
