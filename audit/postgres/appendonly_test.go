package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgtest"
)

// filled is a store on a fresh schema with three events and a checkpoint,
// and two policy versions, the first activated and then the second.
func filled(t *testing.T) (db, *postgres.Store) {
	t.Helper()
	d := newDB(t)
	s := d.open(t, postgres.Options{})
	ctx := context.Background()
	_, err := s.Append(ctx, []audit.Event{audittest.Sample(1), audittest.Sample(2), audittest.Sample(3)})
	require.NoError(t, err)
	_, err = s.AddCheckpoint(ctx, audit.Checkpoint{Size: 3, Note: []byte("note\n")})
	require.NoError(t, err)
	v1, v2 := audittest.SamplePolicyVersion(1), audittest.SamplePolicyVersion(2)
	require.NoError(t, s.PutPolicyVersion(ctx, v1))
	require.NoError(t, s.PutPolicyVersion(ctx, v2))
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	_, err = s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v1.ID, By: "klantbeeld", At: at, Reason: "embedded"})
	require.NoError(t, err)
	_, err = s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v2.ID, Previous: v1.ID, By: "po-1", At: at, Reason: "r"})
	require.NoError(t, err)
	return d, s
}

// stored is everything a store holds, to show that a refused change
// changed nothing.
type stored struct {
	records     []audit.Record
	stats       audit.Stats
	checkpoints []audit.Checkpoint
	versions    []audit.PolicyVersion
	activations []audit.PolicyActivation
}

func snapshot(t *testing.T, s *postgres.Store) stored {
	t.Helper()
	ctx := context.Background()
	var out stored
	var err error
	out.records, err = s.Records(ctx, 0, 100)
	require.NoError(t, err)
	out.stats, err = s.Stats(ctx)
	require.NoError(t, err)
	out.checkpoints, err = s.Checkpoints(ctx, 0, 100)
	require.NoError(t, err)
	ids, err := s.PolicyVersions(ctx)
	require.NoError(t, err)
	for _, id := range ids {
		v, err := s.PolicyVersion(ctx, id)
		require.NoError(t, err)
		out.versions = append(out.versions, v)
	}
	out.activations, err = s.PolicyActivations(ctx, 0, 100)
	require.NoError(t, err)
	return out
}

