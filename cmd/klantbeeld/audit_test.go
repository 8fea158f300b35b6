package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"

	"github.com/klantbeeld/klantbeeld/fixtures/sources"
	"github.com/klantbeeld/klantbeeld/openapi"
)

// auditFixture is a demo system that served a few views and stopped, and a
// config file for the audit commands pointing at its log and keys.
type auditFixture struct {
	dir, config, db string
	cfg             Config
}

func newAuditFixture(t *testing.T, views int) auditFixture {
	t.Helper()
	dir := t.TempDir()
	setup, err := newDemoSetup(dir, "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	cfg := setup.Config
	cfg.Audit.WitnessFile = filepath.Join(dir, "witness", "checkpoint")
	app, err := NewApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, app.Start())
	spec, err := openapi.Load()
	require.NoError(t, err)
	e := &env{t: t, setup: setup, app: app, spec: spec}
	for i := range views {
		purpose, label := "reisdocumenten", "burgerzaken"
		if i%2 == 1 {
			purpose, label = "klantcontact", "kcc"
		}
		e.view(e.token(label), "999993653", purpose)
	}
	require.NoError(t, app.Close(context.Background()), "closing signs a last checkpoint")

	f := auditFixture{dir: dir, db: filepath.Join(dir, "audit.db"), cfg: cfg}
	f.config = filepath.Join(dir, "klantbeeld.yaml")
	yaml := fmt.Sprintf("auth: { issuer: %q, audience: %q, jwks_file: %q }\naudit: { dsn: %q, pseudonym_key_file: %q, signing_key_file: %q, witness_file: %q }\n",
		cfg.Auth.Issuer, cfg.Auth.Audience, cfg.Auth.JWKSFile, cfg.Audit.DSN, cfg.Audit.PseudonymKeyFile, cfg.Audit.SigningKeyFile, cfg.Audit.WitnessFile)
	require.NoError(t, os.WriteFile(f.config, []byte(yaml), 0o600))
	return f
}

func (f auditFixture) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), append([]string{"audit"}, args...), &out, &errOut, nil)
	return code, out.String(), errOut.String()
}

func TestAuditCommandsOnAnUntouchedLog(t *testing.T) {
	f := newAuditFixture(t, 4)

	code, out, stderr := f.run(t, "verify", "-config", f.config)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "OK: 4 events")
	assert.Contains(t, stderr, "verifying: 4 of 4 events", "progress goes to stderr")

	code, vkey, _ := f.run(t, "verifier-key", "-config", f.config)
	require.Equal(t, 0, code)
	verifier, err := note.NewVerifier(strings.TrimSpace(vkey))
	require.NoError(t, err, "a note verifier key")

	code, signed, stderr := f.run(t, "checkpoint", "-config", f.config)
	require.Equal(t, 0, code, stderr)
	n, err := note.Open([]byte(signed), note.VerifierList(verifier))
	require.NoError(t, err, "the checkpoint verifies with the printed key alone")
	lines := strings.Split(n.Text, "\n")
	require.GreaterOrEqual(t, len(lines), 3)
	assert.Equal(t, "4", lines[1], "the checkpoint commits to the four events")

	code, ndjson, _ := f.run(t, "export", "-config", f.config)
	require.Equal(t, 0, code)
	assert.Equal(t, 4, strings.Count(ndjson, "\n"))
	assert.Contains(t, ndjson, `"actor":{"sub":"mjansen"`, "the full events name the employee")

	code, ldv, _ := f.run(t, "export", "-config", f.config, "-format", "ldv")
	require.Equal(t, 0, code)
	assert.Equal(t, 4, strings.Count(ldv, "\n"))
	assert.Contains(t, ldv, `"dpl.core.processing_activity_id"`)
	assert.NotContains(t, ldv, "mjansen", "Logboek Dataverwerkingen records hold no employee identity")
	assert.NotContains(t, ldv, "999993653")

	code, _, stderr = f.run(t, "export", "-config", f.config, "-format", "csv")
	assert.Equal(t, 2, code, stderr)
	code, _, _ = f.run(t, "export", "-config", f.config, "-from", "yesterday")
	assert.Equal(t, 2, code)
	code, _, _ = f.run(t, "verify")
	assert.Equal(t, 2, code, "-config is required")
}

