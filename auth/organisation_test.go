package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/auth"
)

const oinUWV = "00000001000000000001"

// clientCredentials is an organisation's client-credentials claim set:
// the OIN as sub and client_id, the organisation's name, no department.
func clientCredentials() claims {
	return claims{
		"iss": testIssuer, "aud": testAudience, "iat": unix(0), "exp": unix(5 * time.Minute),
		"sub": oinUWV, "client_id": oinUWV, "name": "UWV",
	}
}

func TestOrganisationTokens(t *testing.T) {
	rs := newRSASigner(t, "rsa-1")
	v := newVerifier(t, rs.public(t))
	tests := []struct {
		name   string
		claims claims
		want   auth.Identity
	}{
		{"sub and client_id name the OIN", clientCredentials(),
			auth.Identity{Sub: oinUWV, Name: "UWV", Organisation: oinUWV}},
		{"client_id alone names the OIN", clientCredentials().with("sub", "uwv-client"),
			auth.Identity{Sub: "uwv-client", Name: "UWV", Organisation: oinUWV}},
		{"sub alone names the OIN", clientCredentials().with("client_id", nil),
			auth.Identity{Sub: oinUWV, Name: "UWV", Organisation: oinUWV}},
		{"act names the delegate", clientCredentials().with("act", map[string]any{"sub": "medewerker-17", "act": map[string]any{"sub": "x"}}),
			auth.Identity{Sub: oinUWV, Name: "UWV", Organisation: oinUWV, Delegate: "medewerker-17"}},
		{"scope names the contracted purposes", clientCredentials().with("scope", "uwv-werk-en-inkomen other"),
			auth.Identity{Sub: oinUWV, Name: "UWV", Organisation: oinUWV, Purposes: []string{"uwv-werk-en-inkomen", "other"}}},
		{"an empty scope names no purpose", clientCredentials().with("scope", " "),
			auth.Identity{Sub: oinUWV, Name: "UWV", Organisation: oinUWV, Purposes: []string{}}},
		{"an employee token with a client_id that is an OIN stays an employee's", valid().with("client_id", oinUWV, "scope", "openid"),
			auth.Identity{Sub: "mjansen", Name: "Mila Jansen", Department: "burgerzaken", Roles: []string{"medewerker"}}},
		{"a client_id that is no OIN names no organisation", clientCredentials().with("sub", "app", "client_id", "app"),
			auth.Identity{Sub: "app", Name: "UWV"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Authenticate(context.Background(), bearerRequest(rs.token(t, tt.claims)))
			require.NoError(t, err)
			assert.Equal(t, tt.want, id)
		})
	}

	refused := []struct {
		name   string
		claims claims
		field  string
	}{
		{"an organisation claim that is not an OIN", clientCredentials().with("organisation", "UWV"), "organisation"},
		{"client_id and sub naming different OINs", clientCredentials().with("sub", "00000001000000000002"), "client_id"},
		{"an organisation claim another OIN than client_id", clientCredentials().with("organisation", "00000001000000000002"), "client_id"},
		{"a client_id that is not a string", clientCredentials().with("client_id", 12), "client_id"},
		{"act that is not an object", clientCredentials().with("act", "medewerker-17"), "act"},
		{"act without sub", clientCredentials().with("act", map[string]any{"iss": "x"}), "act"},
		{"act.sub with a control character", clientCredentials().with("act", map[string]any{"sub": "a\x1b[2J"}), "act"},
		{"scope that is not a string", clientCredentials().with("scope", []string{"uwv-werk-en-inkomen"}), "scope"},
	}
	for _, tt := range refused {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := v.Authenticate(context.Background(), bearerRequest(rs.token(t, tt.claims)))
			requireRefused(t, err, auth.ReasonClaim, tt.field)
		})
	}
}

func TestFSCAuthorizationIsTheToken(t *testing.T) {
	rs := newRSASigner(t, "rsa-1")
	v := newVerifier(t, rs.public(t))
	org := rs.token(t, clientCredentials())

	for _, value := range []string{org, "Bearer " + org} {
		r := bearerRequest(rs.token(t, valid()))
		r.Header.Set("Fsc-Authorization", value)
		id, err := v.Authenticate(context.Background(), r)
		require.NoError(t, err)
		assert.Equal(t, oinUWV, id.Organisation, "the FSC token wins over Authorization")
	}

	r := bearerRequest("")
	r.Header.Set("Fsc-Authorization", "not.a.token")
	_, err := v.Authenticate(context.Background(), r)
	requireRefused(t, err, auth.ReasonMalformed, "")

	r = bearerRequest(rs.token(t, valid()))
	r.Header.Add("Fsc-Authorization", org)
	r.Header.Add("Fsc-Authorization", org)
	_, err = v.Authenticate(context.Background(), r)
	requireRefused(t, err, auth.ReasonMalformed, "")

	r = bearerRequest("")
	r.Header.Set("Fsc-Authorization", " ")
	_, err = v.Authenticate(context.Background(), r)
	require.ErrorIs(t, err, auth.ErrNoToken)
}

