// Package auth owns token validation: the bearer JWTs of employees and
// other governments (Verifier, giving an Identity) and of residents for
// subject access (ResidentVerifier, giving a Resident). It checks the
// signature against the identity provider's JWKS (asymmetric keys only,
// refetched on an unknown kid at most once per interval), the registered
// claims (iss, aud, exp, nbf, iat with a small skew and a maximum
// lifetime) and the shape of every claim it reads, and it refuses what a
// lenient parser would guess at: duplicate JSON keys, times given as
// strings, critical header extensions, roles given as one string.
//
// Every refusal is a *TokenError matching ErrInvalidToken; its Error text
// is a short stable phrase meant for the caller, and it never holds a
// claim's value (so never a BSN).
package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Authentication errors. ErrNoToken: the request carries no bearer
// token. ErrInvalidToken: it carries one that is refused; the error is
// then a *TokenError saying why.
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrInvalidToken = errors.New("invalid token")
)

// Reason is why a token was refused: a short, stable phrase that may be
// shown to the caller and compared by code.
type Reason string

// The reasons a token is refused.
const (
	// ReasonMalformed: not three base64url parts holding JSON objects,
	// oversized, or more than one Authorization header.
	ReasonMalformed Reason = "token format not valid"
	// ReasonDuplicate: a JSON object in the header or the claims names a
	// key twice, which parsers resolve differently.
	ReasonDuplicate Reason = "token has a duplicate header parameter or claim"
	// ReasonAlgorithm: alg is none, symmetric, unknown, or does not fit
	// the key the kid names.
	ReasonAlgorithm Reason = "token algorithm not accepted"
	// ReasonCritical: the header has crit; no extension is understood.
	ReasonCritical Reason = "token header has critical extensions (crit)"
	// ReasonHeader: a header parameter (TokenError.Field) is not accepted.
	ReasonHeader Reason = "token header parameter not accepted"
	// ReasonNoKeyID: the header names no kid.
	ReasonNoKeyID Reason = "token without key id (kid)"
	// ReasonUnknownKey: no key of the JWKS has the kid, even after a refetch.
	ReasonUnknownKey Reason = "token signed with an unknown key"
	// ReasonSignature: the signature does not verify with the key.
	ReasonSignature Reason = "token signature not valid"
	// ReasonNoExpiry: exp is missing.
	ReasonNoExpiry Reason = "token without expiry (exp)"
	// ReasonNoSubject: sub is missing.
	ReasonNoSubject Reason = "token without subject (sub)"
	// ReasonClaim: a claim (TokenError.Field) has the wrong type or value.
	ReasonClaim Reason = "token claim not valid"
	// ReasonExpired: exp has passed (beyond the skew).
	ReasonExpired Reason = "token expired"
	// ReasonNotYetValid: nbf lies ahead (beyond the skew).
	ReasonNotYetValid Reason = "token not yet valid"
	// ReasonIssuedInFuture: iat lies ahead (beyond the skew).
	ReasonIssuedInFuture Reason = "token issued in the future (iat)"
	// ReasonAudience: aud does not name this API.
	ReasonAudience Reason = "token not meant for this API (aud)"
	// ReasonIssuer: iss is not the configured identity provider.
	ReasonIssuer Reason = "token from an unknown issuer (iss)"
	// ReasonLifetime: exp − iat (or exp − nbf), or exp − now, exceeds the
	// configured maximum lifetime.
	ReasonLifetime Reason = "token lifetime exceeds the maximum"
)

// TokenError is a refused token. It matches ErrInvalidToken. Error is the
// text for the caller ("invalid token: token expired"); Err is the cause,
// for the log only. Neither holds a claim value.
type TokenError struct {
	Reason Reason
	// Field names the claim or header parameter the reason is about, when
	// Reason does not already (ReasonClaim, ReasonHeader); else empty.
	Field string
	// Err is the underlying cause, when there is one (a jwx validation
	// error, a JWKS fetch failure); nil otherwise.
	Err error
}

// Error is the text for the caller: "invalid token: " and the reason,
// with the field in parentheses when there is one.
func (e *TokenError) Error() string {
	if e.Field != "" {
		return "invalid token: " + string(e.Reason) + " (" + e.Field + ")"
	}
	return "invalid token: " + string(e.Reason)
}

// Is makes every TokenError match ErrInvalidToken.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

// Unwrap gives the cause, so errors.Is finds e.g. jwt.ErrTokenExpired().
func (e *TokenError) Unwrap() error { return e.Err }

