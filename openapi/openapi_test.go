package openapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/klantbeeld/klantbeeld/openapi"
)

func load(t *testing.T) *openapi.Spec {
	s, err := openapi.Load()
	require.NoError(t, err)
	return s
}

func TestValidateRequest(t *testing.T) {
	s := load(t)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantParams  []string // names in invalidParams; nil: valid
		unsupported bool
	}{
		{"minimal request is valid", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten"}`, nil, false},
		{"request with sources and context is valid", "application/json", `{"bsn":"999993653","purpose":"klantcontact","sources":["brp","zaken"],"context":{"type":"klantcontact","id":"b0000000-0000-4000-8000-000000000101"}}`, nil, false},
		{"unknown field is rejected", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten","reason":"curious"}`, []string{"body"}, false},
		{"missing purpose is rejected", "application/json", `{"bsn":"999993653"}`, []string{"purpose"}, false},
		{"short bsn is rejected", "application/json", `{"bsn":"12345","purpose":"reisdocumenten"}`, []string{"bsn"}, false},
		{"unknown source is rejected", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten","sources":["belastingen"]}`, []string{"sources.0"}, false},
		{"bad context type is rejected", "application/json", `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"roddel","id":"1"}}`, []string{"context.type"}, false},
		{"a contact-session context is valid", "application/json", `{"bsn":"999993653","purpose":"klantcontact","context":{"type":"contact-session","id":"5e551000-0000-4000-8000-000000000001"}}`, nil, false},
		{"break-glass with a reason is valid", "application/json", `{"bsn":"999993653","purpose":"klantcontact","breakGlass":{"reason":"Melding van de politie over deze inwoner"}}`, nil, false},
		{"break-glass with a short reason is rejected", "application/json", `{"bsn":"999993653","purpose":"klantcontact","breakGlass":{"reason":"dringend"}}`, []string{"breakGlass.reason"}, false},
		{"break-glass without a reason is rejected", "application/json", `{"bsn":"999993653","purpose":"klantcontact","breakGlass":{}}`, []string{"breakGlass.reason"}, false},
		{"text body is an unsupported media type", "text/plain", `bsn=999993653`, []string{"body"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.contentType)
			err := s.ValidateRequest(context.Background(), r, []byte(tt.body))
			if tt.wantParams == nil {
				require.NoError(t, err)
				return
			}
			var ve *openapi.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.unsupported, ve.UnsupportedMediaType)
			var names []string
			for _, p := range ve.Params {
				names = append(names, p.Name)
				assert.NotEmpty(t, p.Reason)
			}
			for _, want := range tt.wantParams {
				assert.Contains(t, names, want)
			}
		})
	}
}

func TestUnknownOperation(t *testing.T) {
	s := load(t)
	for _, path := range []string{"/v1/resident-views/", "/v1/nope", "/resident-views"} {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		assert.ErrorIs(t, s.ValidateRequest(context.Background(), r, nil), openapi.ErrNoOperation, path)
	}
}

