package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/sqlite"
	"github.com/klantbeeld/klantbeeld/gateway"
)

// Config is the one configuration file. Every value can be overridden by
// an environment variable named after its path: sources.brp.url is
// KLANTBEELD_SOURCES_BRP_URL.
type Config struct {
	Listen string    `yaml:"listen"`
	TLS    TLSConfig `yaml:"tls"`
	// CORS names the browser front ends on other origins.
	CORS CORSConfig `yaml:"cors"`
	// RateLimits bound per purpose ("*": every purpose without its own)
	// how often one caller (an organisation by OIN, an employee by sub)
	// may ask for a resident view.
	RateLimits map[string]RateLimitConfig `yaml:"rate_limits"`
	// MaxViewsInFlight bounds the resident views composed at once; past
	// it a view is refused with 503 and Retry-After (0: the gateway's
	// default, gateway.DefaultMaxViewsInFlight).
	MaxViewsInFlight int            `yaml:"max_views_in_flight"`
	Log              LogConfig      `yaml:"log"`
	Auth             AuthConfig     `yaml:"auth"`
	Audit            AuditConfig    `yaml:"audit"`
	Policies         PoliciesConfig `yaml:"policies"`
	Sources          SourcesConfig  `yaml:"sources"`
	// ContactSessions are the contacts in progress that justify look-ups.
	ContactSessions ContactSessionsConfig `yaml:"contact_sessions"`
	// Callbacks: reminders and escalation of callbacks (River jobs).
	Callbacks CallbacksConfig `yaml:"callbacks"`
	Metrics   MetricsConfig   `yaml:"metrics"`
}

// MetricsConfig is where the Prometheus metrics are served. An empty
// Listen serves GET /metrics on the gateway's own listener without
// authentication, like /healthz (no label holds personal data); an address
// (e.g. 127.0.0.1:9090) serves them only there, on an operator listener
// that is kept off the API's, with Go's profiler under /debug/pprof/ when
// Pprof is set; "off" serves them nowhere.
type MetricsConfig struct {
	Listen string `yaml:"listen"`
	Pprof  bool   `yaml:"pprof"`
}

// ContactSessionsConfig: IdleTimeout is how long a contact session may go
// unused (no look-up made in it) before it times out.
type ContactSessionsConfig struct {
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// TLSConfig: serve listens on HTTPS when CertFile and KeyFile are set
// (TLS 1.2 and 1.3, the NCSC's recommended cipher suites). ClientCAFile
// (e.g. the PKIoverheid private services CA chain) asks clients for a
// certificate and verifies it; an organisation's token must then carry
// the OIN of its certificate (subject serialNumber), and with
// RequireClientCertificate an organisation without one is refused.
// Plain HTTP is only served on loopback, or with PlainHTTP (behind a
// proxy that terminates TLS).
type TLSConfig struct {
	CertFile                 string `yaml:"cert_file"`
	KeyFile                  string `yaml:"key_file"`
	ClientCAFile             string `yaml:"client_ca_file"`
	RequireClientCertificate bool   `yaml:"require_client_certificate"`
	PlainHTTP                bool   `yaml:"plain_http"`
}

// CORSConfig: AllowedOrigins (https://app.gemeente.example) may call
// every /v1 endpoint from a browser; the API document is open to all.
// In the environment: comma-separated.
type CORSConfig struct {
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// RateLimitConfig is a budget of Burst requests in a row, one more every
// Every.
type RateLimitConfig struct {
	Burst int      `yaml:"burst"`
	Every Duration `yaml:"every"`
}

// LogConfig: level debug|info|warn|error, format json|text.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// AuthConfig is the identity provider of employee and organisation tokens.
type AuthConfig struct {
	Issuer    string          `yaml:"issuer"`
	Audience  string          `yaml:"audience"`
	JWKSURL   string          `yaml:"jwks_url"`
	JWKSFile  string          `yaml:"jwks_file"`
	Residents ResidentsConfig `yaml:"residents"`
	// FSC is the FSC Manager whose access tokens the municipality's Inway
	// forwards in Fsc-Authorization; empty Issuer: those are checked as
	// the identity provider's.
	FSC FSCConfig `yaml:"fsc"`
}

// FSCConfig is an FSC Manager as a token issuer.
type FSCConfig struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	JWKSURL  string `yaml:"jwks_url"`
	JWKSFile string `yaml:"jwks_file"`
}

// ResidentsConfig is the identity provider of residents (DigiD through the
// municipality's OIDC broker), for subject access.
// An empty Issuer means residents cannot use the API themselves.
type ResidentsConfig struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	JWKSURL  string `yaml:"jwks_url"`
	JWKSFile string `yaml:"jwks_file"`
	BSNClaim string `yaml:"bsn_claim"`
}

