package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/auth"
)

// idp is a fake identity provider's JWKS endpoint whose keys and health
// the test changes.
type idp struct {
	*httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	keys    []jwk.Key
	status  int
}

func newIdP(t *testing.T, keys ...jwk.Key) *idp {
	p := &idp{keys: keys, status: http.StatusOK}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		status, body := p.status, jwks(t, p.keys...)
		p.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "down", status)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *idp) publish(keys ...jwk.Key) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func (p *idp) fail(status int) {
	p.mu.Lock()
	p.status = status
	p.mu.Unlock()
}

func urlVerifier(t *testing.T, p *idp, c *clock) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: p.URL,
		RefreshInterval: time.Minute, KeyMaxAge: time.Hour, Now: c.Now,
	})
	require.NoError(t, err)
	return v
}

func TestJWKSURLRefetchesOnKeyRotationAtMostOncePerInterval(t *testing.T) {
	old, rotated, stranger := newECSigner(t, "2026-01"), newECSigner(t, "2026-02"), newECSigner(t, "forged")
	p := newIdP(t, old.public(t))
	c := newClock()
	v := urlVerifier(t, p, c)
	require.EqualValues(t, 1, p.fetches.Load(), "the keys are loaded at start")

	_, err := v.VerifyToken(context.Background(), old.token(t, valid()))
	require.NoError(t, err)
	assert.EqualValues(t, 1, p.fetches.Load(), "a known kid needs no fetch")

	c.advance(2 * time.Minute)
	p.publish(old.public(t), rotated.public(t))
	_, err = v.VerifyToken(context.Background(), rotated.token(t, valid().with("iat", unix(2*time.Minute))))
	require.NoError(t, err, "the first token with the new kid triggers a refetch")
	assert.EqualValues(t, 2, p.fetches.Load())

	for range 5 {
		_, err = v.VerifyToken(context.Background(), stranger.token(t, valid()))
		requireRefused(t, err, auth.ReasonUnknownKey, "")
	}
	assert.EqualValues(t, 2, p.fetches.Load(), "made-up kids cannot make us hammer the provider")

	c.advance(2 * time.Minute)
	_, err = v.VerifyToken(context.Background(), stranger.token(t, valid().with("iat", unix(4*time.Minute))))
	requireRefused(t, err, auth.ReasonUnknownKey, "")
	assert.EqualValues(t, 3, p.fetches.Load(), "after the interval one more refetch is allowed")
}

func TestJWKSURLConcurrentTokensWithANewKidShareOneRefetch(t *testing.T) {
	old, rotated := newECSigner(t, "old"), newECSigner(t, "new")
	p := newIdP(t, old.public(t))
	c := newClock()
	v := urlVerifier(t, p, c)
	c.advance(2 * time.Minute)
	p.publish(old.public(t), rotated.public(t))
	tok := rotated.token(t, valid().with("iat", unix(2*time.Minute)))

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = v.VerifyToken(context.Background(), tok) })
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err, "a caller that waited for the refetch in flight uses its keys")
	}
	assert.EqualValues(t, 2, p.fetches.Load())
}

func TestJWKSURLWithdrawnKeyStopsWorkingAfterKeyMaxAge(t *testing.T) {
	leaked, next := newECSigner(t, "leaked"), newECSigner(t, "next")
	p := newIdP(t, leaked.public(t), next.public(t))
	c := newClock()
	v := urlVerifier(t, p, c)

	p.publish(next.public(t))
	c.advance(30 * time.Minute)
	_, err := v.VerifyToken(context.Background(), leaked.token(t, valid().with("iat", unix(30*time.Minute), "nbf", nil, "exp", unix(31*time.Minute))))
	require.NoError(t, err, "keys younger than KeyMaxAge are used as loaded")

	c.advance(31 * time.Minute)
	_, err = v.VerifyToken(context.Background(), leaked.token(t, valid().with("iat", unix(61*time.Minute), "nbf", nil, "exp", unix(62*time.Minute))))
	requireRefused(t, err, auth.ReasonUnknownKey, "")
	_, err = v.VerifyToken(context.Background(), next.token(t, valid().with("iat", unix(61*time.Minute), "nbf", nil, "exp", unix(62*time.Minute))))
	require.NoError(t, err)
}