func TestChangesAreRefusedForEveryRoleAndReplication(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d, s := filled(t)
	before := snapshot(t, s)
	require.Len(t, before.versions, 2)
	require.Len(t, before.activations, 2)
	v1, v2, v3 := audittest.SamplePolicyVersion(1).ID, audittest.SamplePolicyVersion(2).ID, audittest.SamplePolicyVersion(3).ID
	activation := func(seq int, version, previous string) string {
		return fmt.Sprintf(`INSERT INTO audit_policy_activations (seq, version, previous, activated_by, activated_at, reason, is_rollback)
			VALUES (%d, '%s', '%s', 'x', now(), '', false)`, seq, version, previous)
	}

	changes := []struct{ name, stmt string }{
		{"UpdateEvent", `UPDATE audit_events SET record = record WHERE seq = 1`},
		{"DeleteEvent", `DELETE FROM audit_events WHERE seq = 1`},
		{"DeleteEveryEvent", `DELETE FROM audit_events`},
		{"TruncateEvents", `TRUNCATE audit_events`},
		{"ReplaceEvent", `INSERT INTO audit_events (seq, record) VALUES (1, '\x7b7d') ON CONFLICT (seq) DO UPDATE SET record = EXCLUDED.record`},
		{"InsertEventLeavingAGap", `INSERT INTO audit_events (seq, record) VALUES (5, '\x7b7d')`},
		{"UpdateTreeHash", `UPDATE audit_tree_hashes SET hash = hash WHERE idx = 0`},
		{"DeleteTreeHash", `DELETE FROM audit_tree_hashes WHERE idx = 0`},
		{"TruncateTreeHashes", `TRUNCATE audit_tree_hashes`},
		{"InsertTreeHashLeavingAGap", `INSERT INTO audit_tree_hashes (idx, hash) VALUES (100, '\x0000000000000000000000000000000000000000000000000000000000000000')`},
		{"UpdateCheckpoint", `UPDATE audit_checkpoints SET size = 1`},
		{"DeleteCheckpoint", `DELETE FROM audit_checkpoints`},
		{"TruncateCheckpoints", `TRUNCATE audit_checkpoints`},
		{"TruncateEverything", `TRUNCATE audit_events, audit_tree_hashes, audit_checkpoints`},
		{"InsertCheckpointBeyondTheLog", `INSERT INTO audit_checkpoints (id, size, note) VALUES (2, 4, '\x00')`},
		{"UpdatePolicyVersionFiles", `UPDATE audit_policy_versions SET files = '{"a.rego":""}' WHERE seq = 1`},
		{"UpdatePolicyVersionID", `UPDATE audit_policy_versions SET id = '` + v3 + `' WHERE seq = 1`},
		{"DeletePolicyVersion", `DELETE FROM audit_policy_versions WHERE seq = 2`},
		{"TruncatePolicyVersions", `TRUNCATE audit_policy_versions`},
		{"ReplacePolicyVersion", `INSERT INTO audit_policy_versions (seq, id, files) VALUES (3, '` + v1 + `', '{}') ON CONFLICT (id) DO UPDATE SET files = EXCLUDED.files`},
		{"InsertPolicyVersionLeavingAGap", `INSERT INTO audit_policy_versions (seq, id, files) VALUES (5, '` + v3 + `', '{}')`},
		{"UpdateActivationReason", `UPDATE audit_policy_activations SET reason = 'other' WHERE seq = 2`},
		{"UpdateActivationVersion", `UPDATE audit_policy_activations SET version = '` + v1 + `' WHERE seq = 2`},
		{"DeleteLatestActivation", `DELETE FROM audit_policy_activations WHERE seq = 2`},
		{"TruncateActivations", `TRUNCATE audit_policy_activations`},
		{"TruncatePolicyHistory", `TRUNCATE audit_policy_versions, audit_policy_activations`},
		{"InsertActivationLeavingAGap", activation(4, v1, v2)},
		{"ActivateAVersionNotStored", activation(3, v3, v2)},
		{"ActivateNamingAnotherPreviousVersion", activation(3, v1, v1)},
		{"ActivateNamingNoPreviousVersion", activation(3, v1, "")},
	}
	actors := []struct {
		name  string
		setup string
		// byTrigger: the refusal must come from an append-only trigger
		// (the role may do the statement, the trigger stops it).
		byTrigger bool
	}{
		{"AsTheApplicationRole", `SET ROLE klantbeeld_app`, false},
		{"AsTheOwner", `RESET ROLE`, true},
		{"AsASuperuserInReplicationMode", `SET session_replication_role = replica`, true},
	}
	for _, a := range actors {
		t.Run(a.name, func(t *testing.T) {
			conn := pgtest.Conn(t, d.url, d.schema)
			ctx := context.Background()
			_, err := conn.Exec(ctx, a.setup)
			require.NoError(t, err)
			for _, c := range changes {
				t.Run(c.name, func(t *testing.T) {
					_, err := conn.Exec(ctx, c.stmt)
					pgErr, ok := errors.AsType[*pgconn.PgError](err)
					require.True(t, ok, "want a refusal, got %v", err)
					assert.Equal(t, "42501", pgErr.Code, "insufficient privilege: %v", err)
					if a.byTrigger {
						assert.Contains(t, pgErr.Message, "append-only")
					}
				})
			}
		})
	}

	assert.Equal(t, before, snapshot(t, s))
}

func TestApplicationRoleMayOnlyInsertAndSelect(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d, s := filled(t)
	ctx := context.Background()
	conn := pgtest.Conn(t, d.url, d.schema)
	var privileges []string
	rows, err := conn.Query(ctx, `
		SELECT table_name || ' ' || privilege_type FROM information_schema.table_privileges
		WHERE grantee = $1 AND table_schema = $2 ORDER BY 1`, postgres.AppRole, d.schema)
	require.NoError(t, err)
	privileges, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{
		"audit_checkpoints INSERT", "audit_checkpoints SELECT",
		"audit_contact_session_closures INSERT", "audit_contact_session_closures SELECT",
		"audit_contact_sessions INSERT", "audit_contact_sessions SELECT",
		"audit_events INSERT", "audit_events SELECT",
		"audit_policy_activations INSERT", "audit_policy_activations SELECT",
		"audit_policy_versions INSERT", "audit_policy_versions SELECT",
		"audit_schema_version SELECT",
		"audit_tree_hashes INSERT", "audit_tree_hashes SELECT",
	}, privileges)

	var user string
	require.NoError(t, postgres.QueryRow(ctx, s, `SELECT current_user`).Scan(&user))
	assert.Equal(t, postgres.AppRole, user, "the store works as the application role")
}

