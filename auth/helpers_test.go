package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/auth"
)

const (
	testIssuer   = "https://idp.test.example"
	testAudience = "klantbeeld"
	// epoch is "now" in these tests (June 2025).
	epoch = 1_750_000_000
)

// at is epoch plus d.
func at(d time.Duration) time.Time { return time.Unix(epoch, 0).Add(d) }

// unix is at(d) as a NumericDate.
func unix(d time.Duration) int64 { return at(d).Unix() }

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: at(0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// signer is a key of the test identity provider. Tokens are assembled by
// hand (base64url header and payload, a real signature over them), so
// that tests can send what jwx would refuse to build.
type signer struct {
	alg  jwa.SignatureAlgorithm
	kid  string
	priv crypto.Signer
}

func newRSASigner(t testing.TB, kid string) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return &signer{alg: jwa.RS256, kid: kid, priv: k}
}

func newECSigner(t testing.TB, kid string) *signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return &signer{alg: jwa.ES256, kid: kid, priv: k}
}

func newEdSigner(t testing.TB, kid string) *signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return &signer{alg: jwa.EdDSA, kid: kid, priv: k}
}

// public is the JWK the provider publishes: kid, alg, use sig.
func (s *signer) public(t testing.TB) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(s.priv.Public())
	require.NoError(t, err)
	require.NoError(t, k.Set(jwk.KeyIDKey, s.kid))
	require.NoError(t, k.Set(jwk.AlgorithmKey, s.alg))
	require.NoError(t, k.Set(jwk.KeyUsageKey, "sig"))
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// sign returns header.payload.signature for the JSON texts given, signed
// with s's key under s's algorithm whatever header says.
func (s *signer) sign(t testing.TB, header, payload string) string {
	t.Helper()
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	signer, err := jws.NewSigner(s.alg)
	require.NoError(t, err)
	sig, err := signer.Sign([]byte(input), s.priv)
	require.NoError(t, err)
	return input + "." + b64(sig)
}

// header is the usual JOSE header for s.
func (s *signer) header() string {
	return `{"alg":"` + s.alg.String() + `","kid":"` + s.kid + `","typ":"JWT"}`
}

// token signs claims c with the usual header.
func (s *signer) token(t testing.TB, c claims) string {
	t.Helper()
	return s.sign(t, s.header(), c.json(t))
}

// claims are a claim set; valid() is one the test verifiers accept.
type claims map[string]any

// valid is an employee's claim set, issued now, valid for an hour.
func valid() claims {
	return claims{
		"iss": testIssuer, "aud": []string{testAudience},
		"iat": unix(0), "nbf": unix(0), "exp": unix(time.Hour),
		"sub": "mjansen", "name": "Mila Jansen", "department": "burgerzaken", "roles": []string{"medewerker"},
	}
}

// with returns a copy of c with the given claims set; a nil value
// removes the claim.
func (c claims) with(kv ...any) claims {
	out := claims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

func (c claims) json(t testing.TB) string {
	t.Helper()
	b, err := json.Marshal(map[string]any(c))
	require.NoError(t, err)
	return string(b)
}

// jwkOf is raw as a JWK with kid and alg.
func jwkOf(t testing.TB, raw any, kid string, alg jwa.SignatureAlgorithm) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(raw)
	require.NoError(t, err)
	require.NoError(t, k.Set(jwk.KeyIDKey, kid))
	require.NoError(t, k.Set(jwk.AlgorithmKey, alg))
	return k
}

// jwks is the JSON of a key set.
func jwks(t testing.TB, keys ...jwk.Key) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		require.NoError(t, set.AddKey(k))
	}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return b
}

func writeJWKS(t testing.TB, path string, keys ...jwk.Key) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, jwks(t, keys...), 0o600))
}

// config is a Config for the test provider with a JWKS file of keys and
// the clock c.
func config(t testing.TB, c *clock, keys ...jwk.Key) auth.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, keys...)
	return auth.Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: c.Now}
}

func newVerifier(t testing.TB, keys ...jwk.Key) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), config(t, newClock(), keys...))
	require.NoError(t, err)
	return v
}

func bearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/resident-views", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// requireRefused asserts err is a TokenError for reason (and field).
func requireRefused(t testing.TB, err error, reason auth.Reason, field string) {
	t.Helper()
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	te, ok := errors.AsType[*auth.TokenError](err)
	require.True(t, ok, "%v is not a *auth.TokenError", err)
	require.Equal(t, reason, te.Reason, "cause: %v", te.Err)
	require.Equal(t, field, te.Field)
}
