// Package openapi owns the gateway's API contract: the OpenAPI document in
// klantbeeld.yaml, embedded, served as JSON, and used with kin-openapi to
// validate every request (and, in tests, every response) against it.
package openapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

//go:embed klantbeeld.yaml
var document []byte

// Spec is the parsed API document. It is safe for concurrent use.
type Spec struct {
	doc    *openapi3.T
	json   []byte
	router routers.Router
}

// Load parses and checks the embedded document.
func Load() (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return &Spec{doc: doc, json: js, router: router}, nil
}

// Version is info.version, sent as API-Version on every response.
func (s *Spec) Version() string { return s.doc.Info.Version }

// JSON is the document as JSON, for GET /v1/openapi.json.
func (s *Spec) JSON() []byte { return s.json }

// YAML is the document as written, for GET /v1/openapi.yaml.
func (s *Spec) YAML() []byte { return document }

// Doc is the parsed document.
func (s *Spec) Doc() *openapi3.T { return s.doc }

// InvalidParam is one reason a request is invalid (ADR problem details).
type InvalidParam struct {
	Name   string `json:"name"`
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason"`
}

// ValidationError says why a request does not match the document.
type ValidationError struct {
	// UnsupportedMediaType: the body's Content-Type is not one the operation takes.
	UnsupportedMediaType bool
	Params               []InvalidParam
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Params))
	for i, p := range e.Params {
		parts[i] = p.Name + ": " + p.Reason
	}
	return "request does not match the API: " + strings.Join(parts, "; ")
}

// ErrNoOperation: the document has no operation for the method and path.
var ErrNoOperation = errors.New("openapi: no such operation")

// ValidateRequest checks r, whose body has been read into body, against the
// document. It returns ErrNoOperation or a *ValidationError.
func (s *Spec) ValidateRequest(ctx context.Context, r *http.Request, body []byte) error {
	req := r.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return ErrNoOperation
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	err = openapi3filter.ValidateRequest(ctx, in)
	if err == nil {
		return nil
	}
	return toValidationError(err)
}

func toValidationError(err error) *ValidationError {
	ve := &ValidationError{}
	// param names what a schema error is about when its pointer is empty:
	// the body, or the path or query parameter whose value broke the schema.
	var walk func(err error, param string)
	walk = func(err error, param string) {
		// A MultiError itself, not one that errors.As finds inside a
		// RequestError: that one's parameter name would be lost.
		if me, ok := err.(openapi3.MultiError); ok {
			for _, e := range me {
				walk(e, param)
			}
			return
		}
		var me openapi3.MultiError
		var re *openapi3filter.RequestError
		if errors.As(err, &re) {
			if re.Err != nil && (errors.As(re.Err, &me) || isSchemaError(re.Err)) {
				inner := param
				if re.Parameter != nil {
					inner = re.Parameter.Name
				}
				walk(re.Err, inner)
				return
			}
			name := "body"
			if re.Parameter != nil {
				name = re.Parameter.Name
			}
			reason := re.Reason
			if reason == "" && re.Err != nil {
				reason = re.Err.Error()
			}
			var pe *openapi3filter.ParseError
			if strings.Contains(reason, "header Content-Type has unexpected value") ||
				errors.As(re.Err, &pe) && pe.Kind == openapi3filter.KindUnsupportedFormat {
				ve.UnsupportedMediaType = true
			}
			ve.Params = append(ve.Params, InvalidParam{Name: name, Code: "invalid", Reason: reason})
			return
		}
		var se *openapi3.SchemaError
		if errors.As(err, &se) {
			name := strings.Join(se.JSONPointer(), ".")
			if name == "" {
				name = param
			}
			ve.Params = append(ve.Params, InvalidParam{Name: name, Code: schemaCode(se), Reason: se.Reason})
			return
		}
		ve.Params = append(ve.Params, InvalidParam{Name: "body", Code: "invalid", Reason: err.Error()})
	}
	walk(err, "body")
	sort.SliceStable(ve.Params, func(i, j int) bool { return ve.Params[i].Name < ve.Params[j].Name })
	return ve
}

func isSchemaError(err error) bool {
	var se *openapi3.SchemaError
	return errors.As(err, &se)
}

func schemaCode(se *openapi3.SchemaError) string {
	if se.SchemaField != "" {
		return se.SchemaField
	}
	return "invalid"
}

// ValidateResponse checks an answer to req against the document; tests use
// it on every response the gateway gives.
func (s *Spec) ValidateResponse(ctx context.Context, req *http.Request, status int, header http.Header, body []byte) error {
	r := req.Clone(ctx)
	route, params, err := s.router.FindRoute(r)
	if err != nil {
		return ErrNoOperation
	}
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}
