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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

func newFileVerifier(t testing.TB, keys ...jwk.Key) (*gateway.Verifier, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, keys...)
	v, err := gateway.NewVerifier(context.Background(), gateway.AuthConfig{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, RefreshInterval: time.Hour})
	require.NoError(t, err)
	return v, path
}

func authRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func TestVerifierAcceptsAValidToken(t *testing.T) {
	s := newSigner(t, "k1")
	v, _ := newFileVerifier(t, s.public(t))
	id, err := v.Authenticate(context.Background(), authRequest(s.token(t, employee("burgerzaken"))))
	require.NoError(t, err)
	assert.Equal(t, gateway.Identity{Sub: "emp-burgerzaken", Name: "Test burgerzaken", Department: "burgerzaken", Roles: []string{"medewerker"}}, id)
}

func TestVerifierRefusesBadTokens(t *testing.T) {
	s := newSigner(t, "k1")
	other := newSigner(t, "k1") // same kid, other key
	v, _ := newFileVerifier(t, s.public(t))
	now := time.Now()

	// alg none: header and claims, no signature.
	b64 := base64.RawURLEncoding.EncodeToString
	cl, _ := json.Marshal(map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "x", "exp": now.Add(time.Hour).Unix()})
	algNone := b64([]byte(`{"alg":"none","kid":"k1","typ":"JWT"}`)) + "." + b64(cl) + "."

	// HS256 signed with the RSA public key as the HMAC secret (key confusion).
	pubDER, err := x509.MarshalPKIXPublicKey(&s.raw.PublicKey)
	require.NoError(t, err)
	hsTok := jwt.New()
	for k, val := range map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "x", "exp": now.Add(time.Hour).Unix()} {
		require.NoError(t, hsTok.Set(k, val))
	}
	hdr := jws.NewHeaders()
	require.NoError(t, hdr.Set(jws.KeyIDKey, "k1"))
	confused, err := jwt.Sign(hsTok, jwt.WithKey(jwa.HS256, pubDER, jws.WithProtectedHeaders(hdr)))
	require.NoError(t, err)

	tests := []struct {
		name   string
		token  string
		detail string
	}{
		{"no token", "", "no bearer token"},
		{"garbage", "not.a.jwt", "signature or format"},
		{"alg none", algNone, "invalid token"},
		{"HS256 with the public key as secret", string(confused), "invalid token"},
		{"signed by another key with the same kid", other.token(t, employee("kcc")), "signature or format"},
		{"expired", s.token(t, claims{"sub": "x", "exp": now.Add(-2 * time.Minute).Unix()}), "token expired"},
		{"expired within skew is accepted below", "", ""},
		{"not yet valid", s.token(t, claims{"sub": "x", "nbf": now.Add(10 * time.Minute).Unix()}), "not yet valid"},
		{"wrong audience", s.token(t, claims{"sub": "x", "aud": []string{"other-api"}}), "(aud)"},
		{"wrong issuer", s.token(t, claims{"sub": "x", "iss": "https://evil.example"}), "(iss)"},
		{"no expiry", s.token(t, claims{"sub": "x", "exp": nil}), "(exp)"},
		{"no subject", s.token(t, claims{"department": "kcc"}), "(sub)"},
		{"unknown kid", newSigner(t, "k9").token(t, employee("kcc")), "unknown key"},
	}
	for _, tt := range tests {
		if tt.token == "" && tt.detail == "" {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Authenticate(context.Background(), authRequest(tt.token))
			require.Error(t, err)
			if tt.token == "" {
				require.ErrorIs(t, err, gateway.ErrNoToken)
			} else {
				require.ErrorIs(t, err, gateway.ErrInvalidToken)
			}
			assert.Contains(t, err.Error(), tt.detail)
		})
	}

	t.Run("expiry within the skew is tolerated", func(t *testing.T) {
		_, err := v.Authenticate(context.Background(), authRequest(s.token(t, claims{"sub": "x", "exp": now.Add(-10 * time.Second).Unix()})))
		require.NoError(t, err)
	})
	t.Run("other schemes are not bearer tokens", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		_, err := v.Authenticate(context.Background(), r)
		require.ErrorIs(t, err, gateway.ErrNoToken)
	})
}