// Identity is an authenticated employee or organisation.
type Identity struct {
	// Sub is the subject: trimmed, non-empty, no control characters.
	Sub        string
	Name       string
	Department string
	// Roles are the token's roles array; nil when the claim is absent.
	Roles []string
	// Organisation is the OIN of another government calling with a
	// client-credentials token: its organisation claim, or the client_id
	// or sub of a token without department; empty for employees.
	Organisation string
	// Delegate is the sub of the token's act claim (RFC 8693): who acts
	// on the subject's behalf; empty when there is none.
	Delegate string
	// Purposes are the values of an organisation token's scope: the
	// purposes it was issued for. nil when the token has no scope (the
	// policy alone binds the organisation); always nil for employees.
	Purposes []string
}

// Verifier checks the bearer JWTs of employees and organisations. It is
// safe for concurrent use.
type Verifier struct {
	tokens *checker
	// fsc checks the tokens of Fsc-Authorization; nil: tokens does.
	fsc         *checker
	requireCert bool
}

// NewVerifier checks cfg and loads the keys once; it fails, naming the
// config key, when cfg is incomplete or the keys cannot be loaded. ctx
// bounds that first load only.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	c, err := newChecker(ctx, cfg, "auth")
	if err != nil {
		return nil, err
	}
	v := &Verifier{tokens: c, requireCert: cfg.RequireOrganisationCertificate}
	if cfg.FSC != nil {
		if v.fsc, err = newChecker(ctx, *cfg.FSC, "auth.fsc"); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Authenticate verifies the request's token: the Fsc-Authorization
// header's when an FSC Inway forwarded one (checked against Config.FSC
// when that is set), else the bearer token. It
// returns ErrNoToken when there is none, a *TokenError (matching
// ErrInvalidToken) when it is refused. An organisation's token on a
// connection with a client certificate must name the certificate's OIN
// (ReasonCertificate). ctx bounds a key refetch.
func (v *Verifier) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	raw, viaFSC, err := requestToken(r)
	if err != nil {
		return Identity{}, err
	}
	tokens := v.tokens
	if viaFSC && v.fsc != nil {
		tokens = v.fsc
	}
	cl, err := tokens.check(ctx, raw)
	if err != nil {
		return Identity{}, err
	}
	id, err := identityOf(cl)
	if err != nil {
		return Identity{}, err
	}
	if err := v.matchCertificate(r, id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// VerifyToken verifies a compact JWT of the identity provider (not the
// FSC Manager's): see Authenticate.
func (v *Verifier) VerifyToken(ctx context.Context, raw string) (Identity, error) {
	cl, err := v.tokens.check(ctx, raw)
	if err != nil {
		return Identity{}, err
	}
	return identityOf(cl)
}

// identityOf reads the identity claims, refusing those of the wrong shape
// rather than guessing: an actor in the audit log must be what the
// identity provider meant.
func identityOf(cl claims) (Identity, error) {
	id := Identity{Sub: cl.subject}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"name", &id.Name}, {"department", &id.Department}, {"organisation", &id.Organisation}} {
		v, ok := cl.values[f.name]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok || !printable(s) {
			return Identity{}, refuse(ReasonClaim, f.name, errors.New("not a string of printable characters"))
		}
		*f.dst = s
	}
	if v, ok := cl.values["roles"]; ok {
		list, ok := v.([]any)
		if !ok {
			return Identity{}, refuse(ReasonClaim, "roles", errors.New("not an array"))
		}
		for _, item := range list {
			s, ok := item.(string)
			if !ok || strings.TrimSpace(s) == "" || !printable(s) {
				return Identity{}, refuse(ReasonClaim, "roles", errors.New("an element is not a non-empty string of printable characters"))
			}
			id.Roles = append(id.Roles, s)
		}
	}
	if err := organisationOf(cl, &id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// maxAuthorization bounds the Authorization header we look at; real
// tokens are a few kilobytes.
const maxAuthorization = 16 << 10

// bearer takes the token out of the one Authorization header.
func bearer(r *http.Request) (string, error) {
	hs := r.Header.Values("Authorization")
	if len(hs) == 0 {
		return "", ErrNoToken
	}
	if len(hs) > 1 {
		return "", refuse(ReasonMalformed, "", errors.New("more than one Authorization header"))
	}
	scheme, tok, ok := strings.Cut(hs[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoToken
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", ErrNoToken
	}
	if len(tok) > maxAuthorization {
		return "", refuse(ReasonMalformed, "", errors.New("token larger than 16 KiB"))
	}
	return tok, nil
}