// TestTamperedLogIsNamedAndRefused: a database administrator drops the
// triggers, changes one event and puts the triggers back. `audit verify`
// names the event, and the gateway refuses to start on that log.
func TestTamperedLogIsNamedAndRefused(t *testing.T) {
	f := newAuditFixture(t, 3)
	db, err := sql.Open("sqlite", "file:"+f.db)
	require.NoError(t, err)
	var trig string
	require.NoError(t, db.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%no_update%' AND tbl_name = 'audit_events'`).Scan(&trig))
	var name string
	require.NoError(t, db.QueryRow(`SELECT name FROM sqlite_master WHERE sql = ?`, trig).Scan(&name))
	_, err = db.Exec(`DROP TRIGGER ` + name)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE audit_events SET record = replace(record, '"purpose":"klantcontact"', '"purpose":"reisdocumenten"') WHERE seq = 2`)
	require.NoError(t, err)
	_, err = db.Exec(trig)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	code, out, stderr := f.run(t, "verify", "-config", f.config)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, out, "FAIL at sequence number 2")

	_, err = NewApp(context.Background(), f.cfg, slog.New(slog.DiscardHandler))
	require.Error(t, err, "the gateway does not start on a tampered log")
	assert.Contains(t, err.Error(), "integrity check")
}

// TestDroppedTriggerIsNotRecreated: a log whose trigger was dropped is
// refused at start, naming the trigger, and the trigger stays missing.
func TestDroppedTriggerIsNotRecreated(t *testing.T) {
	f := newAuditFixture(t, 1)
	db, err := sql.Open("sqlite", "file:"+f.db)
	require.NoError(t, err)
	var name string
	require.NoError(t, db.QueryRow(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events' ORDER BY name LIMIT 1`).Scan(&name))
	_, err = db.Exec(`DROP TRIGGER ` + name)
	require.NoError(t, err)

	_, err = NewApp(context.Background(), f.cfg, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), name)
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = ?`, name).Scan(&n))
	assert.Zero(t, n, "the gateway never makes a dropped trigger again")
	require.NoError(t, db.Close())

	code, out, _ := f.run(t, "verify", "-config", f.config)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, name)
}

// TestServeWarnsWhenKeysSitBesideTheDatabase: whoever copies the database
// folder must not get the keys with it.
func TestServeWarnsWhenKeysSitBesideTheDatabase(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	warnKeysBesideDatabase(AuditConfig{DSN: "sqlite:///var/lib/kb/audit.db", PseudonymKeyFile: "/var/lib/kb/pseudonym.key", SigningKeyFile: "/etc/kb/checkpoint.key"}, logger)
	assert.Contains(t, buf.String(), "audit.pseudonym_key_file")
	assert.NotContains(t, buf.String(), "audit.signing_key_file")
	buf.Reset()
	warnKeysBesideDatabase(AuditConfig{DSN: "sqlite:///var/lib/kb/audit.db", PseudonymKeyFile: "/etc/kb/p.key", SigningKeyFile: "/etc/kb/c.key"}, logger)
	assert.Empty(t, buf.String())
}

// TestAViewCanBeProvedAtOnce: the auditor gets the event of a view that
// was just answered with an inclusion proof against a checkpoint signed on
// demand, and checks both with tlog and note alone.
func TestAViewCanBeProvedAtOnce(t *testing.T) {
	e := newEnv(t)
	v := e.view(e.token("burgerzaken"), "999993653", "reisdocumenten")
	require.Equal(t, 200, v.status, "%s", v.body)
	seq := int64(v.json["auditSeq"].(float64))

	r := e.request(http.MethodGet, fmt.Sprintf("/v1/audit/events/%d", seq), e.token("auditor"), "", "")
	require.Equal(t, 200, r.status, "%s", r.body)
	var ans struct {
		Record     []byte      `json:"record"`
		Proof      []tlog.Hash `json:"proof"`
		Checkpoint string      `json:"checkpoint"`
	}
	require.NoError(t, json.Unmarshal(r.body, &ans))
	require.NotEmpty(t, ans.Checkpoint, "a checkpoint is signed on demand; the interval has not passed")

	vkey, err := audit.VerifierKey(e.setup.Config.Audit.SigningKeyFile)
	require.NoError(t, err)
	verifier, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	n, err := note.Open([]byte(ans.Checkpoint), note.VerifierList(verifier))
	require.NoError(t, err)
	lines := strings.Split(n.Text, "\n")
	size, err := strconv.ParseInt(lines[1], 10, 64)
	require.NoError(t, err)
	root, err := tlog.ParseHash(lines[2])
	require.NoError(t, err)
	require.GreaterOrEqual(t, size, seq)
	assert.NoError(t, tlog.CheckRecord(ans.Proof, size, root, seq-1, tlog.RecordHash(ans.Record)))
	assert.Contains(t, string(ans.Record), `"purpose":"reisdocumenten"`)
}