func TestVerifierIgnoresSymmetricKeysInTheJWKS(t *testing.T) {
	s := newSigner(t, "rsa")
	secret := []byte("a shared secret that must never verify a token")
	oct, err := jwk.FromRaw(secret)
	require.NoError(t, err)
	require.NoError(t, oct.Set(jwk.KeyIDKey, "oct"))
	require.NoError(t, oct.Set(jwk.AlgorithmKey, jwa.HS256))
	v, _ := newFileVerifier(t, s.public(t), oct)

	tok := jwt.New()
	for k, val := range map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "x", "exp": time.Now().Add(time.Hour).Unix()} {
		require.NoError(t, tok.Set(k, val))
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, oct))
	require.NoError(t, err)
	_, err = v.Authenticate(context.Background(), authRequest(string(signed)))
	require.ErrorIs(t, err, gateway.ErrInvalidToken)

	_, err = gateway.NewVerifier(context.Background(), gateway.AuthConfig{Issuer: testIssuer, Audience: testAudience, JWKSFile: writeOnly(t, oct)})
	require.Error(t, err, "a JWKS with only a shared secret is refused at start")
}

func writeOnly(t *testing.T, keys ...jwk.Key) string {
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, keys...)
	return path
}

func TestVerifierRefetchesOnKeyRotationAtMostOncePerInterval(t *testing.T) {
	old := newSigner(t, "2026-01")
	rotated := newSigner(t, "2026-02")
	var fetches atomic.Int32
	var current atomic.Value
	current.Store([]jwk.Key{old.public(t)})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		set := jwk.NewSet()
		for _, k := range current.Load().([]jwk.Key) {
			_ = set.AddKey(k)
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer idp.Close()
	clock := time.Now()
	var now atomic.Pointer[time.Time]
	now.Store(&clock)
	v, err := gateway.NewVerifier(context.Background(), gateway.AuthConfig{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: idp.URL, RefreshInterval: time.Minute,
		Now: func() time.Time { return *now.Load() },
	})
	require.NoError(t, err)
	start := fetches.Load()

	_, err = v.Authenticate(context.Background(), authRequest(old.token(t, employee("kcc"))))
	require.NoError(t, err)
	assert.Equal(t, start, fetches.Load(), "a known kid needs no fetch")

	// The IdP rotates; the first token with the new kid triggers one refetch.
	current.Store([]jwk.Key{old.public(t), rotated.public(t)})
	_, err = v.Authenticate(context.Background(), authRequest(rotated.token(t, employee("kcc"))))
	require.NoError(t, err)
	assert.Equal(t, start+1, fetches.Load())

	// Tokens with kids nobody knows cannot make the gateway hammer the IdP.
	stranger := newSigner(t, "forged")
	for range 5 {
		_, err = v.Authenticate(context.Background(), authRequest(stranger.token(t, employee("kcc"))))
		require.ErrorIs(t, err, gateway.ErrInvalidToken)
	}
	assert.Equal(t, start+1, fetches.Load(), "refetches are rate limited")

	later := clock.Add(2 * time.Minute)
	now.Store(&later)
	_, _ = v.Authenticate(context.Background(), authRequest(stranger.token(t, employee("kcc"))))
	assert.Equal(t, start+2, fetches.Load(), "after the interval one more refetch is allowed")
}

func TestVerifierConfigErrorsNameTheKey(t *testing.T) {
	for _, tt := range []struct {
		cfg  gateway.AuthConfig
		want string
	}{
		{gateway.AuthConfig{Audience: "a", JWKSFile: "x"}, "auth.issuer"},
		{gateway.AuthConfig{Issuer: "i", JWKSFile: "x"}, "auth.audience"},
		{gateway.AuthConfig{Issuer: "i", Audience: "a"}, "auth.jwks_url"},
		{gateway.AuthConfig{Issuer: "i", Audience: "a", JWKSFile: "/does/not/exist.json"}, "auth.jwks_file"},
	} {
		_, err := gateway.NewVerifier(context.Background(), tt.cfg)
		require.Error(t, err)
		assert.True(t, strings.Contains(err.Error(), tt.want), "%v should name %s", err, tt.want)
	}
}