// TestDesignRules checks the NL API Design Rules the document can break
// (the full Spectral ruleset runs in make lint).
func TestDesignRules(t *testing.T) {
	s := load(t)
	doc := s.Doc()
	assert.Regexp(t, `^\d+\.\d+\.\d+$`, doc.Info.Version, "semver version")
	require.NotNil(t, doc.Info.Contact)
	assert.NotEmpty(t, doc.Info.Contact.Name)
	assert.NotEmpty(t, doc.Info.Contact.Email)
	assert.NotEmpty(t, doc.Info.Contact.URL)
	require.NotEmpty(t, doc.Servers)
	for _, srv := range doc.Servers {
		assert.Regexp(t, `/v\d`, srv.URL, "major version in the server URL")
	}
	kebab := regexp.MustCompile(`^(/([a-z0-9-]+|\{[^}]+\}|_[a-z]+|openapi\.(json|yaml)))+$`)
	for path, item := range doc.Paths.Map() {
		assert.Regexp(t, kebab, path)
		assert.False(t, strings.HasSuffix(path, "/"), "no trailing slash: %s", path)
		for method, op := range item.Operations() {
			for code, ref := range op.Responses.Map() {
				resp := ref.Value
				switch code[0] {
				case '2', '3':
					assert.Contains(t, resp.Headers, "API-Version", "%s %s %s: API-Version header", method, path, code)
				case '4', '5':
					mt := resp.Content.Get("application/problem+json")
					if assert.NotNil(t, mt, "%s %s %s: problem+json", method, path, code) {
						for _, f := range []string{"status", "title", "detail"} {
							assert.Contains(t, mt.Schema.Value.Required, f)
						}
					}
				}
			}
			if method == http.MethodPost || method == http.MethodPut {
				assert.NotNil(t, op.Responses.Value("400"), "%s %s must document 400", method, path)
			}
			for _, p := range op.Parameters {
				if p.Value.In == "query" {
					assert.Regexp(t, `^[a-z][a-zA-Z0-9]*$`, p.Value.Name)
				}
			}
		}
	}
	// The JSON form served at /v1/openapi.json is the same document.
	var back map[string]any
	require.NoError(t, json.Unmarshal(s.JSON(), &back))
	assert.Equal(t, "3.0.3", back["openapi"])
	// So is the YAML served at /v1/openapi.yaml.
	var fromYAML map[string]any
	require.NoError(t, yaml.Unmarshal(s.YAML(), &fromYAML))
	assert.Contains(t, fromYAML["paths"], "/openapi.yaml")
	assert.Equal(t, s.Version(), fromYAML["info"].(map[string]any)["version"])
}

func TestValidatePolicyRequests(t *testing.T) {
	s := load(t)
	version := "sha256:" + strings.Repeat("a1", 32)
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		valid       bool
	}{
		{"a new bundle", http.MethodPut, "/v1/policies", "application/json", `{"files":{"data.json":"{}","a.rego":"package a"},"reason":"why"}`, true},
		{"a rollback", http.MethodPut, "/v1/policies", "application/json", `{"version":"` + version + `","reason":"why"}`, true},
		{"files and version", http.MethodPut, "/v1/policies", "application/json", `{"files":{"data.json":"{}"},"version":"` + version + `","reason":"why"}`, false},
		{"no reason", http.MethodPut, "/v1/policies", "application/json", `{"version":"` + version + `"}`, false},
		{"a version that is no id", http.MethodPut, "/v1/policies", "application/json", `{"version":"latest","reason":"why"}`, false},
		{"an OPA bundle", http.MethodPut, "/v1/policies?reason=why", "application/gzip", "\x1f\x8b…", true},
		{"a reason too long", http.MethodPut, "/v1/policies?reason=" + strings.Repeat("x", 501), "application/gzip", "\x1f\x8b…", false},
		{"a dry run", http.MethodPost, "/v1/policies/_evaluate", "application/json", `{"input":{"actor":{"department":"kcc","roles":["medewerker"]},"purpose":"klantcontact","subject":{"geheimhoudingPersoonsgegevens":true}}}`, true},
		{"a dry run of an unknown action", http.MethodPost, "/v1/policies/_evaluate", "application/json", `{"input":{"actor":{},"action":"delete"}}`, false},
		{"a stored version", http.MethodGet, "/v1/policies/" + version, "", "", true},
		{"a version id that is none", http.MethodGet, "/v1/policies/latest", "", "", false},
		{"the history, a page", http.MethodGet, "/v1/policies/history?limit=10&cursor=5", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			err := s.ValidateRequest(context.Background(), r, []byte(tt.body))
			if tt.valid {
				require.NoError(t, err)
				return
			}
			var ve *openapi.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.NotEmpty(t, ve.Params)
		})
	}
}
