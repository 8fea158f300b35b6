package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/klantbeeld/klantbeeld/audit"
)

// The schema's history: goose migrations, applied in order, each once.
//
//go:embed migrations/*.sql
var migrations embed.FS

// versionTable is where goose records the migrations applied.
const versionTable = "audit_schema_version"

// prepareSchema returns the name of the log's schema: schema, or when
// empty the current schema of the connection. With migrating it makes a
// missing schema and brings it up to date as the DSN's login role;
// without, the schema must exist and is left as it is.
func prepareSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string, migrating bool) (string, error) {
	db := stdlib.OpenDB(*cfg.Copy())
	defer db.Close()
	switch {
	case schema != "" && migrating:
		if err := createSchema(ctx, db, schema); err != nil {
			return "", err
		}
	case schema != "":
		ok, err := schemaExists(ctx, db, schema)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("schema %s does not exist", schema)
		}
	default:
		var current *string
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&current); err != nil {
			return "", err
		}
		if current == nil {
			return "", errors.New("no schema of the search path exists: set Options.Schema or the DSN's search_path")
		}
		schema = *current
	}
	if !migrating {
		return schema, nil
	}
	return schema, migrate(ctx, db, schema)
}

// migrate brings schema up to date. Processes migrating at once wait for
// each other (a session advisory lock per schema). The migrations run
// once: tables and triggers that are gone from a migrated schema are not
// made again, and a schema whose version table was emptied fails (its
// tables exist).
func migrate(ctx context.Context, db *sql.DB, schema string) error {
	return migrateTo(ctx, db, schema, goose.MaxVersion)
}

// migrateTo applies the migrations up to and including version.
func migrateTo(ctx context.Context, db *sql.DB, schema string, version int64) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockKey("migrate", schema)), lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(versionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	return nil
}

// createSchema makes schema unless it exists; it needs no privilege when it
// does.
func createSchema(ctx context.Context, db *sql.DB, schema string) error {
	if ok, err := schemaExists(ctx, db, schema); err != nil || ok {
		return err
	}
	_, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	if err != nil {
		// IF NOT EXISTS still races with another process making it.
		if ok, _ := schemaExists(ctx, db, schema); ok {
			return nil
		}
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}

func schemaExists(ctx context.Context, db *sql.DB, schema string) (bool, error) {
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok)
	return ok, err
}

// passwordScrubber returns a function that removes the DSN's password from
// a text, in the forms it could appear in.
func passwordScrubber(dsn string) func(string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		// Without a parsable URL the password cannot be found: show nothing
		// that could hold it.
		return func(string) string { return "(details hidden: the DSN is not a valid URL)" }
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return func(s string) string { return s }
	}
	forms := []string{pw, url.QueryEscape(pw), url.PathEscape(pw), url.UserPassword("", pw).String()[1:]}
	return func(s string) string {
		for _, f := range forms {
			if f != "" {
				s = strings.ReplaceAll(s, f, "xxxxx")
			}
		}
		return s
	}
}

// openError is err of Open with the DSN's password removed; a server that
// cannot be reached wraps audit.ErrUnavailable. The cause is not wrapped,
// as its own text could hold the password.
func openError(scrub func(string) string, err error) error {
	msg := scrub(err.Error())
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: postgres: %s", audit.ErrUnavailable, msg)
	}
	return fmt.Errorf("audit postgres: %s", msg)
}
