package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const validYAML = `
listen: ":9090"
auth:
  issuer: "https://idp.gemeente.example"
  audience: "klantbeeld"
  jwks_file: "/etc/klantbeeld/jwks.json"
audit:
  dsn: "sqlite:///var/lib/klantbeeld/audit.db"
sources:
  brp: { url: "https://brp.example/haalcentraal/api/brp", api_key_file: "/run/secrets/brp", timeout: "1500ms" }
  zaken: { url: "https://oz.example/zaken/api/v1", catalogi_url: "https://oz.example/catalogi/api/v1", client_id: "klantbeeld", secret: "s" }
`

func writeConfig(t *testing.T, content string) string {
	path := filepath.Join(t.TempDir(), "klantbeeld.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestLoadConfigFileAndEnvironment(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, validYAML), []string{
		"KLANTBEELD_SOURCES_BRP_URL=https://brp.other.example/haalcentraal/api/brp",
		"KLANTBEELD_SOURCES_ZAKEN_TIMEOUT=3s",
		"KLANTBEELD_TEST_POSTGRES_URL=postgres://ignored", // test harness variables share the prefix
		"PATH=/usr/bin",
	})
	require.NoError(t, err)
	assert.Equal(t, ":9090", cfg.Listen)
	assert.Equal(t, "https://brp.other.example/haalcentraal/api/brp", cfg.Sources.BRP.URL, "env overrides the file")
	assert.Equal(t, 1500*time.Millisecond, cfg.Sources.BRP.Timeout.Duration)
	assert.Equal(t, 3*time.Second, cfg.Sources.Zaken.Timeout.Duration)
	assert.Equal(t, "data/pseudonym.key", cfg.Audit.PseudonymKeyFile, "defaults stay where nothing says otherwise")
	assert.Empty(t, cfg.Sources.Salesforce.URL, "a source without URL is not configured")

	pg, err := LoadConfig(writeConfig(t, validYAML), []string{"KLANTBEELD_AUDIT_DSN=postgres://klantbeeld@db.example/klantbeeld", "KLANTBEELD_AUDIT_MAX_CONNS=8"})
	require.NoError(t, err, "a PostgreSQL audit store")
	assert.Equal(t, "postgres://klantbeeld@db.example/klantbeeld", pg.Audit.DSN)
	assert.Equal(t, time.Minute, pg.Audit.CheckpointInterval.Duration)
	assert.Equal(t, 8, pg.Audit.MaxConns)
}

func TestEnvNames(t *testing.T) {
	assert.Equal(t, "KLANTBEELD_SOURCES_BRP_URL", EnvName("sources.brp.url"))
	assert.Equal(t, "KLANTBEELD_AUDIT_DSN", EnvName("audit.dsn"))
	assert.Equal(t, "KLANTBEELD_AUTH_JWKS_FILE", EnvName("auth.jwks_file"))
	// Every key of the contract in the design has its variable.
	var keys []string
	cfg := DefaultConfig()
	require.NoError(t, walk(reflect.ValueOf(&cfg).Elem(), "", func(key string, _ reflect.Value) error {
		keys = append(keys, key)
		return nil
	}))
	for _, want := range []string{"listen", "auth.issuer", "auth.audience", "auth.jwks_url", "auth.jwks_file",
		"auth.residents.issuer", "auth.residents.audience", "auth.residents.jwks_url", "auth.residents.jwks_file", "auth.residents.bsn_claim",
		"audit.dsn", "audit.pseudonym_key_file", "audit.signing_key_file", "audit.checkpoint_interval", "audit.witness_file", "policies.dir",
		"sources.brp.url", "sources.brp.api_key", "sources.brp.timeout",
		"sources.zaken.url", "sources.zaken.catalogi_url", "sources.zaken.client_id", "sources.zaken.secret",
		"sources.salesforce.url", "sources.salesforce.login_url", "sources.salesforce.consumer_key",
		"sources.salesforce.username", "sources.salesforce.private_key_file",
		"sources.klantinteracties.url", "sources.klantinteracties.token", "contact_sessions.idle_timeout"} {
		assert.Contains(t, keys, want)
	}
}

