package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/sqlite"
)

func openAt(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	audittest.Exercise(t, func(t *testing.T) audit.Store { return openAt(t, filepath.Join(t.TempDir(), "audit.db")) })
}

func TestPolicyConformance(t *testing.T) {
	audittest.ExercisePolicies(t, func(t *testing.T) (audit.PolicyStore, func() audit.PolicyStore) {
		path := filepath.Join(t.TempDir(), "audit.db")
		s := openAt(t, path)
		return s, func() audit.PolicyStore {
			require.NoError(t, s.Close())
			return openAt(t, path)
		}
	})
}

func TestSharedFile(t *testing.T) {
	audittest.ExerciseShared(t, func(t *testing.T, n int) []audit.Store {
		path := filepath.Join(t.TempDir(), "audit.db")
		out := make([]audit.Store, n)
		for i := range out {
			out[i] = openAt(t, path)
		}
		return out
	})
}

// raw opens a second handle on the file, as an operator with sqlite3 would have.
func raw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqlite.OpenRaw(path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// withEvents makes a log of n events with a checkpoint, closed, and returns
// its path and the checkpoint verifier.
func withEvents(t *testing.T, n int) (string, note.Verifier) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = audittest.Sample(i)
	}
	_, err = s.Append(context.Background(), evs)
	require.NoError(t, err)
	signer, verifier := audittest.NewSigner(t)
	require.NoError(t, audit.NewCheckpointer(s, signer, audit.CheckpointerOptions{Interval: -1}).Close())
	require.NoError(t, s.Close())
	return path, verifier
}

func TestTriggersRefuseEveryChange(t *testing.T) {
	path, verifier := withEvents(t, 3)
	db := raw(t, path)
	record := `{"seq":2,"time":"2026-11-23T10:00:00.000000000Z","decision":"deny"}`
	tests := []struct {
		name, stmt string
		args       []any
	}{
		{"update an event", `UPDATE audit_events SET record = '{}' WHERE seq = 1`, nil},
		{"delete an event", `DELETE FROM audit_events WHERE seq = 1`, nil},
		{"delete every event", `DELETE FROM audit_events`, nil},
		{"replace an event with INSERT OR REPLACE", `INSERT OR REPLACE INTO audit_events (seq, record) VALUES (2, ?)`, []any{record}},
		{"replace an event with REPLACE", `REPLACE INTO audit_events (seq, record) VALUES (2, ?)`, []any{record}},
		{"insert past a gap", `INSERT INTO audit_events (seq, record) VALUES (5, ?)`, []any{record}},
		{"insert without a number", `INSERT INTO audit_events (record) VALUES (?)`, []any{record}},
		{"update a tree hash", `UPDATE audit_tree_hashes SET hash = zeroblob(32) WHERE idx = 0`, nil},
		{"delete a tree hash", `DELETE FROM audit_tree_hashes WHERE idx = 0`, nil},
		{"replace a tree hash", `INSERT OR REPLACE INTO audit_tree_hashes (idx, hash) VALUES (0, zeroblob(32))`, nil},
		{"update a checkpoint", `UPDATE audit_checkpoints SET note = 'x' WHERE id = 1`, nil},
		{"delete a checkpoint", `DELETE FROM audit_checkpoints`, nil},
		{"replace a checkpoint", `INSERT OR REPLACE INTO audit_checkpoints (id, size, note) VALUES (1, 1, 'x')`, nil},
		{"checkpoint beyond the log", `INSERT INTO audit_checkpoints (id, size, note) VALUES (2, 4, 'x')`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Exec(tt.stmt, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "append-only")
		})
	}
	s := openAt(t, path)
	rep, err := audit.Verify(context.Background(), s, verifier, audit.VerifyOptions{})
	require.NoError(t, err, "nothing changed")
	assert.Equal(t, int64(3), rep.Tree.N)
}

