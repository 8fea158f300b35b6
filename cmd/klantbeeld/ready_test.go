package main

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit/sqlite"
)

// TestReadyzIsUnavailableWhileTheAuditStoreCannotTakeAWrite holds the
// write lock of the demo's SQLite audit log from another connection, as
// another process (a backup, a DBA's shell) would: the store can be read
// but not written, so the gateway is not ready.
func TestReadyzIsUnavailableWhileTheAuditStoreCannotTakeAWrite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.Equal(t, http.StatusOK, e.request(http.MethodGet, "/readyz", "", "", "").status, "ready before the lock")

	path, err := sqlite.PathFromDSN(e.setup.Config.Audit.DSN)
	require.NoError(t, err)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(100)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n), "the store can still be read")

	start := time.Now()
	r := e.request(http.MethodGet, "/readyz", "", "", "")
	assert.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	assert.EqualValues(t, http.StatusServiceUnavailable, r.json["status"])
	assert.Less(t, time.Since(start), 2500*time.Millisecond, "within readyz's own timeout")

	_, err = conn.ExecContext(ctx, "ROLLBACK")
	require.NoError(t, err)
	r = e.request(http.MethodGet, "/readyz", "", "", "")
	assert.Equal(t, http.StatusOK, r.status, "ready again once the lock is gone: %s", r.body)
}
