package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/auth"
)

// prepend puts members at the start of the JSON object js.
func prepend(js, members string) string { return "{" + members + "," + js[1:] }

func TestVerifierAccepts(t *testing.T) {
	rs := newRSASigner(t, "rsa-1")
	es := newECSigner(t, "ec-1")
	ed := newEdSigner(t, "ed-1")
	v := newVerifier(t, rs.public(t), es.public(t), ed.public(t))
	mila := auth.Identity{Sub: "mjansen", Name: "Mila Jansen", Department: "burgerzaken", Roles: []string{"medewerker"}}

	// A token the way the demo identity provider mints it, with jwx.
	demo, err := jwt.NewBuilder().Issuer(testIssuer).Audience([]string{testAudience}).Subject("mjansen").
		IssuedAt(at(0)).NotBefore(at(0)).Expiration(at(12*time.Hour)).
		Claim("name", "Mila Jansen").Claim("department", "burgerzaken").Claim("roles", []string{"medewerker"}).Build()
	require.NoError(t, err)
	hdr := jws.NewHeaders()
	require.NoError(t, hdr.Set(jws.KeyIDKey, rs.kid))
	demoSigned, err := jwt.Sign(demo, jwt.WithKey(jwa.RS256, rs.priv, jws.WithProtectedHeaders(hdr)))
	require.NoError(t, err)

	tests := []struct {
		name  string
		token string
		want  auth.Identity
	}{
		{"an RS256 employee token gives the identity", rs.token(t, valid()), mila},
		{"an ES256 token is accepted", es.token(t, valid()), mila},
		{"an EdDSA token is accepted", ed.token(t, valid()), mila},
		{"a token minted by jwx like the demo identity provider's is accepted", string(demoSigned), mila},
		{"aud as a single string is accepted", rs.token(t, valid().with("aud", testAudience)), mila},
		{"aud naming other APIs besides this one is accepted", rs.token(t, valid().with("aud", []string{"other", testAudience})), mila},
		{"absent roles give no roles", rs.token(t, valid().with("roles", nil)),
			auth.Identity{Sub: "mjansen", Name: "Mila Jansen", Department: "burgerzaken"}},
		{"an empty roles array gives no roles", rs.token(t, valid().with("roles", []string{})),
			auth.Identity{Sub: "mjansen", Name: "Mila Jansen", Department: "burgerzaken"}},
		{"several roles are kept in order", rs.token(t, valid().with("roles", []string{"auditor", "medewerker"})),
			auth.Identity{Sub: "mjansen", Name: "Mila Jansen", Department: "burgerzaken", Roles: []string{"auditor", "medewerker"}}},
		{"an organisation's client-credentials token gives the OIN", rs.token(t, claims{
			"iss": testIssuer, "aud": testAudience, "iat": unix(0), "exp": unix(5 * time.Minute),
			"sub": "client-gemeente-b", "organisation": "00000001234567890000",
		}), auth.Identity{Sub: "client-gemeente-b", Organisation: "00000001234567890000"}},
		{"a lifetime of exactly the maximum is accepted", rs.token(t, valid().with("exp", unix(12*time.Hour))), mila},
		{"a token without iat and nbf expiring within the maximum is accepted", rs.token(t, valid().with("iat", nil, "nbf", nil, "exp", unix(12*time.Hour))), mila},
		{"an expiry within the skew is tolerated", rs.token(t, valid().with("iat", unix(-time.Hour), "nbf", nil, "exp", unix(-10*time.Second))), mila},
		{"a start within the skew is tolerated", rs.token(t, valid().with("nbf", unix(10*time.Second), "iat", unix(10*time.Second))), mila},
		{"a fractional exp is a NumericDate too", rs.token(t, valid().with("exp", float64(unix(time.Hour))+0.5)), mila},
		{"claims nobody reads are ignored", rs.token(t, valid().with("jti", "a1", "scope", "openid", "address", map[string]any{"a": 1})), mila},
		{"names with accents and apostrophes pass", rs.token(t, valid().with("name", "Zoë d'Ancona-Çelik")),
			auth.Identity{Sub: "mjansen", Name: "Zoë d'Ancona-Çelik", Department: "burgerzaken", Roles: []string{"medewerker"}}},
		{"a header without typ is accepted", rs.sign(t, `{"alg":"RS256","kid":"rsa-1"}`, valid().json(t)), mila},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Authenticate(context.Background(), bearerRequest(tt.token))
			require.NoError(t, err)
			assert.Equal(t, tt.want, id)
		})
	}
}

