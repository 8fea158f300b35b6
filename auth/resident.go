package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/klantbeeld/klantbeeld/bsn"
)

// ResidentConfig is the identity provider of residents (DigiD through the
// municipality's OIDC broker): the config file's auth.residents block.
// Its tokens are checked exactly like employees' (Config: signature,
// header, iss, aud, times, lifetime, a printable sub), and must also carry
// the resident's BSN as a string passing the 11-proef.
type ResidentConfig struct {
	Config
	// BSNClaim names the claim holding the BSN; "": "sub".
	BSNClaim string
}

// DefaultBSNClaim is the claim holding the BSN when ResidentConfig.BSNClaim
// is empty.
const DefaultBSNClaim = jwt.SubjectKey

// Resident is an authenticated resident. Its String, GoString and
// LogValue hide the BSN, so that printing or logging one by mistake does
// not leak it.
type Resident struct {
	// BSN passed the 11-proef.
	BSN string
}

// String hides the BSN.
func (Resident) String() string { return "Resident{BSN:" + bsn.Mask + "}" }

// GoString hides the BSN from %#v.
func (r Resident) GoString() string { return r.String() }

// LogValue hides the BSN from log/slog.
func (Resident) LogValue() slog.Value { return slog.StringValue(bsn.Mask) }

// ResidentVerifier checks residents' bearer JWTs. It is safe for
// concurrent use.
type ResidentVerifier struct {
	tokens   *checker
	bsnClaim string
}

// NewResidentVerifier checks cfg and loads the keys once, like
// NewVerifier; errors name the auth.residents keys.
func NewResidentVerifier(ctx context.Context, cfg ResidentConfig) (*ResidentVerifier, error) {
	const prefix = "auth.residents"
	claim := cfg.BSNClaim
	if claim == "" {
		claim = DefaultBSNClaim
	}
	switch claim {
	case jwt.IssuerKey, jwt.AudienceKey, jwt.ExpirationKey, jwt.NotBeforeKey, jwt.IssuedAtKey, jwt.JwtIDKey:
		return nil, fmt.Errorf("%s.bsn_claim: %q is a registered claim that cannot hold a BSN", prefix, claim)
	}
	c, err := newChecker(ctx, cfg.Config, prefix)
	if err != nil {
		return nil, err
	}
	return &ResidentVerifier{tokens: c, bsnClaim: claim}, nil
}

// Authenticate verifies the request's bearer token and returns the
// resident it names. It returns ErrNoToken when there is none, a
// *TokenError (matching ErrInvalidToken) when it is refused; a BSN claim
// that is missing, not a string or fails the 11-proef is ReasonClaim. No
// error text holds the BSN.
func (v *ResidentVerifier) Authenticate(ctx context.Context, r *http.Request) (Resident, error) {
	raw, err := bearer(r)
	if err != nil {
		return Resident{}, err
	}
	return v.VerifyToken(ctx, raw)
}

// VerifyToken verifies a compact JWT: see Authenticate.
func (v *ResidentVerifier) VerifyToken(ctx context.Context, raw string) (Resident, error) {
	cl, err := v.tokens.check(ctx, raw)
	if err != nil {
		return Resident{}, err
	}
	// A number is refused too: it would lose a leading zero.
	s, ok := cl.values[v.bsnClaim].(string)
	if !ok {
		return Resident{}, refuse(ReasonClaim, v.bsnClaim, errors.New("missing or not a string"))
	}
	if err := bsn.Check(s); err != nil {
		return Resident{}, refuse(ReasonClaim, v.bsnClaim, err)
	}
	return Resident{BSN: s}, nil
}