func TestJWKSURLProviderDownKeepsTheKnownKeys(t *testing.T) {
	known, unknown := newECSigner(t, "known"), newECSigner(t, "unknown")
	p := newIdP(t, known.public(t))
	c := newClock()
	v := urlVerifier(t, p, c)
	p.fail(http.StatusServiceUnavailable)
	c.advance(2 * time.Hour) // stale: a refetch is tried and fails

	fresh := valid().with("iat", unix(2*time.Hour), "nbf", nil, "exp", unix(3*time.Hour))
	_, err := v.VerifyToken(context.Background(), known.token(t, fresh))
	require.NoError(t, err, "a failed refetch does not drop the keys we have")
	_, err = v.VerifyToken(context.Background(), unknown.token(t, fresh))
	requireRefused(t, err, auth.ReasonUnknownKey, "")
	assert.EqualValues(t, 2, p.fetches.Load(), "one failed attempt per interval")
}

func TestJWKSURLThatCannotBeLoadedFailsAtStart(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(p *idp)
	}{
		{"server error", func(p *idp) { p.fail(http.StatusInternalServerError) }},
		{"no keys", func(p *idp) { p.publish() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newIdP(t)
			tt.set(p)
			_, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: p.URL})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "auth.jwks_url")
		})
	}
}

func TestJWKSFileRotation(t *testing.T) {
	old, rotated := newECSigner(t, "old"), newECSigner(t, "new")
	c := newClock()
	cfg := config(t, c, old.public(t))
	cfg.RefreshInterval, cfg.KeyMaxAge = time.Minute, time.Hour
	v, err := auth.NewVerifier(context.Background(), cfg)
	require.NoError(t, err)
	tokenAt := func(s *signer, d time.Duration) string {
		return s.token(t, valid().with("iat", unix(d), "nbf", nil, "exp", unix(d+time.Minute)))
	}

	t.Run("a new key in the file is read on its first token", func(t *testing.T) {
		c.advance(2 * time.Minute)
		writeJWKS(t, cfg.JWKSFile, old.public(t), rotated.public(t))
		_, err := v.VerifyToken(context.Background(), tokenAt(rotated, 2*time.Minute))
		require.NoError(t, err)
	})
	t.Run("a broken file keeps the keys read before", func(t *testing.T) {
		c.advance(2 * time.Hour)
		require.NoError(t, os.WriteFile(cfg.JWKSFile, []byte(`{"keys": [`), 0o600))
		_, err := v.VerifyToken(context.Background(), tokenAt(old, 2*time.Hour+2*time.Minute))
		require.NoError(t, err)
	})
	t.Run("a key removed from the file stops working after KeyMaxAge", func(t *testing.T) {
		writeJWKS(t, cfg.JWKSFile, rotated.public(t))
		c.advance(2 * time.Hour)
		_, err := v.VerifyToken(context.Background(), tokenAt(old, 4*time.Hour+2*time.Minute))
		requireRefused(t, err, auth.ReasonUnknownKey, "")
		_, err = v.VerifyToken(context.Background(), tokenAt(rotated, 4*time.Hour+2*time.Minute))
		require.NoError(t, err)
	})
}

