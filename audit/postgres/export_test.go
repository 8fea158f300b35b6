package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/klantbeeld/klantbeeld/audit/postgres/pgdb"
)

// QueryRow runs a query on one of the store's own connections, in its role.
func QueryRow(ctx context.Context, s *Store, sql string, args ...any) pgx.Row {
	return s.pool.QueryRow(ctx, sql, args...)
}

// AppendLockKey is the advisory lock every append of s takes.
func AppendLockKey(s *Store) int64 { return s.appendLock }

// KeptAppends is how many appends of s were built on its kept frontier
// and sent in one statement that commits by itself (audit_append_at).
func KeptAppends(s *Store) int64 { return s.keptAppends.Load() }

// Begin starts a transaction on one of the store's own connections.
func Begin(ctx context.Context, s *Store) (pgx.Tx, error) { return s.pool.Begin(ctx) }

// MigrateTo brings the (existing) schema of dsn up to version and no
// further, as a gateway of that schema version left it.
func MigrateTo(ctx context.Context, dsn, schema string, version int64) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return migrateTo(ctx, db, schema, version)
}

// ExplainContactSession runs the store's own look-up of contact session id
// (the query ContactSession sends) under EXPLAIN (ANALYZE, FORMAT JSON)
// and returns the plan.
func ExplainContactSession(ctx context.Context, s *Store, id string) ([]byte, error) {
	e := &explainer{pool: s.pool}
	_, _ = pgdb.New(e).GetContactSession(ctx, id)
	return e.plan, e.err
}

type explainer struct {
	pool *pgxpool.Pool
	plan []byte
	err  error
}

func (e *explainer) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	e.err = e.pool.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&e.plan)
	return errRow{}
}

func (e *explainer) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("explainer: one QueryRow only")
}

func (e *explainer) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errors.New("explainer: one QueryRow only")
}

type errRow struct{}

func (errRow) Scan(...any) error { return errors.New("explainer: explained, not run") }

// OpenConns is how many connections s's pool holds.
func OpenConns(s *Store) int32 { return s.pool.Stat().TotalConns() }
