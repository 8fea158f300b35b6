package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// QueryRow runs a query on one of the store's own connections, in its role.
func QueryRow(ctx context.Context, s *Store, sql string, args ...any) pgx.Row {
	return s.pool.QueryRow(ctx, sql, args...)
}

// AppendLockKey is the advisory lock every append of s takes.
func AppendLockKey(s *Store) int64 { return s.appendLock }

// Begin starts a transaction on one of the store's own connections.
func Begin(ctx context.Context, s *Store) (pgx.Tx, error) { return s.pool.Begin(ctx) }
