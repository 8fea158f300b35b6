package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/auth"
)

const (
	residentIssuer   = "https://digid-broker.gemeente.example"
	residentAudience = "klantbeeld-inzage"
	suzanne          = "999993653" // an official BRP test person
	notABSN          = "123456789" // nine digits failing the 11-proef
)

// resident is a resident's claim set from the DigiD broker.
func resident(bsnValue any) claims {
	return claims{
		"iss": residentIssuer, "aud": residentAudience,
		"iat": unix(0), "exp": unix(15 * time.Minute),
		"sub": bsnValue, "acr": "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
	}
}

func newResidentVerifier(t *testing.T, claim string, s *signer) *auth.ResidentVerifier {
	t.Helper()
	cfg := config(t, newClock(), s.public(t))
	cfg.Issuer, cfg.Audience = residentIssuer, residentAudience
	v, err := auth.NewResidentVerifier(context.Background(), auth.ResidentConfig{Config: cfg, BSNClaim: claim})
	require.NoError(t, err)
	return v
}

func TestResidentVerifierAccepts(t *testing.T) {
	s := newRSASigner(t, "digid-1")
	bySub := newResidentVerifier(t, "", s)
	byClaim := newResidentVerifier(t, "bsn", s)
	for _, tt := range []struct {
		name  string
		v     *auth.ResidentVerifier
		token string
	}{
		{"the BSN in sub by default", bySub, s.token(t, resident(suzanne))},
		{"the BSN in a configured claim", byClaim, s.token(t, resident("pseudonym-7f3a").with("bsn", suzanne))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.v.Authenticate(context.Background(), bearerRequest(tt.token))
			require.NoError(t, err)
			assert.Equal(t, suzanne, r.BSN)
		})
	}
}

func TestResidentVerifierRefuses(t *testing.T) {
	s := newRSASigner(t, "digid-1")
	employees := newECSigner(t, "employees-1")
	bySub := newResidentVerifier(t, "", s)
	byClaim := newResidentVerifier(t, "bsn", s)
	good := resident(suzanne).json(t)
	for _, tt := range []struct {
		name   string
		v      *auth.ResidentVerifier
		token  string
		reason auth.Reason
		field  string
	}{
		{"a sub failing the 11-proef is refused", bySub, s.token(t, resident(notABSN)), auth.ReasonClaim, "sub"},
		{"a sub that is not nine digits is refused", bySub, s.token(t, resident("99999365")), auth.ReasonClaim, "sub"},
		{"a BSN as a JSON number is refused", byClaim, s.token(t, resident("p").with("bsn", 999993653)), auth.ReasonClaim, "bsn"},
		{"a missing BSN claim is refused", byClaim, s.token(t, resident("p")), auth.ReasonClaim, "bsn"},
		{"a BSN with a space is refused", byClaim, s.token(t, resident("p").with("bsn", suzanne+" ")), auth.ReasonClaim, "bsn"},
		{"an employee token is refused", bySub, employees.token(t, valid()), auth.ReasonUnknownKey, ""},
		{"a token for the employee audience is refused", bySub, s.token(t, resident(suzanne).with("aud", testAudience)), auth.ReasonAudience, ""},
		{"a token from another issuer is refused", bySub, s.token(t, resident(suzanne).with("iss", testIssuer)), auth.ReasonIssuer, ""},
		{"an expired token is refused", bySub, s.token(t, resident(suzanne).with("iat", unix(-time.Hour), "exp", unix(-time.Minute))), auth.ReasonExpired, ""},
		{"a duplicate sub is refused", bySub, s.sign(t, s.header(), prepend(good, `"sub":"`+notABSN+`"`)), auth.ReasonDuplicate, ""},
		{"a duplicate BSN claim is refused", byClaim, s.sign(t, s.header(), prepend(resident("p").with("bsn", suzanne).json(t), `"bsn":"999990020"`)), auth.ReasonDuplicate, ""},
		{"exp as a string is refused", bySub, s.sign(t, s.header(), prepend(resident(suzanne).with("exp", nil).json(t), `"exp":"1750000900"`)), auth.ReasonClaim, "exp"},
		{"a lifetime over the maximum is refused", bySub, s.token(t, resident(suzanne).with("exp", unix(13*time.Hour))), auth.ReasonLifetime, ""},
		{"alg none is refused", bySub, b64([]byte(`{"alg":"none","kid":"digid-1"}`)) + "." + b64([]byte(good)) + ".", auth.ReasonAlgorithm, ""},
		{"a crit header is refused", bySub, s.sign(t, `{"alg":"RS256","kid":"digid-1","crit":["x"],"x":1}`, good), auth.ReasonCritical, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.v.Authenticate(context.Background(), bearerRequest(tt.token))
			requireRefused(t, err, tt.reason, tt.field)
			assert.Zero(t, r)
		})
	}
}