func TestVerifierRefuses(t *testing.T) {
	rs := newRSASigner(t, "k1")
	es := newECSigner(t, "e1")
	sameKid := newRSASigner(t, "k1") // another key under a known kid
	v := newVerifier(t, rs.public(t), es.public(t))
	good := valid().json(t)

	// HS256 with the RSA public key as the HMAC secret (key confusion).
	pubDER, err := x509.MarshalPKIXPublicKey(rs.priv.Public())
	require.NoError(t, err)
	input := b64([]byte(`{"alg":"HS256","kid":"k1","typ":"JWT"}`)) + "." + b64([]byte(good))
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(input))
	confused := input + "." + b64(mac.Sum(nil))

	// rs's valid token, re-encoded with padding in the header.
	padded := b64([]byte(rs.header()+" ")) + "=." + b64([]byte(good)) + "."
	huge := rs.token(t, valid().with("blob", strings.Repeat("x", 17<<10)))

	tests := []struct {
		name   string
		token  string
		reason auth.Reason
		field  string
	}{
		// format
		{"garbage is refused", "not.a.jwt", auth.ReasonMalformed, ""},
		{"two parts are refused", "eyJhbGciOiJSUzI1NiJ9.e30", auth.ReasonMalformed, ""},
		{"five parts (a JWE) are refused", "a.b.c.d.e", auth.ReasonMalformed, ""},
		{"base64 padding is refused", padded, auth.ReasonMalformed, ""},
		{"the standard base64 alphabet is refused", "ab+/." + b64([]byte(good)) + ".x", auth.ReasonMalformed, ""},
		{"a header that is not an object is refused", rs.sign(t, `["RS256"]`, good), auth.ReasonMalformed, ""},
		{"a header with data after it is refused", rs.sign(t, rs.header()+`{}`, good), auth.ReasonMalformed, ""},
		{"claims that are not an object are refused", rs.sign(t, rs.header(), `"mjansen"`), auth.ReasonMalformed, ""},
		{"claims with a second object after them are refused", rs.sign(t, rs.header(), good+` {"sub":"x"}`), auth.ReasonMalformed, ""},
		{"claims that are not UTF-8 are refused", rs.sign(t, rs.header(), prepend(good, "\"x\":\"\xff\"")), auth.ReasonMalformed, ""},
		{"claims that are not JSON are refused", rs.sign(t, rs.header(), `{"sub":}`), auth.ReasonMalformed, ""},
		{"a token over 16 KiB is refused", huge, auth.ReasonMalformed, ""},

		// header
		{"alg none is refused", b64([]byte(`{"alg":"none","kid":"k1"}`)) + "." + b64([]byte(good)) + ".", auth.ReasonAlgorithm, ""},
		{"HS256 signed with the RSA public key as secret is refused", confused, auth.ReasonAlgorithm, ""},
		{"an alg that is not a string is refused", rs.sign(t, `{"alg":["RS256"],"kid":"k1"}`, good), auth.ReasonAlgorithm, ""},
		{"an RSA alg on the EC key is refused", rs.sign(t, `{"alg":"RS256","kid":"e1"}`, good), auth.ReasonAlgorithm, ""},
		{"ES384 on a P-256 key is refused", es.sign(t, `{"alg":"ES384","kid":"e1"}`, good), auth.ReasonAlgorithm, ""},
		{"PS256 on a key published for RS256 is refused", rs.sign(t, `{"alg":"PS256","kid":"k1"}`, good), auth.ReasonAlgorithm, ""},
		{"a crit header is refused", rs.sign(t, `{"alg":"RS256","kid":"k1","crit":["exp"],"exp":1}`, good), auth.ReasonCritical, ""},
		{"an empty crit header is refused too", rs.sign(t, `{"alg":"RS256","kid":"k1","crit":[]}`, good), auth.ReasonCritical, ""},
		{"an unencoded-payload (b64) header is refused", rs.sign(t, `{"alg":"RS256","kid":"k1","b64":true}`, good), auth.ReasonHeader, "b64"},
		{"a duplicate kid in the header is refused", rs.sign(t, `{"alg":"RS256","kid":"k1","kid":"k1"}`, good), auth.ReasonDuplicate, ""},
		{"a duplicate alg in the header is refused", rs.sign(t, `{"alg":"none","alg":"RS256","kid":"k1"}`, good), auth.ReasonDuplicate, ""},
		{"a header without kid is refused", rs.sign(t, `{"alg":"RS256"}`, good), auth.ReasonNoKeyID, ""},
		{"an empty kid is refused", rs.sign(t, `{"alg":"RS256","kid":""}`, good), auth.ReasonNoKeyID, ""},
		{"a kid that is not a string is refused", rs.sign(t, `{"alg":"RS256","kid":1}`, good), auth.ReasonHeader, "kid"},
		{"an unknown kid is refused", newECSigner(t, "k9").token(t, valid()), auth.ReasonUnknownKey, ""},

		// signature
		{"a token signed by another key under a known kid is refused", sameKid.token(t, valid()), auth.ReasonSignature, ""},
		{"a token whose claims were changed after signing is refused",
			strings.Join([]string{strings.Split(rs.token(t, valid()), ".")[0], b64([]byte(valid().with("department", "kcc").json(t))), strings.Split(rs.token(t, valid()), ".")[2]}, "."),
			auth.ReasonSignature, ""},
		{"a token without signature is refused", strings.TrimRight(rs.token(t, valid()), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), auth.ReasonSignature, ""},

		// duplicate claims
		{"a duplicate department claim is refused", rs.sign(t, rs.header(), prepend(valid().with("department", nil).json(t), `"department":"burgerzaken","department":"kcc"`)), auth.ReasonDuplicate, ""},
		{"a duplicate sub spelled with an escape is refused", rs.sign(t, rs.header(), prepend(good, `"s\u0075b":"admin"`)), auth.ReasonDuplicate, ""},
		{"a duplicate key in a nested object is refused", rs.sign(t, rs.header(), prepend(good, `"address":{"city":"Utrecht","city":"Delft"}`)), auth.ReasonDuplicate, ""},
		{"a duplicate key inside an array is refused", rs.sign(t, rs.header(), prepend(good, `"x":[{"a":1,"a":2}]`)), auth.ReasonDuplicate, ""},
		{"a duplicate exp is refused", rs.sign(t, rs.header(), prepend(good, `"exp":1`)), auth.ReasonDuplicate, ""},

		// registered claims
		{"exp as a string is refused", rs.sign(t, rs.header(), prepend(valid().with("exp", nil).json(t), `"exp":"1750003600"`)), auth.ReasonClaim, "exp"},
		{"nbf as a string is refused", rs.token(t, valid().with("nbf", "1750000000")), auth.ReasonClaim, "nbf"},
		{"iat as a string is refused", rs.token(t, valid().with("iat", "1750000000")), auth.ReasonClaim, "iat"},
		{"exp as a boolean is refused", rs.token(t, valid().with("exp", true)), auth.ReasonClaim, "exp"},
		{"exp null is refused", rs.sign(t, rs.header(), prepend(valid().with("exp", nil).json(t), `"exp":null`)), auth.ReasonClaim, "exp"},
		{"exp zero (never expires, to jwx) is refused", rs.token(t, valid().with("exp", 0, "iat", nil, "nbf", nil)), auth.ReasonClaim, "exp"},
		{"a negative exp is refused", rs.token(t, valid().with("exp", -1)), auth.ReasonClaim, "exp"},
		{"exp beyond the year 9999 is refused", rs.sign(t, rs.header(), prepend(valid().with("exp", nil).json(t), `"exp":1e400`)), auth.ReasonClaim, "exp"},
		{"a token without exp is refused", rs.token(t, valid().with("exp", nil)), auth.ReasonNoExpiry, ""},
		{"an expired token is refused", rs.token(t, valid().with("iat", unix(-2*time.Hour), "nbf", nil, "exp", unix(-2*time.Minute))), auth.ReasonExpired, ""},
		{"a token not yet valid is refused", rs.token(t, valid().with("nbf", unix(10*time.Minute))), auth.ReasonNotYetValid, ""},
		{"a token issued in the future is refused", rs.token(t, valid().with("iat", unix(10*time.Minute))), auth.ReasonIssuedInFuture, ""},
		{"a token for another audience is refused", rs.token(t, valid().with("aud", []string{"other-api"})), auth.ReasonAudience, ""},
		{"a token without aud is refused", rs.token(t, valid().with("aud", nil)), auth.ReasonAudience, ""},
		{"aud as a number is refused", rs.token(t, valid().with("aud", 7)), auth.ReasonClaim, "aud"},
		{"aud with a number among the strings is refused", rs.token(t, valid().with("aud", []any{testAudience, 7})), auth.ReasonClaim, "aud"},
		{"a token from another issuer is refused", rs.token(t, valid().with("iss", "https://evil.example")), auth.ReasonIssuer, ""},
		{"a token without iss is refused", rs.token(t, valid().with("iss", nil)), auth.ReasonIssuer, ""},
		{"iss as an array is refused", rs.token(t, valid().with("iss", []string{testIssuer})), auth.ReasonClaim, "iss"},

		// lifetime
		{"a lifetime (exp − iat) over 12 h is refused", rs.token(t, valid().with("iat", unix(-time.Hour), "exp", unix(11*time.Hour+time.Second))), auth.ReasonLifetime, ""},
		{"a lifetime (exp − nbf, no iat) over 12 h is refused", rs.token(t, valid().with("iat", nil, "nbf", unix(-time.Hour), "exp", unix(11*time.Hour+time.Second))), auth.ReasonLifetime, ""},
		{"an exp more than 12 h ahead is refused even without iat and nbf", rs.token(t, valid().with("iat", nil, "nbf", nil, "exp", unix(12*time.Hour+time.Minute))), auth.ReasonLifetime, ""},
		{"a year-long token is refused", rs.token(t, valid().with("exp", unix(365*24*time.Hour))), auth.ReasonLifetime, ""},

		// sub
		{"a token without sub is refused", rs.token(t, valid().with("sub", nil)), auth.ReasonNoSubject, ""},
		{"a blank sub is refused", rs.token(t, valid().with("sub", " ")), auth.ReasonClaim, "sub"},
		{"an empty sub is refused", rs.token(t, valid().with("sub", "")), auth.ReasonClaim, "sub"},
		{"a sub with surrounding spaces is refused", rs.token(t, valid().with("sub", " mjansen")), auth.ReasonClaim, "sub"},
		{"a sub with a newline is refused", rs.token(t, valid().with("sub", "mjansen\nadmin")), auth.ReasonClaim, "sub"},
		{"a sub with a NUL is refused", rs.token(t, valid().with("sub", "mjansen\x00")), auth.ReasonClaim, "sub"},
		{"a sub with a right-to-left override is refused", rs.token(t, valid().with("sub", "mjansen\u202e")), auth.ReasonClaim, "sub"},
		{"a sub with a zero-width space is refused", rs.token(t, valid().with("sub", "mjan\u200bsen")), auth.ReasonClaim, "sub"},
		{"a sub with a lone surrogate escape is refused", rs.sign(t, rs.header(), prepend(valid().with("sub", nil).json(t), `"sub":"mj\ud800"`)), auth.ReasonClaim, "sub"},
		{"a numeric sub is refused", rs.token(t, valid().with("sub", 12)), auth.ReasonClaim, "sub"},

		// identity claims
		{"roles as a space-separated string are refused", rs.token(t, valid().with("roles", "medewerker auditor")), auth.ReasonClaim, "roles"},
		{"roles with a non-string element are refused", rs.token(t, valid().with("roles", []any{"medewerker", 1})), auth.ReasonClaim, "roles"},
		{"roles with a nested array are refused", rs.token(t, valid().with("roles", []any{[]string{"auditor"}})), auth.ReasonClaim, "roles"},
		{"roles with an empty string are refused", rs.token(t, valid().with("roles", []string{"medewerker", ""})), auth.ReasonClaim, "roles"},
		{"roles null are refused", rs.sign(t, rs.header(), prepend(valid().with("roles", nil).json(t), `"roles":null`)), auth.ReasonClaim, "roles"},
		{"roles as an object are refused", rs.token(t, valid().with("roles", map[string]any{"auditor": true})), auth.ReasonClaim, "roles"},
		{"a role with a control character is refused", rs.token(t, valid().with("roles", []string{"auditor\r"})), auth.ReasonClaim, "roles"},
		{"a department that is not a string is refused", rs.token(t, valid().with("department", []string{"kcc", "burgerzaken"})), auth.ReasonClaim, "department"},
		{"a department with a control character is refused", rs.token(t, valid().with("department", "kcc\t")), auth.ReasonClaim, "department"},
		{"a name with a line break is refused", rs.token(t, valid().with("name", "Mila\u2028Jansen")), auth.ReasonClaim, "name"},
		{"a name that is not a string is refused", rs.token(t, valid().with("name", 3)), auth.ReasonClaim, "name"},
		{"an organisation that is not a string is refused", rs.token(t, valid().with("organisation", 1234567890)), auth.ReasonClaim, "organisation"},
		{"an organisation with an escape character is refused", rs.token(t, valid().with("organisation", "0000\x1b[2J")), auth.ReasonClaim, "organisation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Authenticate(context.Background(), bearerRequest(tt.token))
			requireRefused(t, err, tt.reason, tt.field)
			assert.Zero(t, id)
		})
	}
}

