package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/klantbeeld/klantbeeld/bsn"
)

// checker verifies compact JWS tokens of one identity provider: the
// header, the signature, the registered claims and sub. What the claims
// mean beyond that is the caller's (identityOf, residentOf).
//
// It decodes the header and the claims itself, strictly, and hands jwx
// only decisions it cannot get wrong: the signature check with the
// algorithm and key chosen here, and the time, iss and aud validation of
// a token built from values already checked here.
type checker struct {
	issuer      string
	audience    string
	skew        time.Duration
	maxLifetime time.Duration
	now         func() time.Time
	keys        *keyring
	// signed remembers the tokens whose signature was verified (see
	// signedToken), so that a client sending one token with every
	// request costs one signature check, not one per request.
	signed signedCache
}

// signedToken is a token whose header, signature and claims' syntax were
// checked under keys: the loaded key set the signature was verified with.
// Only the claims' meaning, which depends on the time, is checked again.
type signedToken struct {
	keys   *loadedKeys
	values map[string]any // read only: shared by every request with this token
}

// maxSignedTokens bounds signedCache: past it the cache starts afresh.
// With the claims of a token taking a kilobyte or so in memory, that is a
// few megabytes at most.
const maxSignedTokens = 4096

// signedCache maps the SHA-256 of a token to its signedToken.
type signedCache struct {
	m sync.Map
	n atomic.Int64
}

func (c *signedCache) load(sum [sha256.Size]byte) (signedToken, bool) {
	v, ok := c.m.Load(sum)
	if !ok {
		return signedToken{}, false
	}
	return v.(signedToken), true
}

func (c *signedCache) store(sum [sha256.Size]byte, t signedToken) {
	if c.n.Add(1) > maxSignedTokens {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(sum, t)
}

// claims are a verified token's claims: sub checked, the rest decoded
// strictly but not interpreted.
type claims struct {
	subject string
	values  map[string]any
}

func newChecker(ctx context.Context, cfg Config, prefix string) (*checker, error) {
	cfg, err := cfg.withDefaults(prefix)
	if err != nil {
		return nil, err
	}
	load, key := loadURL(cfg.HTTPClient, cfg.JWKSURL), "jwks_url"
	if cfg.JWKSFile != "" {
		load, key = loadFile(cfg.JWKSFile), "jwks_file"
	}
	keys, err := newKeyring(ctx, load, cfg.Now, cfg.RefreshInterval, cfg.KeyMaxAge)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", prefix, key, err)
	}
	return &checker{
		issuer: cfg.Issuer, audience: cfg.Audience,
		skew: cfg.Skew, maxLifetime: cfg.MaxLifetime, now: cfg.Now,
		keys: keys,
	}, nil
}

// refuse builds the error for a refused token. The cause goes through
// bsn.RedactError so that not even the log can learn a BSN from it.
func refuse(reason Reason, field string, cause error) *TokenError {
	return &TokenError{Reason: reason, Field: field, Err: bsn.RedactError(cause)}
}

// check verifies raw and returns its claims, or a *TokenError.
func (c *checker) check(ctx context.Context, raw string) (claims, error) {
	if len(raw) > maxAuthorization {
		return claims{}, refuse(ReasonMalformed, "", errors.New("token larger than 16 KiB"))
	}
	sum := sha256.Sum256([]byte(raw))
	keys := c.keys.current(ctx)
	if t, ok := c.signed.load(sum); ok && t.keys == keys {
		// The same bytes, verified under the keys that still hold: a key
		// withdrawn or rotated since means a new set, and a full check.
		return c.checkClaims(t.values)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return claims{}, refuse(ReasonMalformed, "", fmt.Errorf("%d parts, not the 3 of a compact JWS", len(parts)))
	}
	hdrJSON, err := decodePart(parts[0])
	if err != nil {
		return claims{}, refuse(ReasonMalformed, "", fmt.Errorf("header: %w", err))
	}
	alg, kid, err := checkHeader(hdrJSON)
	if err != nil {
		return claims{}, err
	}
	key, keys, err := c.keys.lookup(ctx, kid)
	if err != nil {
		return claims{}, refuse(ReasonUnknownKey, "", err)
	}
	if !fits(alg, key) {
		return claims{}, refuse(ReasonAlgorithm, "", fmt.Errorf("alg %s does not fit the %s key", alg, key.KeyType()))
	}
	sig, err := decodePart(parts[2])
	if err != nil {
		return claims{}, refuse(ReasonMalformed, "", fmt.Errorf("signature: %w", err))
	}
	verifier, err := jws.NewVerifier(alg)
	if err != nil {
		return claims{}, refuse(ReasonAlgorithm, "", err)
	}
	// The signing input is the two parts exactly as received (RFC 7515
	// §5.2), not a re-encoding of what was decoded from them.
	if err := verifier.Verify([]byte(raw[:len(parts[0])+1+len(parts[1])]), sig, key); err != nil {
		return claims{}, refuse(ReasonSignature, "", err)
	}
	payload, err := decodePart(parts[1])
	if err != nil {
		return claims{}, refuse(ReasonMalformed, "", fmt.Errorf("payload: %w", err))
	}
	values, err := decodeObject(payload)
	if errors.Is(err, errDuplicateKey) {
		return claims{}, refuse(ReasonDuplicate, "", fmt.Errorf("claims: %w", err))
	}
	if err != nil {
		return claims{}, refuse(ReasonMalformed, "", fmt.Errorf("claims: %w", err))
	}
	c.signed.store(sum, signedToken{keys: keys, values: values})
	return c.checkClaims(values)
}