// maxAuditConns bounds audit.max_conns: PostgreSQL's own default allows
// 100 connections in all.
const maxAuditConns = 64

// AuditConfig is where the access log lives and its keys.
type AuditConfig struct {
	// DSN is sqlite://path (relative) or sqlite:///path, or postgres://….
	DSN              string `yaml:"dsn"`
	PseudonymKeyFile string `yaml:"pseudonym_key_file"`
	// SigningKeyFile holds the note signer key of the checkpoints (made at
	// first start, mode 0600).
	SigningKeyFile string `yaml:"signing_key_file"`
	// CheckpointInterval between signed checkpoints (only when the log grew).
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// WitnessFile, when set, keeps a copy of the latest checkpoint outside
	// the database; the start-up check and audit verify compare with it.
	WitnessFile string `yaml:"witness_file"`
	// Schema (PostgreSQL) holds the log's tables; empty: the search path's first.
	Schema string `yaml:"schema"`
	// Role (PostgreSQL) the store takes after migrating, so the gateway can
	// only insert and select; empty: klantbeeld_app; "-": the login role.
	Role string `yaml:"role"`
	// MaxConns (PostgreSQL) is how many connections the store keeps open
	// for appends, look-ups and searches; 0: 4.
	MaxConns int `yaml:"max_conns"`
	// StartupCheck is "full" (every event recomputed at start) or "quick"
	// (triggers, counts and the latest checkpoint).
	StartupCheck string `yaml:"startup_check"`
}

// PoliciesConfig: Dir is the first version of a new audit log's policy
// (empty: the embedded bundle); later versions are activated through the
// API and kept in the audit database.
type PoliciesConfig struct {
	Dir string `yaml:"dir"`
	// PollInterval is how soon a version activated by another gateway on
	// the same database is run here.
	PollInterval Duration `yaml:"poll_interval"`
}

// SourcesConfig are the source systems; one without a URL is not configured.
type SourcesConfig struct {
	BRP              BRPConfig              `yaml:"brp"`
	Zaken            ZakenConfig            `yaml:"zaken"`
	Salesforce       SalesforceConfig       `yaml:"salesforce"`
	Klantinteracties KlantinteractiesConfig `yaml:"klantinteracties"`
}

// BRPConfig is the BRP API Personen v2.
type BRPConfig struct {
	URL        string   `yaml:"url"`
	APIKey     string   `yaml:"api_key"`
	APIKeyFile string   `yaml:"api_key_file"`
	Timeout    Duration `yaml:"timeout"`
}

// ZakenConfig is the ZGW Zaken and Catalogi APIs.
type ZakenConfig struct {
	URL         string   `yaml:"url"`
	CatalogiURL string   `yaml:"catalogi_url"`
	ClientID    string   `yaml:"client_id"`
	Secret      string   `yaml:"secret"`
	SecretFile  string   `yaml:"secret_file"`
	Timeout     Duration `yaml:"timeout"`
}

// SalesforceConfig is the Salesforce REST API with the OAuth JWT bearer flow.
type SalesforceConfig struct {
	URL            string   `yaml:"url"`
	LoginURL       string   `yaml:"login_url"`
	ConsumerKey    string   `yaml:"consumer_key"`
	Username       string   `yaml:"username"`
	PrivateKeyFile string   `yaml:"private_key_file"`
	Timeout        Duration `yaml:"timeout"`
}

