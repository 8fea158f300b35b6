package workflow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// The workflow keeps its own rows (wrap-ups with their idempotency keys and
// the ids each write produced; callbacks with their reminder state) in the
// database River uses, so that a row and the jobs that act on it are
// committed in one transaction. The SQL is written once for both engines:
// $n placeholders (SQLite takes them as numbered parameters), TEXT times in
// one fixed-width UTC form that sorts as it reads, INTEGER flags.

// querier runs statements, in a transaction or not.
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	queryRow(ctx context.Context, q string, args ...any) scanner
	query(ctx context.Context, q string, args ...any) (rows, error)
}

type scanner interface{ Scan(dest ...any) error }

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// inserter adds a River job inside the transaction it was handed with.
type inserter func(args river.JobArgs, opts *river.InsertOpts) error

// backend is one engine with its River client.
type backend interface {
	querier
	inTx(ctx context.Context, fn func(q querier, insert inserter) error) error
	insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error
	start(ctx context.Context) error
	stop(ctx context.Context) error
	isUniqueViolation(err error) bool
}

// Tables, created if missing after River's own migrations.
var schemaSQL = []string{
	`CREATE TABLE IF NOT EXISTS {p}workflow_wrapup (
		id TEXT PRIMARY KEY,
		caller TEXT NOT NULL,
		idem_key TEXT NOT NULL,
		request_hash TEXT NOT NULL,
		request TEXT NOT NULL,
		created_at TEXT NOT NULL,
		ki_status TEXT NOT NULL,
		ki_error TEXT NOT NULL DEFAULT '',
		ki_attempts INTEGER NOT NULL DEFAULT 0,
		partij TEXT,
		klantcontact TEXT NOT NULL DEFAULT '',
		betrokkene TEXT NOT NULL DEFAULT '',
		onderwerpobject TEXT NOT NULL DEFAULT '',
		actor TEXT NOT NULL DEFAULT '',
		internetaak TEXT NOT NULL DEFAULT '',
		sf_status TEXT NOT NULL,
		sf_error TEXT NOT NULL DEFAULT '',
		sf_attempts INTEGER NOT NULL DEFAULT 0,
		sf_contact TEXT,
		sf_task TEXT NOT NULL DEFAULT '',
		UNIQUE (caller, idem_key)
	)`,
	`CREATE TABLE IF NOT EXISTS {p}workflow_callback (
		id TEXT PRIMARY KEY REFERENCES {p}workflow_wrapup (id),
		assignee TEXT NOT NULL,
		department TEXT NOT NULL,
		resident_name TEXT NOT NULL,
		subject TEXT NOT NULL,
		onderwerp TEXT NOT NULL,
		gevraagde_handeling TEXT NOT NULL,
		due_at TEXT NOT NULL,
		next_at TEXT NOT NULL,
		reminders INTEGER NOT NULL DEFAULT 0,
		escalated INTEGER NOT NULL DEFAULT 0,
		closed INTEGER NOT NULL DEFAULT 0,
		step_done TEXT NOT NULL DEFAULT '',
		created_at TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS workflow_callback_next ON {p}workflow_callback (closed, escalated, next_at)`,
}

// --- SQLite (database/sql, modernc.org/sqlite) ---

type sqliteBackend struct {
	db     *sql.DB
	client *river.Client[*sql.Tx]
}

type sqlQuerier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

type sqlQ struct{ q sqlQuerier }

func sqliteSQL(q string) string { return strings.ReplaceAll(q, "{p}", "") }

func (s sqlQ) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, sqliteSQL(q), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s sqlQ) queryRow(ctx context.Context, q string, args ...any) scanner {
	return s.q.QueryRowContext(ctx, sqliteSQL(q), args...)
}

func (s sqlQ) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := s.q.QueryContext(ctx, sqliteSQL(q), args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

func newSQLite(ctx context.Context, db *sql.DB, cfg *river.Config) (*sqliteBackend, error) {
	driver := riversqlite.New(db)
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	for _, s := range schemaSQL {
		if _, err := db.ExecContext(ctx, strings.ReplaceAll(s, "{p}", "")); err != nil {
			return nil, fmt.Errorf("workflow tables: %w", err)
		}
	}
	client, err := river.NewClient(driver, cfg)
	if err != nil {
		return nil, err
	}
	return &sqliteBackend{db: db, client: client}, nil
}

func (b *sqliteBackend) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return sqlQ{b.db}.exec(ctx, q, args...)
}