func TestJWKSKeepsOnlyUsableSigningKeys(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	enc := newECSigner(t, "enc").public(t)
	require.NoError(t, enc.Set(jwk.KeyUsageKey, "enc"))
	noKid := newECSigner(t, "").public(t)
	require.NoError(t, noKid.Remove(jwk.KeyIDKey))

	for _, tt := range []struct {
		name string
		key  jwk.Key
	}{
		{"a shared secret", jwkOf(t, []byte("secret"), "oct", jwa.HS256)},
		{"an RSA key under 2048 bits", jwkOf(t, &weak.PublicKey, "weak", jwa.RS256)},
		{"a key for encryption", enc},
		{"a key without kid", noKid},
	} {
		t.Run(tt.name+" alone is refused at start", func(t *testing.T) {
			_, err := auth.NewVerifier(context.Background(), config(t, newClock(), tt.key))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "auth.jwks_file")
			assert.Contains(t, err.Error(), "no usable signing key")
		})
	}

	t.Run("a private key in the file is used by its public half", func(t *testing.T) {
		s := newECSigner(t, "priv")
		v := newVerifier(t, jwkOf(t, s.priv, "priv", jwa.ES256))
		_, err := v.VerifyToken(context.Background(), s.token(t, valid()))
		require.NoError(t, err)
	})
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, file, newECSigner(t, "e").public(t))
	for _, tt := range []struct {
		name string
		cfg  auth.Config
		want string
	}{
		{"no issuer", auth.Config{Audience: "a", JWKSFile: file}, "auth.issuer"},
		{"no audience", auth.Config{Issuer: "i", JWKSFile: file}, "auth.audience"},
		{"no keys", auth.Config{Issuer: "i", Audience: "a"}, "auth.jwks_url"},
		{"both key sources", auth.Config{Issuer: "i", Audience: "a", JWKSFile: file, JWKSURL: "https://idp.example/jwks"}, "exactly one"},
		{"a missing file", auth.Config{Issuer: "i", Audience: "a", JWKSFile: "/does/not/exist.json"}, "auth.jwks_file"},
		{"plain http to another host", auth.Config{Issuer: "i", Audience: "a", JWKSURL: "http://idp.example/jwks"}, "auth.jwks_url: must be an https URL"},
		{"a relative URL", auth.Config{Issuer: "i", Audience: "a", JWKSURL: "/jwks"}, "auth.jwks_url: not an absolute URL"},
		{"a negative skew", auth.Config{Issuer: "i", Audience: "a", JWKSFile: file, Skew: -time.Second}, "negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewVerifier(context.Background(), tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestConfigMaxLifetimeIsConfigurable(t *testing.T) {
	s := newECSigner(t, "e1")
	cfg := config(t, newClock(), s.public(t))
	cfg.MaxLifetime = 15 * time.Minute
	v, err := auth.NewVerifier(context.Background(), cfg)
	require.NoError(t, err)

	_, err = v.VerifyToken(context.Background(), s.token(t, valid().with("exp", unix(15*time.Minute))))
	require.NoError(t, err)
	_, err = v.VerifyToken(context.Background(), s.token(t, valid()))
	requireRefused(t, err, auth.ReasonLifetime, "")
}

// A token is verified once and then remembered; these are the ways a
// remembered token must still be refused.

func TestASeenTokenIsJudgedByTheClockEveryTime(t *testing.T) {
	s := newECSigner(t, "k")
	c := newClock()
	v, err := auth.NewVerifier(context.Background(), config(t, c, s.public(t)))
	require.NoError(t, err)

	early := s.token(t, valid().with("nbf", unix(10*time.Minute)))
	_, err = v.VerifyToken(context.Background(), early)
	requireRefused(t, err, auth.ReasonNotYetValid, "")
	tok := s.token(t, valid())
	for range 3 {
		id, err := v.VerifyToken(context.Background(), tok)
		require.NoError(t, err)
		assert.Equal(t, "mjansen", id.Sub)
		assert.Equal(t, []string{"medewerker"}, id.Roles)
	}

	c.advance(10 * time.Minute)
	_, err = v.VerifyToken(context.Background(), early)
	require.NoError(t, err, "the token refused as early is good once its nbf has come")

	c.advance(time.Hour)
	_, err = v.VerifyToken(context.Background(), tok)
	requireRefused(t, err, auth.ReasonExpired, "")

	forged := []byte(early) // the signature of a token seen before, changed
	forged[len(forged)-2] = map[bool]byte{true: 'B', false: 'A'}[forged[len(forged)-2] == 'A']
	_, err = v.VerifyToken(context.Background(), string(forged))
	requireRefused(t, err, auth.ReasonSignature, "")
}

func TestASeenTokenStopsWorkingWhenItsKeyIsWithdrawn(t *testing.T) {
	leaked, next := newECSigner(t, "leaked"), newECSigner(t, "next")
	p := newIdP(t, leaked.public(t), next.public(t))
	c := newClock()
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: p.URL,
		RefreshInterval: time.Minute, KeyMaxAge: 10 * time.Minute, Now: c.Now,
	})
	require.NoError(t, err)
	tok := leaked.token(t, valid())
	_, err = v.VerifyToken(context.Background(), tok)
	require.NoError(t, err)

	p.publish(next.public(t))
	c.advance(5 * time.Minute)
	_, err = v.VerifyToken(context.Background(), tok)
	require.NoError(t, err, "keys younger than KeyMaxAge are used as loaded")

	c.advance(6 * time.Minute)
	_, err = v.VerifyToken(context.Background(), tok)
	requireRefused(t, err, auth.ReasonUnknownKey, "")
	assert.EqualValues(t, 2, p.fetches.Load())
}