// KlantinteractiesConfig is the Klantinteracties API.
type KlantinteractiesConfig struct {
	URL       string   `yaml:"url"`
	Token     string   `yaml:"token"`
	TokenFile string   `yaml:"token_file"`
	Timeout   Duration `yaml:"timeout"`
}

// Duration is a time.Duration written as "2s" in YAML and env.
type Duration struct {
	time.Duration
	// invalid keeps text that is not a duration, for Validate to report
	// with the key's name.
	invalid string
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.invalid = n.Value
		return nil
	}
	d.Duration = v
	return nil
}

// DefaultConfig is the configuration before the file and env are applied.
func DefaultConfig() Config {
	return Config{
		Listen: ":8080",
		Log:    LogConfig{Level: "info", Format: "json"},
		Auth:   AuthConfig{Audience: "klantbeeld", Residents: ResidentsConfig{BSNClaim: "sub"}},
		Audit: AuditConfig{
			DSN:              "sqlite://data/audit.db",
			PseudonymKeyFile: "data/pseudonym.key",
			SigningKeyFile:   "data/checkpoint.key",
			// A minute: what an outside witness can lose at most.
			CheckpointInterval: Duration{Duration: time.Minute},
			StartupCheck:       "full",
		},
		Policies:        PoliciesConfig{PollInterval: Duration{Duration: 5 * time.Second}},
		ContactSessions: ContactSessionsConfig{IdleTimeout: Duration{Duration: 30 * time.Minute}},
		Sources: SourcesConfig{
			Salesforce: SalesforceConfig{LoginURL: "https://login.salesforce.com"},
		},
	}
}

// LoadConfig reads path (if not empty) over the defaults, applies the
// environment and validates. Errors name the key.
func LoadConfig(path string, environ []string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		// An empty file is all defaults.
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// EnvPrefix starts every configuration environment variable.
const EnvPrefix = "KLANTBEELD_"

// applyEnv sets every field whose variable is in environ.
func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	known := map[string]bool{}
	err := walk(reflect.ValueOf(cfg).Elem(), "", func(key string, v reflect.Value) error {
		name := EnvName(key)
		known[name] = true
		s, ok := env[name]
		if !ok {
			return nil
		}
		switch v.Interface().(type) {
		case string:
			v.SetString(s)
		case Duration:
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%s (%s): %q is not a duration like 2s", key, name, s)
			}
			v.Set(reflect.ValueOf(Duration{Duration: d}))
		case bool:
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%s (%s): %q is not true or false", key, name, s)
			}
			v.SetBool(b)
		case int:
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%s (%s): %q is not a number", key, name, s)
			}
			v.SetInt(int64(n))
		case []string:
			var list []string
			for item := range strings.SplitSeq(s, ",") {
				if item = strings.TrimSpace(item); item != "" {
					list = append(list, item)
				}
			}
			v.Set(reflect.ValueOf(list))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for name := range env {
		// Variables for test harnesses and tools share the prefix.
		if !known[name] && !strings.HasPrefix(name, EnvPrefix+"TEST_") {
			return fmt.Errorf("config: environment variable %s matches no configuration key", name)
		}
	}
	return nil
}

