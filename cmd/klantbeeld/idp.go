package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// demoIssuer and demoAudience are the demo identity provider's iss and aud.
const (
	demoIssuer   = "https://idp.demo.klantbeeld.example"
	demoAudience = "klantbeeld"
)

// demoIdP is the demo's identity provider: a key pair made at start, its
// public half as a JWKS, and tokens for the demo users.
type demoIdP struct {
	key    jwk.Key
	issuer string
	now    func() time.Time
}

func newDemoIdP(issuer string, now func() time.Time) (*demoIdP, error) {
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, err
	}
	kid := fmt.Sprintf("demo-%d", now().Unix())
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
		o.TTL = 12 * time.Hour
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
		NotBefore(now).
		Claim("name", u.Name).
		Claim("department", u.Department).
		Claim("roles", u.Roles)
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

func demoUserByLabel(label string) demoUser {
	for _, u := range demoUsers {
		if u.Label == label {
			return u
		}
	}
	panic("no demo user " + label)
}
