package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/klantbeeld/klantbeeld/gateway"
)

// tlsCipherSuites are the TLS 1.2 suites the NCSC's ICT-beveiligings-
// richtlijnen voor TLS rate "good": ECDHE key exchange with AES-GCM or
// ChaCha20-Poly1305. TLS 1.3's suites are all good and not configurable.
var tlsCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
}

// validateTLS checks the tls block.
func (c Config) validateTLS(bad func(string, string, ...any)) {
	t := c.TLS
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		bad("tls.key_file", "set both tls.cert_file and tls.key_file, or neither")
	case t.CertFile != "" && t.PlainHTTP:
		bad("tls.plain_http", "cannot be true when tls.cert_file is set")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		bad("tls.client_ca_file", "client certificates need TLS: set tls.cert_file and tls.key_file")
	}
	if t.RequireClientCertificate && t.ClientCAFile == "" {
		bad("tls.require_client_certificate", "set tls.client_ca_file, the CA that issues the client certificates")
	}
}

// checkListen refuses to serve plain HTTP other than on loopback, unless
// tls.plain_http says so. Start checks it, not Validate: the offline
// commands read the same file and listen nowhere.
func (c Config) checkListen() error {
	if c.TLS.CertFile != "" || c.TLS.PlainHTTP || loopbackListen(c.Listen) {
		return nil
	}
	return fmt.Errorf("listen (%s): %q is not a loopback address: set tls.cert_file and tls.key_file, or tls.plain_http: true behind a proxy that terminates TLS", EnvName("listen"), c.Listen)
}

// loopbackListen reports whether a listen address is on loopback only.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c Config) validateRateLimits(bad func(string, string, ...any)) {
	for purpose, rl := range c.RateLimits {
		key := "rate_limits." + purpose
		switch {
		case purpose != "*" && strings.Trim(purpose, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
			bad(key, "%q is not a purpose or *", purpose)
		case rl.Burst < 1:
			bad(key+".burst", "must be at least 1")
		case rl.Every.invalid != "":
			bad(key+".every", "%q is not a duration like 1s", rl.Every.invalid)
		case rl.Every.Duration < time.Millisecond || rl.Every.Duration > 24*time.Hour:
			bad(key+".every", "%s is outside 1ms..24h", rl.Every.Duration)
		}
	}
}

// validateCORS checks cors.allowed_origins.
func (c Config) validateCORS(bad func(string, string, ...any)) {
	for _, o := range c.CORS.AllowedOrigins {
		u, err := url.Parse(o)
		if o == "*" || err != nil || u.Scheme+"://"+u.Host != o || strings.ToLower(o) != o {
			bad("cors.allowed_origins", "%q is not an origin like https://app.gemeente.example (and * is only for the API document, which has it already)", o)
		}
	}
}

// callerLimits is the rate_limits block as the gateway takes it.
func (c Config) callerLimits() map[string]gateway.RateLimit {
	if len(c.RateLimits) == 0 {
		return nil
	}
	out := make(map[string]gateway.RateLimit, len(c.RateLimits))
	for purpose, rl := range c.RateLimits {
		out[purpose] = gateway.RateLimit{Burst: rl.Burst, Every: rl.Every.Duration}
	}
	return out
}

// serverTLS is the HTTPS configuration of the tls block, or nil when
// plain HTTP is served.
func serverTLS(t TLSConfig) (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tlsCipherSuites,
		Certificates: []tls.Certificate{cert},
	}
	if t.ClientCAFile != "" {
		pemBytes, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, errors.New("tls.client_ca_file: no PEM certificate in it")
		}
		// Employees' front ends come without one: asked for, verified
		// when given; the gateway refuses an organisation's token whose
		// OIN is not the certificate's.
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}