// TestResidentRefusalsNeverShowTheBSN walks each error chain: not the
// caller's text, not the logged cause, not a %+v.
func TestResidentRefusalsNeverShowTheBSN(t *testing.T) {
	s := newRSASigner(t, "digid-1")
	v := newResidentVerifier(t, "", s)
	for name, token := range map[string]string{
		"a BSN failing the 11-proef": s.token(t, resident(notABSN)),
		"expired":                    s.token(t, resident(suzanne).with("iat", unix(-time.Hour), "exp", unix(-time.Minute))),
		"duplicate sub":              s.sign(t, s.header(), prepend(resident(suzanne).json(t), `"sub":"`+notABSN+`"`)),
		"the BSN as a key":           s.sign(t, s.header(), prepend(resident(suzanne).json(t), `"`+suzanne+`":1,"`+suzanne+`":2`)),
		"the BSN as a kid":           s.sign(t, `{"alg":"RS256","kid":"`+suzanne+`"}`, resident(suzanne).json(t)),
		"sub with a control char":    s.token(t, resident(suzanne+"\n")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.VerifyToken(context.Background(), token)
			require.ErrorIs(t, err, auth.ErrInvalidToken)
			for _, text := range append(chain(err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)) {
				assert.NotContains(t, text, suzanne)
				assert.NotContains(t, text, notABSN)
			}
		})
	}
}

// chain is the message of err and of everything it wraps.
func chain(err error) []string {
	var out []string
	for queue := []error{err}; len(queue) > 0; queue = queue[1:] {
		e := queue[0]
		if e == nil {
			continue
		}
		out = append(out, e.Error())
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			queue = append(queue, u.Unwrap())
		case interface{ Unwrap() []error }:
			queue = append(queue, u.Unwrap()...)
		}
	}
	return out
}

func TestResidentPrintsAndLogsWithoutTheBSN(t *testing.T) {
	r := auth.Resident{BSN: suzanne}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("subject access", "resident", r)
	for _, text := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s", r, r, r, r), logged.String()} {
		assert.NotContains(t, text, suzanne)
		assert.Contains(t, text, "[BSN]")
	}
}

func TestResidentConfigErrorsNameTheKey(t *testing.T) {
	s := newECSigner(t, "e")
	for _, tt := range []struct {
		name string
		cfg  func(c *auth.ResidentConfig)
		want string
	}{
		{"no issuer", func(c *auth.ResidentConfig) { c.Issuer = "" }, "auth.residents.issuer"},
		{"no audience", func(c *auth.ResidentConfig) { c.Audience = "" }, "auth.residents.audience"},
		{"no keys", func(c *auth.ResidentConfig) { c.JWKSFile = "" }, "auth.residents.jwks_url"},
		{"a registered claim as bsn_claim", func(c *auth.ResidentConfig) { c.BSNClaim = "exp" }, "auth.residents.bsn_claim"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := auth.ResidentConfig{Config: config(t, newClock(), s.public(t))}
			tt.cfg(&cfg)
			_, err := auth.NewResidentVerifier(context.Background(), cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.False(t, errors.Is(err, auth.ErrInvalidToken))
			assert.False(t, strings.Contains(err.Error(), "auth.issuer"), "the resident keys are named as such")
		})
	}
}