// withCertificate is r as if it came over mutual TLS with a client
// certificate whose subject serialNumber is serial.
func withCertificate(token, serial string) *http.Request {
	r := bearerRequest(token)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{SerialNumber: serial, CommonName: "UWV"}}}}
	return r
}

func TestClientCertificateMustCarryTheTokensOIN(t *testing.T) {
	rs := newRSASigner(t, "rsa-1")
	org := rs.token(t, clientCredentials())
	for _, require_ := range []bool{false, true} {
		cfg := config(t, newClock(), rs.public(t))
		cfg.RequireOrganisationCertificate = require_
		v, err := auth.NewVerifier(context.Background(), cfg)
		require.NoError(t, err)

		id, err := v.Authenticate(context.Background(), withCertificate(org, oinUWV))
		require.NoError(t, err, "the certificate's OIN is the token's")
		assert.Equal(t, oinUWV, id.Organisation)

		_, err = v.Authenticate(context.Background(), withCertificate(org, "00000001000000000002"))
		requireRefused(t, err, auth.ReasonCertificate, "")
		_, err = v.Authenticate(context.Background(), withCertificate(org, "UWV"))
		requireRefused(t, err, auth.ReasonCertificate, "")

		// Employees are not bound to a certificate.
		_, err = v.Authenticate(context.Background(), withCertificate(rs.token(t, valid()), "00000001000000000002"))
		require.NoError(t, err)

		_, err = v.Authenticate(context.Background(), bearerRequest(org))
		if require_ {
			requireRefused(t, err, auth.ReasonCertificate, "")
		} else {
			require.NoError(t, err, "without a certificate the token alone counts when none is required")
		}
	}
}

func TestValidOIN(t *testing.T) {
	assert.True(t, auth.ValidOIN("00000001003214345000"))
	for _, s := range []string{"", "0000000100321434500", "000000010032143450000", "0000000100321434500a", "+0000001003214345000"} {
		assert.False(t, auth.ValidOIN(s), s)
	}
	_, ok := auth.CertificateOIN(nil)
	assert.False(t, ok)
}

func TestFSCManagerTokensAreCheckedAgainstTheManager(t *testing.T) {
	const manager, inway = "https://manager.fsc.gemeente.example", "https://inway.gemeente.example"
	idp := newRSASigner(t, "idp-1")
	fsc := newECSigner(t, "manager-1")
	cfg := config(t, newClock(), idp.public(t))
	fscCfg := config(t, newClock(), fsc.public(t))
	fscCfg.Issuer, fscCfg.Audience = manager, inway
	cfg.FSC = &fscCfg
	v, err := auth.NewVerifier(context.Background(), cfg)
	require.NoError(t, err)

	// An FSC access token: the outway's organisation (peer id = OIN) as sub.
	access := fsc.token(t, claims{"iss": manager, "aud": inway, "iat": unix(0), "exp": unix(5 * time.Minute), "sub": oinUWV, "svc": "klantbeeld"})
	r := bearerRequest("")
	r.Header.Set("Fsc-Authorization", access)
	id, err := v.Authenticate(context.Background(), r)
	require.NoError(t, err)
	assert.Equal(t, oinUWV, id.Organisation)

	// The manager's tokens count only as FSC tokens, the identity
	// provider's only as bearer tokens.
	_, err = v.Authenticate(context.Background(), bearerRequest(access))
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	r = bearerRequest("")
	r.Header.Set("Fsc-Authorization", idp.token(t, clientCredentials()))
	_, err = v.Authenticate(context.Background(), r)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	_, err = v.Authenticate(context.Background(), bearerRequest(idp.token(t, clientCredentials())))
	require.NoError(t, err)

	bad := fscCfg
	bad.Issuer = ""
	cfg.FSC = &bad
	_, err = auth.NewVerifier(context.Background(), cfg)
	require.ErrorContains(t, err, "auth.fsc.issuer")
}
