package sqlite

import "database/sql"

// OpenRaw opens the file with no migrations and no checks, as an operator's
// own SQL client would.
func OpenRaw(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
}
