package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Identity is the authenticated caller.
type Identity struct {
	Sub        string
	Name       string
	Department string
	Roles      []string
	// Organisation is the OIN of another government calling with a
	// client-credentials token; empty for employees.
	Organisation string
}

// Authentication errors. Both give 401.
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrInvalidToken = errors.New("invalid token")
)

// AuthConfig configures a Verifier. Exactly one of JWKSURL and JWKSFile.
type AuthConfig struct {
	Issuer   string
	Audience string
	JWKSURL  string
	JWKSFile string
	// Skew tolerated on exp, nbf and iat; 0: 30 s.
	Skew time.Duration
	// RefreshInterval is the least time between two key refetches
	// triggered by an unknown kid; 0: 30 s.
	RefreshInterval time.Duration
	// HTTPClient fetches JWKSURL; nil: a client with a 5 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Verifier checks bearer JWTs against the identity provider's keys.
type Verifier struct {
	cfg  AuthConfig
	keys keySource

	mu          sync.Mutex
	lastRefresh time.Time
}

// keySource gives the current keys and refetches them on demand.
type keySource interface {
	current(ctx context.Context) (jwk.Set, error)
	refresh(ctx context.Context) error
}

// NewVerifier loads the keys once; it fails when they cannot be loaded.
func NewVerifier(ctx context.Context, cfg AuthConfig) (*Verifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("auth.issuer is empty")
	case cfg.Audience == "":
		return nil, errors.New("auth.audience is empty")
	case (cfg.JWKSURL == "") == (cfg.JWKSFile == ""):
		return nil, errors.New("auth: set exactly one of auth.jwks_url and auth.jwks_file")
	}
	if cfg.Skew <= 0 {
		cfg.Skew = 30 * time.Second
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg}
	if cfg.JWKSFile != "" {
		fs := &fileKeys{path: cfg.JWKSFile}
		if err := fs.refresh(ctx); err != nil {
			return nil, fmt.Errorf("auth.jwks_file: %w", err)
		}
		v.keys = fs
	} else {
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 5 * time.Second}
		}
		us, err := newURLKeys(ctx, cfg.JWKSURL, client, cfg.RefreshInterval)
		if err != nil {
			return nil, fmt.Errorf("auth.jwks_url: %w", err)
		}
		v.keys = us
	}
	return v, nil
}

// Authenticate verifies the request's bearer token: signature by a key of
// the JWKS (asymmetric keys only), iss, aud and exp required, nbf and iat
// honoured with a small skew.
func (v *Verifier) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	raw, ok := bearer(r)
	if !ok {
		return Identity{}, ErrNoToken
	}
	tok, err := v.parse(ctx, raw)
	if err != nil && strings.Contains(err.Error(), "failed to find key with key ID") && v.mayRefresh() {
		// A key rotation at the identity provider: fetch the keys again, once.
		if rerr := v.keys.refresh(ctx); rerr == nil {
			tok, err = v.parse(ctx, raw)
		}
	}
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s", ErrInvalidToken, tokenProblem(err))
	}
	return identityOf(tok), nil
}

func (v *Verifier) parse(ctx context.Context, raw string) (jwt.Token, error) {
	set, err := v.keys.current(ctx)
	if err != nil {
		return nil, err
	}
	return jwt.ParseString(raw,
		jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true), jws.WithRequireKid(true)),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithAcceptableSkew(v.cfg.Skew),
		jwt.WithClock(jwt.ClockFunc(v.cfg.Now)),
	)
}

func (v *Verifier) mayRefresh() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	if now.Sub(v.lastRefresh) < v.cfg.RefreshInterval {
		return false
	}
	v.lastRefresh = now
	return true
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// tokenProblem says briefly, for the caller, what is wrong with a token.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotYetValid()):
		return "token not yet valid"
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return "token not meant for this API (aud)"
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return "token from an unknown issuer (iss)"
	case errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return "token issued in the future (iat)"
	// jwx's missing-claim errors all match one another; the message names the claim.
	case errors.Is(err, jwt.ErrRequiredClaim()) && strings.Contains(err.Error(), `"exp"`):
		return "token without expiry (exp)"
	case errors.Is(err, jwt.ErrRequiredClaim()) && strings.Contains(err.Error(), `"sub"`):
		return "token without subject (sub)"
	case strings.Contains(err.Error(), "failed to find key"), strings.Contains(err.Error(), "no key ID"):
		return "token signed with an unknown key"
	default:
		return "token signature or format not valid"
	}
}

func identityOf(tok jwt.Token) Identity {
	id := Identity{Sub: tok.Subject()}
	str := func(name string) string {
		if v, ok := tok.Get(name); ok {
			if s, ok := v.(string); ok {
				return s
			}
		}
		return ""
	}
	id.Name = str("name")
	id.Department = str("department")
	id.Organisation = str("organisation")
	if v, ok := tok.Get("roles"); ok {
		switch roles := v.(type) {
		case []any:
			for _, r := range roles {
				if s, ok := r.(string); ok && s != "" {
					id.Roles = append(id.Roles, s)
				}
			}
		case string:
			id.Roles = strings.Fields(roles)
		}
	}
	return id
}

// asymmetric keeps the keys a token may be verified with: public RSA, EC
// and OKP keys. A shared secret in a JWKS would let anyone who reads the
// JWKS sign tokens.
func asymmetric(set jwk.Set) (jwk.Set, error) {
	out := jwk.NewSet()
	for i := range set.Len() {
		k, _ := set.Key(i)
		switch k.KeyType() {
		case jwa.RSA, jwa.EC, jwa.OKP:
			pub, err := jwk.PublicKeyOf(k)
			if err != nil {
				return nil, err
			}
			if err := out.AddKey(pub); err != nil {
				return nil, err
			}
		}
	}
	if out.Len() == 0 {
		return nil, errors.New("JWKS has no RSA, EC or OKP key")
	}
	return out, nil
}

// fileKeys reads a JWKS file; refresh reads it again.
type fileKeys struct {
	path string
	mu   sync.RWMutex
	set  jwk.Set
}

func (f *fileKeys) current(context.Context) (jwk.Set, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.set, nil
}

func (f *fileKeys) refresh(context.Context) error {
	raw, err := jwk.ReadFile(f.path)
	if err != nil {
		return err
	}
	set, err := asymmetric(raw)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.set = set
	f.mu.Unlock()
	return nil
}

// urlKeys keeps a JWKS fetched from a URL in jwx's cache.
type urlKeys struct {
	url   string
	cache *jwk.Cache

	mu       sync.Mutex
	raw      jwk.Set
	filtered jwk.Set
}

func newURLKeys(ctx context.Context, url string, client *http.Client, minRefresh time.Duration) (*urlKeys, error) {
	cache := jwk.NewCache(ctx)
	if err := cache.Register(url, jwk.WithHTTPClient(client), jwk.WithMinRefreshInterval(minRefresh)); err != nil {
		return nil, err
	}
	u := &urlKeys{url: url, cache: cache}
	if _, err := cache.Refresh(ctx, url); err != nil {
		return nil, err
	}
	if _, err := u.current(ctx); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *urlKeys) current(ctx context.Context) (jwk.Set, error) {
	raw, err := u.cache.Get(ctx, u.url)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if raw != u.raw {
		filtered, err := asymmetric(raw)
		if err != nil {
			return nil, err
		}
		u.raw, u.filtered = raw, filtered
	}
	return u.filtered, nil
}

func (u *urlKeys) refresh(ctx context.Context) error {
	_, err := u.cache.Refresh(ctx, u.url)
	return err
}