func (b *sqliteBackend) queryRow(ctx context.Context, q string, args ...any) scanner {
	return sqlQ{b.db}.queryRow(ctx, q, args...)
}

func (b *sqliteBackend) query(ctx context.Context, q string, args ...any) (rows, error) {
	return sqlQ{b.db}.query(ctx, q, args...)
}

func (b *sqliteBackend) inTx(ctx context.Context, fn func(q querier, insert inserter) error) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	err = fn(sqlQ{tx}, func(args river.JobArgs, opts *river.InsertOpts) error {
		_, err := b.client.InsertTx(ctx, tx, args, opts)
		return err
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}

func (b *sqliteBackend) insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := b.client.Insert(ctx, args, opts)
	return err
}

func (b *sqliteBackend) start(ctx context.Context) error { return b.client.Start(ctx) }
func (b *sqliteBackend) stop(ctx context.Context) error  { return b.client.Stop(ctx) }

func (b *sqliteBackend) isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// --- PostgreSQL (pgx) ---

type pgBackend struct {
	pool   *pgxpool.Pool
	prefix string
	client *river.Client[pgx.Tx]
}

type pgQuerier interface {
	Exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, q string, args ...any) pgx.Row
	Query(ctx context.Context, q string, args ...any) (pgx.Rows, error)
}

type pgQ struct {
	q      pgQuerier
	prefix string
}

func (p pgQ) sql(q string) string { return strings.ReplaceAll(q, "{p}", p.prefix) }

func (p pgQ) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, p.sql(q), args...)
	return tag.RowsAffected(), err
}

func (p pgQ) queryRow(ctx context.Context, q string, args ...any) scanner {
	return p.q.QueryRow(ctx, p.sql(q), args...)
}

func (p pgQ) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := p.q.Query(ctx, p.sql(q), args...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func newPostgres(ctx context.Context, pool *pgxpool.Pool, cfg *river.Config) (*pgBackend, error) {
	driver := riverpgxv5.New(pool)
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: cfg.Logger, Schema: cfg.Schema})
	if err != nil {
		return nil, err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	prefix := ""
	if cfg.Schema != "" {
		prefix = pgx.Identifier{cfg.Schema}.Sanitize() + "."
	}
	b := &pgBackend{pool: pool, prefix: prefix}
	for _, s := range schemaSQL {
		if _, err := b.exec(ctx, s); err != nil {
			return nil, fmt.Errorf("workflow tables: %w", err)
		}
	}
	client, err := river.NewClient(driver, cfg)
	if err != nil {
		return nil, err
	}
	b.client = client
	return b, nil
}

func (b *pgBackend) q() pgQ { return pgQ{b.pool, b.prefix} }

func (b *pgBackend) exec(ctx context.Context, q string, args ...any) (int64, error) {
	return b.q().exec(ctx, q, args...)
}

func (b *pgBackend) queryRow(ctx context.Context, q string, args ...any) scanner {
	return b.q().queryRow(ctx, q, args...)
}

func (b *pgBackend) query(ctx context.Context, q string, args ...any) (rows, error) {
	return b.q().query(ctx, q, args...)
}

func (b *pgBackend) inTx(ctx context.Context, fn func(q querier, insert inserter) error) error {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	err = fn(pgQ{tx, b.prefix}, func(args river.JobArgs, opts *river.InsertOpts) error {
		_, err := b.client.InsertTx(ctx, tx, args, opts)
		return err
	})
	if err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (b *pgBackend) insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	_, err := b.client.Insert(ctx, args, opts)
	return err
}

func (b *pgBackend) start(ctx context.Context) error { return b.client.Start(ctx) }
func (b *pgBackend) stop(ctx context.Context) error  { return b.client.Stop(ctx) }

func (b *pgBackend) isUniqueViolation(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == "23505"
}
