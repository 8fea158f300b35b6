package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/klantbeeld/klantbeeld/audit"
)

// demoIssuer and demoAudience are the demo identity provider's iss and
// aud; the resident ones stand in for DigiD through the municipality's broker.
const (
	demoIssuer           = "https://idp.demo.klantbeeld.example"
	demoAudience         = "klantbeeld"
	demoResidentIssuer   = "https://digid.demo.klantbeeld.example"
	demoResidentAudience = "klantbeeld-inzage"
)

// demoIdP is the demo's identity provider: a key pair kept in a file under
// the demo's data folder (so printed tokens survive a restart), its public
// half as a JWKS, and tokens for the demo users.
type demoIdP struct {
	key    jwk.Key
	issuer string
	now    func() time.Time
}

// demoTokenTTL is how long the demo's tokens are valid by default: a
// working day, well inside the gateway's maximum token lifetime.
const demoTokenTTL = 8 * time.Hour

// newDemoIdP loads the signing key from keyFile, or makes one there (mode
// 0600) when it does not exist yet.
func newDemoIdP(issuer, keyFile string, now func() time.Time) (*demoIdP, error) {
	raw, err := loadOrCreateRSAKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("demo identity provider key %s: %w", keyFile, err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, err
	}
	// The kid follows from the key, so it is the same after a restart.
	thumb, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	kid := "demo-" + base64.RawURLEncoding.EncodeToString(thumb)[:16]
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, err
	}
	if err := key.Set(jwk.AlgorithmKey, jwa.RS256); err != nil {
		return nil, err
	}
	if err := key.Set(jwk.KeyUsageKey, "sig"); err != nil {
		return nil, err
	}
	return &demoIdP{key: key, issuer: issuer, now: now}, nil
}

// loadOrCreateRSAKey reads a PKCS#8 PEM private key, or writes a new one.
func loadOrCreateRSAKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, errors.New("not a PEM file")
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		return rk, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		return nil, err
	}
	written, err := audit.CreateKeyFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(written); block == nil || !bytes.Equal(block.Bytes, der) {
		return loadOrCreateRSAKey(path) // another demo made it first: use theirs
	}
	return rk, nil
}

// JWKS is the public key set, as the gateway's auth.jwks_file wants it.
func (d *demoIdP) JWKS() ([]byte, error) {
	pub, err := d.key.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	return json.MarshalIndent(set, "", "  ")
}

// tokenOptions change a token from the default (valid for ttl, for demoAudience).
type tokenOptions struct {
	TTL      time.Duration
	Audience string
	Issuer   string
	NotAfter *time.Time // exp; overrides TTL
	NoExpiry bool
}

// Token signs a JWT for user with the demo key.
func (d *demoIdP) Token(u demoUser, o tokenOptions) (string, error) {
	now := d.now()
	if o.TTL == 0 {
		o.TTL = demoTokenTTL
	}
	if o.Audience == "" {
		o.Audience = demoAudience
	}
	if o.Issuer == "" {
		o.Issuer = d.issuer
	}
	b := jwt.NewBuilder().
		Issuer(o.Issuer).
		Audience([]string{o.Audience}).
		Subject(u.Sub).
		IssuedAt(now).
		NotBefore(now)
	if len(u.Roles) > 0 {
		b = b.Claim("roles", u.Roles)
	}
	if u.Name != "" {
		b = b.Claim("name", u.Name)
	}
	if u.Department != "" {
		b = b.Claim("department", u.Department)
	}
	if u.Organisation != "" {
		// A client-credentials token names the OIN as client_id too.
		b = b.Claim("organisation", u.Organisation).Claim("client_id", u.Organisation)
	}
	if u.Scope != "" {
		b = b.Claim("scope", u.Scope)
	}
	switch {
	case o.NoExpiry:
	case o.NotAfter != nil:
		b = b.Expiration(*o.NotAfter)
	default:
		b = b.Expiration(now.Add(o.TTL))
	}
	tok, err := b.Build()
	if err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, d.key))
	if err != nil {
		return "", err
	}
	return string(signed), nil
}

// demoUser is a person the demo prints a token for, with a request that
// shows what their role may do.
type demoUser struct {
	Label      string
	Sub        string
	Name       string
	Department string
	Roles      []string
	// Organisation is the OIN of another government; empty for employees.
	Organisation string
	// Scope names the purposes an organisation's token is issued for.
	Scope string
	// Example request the demo prints for this user.
	BSN     string
	Purpose string
}

var demoUsers = []demoUser{
	{Label: "burgerzaken", Sub: "mjansen", Name: "Mila Jansen", Department: "burgerzaken", Roles: []string{"medewerker"}, BSN: "999993653", Purpose: "reisdocumenten"},
	{Label: "sociale-zaken", Sub: "rbakker", Name: "Ravi Bakker", Department: "sociale-zaken", Roles: []string{"medewerker"}, BSN: "999990020", Purpose: "bijstand"},
	{Label: "kcc", Sub: "sdevries", Name: "Sanne de Vries", Department: "kcc", Roles: []string{"medewerker"}, BSN: "999990184", Purpose: "klantcontact"},
	{Label: "auditor", Sub: "avisser", Name: "Ahmed Visser", Department: "concerncontrol", Roles: []string{"auditor"}, BSN: "999993653", Purpose: "reisdocumenten"},
	{Label: "privacy-officer", Sub: "psmit", Name: "Petra Smit", Department: "privacy", Roles: []string{"privacy-officer"}, BSN: "999993653", Purpose: "klantcontact"},
}

// demoOrganisation is another government: the UWV as the embedded
// policy bundle lists it, with a client-credentials token for its purpose.
var demoOrganisation = demoUser{
	Label: "uwv", Sub: "00000001000000000001", Name: "UWV (demo)", Organisation: "00000001000000000001",
	Scope: "uwv-werk-en-inkomen", BSN: "999993653", Purpose: "uwv-werk-en-inkomen",
}

func demoUserByLabel(label string) demoUser {
	if label == demoOrganisation.Label {
		return demoOrganisation
	}
	for _, u := range demoUsers {
		if u.Label == label {
			return u
		}
	}
	panic("no demo user " + label)
}
