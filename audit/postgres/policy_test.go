package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgtest"
)

func TestReopeningRefusesADroppedPolicyTriggerAndNeverMakesItAgain(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	for _, table := range []string{"audit_policy_versions", "audit_policy_activations"} {
		for _, suffix := range []string{"_no_update", "_no_delete", "_no_truncate", "_next_seq"} {
			trigger := table + suffix
			t.Run(trigger, func(t *testing.T) {
				t.Parallel()
				d, s := filled(t)
				s.Close()
				pgtest.Exec(t, d.url, d.schema, `DROP TRIGGER `+trigger+` ON `+table)
				ctx := context.Background()

				_, err := postgres.Open(ctx, d.url, postgres.Options{Schema: d.schema})
				require.ErrorIs(t, err, audit.ErrTampered, "the gateway does not start on it")
				assert.Contains(t, err.Error(), trigger+" on "+table+" is missing")

				var n int
				require.NoError(t, pgtest.Conn(t, d.url, d.schema).QueryRow(ctx,
					`SELECT count(*) FROM pg_trigger WHERE tgname = $1 AND tgrelid = to_regclass($2)`, trigger, table).Scan(&n))
				assert.Zero(t, n, "Open does not make the trigger again")
			})
		}
	}
}

// firstSchema makes a schema as the gateway of migration 00001 left it:
// three events, their tree hashes and no policy tables.
func firstSchema(t *testing.T) db {
	t.Helper()
	d := newDB(t)
	ctx := context.Background()
	require.NoError(t, postgres.MigrateTo(ctx, d.url, d.schema, 1))
	b, err := audit.NewBatch(0, []audit.Event{audittest.Sample(1), audittest.Sample(2), audittest.Sample(3)}, nil)
	require.NoError(t, err)
	conn := pgtest.Conn(t, d.url, d.schema)
	for _, r := range b.Records {
		_, err := conn.Exec(ctx, `INSERT INTO audit_events (seq, record) VALUES ($1, $2)`, r.Seq, r.Data)
		require.NoError(t, err)
	}
	for _, h := range b.Hashes {
		_, err := conn.Exec(ctx, `INSERT INTO audit_tree_hashes (idx, hash) VALUES ($1, $2)`, h.Index, h.Hash[:])
		require.NoError(t, err)
	}
	require.Zero(t, policyTables(t, d), "the first schema has no policy tables")
	return d
}

func policyTables(t *testing.T, d db) int {
	t.Helper()
	var n int
	require.NoError(t, pgtest.Conn(t, d.url, d.schema).QueryRow(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'audit_policy%'`, d.schema).Scan(&n))
	return n
}

func TestASchemaOfTheFirstMigrationGetsThePolicyHistoryWhenOpened(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d := firstSchema(t)
	ctx := context.Background()

	s := d.open(t, postgres.Options{})
	require.NoError(t, s.CheckAppendOnly(ctx), "the migration made the policy tables' triggers, enabled ALWAYS")
	_, verifier := audittest.NewSigner(t)
	rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
	require.NoError(t, err, "the events are as they were")
	assert.Equal(t, int64(3), rep.Tree.N)

	v := audittest.SamplePolicyVersion(1)
	require.NoError(t, s.PutPolicyVersion(ctx, v), "the application role may insert")
	seq, err := s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v.ID, By: "klantbeeld", At: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, int64(1), seq)

	conn := pgtest.Conn(t, d.url, d.schema)
	_, err = conn.Exec(ctx, `SET session_replication_role = replica`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DELETE FROM audit_policy_activations`)
	require.ErrorContains(t, err, "append-only", "the migrated triggers fire ALWAYS")
}

func TestOpenExistingExaminesASchemaOfTheFirstMigrationAsItIs(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d := firstSchema(t)
	ctx := context.Background()

	s, err := postgres.OpenExisting(ctx, d.url, postgres.Options{Schema: d.schema})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.CheckAppendOnly(ctx), "triggers of a migration the schema has not had are not missing")
	_, verifier := audittest.NewSigner(t)
	rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(3), rep.Tree.N)
	_, err = s.LatestPolicyActivation(ctx)
	require.ErrorIs(t, err, audit.ErrUnavailable, "the schema has no policy history")
	assert.Zero(t, policyTables(t, d), "examining migrates nothing")
}

func TestOpenExistingNamesTheTriggersOfAPolicyTableInAnUnmigratedSchema(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	// Someone wound the migration history back after dropping a trigger:
	// a table that is there needs its triggers whatever the history says.
	d, s := filled(t)
	s.Close()
	pgtest.Exec(t, d.url, d.schema, `DROP TRIGGER audit_policy_activations_no_delete ON audit_policy_activations`)
	pgtest.Exec(t, d.url, d.schema, `CREATE OR REPLACE FUNCTION audit_policy_versions_check_next() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`)
	pgtest.Exec(t, d.url, d.schema, `DELETE FROM audit_schema_version WHERE version_id = 2`)
	ctx := context.Background()

	examined, err := postgres.OpenExisting(ctx, d.url, postgres.Options{Schema: d.schema})
	require.NoError(t, err)
	defer examined.Close()
	err = examined.CheckAppendOnly(ctx)
	require.ErrorIs(t, err, audit.ErrTampered)
	assert.Contains(t, err.Error(), "audit_policy_activations_no_delete on audit_policy_activations is missing")
	assert.Contains(t, err.Error(), "function audit_policy_versions_check_next was changed")

	_, err = postgres.Open(ctx, d.url, postgres.Options{Schema: d.schema})
	require.Error(t, err, "the gateway does not migrate over it")
}