func TestAuthenticateWithoutABearerTokenIsErrNoToken(t *testing.T) {
	v := newVerifier(t, newECSigner(t, "e1").public(t))
	for _, tt := range []struct {
		name   string
		header []string
	}{
		{"no Authorization header", nil},
		{"the Basic scheme", []string{"Basic dXNlcjpwYXNz"}},
		{"Bearer without a token", []string{"Bearer   "}},
		{"a scheme without a token", []string{"Bearer"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header["Authorization"] = tt.header
			_, err := v.Authenticate(context.Background(), r)
			require.ErrorIs(t, err, auth.ErrNoToken)
			assert.NotErrorIs(t, err, auth.ErrInvalidToken)
		})
	}
}

func TestAuthenticateAcceptsTheBearerSchemeInAnyCase(t *testing.T) {
	s := newECSigner(t, "e1")
	v := newVerifier(t, s.public(t))
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", "bearer "+s.token(t, valid()))
	id, err := v.Authenticate(context.Background(), r)
	require.NoError(t, err)
	assert.Equal(t, "mjansen", id.Sub)
}

func TestAuthenticateRefusesTwoAuthorizationHeaders(t *testing.T) {
	s := newECSigner(t, "e1")
	v := newVerifier(t, s.public(t))
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Add("Authorization", "Bearer "+s.token(t, valid()))
	r.Header.Add("Authorization", "Bearer "+s.token(t, valid().with("department", "kcc")))
	_, err := v.Authenticate(context.Background(), r)
	requireRefused(t, err, auth.ReasonMalformed, "")
}