// decodePart decodes one part of a compact JWS: unpadded base64url and
// nothing else. jwx's own decoder also takes padding, the standard
// alphabet and line breaks, which would give one token several spellings.
func decodePart(s string) ([]byte, error) {
	for i := range len(s) {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("not unpadded base64url")
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// checkHeader checks the JOSE header and returns its alg and kid.
func checkHeader(b []byte) (jwa.SignatureAlgorithm, string, error) {
	hdr, err := decodeObject(b)
	if errors.Is(err, errDuplicateKey) {
		return "", "", refuse(ReasonDuplicate, "", fmt.Errorf("header: %w", err))
	}
	if err != nil {
		return "", "", refuse(ReasonMalformed, "", fmt.Errorf("header: %w", err))
	}
	if _, ok := hdr["crit"]; ok {
		// RFC 7515 §4.1.11: extensions listed in crit must be understood,
		// and we understand none.
		return "", "", refuse(ReasonCritical, "", nil)
	}
	if _, ok := hdr["b64"]; ok {
		// RFC 7797 unencoded payloads: jwx honours b64 even without crit,
		// which would change what the signature covers.
		return "", "", refuse(ReasonHeader, "b64", nil)
	}
	s, _ := hdr["alg"].(string)
	alg := jwa.SignatureAlgorithm(s)
	switch alg {
	case jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512,
		jwa.ES256, jwa.ES384, jwa.ES512, jwa.EdDSA:
	default:
		// none, HS*, ES256K, anything else: only the asymmetric algorithms
		// of our keys.
		return "", "", refuse(ReasonAlgorithm, "", nil)
	}
	v, ok := hdr["kid"]
	if !ok {
		return "", "", refuse(ReasonNoKeyID, "", nil)
	}
	kid, ok := v.(string)
	if !ok {
		return "", "", refuse(ReasonHeader, "kid", errors.New("not a string"))
	}
	if kid == "" {
		return "", "", refuse(ReasonNoKeyID, "", nil)
	}
	return alg, kid, nil
}

// checkClaims checks the registered claims and sub. The types are checked
// here, not left to jwx, which reads "exp":"1700000000" as a time; the
// verdict on times, iss and aud is then jwx's.
func (c *checker) checkClaims(values map[string]any) (claims, error) {
	iss, ok := values[jwt.IssuerKey].(string)
	if _, present := values[jwt.IssuerKey]; present && !ok {
		return claims{}, refuse(ReasonClaim, jwt.IssuerKey, errors.New("not a string"))
	}
	aud, err := audience(values)
	if err != nil {
		return claims{}, err
	}
	times := map[string]time.Time{}
	for _, name := range []string{jwt.ExpirationKey, jwt.NotBeforeKey, jwt.IssuedAtKey} {
		v, ok := values[name]
		if !ok {
			continue
		}
		t, ok := numericDate(v)
		if !ok {
			return claims{}, refuse(ReasonClaim, name, errors.New("not a NumericDate (a JSON number of seconds since 1970)"))
		}
		times[name] = t
	}
	exp, ok := times[jwt.ExpirationKey]
	if !ok {
		return claims{}, refuse(ReasonNoExpiry, "", nil)
	}
	sub, err := subject(values)
	if err != nil {
		return claims{}, err
	}

	// A token of values checked above: jwx judges them, it does not read them.
	tok := jwt.New()
	set := map[string]any{jwt.AudienceKey: aud}
	if _, present := values[jwt.IssuerKey]; present {
		set[jwt.IssuerKey] = iss
	}
	for name, t := range times {
		set[name] = t
	}
	for name, v := range set {
		if err := tok.Set(name, v); err != nil {
			return claims{}, refuse(ReasonClaim, name, err)
		}
	}
	now := c.now()
	err = jwt.Validate(tok,
		jwt.WithIssuer(c.issuer),
		jwt.WithAudience(c.audience),
		jwt.WithAcceptableSkew(c.skew),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
	)
	if err != nil {
		return claims{}, refuse(validationReason(err), "", err)
	}

	// A long-lived token cannot be withdrawn: bound how long it lives and
	// how far ahead it reaches.
	start, ok := times[jwt.IssuedAtKey]
	if !ok {
		start, ok = times[jwt.NotBeforeKey]
	}
	if ok && exp.Sub(start) > c.maxLifetime {
		return claims{}, refuse(ReasonLifetime, "", fmt.Errorf("lives %s, more than %s", exp.Sub(start), c.maxLifetime))
	}
	if exp.Sub(now) > c.maxLifetime+c.skew {
		return claims{}, refuse(ReasonLifetime, "", fmt.Errorf("expires in %s, more than %s", exp.Sub(now).Round(time.Second), c.maxLifetime))
	}
	return claims{subject: sub, values: values}, nil
}

// validationReason says which of jwx's validation errors err is.
func validationReason(err error) Reason {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotYetValid()):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return ReasonIssuedInFuture
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return ReasonAudience
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return ReasonIssuer
	default:
		return ReasonClaim
	}
}