func TestCheckAppendOnlyNamesEveryTriggerOutOfPlace(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	tests := []struct {
		name  string
		sql   []string
		wants []string
	}{
		{"Disabled", []string{`ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_delete`},
			[]string{"audit_events_no_delete on audit_events is disabled"}},
		{"EnabledOnlyOutsideReplication", []string{`ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_no_truncate`},
			[]string{"audit_checkpoints_no_truncate on audit_checkpoints is enabled only outside replication"}},
		{"EnabledOnlyInReplication", []string{`ALTER TABLE audit_tree_hashes ENABLE REPLICA TRIGGER audit_tree_hashes_next_idx`},
			[]string{"audit_tree_hashes_next_idx on audit_tree_hashes is enabled only in replication"}},
		{"Dropped", []string{`DROP TRIGGER audit_events_no_update ON audit_events`, `DROP TRIGGER audit_checkpoints_next_id ON audit_checkpoints`},
			[]string{"audit_events_no_update on audit_events is missing", "audit_checkpoints_next_id on audit_checkpoints is missing"}},
		{"ReplacedByOneThatLetsEverythingThrough", []string{
			`CREATE FUNCTION let_through() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
			`DROP TRIGGER audit_events_no_update ON audit_events`,
			`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events FOR EACH ROW EXECUTE FUNCTION let_through()`,
			`ALTER TABLE audit_events ENABLE ALWAYS TRIGGER audit_events_no_update`,
		}, []string{"audit_events_no_update on audit_events was changed (it runs let_through"}},
		{"ItsFunctionMadeToLetEverythingThrough", []string{
			`CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`,
		}, []string{"function audit_refuse_change was changed"}},
		{"ItsFunctionTakenFromAnotherSchema", []string{
			`CREATE FUNCTION {other}.audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
			`DROP TRIGGER audit_checkpoints_no_update ON audit_checkpoints`,
			`CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION {other}.audit_refuse_change()`,
			`ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_update`,
		}, []string{"audit_checkpoints_no_update on audit_checkpoints runs a function audit_refuse_change of another schema"}},
		{"SearchFieldsNoLongerReadFromTheRecord", []string{`ALTER TABLE audit_events ALTER COLUMN search DROP EXPRESSION`},
			[]string{"column search of audit_events is no longer generated from the record"}},
		{"PolicyTriggerDropped", []string{`DROP TRIGGER audit_policy_activations_no_delete ON audit_policy_activations`},
			[]string{"audit_policy_activations_no_delete on audit_policy_activations is missing"}},
		{"PolicyTriggerDisabled", []string{`ALTER TABLE audit_policy_versions DISABLE TRIGGER audit_policy_versions_no_update`},
			[]string{"audit_policy_versions_no_update on audit_policy_versions is disabled"}},
		{"PolicyTriggerEnabledOnlyOutsideReplication", []string{`ALTER TABLE audit_policy_activations ENABLE TRIGGER audit_policy_activations_next_seq`},
			[]string{"audit_policy_activations_next_seq on audit_policy_activations is enabled only outside replication"}},
		{"PolicyChainCheckMadeToLetEverythingThrough", []string{
			`CREATE OR REPLACE FUNCTION audit_policy_activations_check_next() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`,
		}, []string{"function audit_policy_activations_check_next was changed"}},
		{"SearchFunctionChanged", []string{
			`CREATE OR REPLACE FUNCTION audit_search_fields(record bytea) RETURNS audit_search LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN NULL; END $$`,
		}, []string{"function audit_search_fields was changed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, s := filled(t)
			require.NoError(t, s.CheckAppendOnly(context.Background()))
			other := pgtest.Schema(t, d.url)
			for _, q := range tt.sql {
				pgtest.Exec(t, d.url, d.schema, strings.ReplaceAll(q, "{other}", other))
			}
			err := s.CheckAppendOnly(context.Background())
			require.ErrorIs(t, err, audit.ErrTampered)
			for _, w := range tt.wants {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestReopeningRefusesADroppedTriggerAndNeverMakesItAgain(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d, s := filled(t)
	pgtest.Exec(t, d.url, d.schema, `DROP TRIGGER audit_events_no_delete ON audit_events`)
	s.Close()
	ctx := context.Background()

	_, err := postgres.Open(ctx, d.url, postgres.Options{Schema: d.schema})
	require.ErrorIs(t, err, audit.ErrTampered, "the gateway does not start on it")
	assert.Contains(t, err.Error(), "audit_events_no_delete on audit_events is missing")

	examined, err := postgres.OpenExisting(ctx, d.url, postgres.Options{Schema: d.schema})
	require.NoError(t, err, "audit verify can still open it")
	defer examined.Close()
	err = examined.CheckAppendOnly(ctx)
	require.ErrorIs(t, err, audit.ErrTampered)
	assert.Contains(t, err.Error(), "audit_events_no_delete on audit_events is missing", "still missing after two opens")
	recs, err := examined.Records(ctx, 0, 10)
	require.NoError(t, err)
	assert.Len(t, recs, 3)
}

func TestOpenExistingChangesNothing(t *testing.T) {
	u := pgtest.URL(t)
	t.Parallel()
	schema := pgtest.Schema(t, u)
	pgtest.Exec(t, u, "", "DROP SCHEMA "+schema)
	_, err := postgres.OpenExisting(context.Background(), u, postgres.Options{Schema: schema})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "schema "+schema+" does not exist")
	var n int
	require.NoError(t, pgtest.Conn(t, u, "").QueryRow(context.Background(),
		`SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n))
	assert.Zero(t, n, "no schema was made")
}

func TestOpenFailsOnASchemaWhoseMigrationHistoryWasErased(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	tests := []struct{ name, erase, want string }{
		{"AllOfIt", `DELETE FROM audit_schema_version`, "missing zero version"},
		{"TheFirstMigrationsRow", `DELETE FROM audit_schema_version WHERE version_id = 1`, "missing (out-of-order) migration"},
		{"TheLastMigrationsRow", `DELETE FROM audit_schema_version WHERE version_id = 5`, "already exists"},
		{"EveryMigrationsRow", `DELETE FROM audit_schema_version WHERE version_id > 0`, "already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, s := filled(t)
			s.Close()
			pgtest.Exec(t, d.url, d.schema, `DROP TRIGGER audit_events_no_delete ON audit_events`)
			pgtest.Exec(t, d.url, d.schema, tt.erase)

			_, err := postgres.Open(context.Background(), d.url, postgres.Options{Schema: d.schema})
			require.Error(t, err, "migrating again would make the dropped trigger anew")
			assert.Contains(t, err.Error(), tt.want)

			var n int
			require.NoError(t, pgtest.Conn(t, d.url, d.schema).QueryRow(context.Background(),
				`SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_events_no_delete'
				 AND tgrelid = 'audit_events'::regclass`).Scan(&n))
			assert.Zero(t, n, "the trigger stays dropped")
		})
	}
}

// The store fetches the tree's frontier with the lock (one round trip); the
// SQL that numbers it must agree with tlog's numbering.
func TestFrontierIndexesAgreeWithTheTreeHelper(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	s := newDB(t).open(t, postgres.Options{})
	sizes := []int64{1 << 20, 1<<20 - 1, 1<<40 + 12345, 1<<61 + 1<<33 + 7}
	for n := range int64(1100) {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		var got []int64
		require.NoError(t, postgres.QueryRow(context.Background(), s, `SELECT audit_frontier_indexes($1)`, n).Scan(&got))
		want := audit.FrontierIndexes(n)
		if want == nil {
			want = []int64{}
		}
		require.Equal(t, want, got, "tree of %d", n)
	}
}