func TestTokenErrorTellsTheCallerAStablePhraseAndKeepsTheCause(t *testing.T) {
	s := newECSigner(t, "e1")
	v := newVerifier(t, s.public(t))

	_, err := v.VerifyToken(context.Background(), s.token(t, valid().with("iat", unix(-2*time.Hour), "exp", unix(-time.Hour))))
	assert.EqualError(t, err, "invalid token: token expired")
	assert.ErrorIs(t, err, jwt.ErrTokenExpired(), "the jwx cause stays reachable for the log")

	_, err = v.VerifyToken(context.Background(), s.token(t, valid().with("roles", "auditor")))
	assert.EqualError(t, err, "invalid token: token claim not valid (roles)")

	te, ok := errors.AsType[*auth.TokenError](err)
	require.True(t, ok)
	assert.Equal(t, auth.ReasonClaim, te.Reason)
	assert.True(t, errors.Is(te, auth.ErrInvalidToken))
	assert.False(t, errors.Is(te, auth.ErrNoToken))
}

func TestVerifierRefusesSymmetricKeysInTheJWKS(t *testing.T) {
	s := newECSigner(t, "ec")
	secret := []byte("a shared secret that must never verify a token")
	oct := jwkOf(t, secret, "oct", jwa.HS256)
	v := newVerifier(t, s.public(t), oct)

	input := b64([]byte(`{"alg":"HS256","kid":"oct"}`)) + "." + b64([]byte(valid().json(t)))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	_, err := v.VerifyToken(context.Background(), input+"."+b64(mac.Sum(nil)))
	requireRefused(t, err, auth.ReasonAlgorithm, "")

	// Even under an asymmetric alg the oct key is not there to be found.
	_, err = v.VerifyToken(context.Background(), s.sign(t, `{"alg":"ES256","kid":"oct"}`, valid().json(t)))
	requireRefused(t, err, auth.ReasonUnknownKey, "")
}

// BenchmarkVerifyToken is the cost of authentication per request, which
// the gateway adds to every view.
// BenchmarkVerifyToken measures a token's first check (signature
// included) and a check of a token seen before (its signature verified
// then, under keys that still hold).
func BenchmarkVerifyToken(b *testing.B) {
	for _, s := range []*signer{newRSASigner(b, "rsa"), newECSigner(b, "ec"), newEdSigner(b, "ed")} {
		v := newVerifier(b, s.public(b))
		tok := s.token(b, valid())
		for _, again := range []bool{false, true} {
			name := map[bool]string{false: "first", true: "again"}[again]
			b.Run(name+"/"+s.alg.String(), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if !again {
						auth.ForgetSignedTokens(v)
					}
					if _, err := v.VerifyToken(context.Background(), tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