// audience reads aud: a string or an array of strings (RFC 7519 §4.1.3).
// A missing aud is left to the validation, which refuses it.
func audience(values map[string]any) ([]string, error) {
	switch v := values[jwt.AudienceKey].(type) {
	case nil:
		if _, present := values[jwt.AudienceKey]; present {
			return nil, refuse(ReasonClaim, jwt.AudienceKey, errors.New("null"))
		}
		return []string{}, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, item := range v {
			s, ok := item.(string)
			if !ok {
				return nil, refuse(ReasonClaim, jwt.AudienceKey, errors.New("an element is not a string"))
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, refuse(ReasonClaim, jwt.AudienceKey, errors.New("neither a string nor an array of strings"))
	}
}

// maxNumericDate is the start of the year 10000: later times are not
// meant, and would overflow on the way to a time.Time.
const maxNumericDate = 253402300800

// numericDate reads a NumericDate: a JSON number of seconds, fractions
// allowed. Zero and negative values are refused too: jwx treats 0 as
// "no exp".
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || !(f >= 1 && f < maxNumericDate) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// subject reads sub: the actor in the audit log, so it must be one
// unambiguous printable string, not blank and without surrounding spaces
// (" mjansen" would be another actor than "mjansen").
func subject(values map[string]any) (string, error) {
	v, ok := values[jwt.SubjectKey]
	if !ok {
		return "", refuse(ReasonNoSubject, "", nil)
	}
	s, ok := v.(string)
	switch {
	case !ok:
		return "", refuse(ReasonClaim, jwt.SubjectKey, errors.New("not a string"))
	case strings.TrimSpace(s) == "":
		return "", refuse(ReasonClaim, jwt.SubjectKey, errors.New("blank"))
	case strings.TrimSpace(s) != s:
		return "", refuse(ReasonClaim, jwt.SubjectKey, errors.New("surrounding white space"))
	case !printable(s):
		return "", refuse(ReasonClaim, jwt.SubjectKey, errors.New("control or format characters"))
	}
	return s, nil
}

// printable reports whether s is free of control characters, invisible
// format characters (bidi overrides, zero-width) and line separators:
// these would let a claim hide or rewrite what an audit log line or a
// screen shows.
func printable(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) || r == '\uFFFD' {
			return false
		}
	}
	return true
}
