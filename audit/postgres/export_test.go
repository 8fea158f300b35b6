package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// QueryRow runs a query on one of the store's own connections, in its role.
func QueryRow(ctx context.Context, s *Store, sql string, args ...any) pgx.Row {
	return s.pool.QueryRow(ctx, sql, args...)
}

// AppendLockKey is the advisory lock every append of s takes.
func AppendLockKey(s *Store) int64 { return s.appendLock }

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
