package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/sqlite"
)

func open(t *testing.T) audit.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	audittest.Exercise(t, open)
}

func TestAppendOnlyTriggersRefuseUpdateAndDelete(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	_, err = s.Append(ctx, []audit.Event{audittest.Sample(1)})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// A second handle on the file, as an operator with sqlite3 would have.
	raw, err := sqlite.OpenRaw(path)
	require.NoError(t, err)
	defer raw.Close()
	for _, stmt := range []string{
		`UPDATE audit_events SET decision = 'deny' WHERE seq = 1`,
		`DELETE FROM audit_events WHERE seq = 1`,
		`DELETE FROM audit_events`,
	} {
		_, err := raw.ExecContext(ctx, stmt)
		require.Error(t, err, stmt)
		assert.Contains(t, err.Error(), "append-only", stmt)
	}
	var n int
	require.NoError(t, raw.QueryRowContext(ctx, `SELECT count(*) FROM audit_events`).Scan(&n))
	assert.Equal(t, 1, n)
}

func TestReopenKeepsEventsAndNumbering(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "audit.db")
	s, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	_, err = s.Append(ctx, []audit.Event{audittest.Sample(1), audittest.Sample(2)})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	seqs, err := s.Append(ctx, []audit.Event{audittest.Sample(3)})
	require.NoError(t, err)
	assert.Equal(t, []int64{3}, seqs)
}

func TestDatabaseFilesArePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Append(context.Background(), []audit.Event{audittest.Sample(1)})
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestPathFromDSN(t *testing.T) {
	tests := []struct {
		dsn, want string
		ok        bool
	}{
		{"sqlite://data/audit.db", "data/audit.db", true},
		{"sqlite:///var/lib/klantbeeld/audit.db", "/var/lib/klantbeeld/audit.db", true},
		{"sqlite://", "", false},
		{"postgres://x/y", "", false},
		{"sqlite://data/audit.db?mode=ro", "", false},
	}
	for _, tt := range tests {
		got, err := sqlite.PathFromDSN(tt.dsn)
		if !tt.ok {
			assert.Error(t, err, tt.dsn)
			continue
		}
		require.NoError(t, err, tt.dsn)
		assert.Equal(t, filepath.FromSlash(tt.want), got)
	}
}
