package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/gateway"
)

const (
	testIssuer   = "https://idp.test.example"
	testAudience = "klantbeeld"
)

// signer is a test identity provider key.
type signer struct {
	raw *rsa.PrivateKey
	key jwk.Key
}

func newSigner(t testing.TB, kid string) *signer {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	key, err := jwk.FromRaw(raw)
	require.NoError(t, err)
	require.NoError(t, key.Set(jwk.KeyIDKey, kid))
	require.NoError(t, key.Set(jwk.AlgorithmKey, jwa.RS256))
	return &signer{raw: raw, key: key}
}

func (s *signer) public(t testing.TB) jwk.Key {
	pub, err := s.key.PublicKey()
	require.NoError(t, err)
	return pub
}

func writeJWKS(t testing.TB, path string, keys ...jwk.Key) {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		require.NoError(t, set.AddKey(k))
	}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

type claims map[string]any

func employee(dept string) claims {
	return claims{"sub": "emp-" + dept, "name": "Test " + dept, "department": dept, "roles": []string{"medewerker"}}
}

// token signs c (plus iss, aud, iat and an hour of validity unless c says
// otherwise) with s.
func (s *signer) token(t testing.TB, c claims) string {
	t.Helper()
	now := time.Now()
	tok := jwt.New()
	defaults := claims{"iss": testIssuer, "aud": []string{testAudience}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range defaults {
		if _, set := c[k]; !set {
			c[k] = v
		}
	}
	for k, v := range c {
		if v == nil {
			continue // a nil claim is left out
		}
		require.NoError(t, tok.Set(k, v))
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, s.key))
	require.NoError(t, err)
	return string(b)
}

// newFileVerifier is the gateway's verifier (package auth) for a JWKS file
// holding keys.
func newFileVerifier(t testing.TB, keys ...jwk.Key) (*auth.Verifier, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, keys...)
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, RefreshInterval: time.Hour})
	require.NoError(t, err)
	return v, path
}

// from sends a resident-view request with the token (none when empty)
// from the client address addr, and returns the answer without checking
// it against the API document, which declares no 429.
func (h *harness) from(addr, token, body string) answer {
	h.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", strings.NewReader(body))
	r.RemoteAddr = addr
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return h.serve(r)
}

// serve sends r as it is and returns the answer, checking only what every
// answer carries: for answers the API document does not declare.
func (h *harness) serve(r *http.Request) answer {
	h.t.Helper()
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	_ = json.Unmarshal(a.body, &a.json)
	assert.NotEmpty(h.t, a.header.Get("API-Version"), "API-Version on every answer")
	if a.status >= 400 {
		assert.Equal(h.t, "application/problem+json", a.header.Get("Content-Type"), "errors are problem+json: %s", a.body)
		for _, f := range []string{"status", "title", "detail"} {
			assert.Contains(h.t, a.json, f)
		}
	}
	return a
}

// aboutAResident names a resident, a purpose and a context: what an
// unauthenticated request must not get into the audit log.
const aboutAResident = `{"bsn":"999993653","purpose":"reisdocumenten","context":{"type":"klantcontact","id":"k-1"}}`