func TestOpenRefusesALogWithADroppedTrigger(t *testing.T) {
	path, _ := withEvents(t, 2)
	_, err := raw(t, path).Exec(`DROP TRIGGER audit_tree_hashes_no_update`)
	require.NoError(t, err)
	_, err = sqlite.Open(context.Background(), path)
	require.ErrorIs(t, err, audit.ErrTampered)
	assert.Contains(t, err.Error(), "audit_tree_hashes_no_update is missing")

	var n int
	require.NoError(t, raw(t, path).QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'audit_tree_hashes_no_update'`).Scan(&n))
	assert.Zero(t, n, "Open does not make the trigger again")
}

func TestOpenRefusesALogWithAnAlteredTrigger(t *testing.T) {
	path, _ := withEvents(t, 2)
	db := raw(t, path)
	_, err := db.Exec(`DROP TRIGGER audit_events_no_update`)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events WHEN 0 BEGIN SELECT 1; END`)
	require.NoError(t, err)
	_, err = sqlite.Open(context.Background(), path)
	require.ErrorIs(t, err, audit.ErrTampered)
	assert.Contains(t, err.Error(), "audit_events_no_update was altered")
}

func TestOpenRefusesALogOfTheOldFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	_, err := raw(t, path).Exec(`CREATE TABLE audit_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, record BLOB NOT NULL)`)
	require.NoError(t, err)
	_, err = sqlite.Open(context.Background(), path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "predates the tamper-evident format")
}

