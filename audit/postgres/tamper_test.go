package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
)

// tamperer is the PostgreSQL audittest.Tamperer: SQL run as the test
// server's superuser (the owner of the schema), some changes with the
// triggers disabled, some with them dropped, each in one transaction that
// ends with the triggers as the migrations made them.
type tamperer struct {
	conn *pgx.Conn
}

var _ audittest.Tamperer = (*tamperer)(nil)

// tx runs statements, each a SQL text and its arguments, in one transaction.
func (tt *tamperer) tx(t testing.TB, stmts ...[]any) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, tt.conn, func(tx pgx.Tx) error {
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st[0].(string), st[1:]...); err != nil {
				return fmt.Errorf("%s: %w", st[0], err)
			}
		}
		return nil
	})
	require.NoError(t, err)
}

func sql(text string, args ...any) []any { return append([]any{text}, args...) }

func disable(table, trigger string) []any {
	return sql(fmt.Sprintf("ALTER TABLE %s DISABLE TRIGGER %s", table, trigger))
}

func enableAlways(table, trigger string) []any {
	return sql(fmt.Sprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", table, trigger))
}

// createTrigger makes trigger again as the migration does.
func createTrigger(table, trigger string) []any {
	var def string
	switch {
	case strings.HasSuffix(trigger, "_no_update"):
		def = "BEFORE UPDATE ON " + table + " FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
	case strings.HasSuffix(trigger, "_no_delete"):
		def = "BEFORE DELETE ON " + table + " FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
	case strings.HasSuffix(trigger, "_no_truncate"):
		def = "BEFORE TRUNCATE ON " + table + " FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
	default:
		def = "AFTER INSERT ON " + table + " REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION " + table + "_check_next()"
	}
	return sql("CREATE TRIGGER " + trigger + " " + def)
}

func (tt *tamperer) ChangeEvent(t testing.TB, seq int64, data []byte) {
	tt.tx(t,
		disable("audit_events", "audit_events_no_update"),
		sql("UPDATE audit_events SET record = $1 WHERE seq = $2", data, seq),
		enableAlways("audit_events", "audit_events_no_update"))
}

func (tt *tamperer) DeleteEvent(t testing.TB, seq int64) {
	tt.tx(t,
		sql("DROP TRIGGER audit_events_no_delete ON audit_events"),
		sql("DELETE FROM audit_events WHERE seq = $1", seq),
		createTrigger("audit_events", "audit_events_no_delete"),
		enableAlways("audit_events", "audit_events_no_delete"))
}

func (tt *tamperer) SwapEvents(t testing.TB, a, b int64) {
	tt.tx(t,
		disable("audit_events", "audit_events_no_update"),
		sql(`UPDATE audit_events SET record = CASE WHEN seq = $1
			THEN (SELECT record FROM audit_events WHERE seq = $2)
			ELSE (SELECT record FROM audit_events WHERE seq = $1) END
			WHERE seq IN ($1, $2)`, a, b),
		enableAlways("audit_events", "audit_events_no_update"))
}

func (tt *tamperer) CutTail(t testing.TB, seq int64) {
	tt.tx(t,
		disable("audit_events", "audit_events_no_delete"),
		disable("audit_tree_hashes", "audit_tree_hashes_no_delete"),
		sql("DELETE FROM audit_events WHERE seq >= $1", seq),
		sql("DELETE FROM audit_tree_hashes WHERE idx >= $1", tlog.StoredHashIndex(0, seq-1)),
		enableAlways("audit_events", "audit_events_no_delete"),
		enableAlways("audit_tree_hashes", "audit_tree_hashes_no_delete"))
}

func (tt *tamperer) ReplaceEvent(t testing.TB, seq int64, data []byte) {
	tt.tx(t,
		disable("audit_events", "audit_events_no_update"),
		sql("INSERT INTO audit_events (seq, record) VALUES ($1, $2) ON CONFLICT (seq) DO UPDATE SET record = EXCLUDED.record", seq, data),
		enableAlways("audit_events", "audit_events_no_update"))
}

func (tt *tamperer) RebuildWithout(t testing.TB, seq int64) {
	stmts := [][]any{
		sql("CREATE TABLE audit_events_rebuilt (LIKE audit_events INCLUDING ALL)"),
		sql("INSERT INTO audit_events_rebuilt (seq, record) SELECT seq, record FROM audit_events WHERE seq < $1 ORDER BY seq", seq),
		sql("DROP TABLE audit_events"),
		sql("ALTER TABLE audit_events_rebuilt RENAME TO audit_events"),
		sql("REVOKE ALL ON audit_events FROM PUBLIC"),
		sql("GRANT SELECT, INSERT ON audit_events TO klantbeeld_app"),
	}
	for _, trigger := range []string{"audit_events_no_update", "audit_events_no_delete", "audit_events_no_truncate", "audit_events_next_seq"} {
		stmts = append(stmts, createTrigger("audit_events", trigger), enableAlways("audit_events", trigger))
	}
	tt.tx(t, stmts...)
}

func (tt *tamperer) RewriteTail(t testing.TB, seq int64, records []audit.Record, hashes []audit.StoredHash) {
	stmts := [][]any{
		disable("audit_events", "audit_events_no_delete"),
		disable("audit_tree_hashes", "audit_tree_hashes_no_delete"),
		disable("audit_checkpoints", "audit_checkpoints_no_delete"),
		sql("DELETE FROM audit_events WHERE seq >= $1", seq),
		sql("DELETE FROM audit_tree_hashes WHERE idx >= $1", tlog.StoredHashIndex(0, seq-1)),
		sql("DELETE FROM audit_checkpoints WHERE size > $1", seq-1),
	}
	for _, r := range records {
		stmts = append(stmts, sql("INSERT INTO audit_events (seq, record) VALUES ($1, $2)", r.Seq, r.Data))
	}
	for _, h := range hashes {
		stmts = append(stmts, sql("INSERT INTO audit_tree_hashes (idx, hash) VALUES ($1, $2)", h.Index, h.Hash[:]))
	}
	stmts = append(stmts,
		enableAlways("audit_events", "audit_events_no_delete"),
		enableAlways("audit_tree_hashes", "audit_tree_hashes_no_delete"),
		enableAlways("audit_checkpoints", "audit_checkpoints_no_delete"))
	tt.tx(t, stmts...)
}

func (tt *tamperer) DropTrigger(t testing.TB) string {
	tt.tx(t, sql("DROP TRIGGER audit_tree_hashes_no_update ON audit_tree_hashes"))
	return "audit_tree_hashes_no_update"
}