func TestBadTokensAre401ProblemsRecordedWithoutTheResident(t *testing.T) {
	h := newHarness(t)
	s := h.signer
	other := newSigner(t, "k1") // same kid, another key
	wall := time.Now()

	b64 := base64.RawURLEncoding.EncodeToString
	cl, _ := json.Marshal(map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "x", "exp": wall.Add(time.Hour).Unix()})
	algNone := b64([]byte(`{"alg":"none","kid":"k1","typ":"JWT"}`)) + "." + b64(cl) + "."

	// HS256 signed with the RSA public key as the HMAC secret (key confusion).
	pubDER, err := x509.MarshalPKIXPublicKey(&s.raw.PublicKey)
	require.NoError(t, err)
	hsTok := jwt.New()
	for k, val := range map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "x", "exp": wall.Add(time.Hour).Unix()} {
		require.NoError(t, hsTok.Set(k, val))
	}
	hdr := jws.NewHeaders()
	require.NoError(t, hdr.Set(jws.KeyIDKey, "k1"))
	confused, err := jwt.Sign(hsTok, jwt.WithKey(jwa.HS256, pubDER, jws.WithProtectedHeaders(hdr)))
	require.NoError(t, err)

	invalid := func(r auth.Reason) string { return (&auth.TokenError{Reason: r}).Error() }
	const bearerOnly, invalidToken = `Bearer realm="klantbeeld"`, `Bearer realm="klantbeeld", error="invalid_token"`
	tests := []struct {
		name          string
		authorization string
		detail        string
		challenge     string
	}{
		{"no token", "", "A bearer token is required.", bearerOnly},
		{"another scheme", "Basic dXNlcjpwYXNz", "A bearer token is required.", bearerOnly},
		{"garbage", "Bearer not.a.jwt", invalid(auth.ReasonMalformed), invalidToken},
		{"alg none", "Bearer " + algNone, invalid(auth.ReasonAlgorithm), invalidToken},
		{"HS256 with the public key as secret", "Bearer " + string(confused), invalid(auth.ReasonAlgorithm), invalidToken},
		{"signed by another key with the same kid", "Bearer " + other.token(t, employee("kcc")), invalid(auth.ReasonSignature), invalidToken},
		{"expired", "Bearer " + s.token(t, claims{"sub": "x", "iat": wall.Add(-time.Hour).Unix(), "exp": wall.Add(-2 * time.Minute).Unix()}), invalid(auth.ReasonExpired), invalidToken},
		{"not yet valid", "Bearer " + s.token(t, claims{"sub": "x", "nbf": wall.Add(10 * time.Minute).Unix()}), invalid(auth.ReasonNotYetValid), invalidToken},
		{"wrong audience", "Bearer " + s.token(t, claims{"sub": "x", "aud": []string{"other-api"}}), invalid(auth.ReasonAudience), invalidToken},
		{"wrong issuer", "Bearer " + s.token(t, claims{"sub": "x", "iss": "https://evil.example"}), invalid(auth.ReasonIssuer), invalidToken},
		{"no expiry", "Bearer " + s.token(t, claims{"sub": "x", "exp": nil}), invalid(auth.ReasonNoExpiry), invalidToken},
		{"no subject", "Bearer " + s.token(t, claims{"department": "kcc"}), invalid(auth.ReasonNoSubject), invalidToken},
		{"unknown kid", "Bearer " + newSigner(t, "k9").token(t, employee("kcc")), invalid(auth.ReasonUnknownKey), invalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.authorization != "" {
				hdr = []string{"Authorization", tt.authorization}
			}
			before := len(h.store.Events())
			a := h.do(http.MethodPost, "/v1/resident-views", "", "application/json", aboutAResident, hdr...)
			require.Equal(t, http.StatusUnauthorized, a.status, "%s", a.body)
			assert.Equal(t, tt.detail, a.json["detail"])
			assert.Equal(t, tt.challenge, a.header.Get("WWW-Authenticate"))
			assert.Zero(t, h.sourceCalls())

			evs := h.store.Events()
			require.Len(t, evs, before+1, "the refusal is an audit event")
			ev := evs[len(evs)-1]
			assert.Equal(t, audit.DecisionDeny, ev.Decision)
			assert.Equal(t, http.StatusUnauthorized, ev.Status)
			assert.Equal(t, []string{tt.detail}, ev.Reasons)
			assert.Equal(t, audit.Actor{}, ev.Actor)
			assert.Empty(t, ev.Subject, "an anonymous caller writes into no resident's history")
			assert.Nil(t, ev.Context)
			assert.Empty(t, ev.Purpose)
		})
	}
}

func TestUnauthenticatedRefusalsPastTheBudgetAre429AndNotRecorded(t *testing.T) {
	tests := []struct {
		name   string
		limit  gateway.RateLimit
		budget int
	}{
		{"the zero value allows 20 in a row", gateway.RateLimit{}, gateway.DefaultRateLimitBurst},
		{"a configured burst is the budget", gateway.RateLimit{Burst: 3}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withConfig(func(c *gateway.Config) { c.Unauthenticated = tt.limit }))
			const mallory, alice = "192.0.2.66:40000", "198.51.100.7:50000"
			bad := "not.a.jwt"
			for i := range tt.budget {
				a := h.from(mallory, bad, aboutAResident)
				require.Equal(t, http.StatusUnauthorized, a.status, "refusal %d: %s", i+1, a.body)
			}
			require.Len(t, h.store.Events(), tt.budget)

			// From another port of the same host, without a token: still over.
			for _, token := range []string{bad, ""} {
				a := h.from("192.0.2.66:40001", token, aboutAResident)
				assert.Equal(t, http.StatusTooManyRequests, a.status, "%s", a.body)
				secs, err := strconv.Atoi(a.header.Get("Retry-After"))
				require.NoError(t, err, "Retry-After in seconds: %q", a.header.Get("Retry-After"))
				assert.Positive(t, secs)
				assert.Empty(t, a.header.Get("WWW-Authenticate"))
			}
			assert.Len(t, h.store.Events(), tt.budget, "the log grew by exactly the budget")

			a := h.from(alice, bad, aboutAResident)
			assert.Equal(t, http.StatusUnauthorized, a.status, "another address has its own budget")
			assert.Len(t, h.store.Events(), tt.budget+1)

			a = h.from(mallory, h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`)
			assert.Equal(t, http.StatusOK, a.status, "a valid token is never limited: %s", a.body)
			assert.Len(t, h.store.Events(), tt.budget+2)
		})
	}
}

func TestNegativeRateLimitIsAConfigError(t *testing.T) {
	h := newHarness(t)
	p, err := audit.NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	v, _ := newFileVerifier(t, h.signer.public(t))
	for _, l := range []gateway.RateLimit{{Burst: -1}, {Every: -time.Second}, {Clients: -1}} {
		_, err := gateway.New(gateway.Config{Policy: h.policy, Audit: h.log, Pseudonyms: p, Auth: v, Spec: h.spec, Unauthenticated: l})
		assert.ErrorContains(t, err, "Unauthenticated", "%+v", l)
	}
}