// EnvName is the environment variable of a key path like "sources.brp.url".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// walk calls fn for every leaf of v with its dotted yaml key.
func walk(v reflect.Value, prefix string, fn func(key string, v reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			if err := walk(fv, key, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(key, fv); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the configuration before anything starts.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s (%s): %s", key, EnvName(key), fmt.Sprintf(format, args...)))
	}
	if c.Listen == "" {
		bad("listen", "is empty")
	}
	c.validateTLS(bad)
	c.validateRateLimits(bad)
	if c.MaxViewsInFlight < 0 {
		bad("max_views_in_flight", "%d is negative (0: the default, %d)", c.MaxViewsInFlight, gateway.DefaultMaxViewsInFlight)
	}
	c.validateCORS(bad)
	c.Callbacks.validate(bad)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", c.Log.Format)
	}
	if c.Auth.Issuer == "" {
		bad("auth.issuer", "is empty")
	}
	if c.Auth.Audience == "" {
		bad("auth.audience", "is empty")
	}
	switch {
	case c.Auth.JWKSURL == "" && c.Auth.JWKSFile == "":
		bad("auth.jwks_url", "set auth.jwks_url or auth.jwks_file")
	case c.Auth.JWKSURL != "" && c.Auth.JWKSFile != "":
		bad("auth.jwks_file", "set only one of auth.jwks_url and auth.jwks_file")
	case c.Auth.JWKSURL != "":
		checkURL(bad, "auth.jwks_url", c.Auth.JWKSURL)
	}
	if r := c.Auth.Residents; r.Issuer != "" {
		if r.Audience == "" {
			bad("auth.residents.audience", "is empty")
		}
		switch {
		case r.JWKSURL == "" && r.JWKSFile == "":
			bad("auth.residents.jwks_url", "set auth.residents.jwks_url or auth.residents.jwks_file")
		case r.JWKSURL != "" && r.JWKSFile != "":
			bad("auth.residents.jwks_file", "set only one of auth.residents.jwks_url and auth.residents.jwks_file")
		case r.JWKSURL != "":
			checkURL(bad, "auth.residents.jwks_url", r.JWKSURL)
		}
		// An employee token whose sub passes the 11-proef must never count
		// as a resident's own.
		if r.Issuer == c.Auth.Issuer && r.Audience == c.Auth.Audience {
			bad("auth.residents.issuer", "must differ from auth.issuer (or use another audience): residents and employees are told apart by their tokens' issuer")
		}
		if r.BSNClaim == "" {
			bad("auth.residents.bsn_claim", "is empty")
		}
	}
	if f := c.Auth.FSC; f != (FSCConfig{}) {
		if f.Issuer == "" {
			bad("auth.fsc.issuer", "is empty")
		}
		if f.Audience == "" {
			bad("auth.fsc.audience", "is empty")
		}
		switch {
		case f.JWKSURL == "" && f.JWKSFile == "":
			bad("auth.fsc.jwks_url", "set auth.fsc.jwks_url or auth.fsc.jwks_file")
		case f.JWKSURL != "" && f.JWKSFile != "":
			bad("auth.fsc.jwks_file", "set only one of auth.fsc.jwks_url and auth.fsc.jwks_file")
		case f.JWKSURL != "":
			checkURL(bad, "auth.fsc.jwks_url", f.JWKSURL)
		}
	}
	switch {
	case strings.HasPrefix(c.Audit.DSN, "sqlite://"):
		if _, err := sqlite.PathFromDSN(c.Audit.DSN); err != nil {
			bad("audit.dsn", "%v", err)
		}
	case postgres.IsDSN(c.Audit.DSN):
	default:
		// Not echoed: a mistyped DSN may still hold a password.
		bad("audit.dsn", "want sqlite://path/audit.db, sqlite:///absolute/path/audit.db or postgres://user@host/db")
	}
	switch n := c.Audit.MaxConns; {
	case n < 0 || n > maxAuditConns:
		bad("audit.max_conns", "%d is outside 0..%d (0: the default, 4)", n, maxAuditConns)
	case n > 0 && !postgres.IsDSN(c.Audit.DSN):
		bad("audit.max_conns", "is for an audit log on PostgreSQL (audit.dsn postgres://…)")
	}
	if c.Audit.PseudonymKeyFile == "" {
		bad("audit.pseudonym_key_file", "is empty")
	}
	if c.Audit.SigningKeyFile == "" {
		bad("audit.signing_key_file", "is empty")
	}
	switch ci := c.Audit.CheckpointInterval; {
	case ci.invalid != "":
		bad("audit.checkpoint_interval", "%q is not a duration like 1m", ci.invalid)
	case ci.Duration < time.Second || ci.Duration > 24*time.Hour:
		bad("audit.checkpoint_interval", "%s is outside 1s..24h", ci.Duration)
	}
	switch pi := c.Policies.PollInterval; {
	case pi.invalid != "":
		bad("policies.poll_interval", "%q is not a duration like 5s", pi.invalid)
	case pi.Duration < 100*time.Millisecond || pi.Duration > time.Hour:
		bad("policies.poll_interval", "%s is outside 100ms..1h", pi.Duration)
	}
	switch it := c.ContactSessions.IdleTimeout; {
	case it.invalid != "":
		bad("contact_sessions.idle_timeout", "%q is not a duration like 30m", it.invalid)
	case it.Duration < time.Minute || it.Duration > 24*time.Hour:
		bad("contact_sessions.idle_timeout", "%s is outside 1m..24h", it.Duration)
	}
	switch c.Audit.StartupCheck {
	case "full", "quick":
	default:
		bad("audit.startup_check", "%q is not full or quick", c.Audit.StartupCheck)
	}
	if c.Metrics.Pprof && (c.Metrics.Listen == "" || c.Metrics.Listen == "off") {
		bad("metrics.pprof", "needs metrics.listen: the profiler is only served on the operator listener")
	}
	s := c.Sources
	if s.BRP.URL != "" {
		checkURL(bad, "sources.brp.url", s.BRP.URL)
		oneOf(bad, "sources.brp.api_key", s.BRP.APIKey, s.BRP.APIKeyFile)
	}
	if s.Zaken.URL != "" {
		checkURL(bad, "sources.zaken.url", s.Zaken.URL)
		checkURL(bad, "sources.zaken.catalogi_url", s.Zaken.CatalogiURL)
		if s.Zaken.ClientID == "" {
			bad("sources.zaken.client_id", "is empty")
		}
		oneOf(bad, "sources.zaken.secret", s.Zaken.Secret, s.Zaken.SecretFile)
	}
	if s.Salesforce.URL != "" {
		checkURL(bad, "sources.salesforce.url", s.Salesforce.URL)
		checkURL(bad, "sources.salesforce.login_url", s.Salesforce.LoginURL)
		for key, v := range map[string]string{
			"sources.salesforce.consumer_key":     s.Salesforce.ConsumerKey,
			"sources.salesforce.username":         s.Salesforce.Username,
			"sources.salesforce.private_key_file": s.Salesforce.PrivateKeyFile,
		} {
			if v == "" {
				bad(key, "is empty")
			}
		}
	}
	if s.Klantinteracties.URL != "" {
		checkURL(bad, "sources.klantinteracties.url", s.Klantinteracties.URL)
		oneOf(bad, "sources.klantinteracties.token", s.Klantinteracties.Token, s.Klantinteracties.TokenFile)
	}
	for key, d := range map[string]Duration{
		"sources.brp.timeout": s.BRP.Timeout, "sources.zaken.timeout": s.Zaken.Timeout,
		"sources.salesforce.timeout": s.Salesforce.Timeout, "sources.klantinteracties.timeout": s.Klantinteracties.Timeout,
	} {
		switch {
		case d.invalid != "":
			bad(key, "%q is not a duration like 2s or 500ms", d.invalid)
		case d.Duration < 0 || d.Duration > time.Minute:
			bad(key, "%s is outside 0..1m", d.Duration)
		}
	}
	return errors.Join(errs...)
}

func checkURL(bad func(string, string, ...any), key, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(key, "%q is not an absolute http(s) URL", s)
	}
}

func oneOf(bad func(string, string, ...any), key, value, file string) {
	if value == "" && file == "" {
		bad(key, "set %s or %s_file", key, key)
	}
	if value != "" && file != "" {
		bad(key, "set only one of %s and %s_file", key, key)
	}
}

// secretValue is value, or the trimmed content of file.
func secretValue(key, value, file string) (string, error) {
	if value != "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}
