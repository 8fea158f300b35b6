package sqlite

import (
	"context"
	"database/sql"
)

// OpenRaw opens the file with no migrations and no checks, as an operator's
// own SQL client would.
func OpenRaw(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
}

// MigrateTo makes or brings the log at path up to version and no further,
// as a gateway of that schema version left it.
func MigrateTo(ctx context.Context, path string, version int64) error {
	db, err := sql.Open("sqlite", dsn(path, 5000))
	if err != nil {
		return err
	}
	defer db.Close()
	return migrateTo(ctx, db, version)
}