func TestContactSessionsIdleTimeout(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, validYAML), nil)
	require.NoError(t, err)
	assert.Equal(t, 30*time.Minute, cfg.ContactSessions.IdleTimeout.Duration, "the default")
	cfg, err = LoadConfig(writeConfig(t, validYAML), []string{"KLANTBEELD_CONTACT_SESSIONS_IDLE_TIMEOUT=45m"})
	require.NoError(t, err)
	assert.Equal(t, 45*time.Minute, cfg.ContactSessions.IdleTimeout.Duration)
	cfg, err = LoadConfig(writeConfig(t, validYAML+"\ncontact_sessions:\n  idle_timeout: 10m\n"), nil)
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, cfg.ContactSessions.IdleTimeout.Duration)
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     []string
		wantKey string
	}{
		{"no issuer", strings.Replace(validYAML, `issuer: "https://idp.gemeente.example"`, `issuer: ""`, 1), nil, "auth.issuer"},
		{"two JWKS", validYAML, []string{"KLANTBEELD_AUTH_JWKS_URL=https://idp.example/jwks"}, "auth.jwks_file"},
		{"bad source URL", validYAML, []string{"KLANTBEELD_SOURCES_BRP_URL=brp.example"}, "sources.brp.url"},
		{"zaken without secret", strings.Replace(validYAML, `secret: "s"`, `secret: ""`, 1), nil, "sources.zaken.secret"},
		{"unknown dsn", validYAML, []string{"KLANTBEELD_AUDIT_DSN=mysql://x"}, "audit.dsn"},
		{"postgres DSN that is no URL", validYAML, []string{"KLANTBEELD_AUDIT_DSN=postgres//u:hunter2@db/klantbeeld"}, "audit.dsn"},
		{"residents from the employees' identity provider", validYAML, []string{"KLANTBEELD_AUTH_RESIDENTS_ISSUER=https://idp.gemeente.example", "KLANTBEELD_AUTH_RESIDENTS_AUDIENCE=klantbeeld", "KLANTBEELD_AUTH_RESIDENTS_JWKS_FILE=/etc/kb/digid.json"}, "auth.residents.issuer"},
		{"residents without keys", validYAML, []string{"KLANTBEELD_AUTH_RESIDENTS_ISSUER=https://digid.example", "KLANTBEELD_AUTH_RESIDENTS_AUDIENCE=klantbeeld"}, "auth.residents.jwks_url"},
		{"checkpoints too often", validYAML, []string{"KLANTBEELD_AUDIT_CHECKPOINT_INTERVAL=1ms"}, "audit.checkpoint_interval"},
		{"contact sessions that time out at once", validYAML, []string{"KLANTBEELD_CONTACT_SESSIONS_IDLE_TIMEOUT=1s"}, "contact_sessions.idle_timeout"},
		{"contact sessions with no duration", validYAML, []string{"KLANTBEELD_CONTACT_SESSIONS_IDLE_TIMEOUT=half an hour"}, "contact_sessions.idle_timeout"},
		{"a callback term that is no duration", validYAML + "\ncallbacks:\n  term: twee dagen\n", nil, "callbacks.term"},
		{"a negative scan interval", validYAML, []string{"KLANTBEELD_CALLBACKS_SCAN_INTERVAL=-1m"}, "callbacks.scan_interval"},
		{"a backup that names no kind of assignee", validYAML + "\ncallbacks:\n  backup: { burgerzaken: \"team:x\" }\n", nil, "callbacks.backup.burgerzaken"},
		{"a directory entry that is no assignee", validYAML + "\ncallbacks:\n  directory: { \"burgerzaken\": { email: b@example } }\n", nil, "callbacks.directory"},
		{"SMTP without a sender", validYAML, []string{"KLANTBEELD_CALLBACKS_SMTP_ADDR=smtp.example:587"}, "callbacks.smtp.from"},
		{"unknown start-up check", validYAML, []string{"KLANTBEELD_AUDIT_STARTUP_CHECK=none"}, "audit.startup_check"},
		{"bad duration in env", validYAML, []string{"KLANTBEELD_SOURCES_BRP_TIMEOUT=soon"}, "sources.brp.timeout"},
		{"bad duration in file", strings.Replace(validYAML, `"1500ms"`, `"soon"`, 1), nil, "timeout"},
		{"unknown key in file", validYAML + "\nlistne: x\n", nil, "listne"},
		{"unknown env variable", validYAML, []string{"KLANTBEELD_SOURCES_BRP_ULR=x"}, "KLANTBEELD_SOURCES_BRP_ULR"},
		{"bad log level", validYAML, []string{"KLANTBEELD_LOG_LEVEL=loud"}, "log.level"},
		{"negative views in flight", validYAML, []string{"KLANTBEELD_MAX_VIEWS_IN_FLIGHT=-5"}, "max_views_in_flight"},
		{"too many audit connections", validYAML, []string{"KLANTBEELD_AUDIT_DSN=postgres://kb@db/kb", "KLANTBEELD_AUDIT_MAX_CONNS=500"}, "audit.max_conns"},
		{"audit connections of an SQLite log", validYAML, []string{"KLANTBEELD_AUDIT_MAX_CONNS=8"}, "audit.max_conns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.yaml), tt.env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantKey)
			assert.NotContains(t, err.Error(), "hunter2", "secrets are not echoed")
		})
	}
}

func TestEmptyConfigFileNeedsAuth(t *testing.T) {
	_, err := LoadConfig(writeConfig(t, ""), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "auth.issuer")
}
