package auth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Config is one identity provider: whose tokens are accepted, for which
// audience, with which keys. The config file's auth block (issuer,
// audience, jwks_url, jwks_file) fills the first four fields; the zero
// value of every other field says what it means.
type Config struct {
	// Issuer is the iss every token must carry exactly.
	Issuer string
	// Audience must be the aud of the token or one of its aud entries.
	Audience string
	// JWKSURL and JWKSFile say where the provider's public keys are;
	// exactly one is set. The URL must be https (http only on loopback).
	JWKSURL  string
	JWKSFile string

	// Skew tolerated on exp, nbf and iat; 0: 30 s.
	Skew time.Duration
	// MaxLifetime bounds exp − iat (exp − nbf when there is no iat) and
	// how far exp may lie ahead of now (plus Skew); 0: 12 h.
	MaxLifetime time.Duration
	// RefreshInterval is the least time between two key refetches, so
	// tokens with made-up kids cannot make us hammer the provider; 0: 30 s.
	RefreshInterval time.Duration
	// KeyMaxAge: keys loaded longer ago than this are refetched before
	// use, so a key the provider withdrew stops working; 0: 15 min. The
	// refetch runs in the request that finds the keys stale (no
	// goroutine of ours); if it fails the old keys serve on, and it is
	// tried again after RefreshInterval.
	KeyMaxAge time.Duration
	// RequireOrganisationCertificate: an organisation's token is refused
	// (ReasonCertificate) on a connection without a client certificate.
	// Whether or not it is set, a client certificate that is there must
	// carry the token's OIN. Only the Verifier reads it.
	RequireOrganisationCertificate bool
	// FSC, when set, is the FSC Manager whose access tokens the Inway
	// forwards in Fsc-Authorization: those are checked against its
	// issuer, audience and keys (its own FSC field is not read). nil:
	// they are checked like any other token. Only the Verifier reads it.
	FSC *Config
	// HTTPClient fetches JWKSURL; nil: a client with a 5 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultSkew            = 30 * time.Second
	DefaultMaxLifetime     = 12 * time.Hour
	DefaultRefreshInterval = 30 * time.Second
	DefaultKeyMaxAge       = 15 * time.Minute
)

// withDefaults checks c, naming keys under prefix ("auth",
// "auth.residents"), and fills in the defaults.
func (c Config) withDefaults(prefix string) (Config, error) {
	switch {
	case c.Issuer == "":
		return c, fmt.Errorf("%s.issuer is empty", prefix)
	case c.Audience == "":
		return c, fmt.Errorf("%s.audience is empty", prefix)
	case (c.JWKSURL == "") == (c.JWKSFile == ""):
		return c, fmt.Errorf("%s: set exactly one of %[1]s.jwks_url and %[1]s.jwks_file", prefix)
	case c.Skew < 0, c.MaxLifetime < 0, c.RefreshInterval < 0, c.KeyMaxAge < 0:
		return c, fmt.Errorf("%s: durations may not be negative", prefix)
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			return c, fmt.Errorf("%s.jwks_url: %w", prefix, err)
		}
	}
	if c.Skew == 0 {
		c.Skew = DefaultSkew
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.KeyMaxAge == 0 {
		c.KeyMaxAge = DefaultKeyMaxAge
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// checkJWKSURL wants https: keys fetched in the clear could be swapped by
// anyone on the path. Plain http is left for a provider on loopback
// (tests, the demo).
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return errors.New("must be an https URL (http only on loopback)")
}