func TestPingIsUnavailableWhileAnotherProcessHoldsTheWriteLock(t *testing.T) {
	path, _ := withEvents(t, 1)
	s := openAt(t, path)
	require.NoError(t, s.Ping(context.Background()))

	// A second connection, as another process would, takes the write lock.
	conn, err := raw(t, path).Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`)
	require.NoError(t, err)

	start := time.Now()
	err = s.Ping(context.Background())
	require.ErrorIs(t, err, audit.ErrUnavailable)
	assert.Less(t, time.Since(start), 3*time.Second, "readiness answers soon, not after the write lock's 5 s")
	_, err = s.Records(context.Background(), 0, 1)
	require.NoError(t, err, "reading still works: only writing is blocked")

	_, err = conn.ExecContext(context.Background(), `ROLLBACK`)
	require.NoError(t, err)
	require.NoError(t, s.Ping(context.Background()), "ready again once the lock is released")
}

func TestReopenKeepsEventsNumberingAndTree(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "audit.db")
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	_, err = s.Append(ctx, []audit.Event{audittest.Sample(1), audittest.Sample(2)})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = openAt(t, path)
	seqs, err := s.Append(ctx, []audit.Event{audittest.Sample(3)})
	require.NoError(t, err)
	assert.Equal(t, []int64{3}, seqs)
	_, verifier := audittest.NewSigner(t)
	rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(3), rep.Tree.N)
}

func TestDatabaseFilesArePrivate(t *testing.T) {
	path, _ := withEvents(t, 1)
	openAt(t, path)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestPathFromDSN(t *testing.T) {
	tests := []struct {
		dsn, want string
		ok        bool
	}{
		{"sqlite://data/audit.db", "data/audit.db", true},
		{"sqlite:///var/lib/klantbeeld/audit.db", "/var/lib/klantbeeld/audit.db", true},
		{"sqlite://", "", false},
		{"postgres://x/y", "", false},
		{"sqlite://data/audit.db?mode=ro", "", false},
	}
	for _, tt := range tests {
		got, err := sqlite.PathFromDSN(tt.dsn)
		if !tt.ok {
			assert.Error(t, err, tt.dsn)
			continue
		}
		require.NoError(t, err, tt.dsn)
		assert.Equal(t, filepath.FromSlash(tt.want), got)
	}
}

func TestOpenExistingExaminesATamperedLog(t *testing.T) {
	ctx := context.Background()
	path, verifier := withEvents(t, 4)
	tamperer{path}.ChangeEvent(t, 2, []byte(`{"seq":2,"time":"2026-11-23T10:00:00.000000000Z"}`))
	_, err := raw(t, path).Exec(`DROP TRIGGER audit_events_no_delete`)
	require.NoError(t, err)

	s, err := sqlite.OpenExisting(ctx, path)
	require.NoError(t, err, "verification must be able to look at a log Open refuses")
	defer s.Close()
	assert.ErrorContains(t, s.CheckAppendOnly(ctx), "audit_events_no_delete is missing")
	_, err = audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
	ve, ok := errors.AsType[*audit.VerifyError](err)
	require.True(t, ok, "want a *VerifyError, got %v", err)
	assert.Equal(t, int64(2), ve.Seq)
}

func TestOpenExistingRefusesAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nothing.db")
	_, err := sqlite.OpenExisting(context.Background(), path)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "no empty log is made")
}

// withPolicyHistory makes a log holding two policy versions, the first
// activated and then the second, closed, and returns its path.
func withPolicyHistory(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	v1, v2 := audittest.SamplePolicyVersion(1), audittest.SamplePolicyVersion(2)
	require.NoError(t, s.PutPolicyVersion(ctx, v1))
	require.NoError(t, s.PutPolicyVersion(ctx, v2))
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	_, err = s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v1.ID, By: "klantbeeld", At: at, Reason: "embedded"})
	require.NoError(t, err)
	_, err = s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v2.ID, Previous: v1.ID, By: "po-1", At: at, Reason: "r"})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	return path
}

func TestTriggersRefuseEveryChangeToThePolicyHistory(t *testing.T) {
	path := withPolicyHistory(t)
	db := raw(t, path)
	v1, v2, v3 := audittest.SamplePolicyVersion(1).ID, audittest.SamplePolicyVersion(2).ID, audittest.SamplePolicyVersion(3).ID
	tests := []struct {
		name, stmt string
		args       []any
	}{
		{"update a version's files", `UPDATE audit_policy_versions SET files = '{"a.rego":""}' WHERE seq = 1`, nil},
		{"update a version's id", `UPDATE audit_policy_versions SET id = ? WHERE seq = 1`, []any{v3}},
		{"delete a version", `DELETE FROM audit_policy_versions WHERE seq = 2`, nil},
		{"delete every version", `DELETE FROM audit_policy_versions`, nil},
		{"replace a version", `INSERT OR REPLACE INTO audit_policy_versions (seq, id, files) VALUES (1, ?, '{}')`, []any{v1}},
		{"insert a version past a gap", `INSERT INTO audit_policy_versions (seq, id, files) VALUES (4, ?, '{}')`, []any{v3}},
		{"update an activation's reason", `UPDATE audit_policy_activations SET reason = 'other' WHERE seq = 2`, nil},
		{"update an activation's version", `UPDATE audit_policy_activations SET version = ? WHERE seq = 2`, []any{v1}},
		{"delete the latest activation", `DELETE FROM audit_policy_activations WHERE seq = 2`, nil},
		{"delete every activation", `DELETE FROM audit_policy_activations`, nil},
		{"replace an activation", `INSERT OR REPLACE INTO audit_policy_activations (seq, version, previous, activated_by, activated_at, reason, is_rollback) VALUES (2, ?, ?, 'x', '2026-11-23T09:00:00.000000Z', '', 0)`, []any{v1, v1}},
		{"insert an activation past a gap", `INSERT INTO audit_policy_activations (seq, version, previous, activated_by, activated_at, reason, is_rollback) VALUES (4, ?, ?, 'x', '2026-11-23T09:00:00.000000Z', '', 0)`, []any{v1, v2}},
		{"activate a version not stored", `INSERT INTO audit_policy_activations (seq, version, previous, activated_by, activated_at, reason, is_rollback) VALUES (3, ?, ?, 'x', '2026-11-23T09:00:00.000000Z', '', 0)`, []any{v3, v2}},
		{"activate naming another previous version", `INSERT INTO audit_policy_activations (seq, version, previous, activated_by, activated_at, reason, is_rollback) VALUES (3, ?, ?, 'x', '2026-11-23T09:00:00.000000Z', '', 1)`, []any{v1, v1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Exec(tt.stmt, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "append-only")
		})
	}

	s := openAt(t, path)
	ctx := context.Background()
	ids, err := s.PolicyVersions(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{v1, v2}, ids, "nothing changed")
	got, err := s.PolicyVersion(ctx, v1)
	require.NoError(t, err)
	assert.Equal(t, audittest.SamplePolicyVersion(1), got)
	acts, err := s.PolicyActivations(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, acts, 2)
	assert.Equal(t, v2, acts[1].Version)
	assert.Equal(t, "r", acts[1].Reason)
}

func TestOpenRefusesALogWithADroppedPolicyTrigger(t *testing.T) {
	for _, name := range []string{
		"audit_policy_versions_no_update", "audit_policy_versions_no_delete", "audit_policy_versions_next_seq",
		"audit_policy_activations_no_update", "audit_policy_activations_no_delete", "audit_policy_activations_next_seq",
	} {
		t.Run(name, func(t *testing.T) {
			path := withPolicyHistory(t)
			_, err := raw(t, path).Exec(`DROP TRIGGER ` + name)
			require.NoError(t, err)

			_, err = sqlite.Open(context.Background(), path)
			require.ErrorIs(t, err, audit.ErrTampered)
			assert.Contains(t, err.Error(), "append-only trigger "+name+" is missing")

			var n int
			require.NoError(t, raw(t, path).QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = ?`, name).Scan(&n))
			assert.Zero(t, n, "Open does not make the trigger again")
			examined, err := sqlite.OpenExisting(context.Background(), path)
			require.NoError(t, err)
			defer examined.Close()
			assert.ErrorContains(t, examined.CheckAppendOnly(context.Background()), name+" is missing", "audit verify names it too")
		})
	}
}

