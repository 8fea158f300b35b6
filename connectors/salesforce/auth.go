package salesforce

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// assertionLifetime is the JWT's exp from now; Salesforce accepts at most
// three minutes.
const assertionLifetime = 3 * time.Minute

// minRSABits is the smallest connected-app key New accepts.
const minRSABits = 2048

const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// tokenSource caches the access token and makes concurrent callers that
// need a new one share a single token request.
type tokenSource struct {
	fetch func(context.Context) (string, error)
	bound func(context.Context) (context.Context, context.CancelFunc)

	mu     sync.Mutex
	token  string
	gen    uint64 // counts tokens fetched; tells a stale token from the current one
	flight *flight
}

// flight is one token request that callers wait for.
type flight struct {
	done  chan struct{}
	token string
	gen   uint64
	err   error
}

// get returns the cached token and its generation, fetching one when there
// is none. The fetch runs on its own, bounded by the source timeout, so a
// caller who gives up does not fail the others waiting for it.
func (s *tokenSource) get(ctx context.Context) (string, uint64, error) {
	s.mu.Lock()
	if s.token != "" {
		token, gen := s.token, s.gen
		s.mu.Unlock()
		return token, gen, nil
	}
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		fctx, cancel := s.bound(context.WithoutCancel(ctx))
		go func() {
			defer cancel()
			token, err := s.fetch(fctx)
			s.mu.Lock()
			s.flight = nil
			if err == nil {
				s.gen++
				s.token = token
				f.gen = s.gen
			}
			f.token, f.err = token, err
			s.mu.Unlock()
			close(f.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.token, f.gen, f.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", 0, fmt.Errorf("salesforce: waiting for an access token: %w", upstream.ErrTimeout)
		}
		return "", 0, fmt.Errorf("salesforce: waiting for an access token: %w", ctx.Err())
	}
}

// invalidate drops the token of generation gen after Salesforce refused
// it. A caller holding an older token than the current one changes nothing:
// someone already fetched a new one.
func (s *tokenSource) invalidate(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen {
		s.token = ""
	}
}

// requestToken runs the OAuth 2.0 JWT bearer flow. The POST may be retried:
// it creates nothing but a session.
func (c *Client) requestToken(ctx context.Context) (string, error) {
	assertion, err := c.assertion()
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}
	resp, err := c.http.Do(ctx, upstream.Request{
		Method: http.MethodPost,
		URL:    c.tokenURL,
		Header: http.Header{
			"Content-Type": {"application/x-www-form-urlencoded"},
			"Accept":       {"application/json"},
		},
		Body:       []byte(form.Encode()),
		Idempotent: true,
	})
	if err != nil {
		if se, ok := errors.AsType[*upstream.StatusError](err); ok {
			return "", newAPIError(se)
		}
		return "", err
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := upstream.DecodeJSON(resp.Body, &answer); err != nil {
		return "", fmt.Errorf("salesforce: token: %w: %v", upstream.ErrBadResponse, err)
	}
	if answer.AccessToken == "" {
		return "", fmt.Errorf("salesforce: token: %w: no access_token", upstream.ErrBadResponse)
	}
	return answer.AccessToken, nil
}

// assertion is the signed JWT of the bearer flow.
func (c *Client) assertion() (string, error) {
	tok, err := jwt.NewBuilder().
		Issuer(c.cfg.ConsumerKey).
		Subject(c.cfg.Username).
		Audience([]string{c.audience}).
		Expiration(c.cfg.Now().Add(assertionLifetime)).
		Build()
	if err != nil {
		return "", fmt.Errorf("salesforce: build assertion: %w", err)
	}
	// aud as a plain string, the form Salesforce documents.
	tok.Options().Enable(jwt.FlattenAudience)
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, c.cfg.PrivateKey))
	if err != nil {
		return "", fmt.Errorf("salesforce: sign assertion: %w", err)
	}
	return string(signed), nil
}

func checkRSAKey(k crypto.Signer) error {
	pub, ok := k.Public().(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("want an RSA key, got %T", k.Public())
	}
	if pub.N.BitLen() < minRSABits {
		return fmt.Errorf("RSA key of %d bits; want at least %d", pub.N.BitLen(), minRSABits)
	}
	return nil
}

// ParsePrivateKey reads the connected app's RSA private key from PEM:
// PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"). Errors never quote
// the key.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("salesforce: private key: no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("salesforce: private key: invalid PKCS#1 RSA key")
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("salesforce: private key: invalid PKCS#8 key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("salesforce: private key: PKCS#8 key is %T, want RSA", k)
		}
		return rk, nil
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("salesforce: private key: encrypted keys are not supported; decrypt it first")
	}
	return nil, fmt.Errorf("salesforce: private key: PEM block %q, want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
}
