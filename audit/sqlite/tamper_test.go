package sqlite_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/sqlite"
)

// tamperer is what someone with the database file and the sqlite3 shell can
// do: drop the triggers, change the rows, and make the triggers again with
// the text they had.
type tamperer struct{ path string }

var _ audittest.Tamperer = tamperer{}

// schemaObject is one row of sqlite_master.
type schemaObject struct{ kind, name, sql string }

// objects returns the indexes and triggers of table (and the table itself
// when withTable), as sqlite_master holds them.
func objects(t testing.TB, db *sql.DB, table string, withTable bool) []schemaObject {
	t.Helper()
	rows, err := db.Query(`SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'table' DESC, type = 'index' DESC`, table)
	require.NoError(t, err)
	defer rows.Close()
	var out []schemaObject
	for rows.Next() {
		var o schemaObject
		require.NoError(t, rows.Scan(&o.kind, &o.name, &o.sql))
		if o.kind == "trigger" || withTable {
			out = append(out, o)
		}
	}
	require.NoError(t, rows.Err())
	return out
}

// without runs change with every trigger of the log dropped, and makes them again after.
func (tt tamperer) without(t testing.TB, change func(db *sql.DB)) {
	t.Helper()
	db, err := sqlite.OpenRaw(tt.path)
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	var saved []schemaObject
	for _, table := range []string{"audit_events", "audit_tree_hashes", "audit_checkpoints"} {
		for _, o := range objects(t, db, table, false) {
			_, err := db.Exec(`DROP TRIGGER ` + o.name)
			require.NoError(t, err)
			saved = append(saved, o)
		}
	}
	change(db)
	for _, o := range saved {
		_, err := db.Exec(o.sql)
		require.NoError(t, err, o.name)
	}
}

func exec(t testing.TB, db *sql.DB, stmt string, args ...any) {
	t.Helper()
	_, err := db.Exec(stmt, args...)
	require.NoError(t, err, stmt)
}

func (tt tamperer) ChangeEvent(t testing.TB, seq int64, data []byte) {
	tt.without(t, func(db *sql.DB) {
		exec(t, db, `UPDATE audit_events SET record = ? WHERE seq = ?`, string(data), seq)
	})
}

func (tt tamperer) DeleteEvent(t testing.TB, seq int64) {
	tt.without(t, func(db *sql.DB) { exec(t, db, `DELETE FROM audit_events WHERE seq = ?`, seq) })
}

func (tt tamperer) SwapEvents(t testing.TB, a, b int64) {
	tt.without(t, func(db *sql.DB) {
		exec(t, db, `UPDATE audit_events SET record = CASE seq
			WHEN ?1 THEN (SELECT record FROM audit_events WHERE seq = ?2)
			ELSE (SELECT record FROM audit_events WHERE seq = ?1) END
			WHERE seq IN (?1, ?2)`, a, b)
	})
}

func (tt tamperer) CutTail(t testing.TB, seq int64) {
	tt.without(t, func(db *sql.DB) {
		exec(t, db, `DELETE FROM audit_events WHERE seq >= ?`, seq)
		exec(t, db, `DELETE FROM audit_tree_hashes WHERE idx >= ?`, tlog.StoredHashIndex(0, seq-1))
	})
}

func (tt tamperer) ReplaceEvent(t testing.TB, seq int64, data []byte) {
	tt.without(t, func(db *sql.DB) {
		exec(t, db, `INSERT OR REPLACE INTO audit_events (seq, record) VALUES (?, ?)`, seq, string(data))
	})
}

func (tt tamperer) RebuildWithout(t testing.TB, seq int64) {
	db, err := sqlite.OpenRaw(tt.path)
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	// The table, its indexes and triggers, made again as they were, with
	// only the events before seq: what DROP TABLE and a script would leave.
	schema := objects(t, db, "audit_events", true)
	exec(t, db, `CREATE TABLE kept AS SELECT seq, record FROM audit_events WHERE seq < ?`, seq)
	exec(t, db, `DROP TABLE audit_events`)
	exec(t, db, schema[0].sql)
	exec(t, db, `INSERT INTO audit_events (seq, record) SELECT seq, record FROM kept ORDER BY seq`)
	exec(t, db, `DROP TABLE kept`)
	for _, o := range schema[1:] {
		exec(t, db, o.sql)
	}
}

func (tt tamperer) RewriteTail(t testing.TB, seq int64, records []audit.Record, hashes []audit.StoredHash) {
	tt.without(t, func(db *sql.DB) {
		exec(t, db, `DELETE FROM audit_events WHERE seq >= ?`, seq)
		exec(t, db, `DELETE FROM audit_tree_hashes WHERE idx >= ?`, tlog.StoredHashIndex(0, seq-1))
		exec(t, db, `DELETE FROM audit_checkpoints WHERE size > ?`, seq-1)
		for _, r := range records {
			exec(t, db, `INSERT INTO audit_events (seq, record) VALUES (?, ?)`, r.Seq, string(r.Data))
		}
		for _, h := range hashes {
			exec(t, db, `INSERT INTO audit_tree_hashes (idx, hash) VALUES (?, ?)`, h.Index, h.Hash[:])
		}
	})
}

func (tt tamperer) DropTrigger(t testing.TB) string {
	db, err := sqlite.OpenRaw(tt.path)
	require.NoError(t, err)
	defer db.Close()
	exec(t, db, `DROP TRIGGER audit_events_no_delete`)
	return "audit_events_no_delete"
}

func TestTamper(t *testing.T) {
	audittest.Tamper(t, func(t *testing.T) (audit.Store, audittest.Tamperer) {
		path := t.TempDir() + "/audit.db"
		s, err := sqlite.Open(context.Background(), path)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s, tamperer{path}
	})
}