// withFirstSchemaLog makes a log as the gateway of migration 00001 left
// it: three events, their tree hashes and no policy tables. It returns the
// path.
func withFirstSchemaLog(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	require.NoError(t, sqlite.MigrateTo(ctx, path, 1))
	b, err := audit.NewBatch(0, []audit.Event{audittest.Sample(1), audittest.Sample(2), audittest.Sample(3)}, nil)
	require.NoError(t, err)
	db := raw(t, path)
	for _, r := range b.Records {
		exec(t, db, `INSERT INTO audit_events (seq, record) VALUES (?, ?)`, r.Seq, string(r.Data))
	}
	for _, h := range b.Hashes {
		exec(t, db, `INSERT INTO audit_tree_hashes (idx, hash) VALUES (?, ?)`, h.Index, h.Hash[:])
	}
	var tables int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'audit_policy%'`).Scan(&tables))
	require.Zero(t, tables, "the first schema has no policy tables")
	return path
}

func TestALogOfTheFirstSchemaGetsThePolicyHistoryWhenOpened(t *testing.T) {
	ctx := context.Background()
	path := withFirstSchemaLog(t)

	s := openAt(t, path)
	require.NoError(t, s.CheckAppendOnly(ctx), "the migration made the policy tables' triggers")
	_, verifier := audittest.NewSigner(t)
	rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
	require.NoError(t, err, "the events are as they were")
	assert.Equal(t, int64(3), rep.Tree.N)

	v := audittest.SamplePolicyVersion(1)
	require.NoError(t, s.PutPolicyVersion(ctx, v))
	seq, err := s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v.ID, By: "klantbeeld", At: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, int64(1), seq)
	_, err = raw(t, path).Exec(`DELETE FROM audit_policy_activations`)
	require.ErrorContains(t, err, "append-only")
}

func TestOpenExistingExaminesALogOfTheFirstSchemaAsItIs(t *testing.T) {
	ctx := context.Background()
	path := withFirstSchemaLog(t)

	s, err := sqlite.OpenExisting(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.CheckAppendOnly(ctx), "triggers of a migration the log has not had are not missing")
	_, verifier := audittest.NewSigner(t)
	rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(3), rep.Tree.N)
	_, err = s.LatestPolicyActivation(ctx)
	require.ErrorIs(t, err, audit.ErrUnavailable, "the log has no policy history")

	var n int
	require.NoError(t, raw(t, path).QueryRow(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'audit_policy%'`).Scan(&n))
	assert.Zero(t, n, "examining migrates nothing")
}

func TestOpenExistingNamesTheTriggersOfAPolicyTableInAnUnmigratedLog(t *testing.T) {
	// Someone made the policy table by hand, or wound the migration
	// history back after dropping its triggers: a table that is there
	// needs its triggers whatever the history says.
	path := withPolicyHistory(t)
	db := raw(t, path)
	exec(t, db, `DROP TRIGGER audit_policy_activations_no_delete`)
	exec(t, db, `DELETE FROM goose_db_version WHERE version_id = 2`)

	s, err := sqlite.OpenExisting(context.Background(), path)
	require.NoError(t, err)
	defer s.Close()
	err = s.CheckAppendOnly(context.Background())
	require.ErrorIs(t, err, audit.ErrTampered)
	assert.Contains(t, err.Error(), "audit_policy_activations_no_delete is missing")

	_, err = sqlite.Open(context.Background(), path)
	require.Error(t, err, "the gateway does not migrate over it")
}

func TestContactSessionConformance(t *testing.T) {
	audittest.ExerciseContactSessions(t, func(t *testing.T) audittest.SessionStore {
		return openAt(t, filepath.Join(t.TempDir(), "audit.db"))
	})
}
