package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgtest"
)

func TestIsDSN(t *testing.T) {
	tests := []struct {
		dsn  string
		want bool
	}{
		{"postgres://klantbeeld@db.gemeente.example/audit", true},
		{"postgresql://klantbeeld@db.gemeente.example/audit", true},
		{"sqlite://data/audit.db", false},
		{"host=db user=klantbeeld", false},
		{"", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, postgres.IsDSN(tt.dsn), tt.dsn)
	}
}

func TestOpenErrorsNeverShowThePassword(t *testing.T) {
	const secret = "s3cr%t-Pa55"
	tests := []struct {
		name        string
		dsn         string
		unavailable bool
	}{
		{"Unreachable", "postgres://klantbeeld:" + url.QueryEscape(secret) + "@127.0.0.1:1/audit?connect_timeout=2", true},
		{"InvalidPort", "postgres://klantbeeld:" + url.QueryEscape(secret) + "@127.0.0.1:notaport/audit", false},
		{"InvalidOption", "postgres://klantbeeld:" + url.QueryEscape(secret) + "@127.0.0.1/audit?sslmode=sometimes", false},
		{"NotAURL", "postgres://klantbeeld:" + secret + "@[::1/audit", false},
		{"OtherScheme", "mysql://klantbeeld:" + secret + "@127.0.0.1/audit", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := postgres.Open(context.Background(), tt.dsn, postgres.Options{})
			require.Error(t, err)
			for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
				assert.NotContains(t, err.Error(), form)
			}
			assert.Equal(t, tt.unavailable, errors.Is(err, audit.ErrUnavailable), "%v", err)
		})
	}
}

func TestReopenKeepsEventsTreeAndNumbering(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	s := d.open(t, postgres.Options{})
	_, err := s.Append(ctx, []audit.Event{audittest.Sample(1), audittest.Sample(2)})
	require.NoError(t, err)
	s.Close()

	s = d.open(t, postgres.Options{})
	seqs, err := s.Append(ctx, []audit.Event{audittest.Sample(3)})
	require.NoError(t, err)
	assert.Equal(t, []int64{3}, seqs)
	_, verifier := audittest.NewSigner(t)
	rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(3), rep.Tree.N)
}

func TestConcurrentOpensMakeTheSchemaAndMigrateOnce(t *testing.T) {
	u := pgtest.URL(t)
	t.Parallel()
	schema := pgtest.Schema(t, u)
	pgtest.Exec(t, u, "", "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize())
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), u, postgres.Options{Schema: schema})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	var versions []int64
	rows, err := pgtest.Conn(t, u, schema).Query(context.Background(), `SELECT version_id FROM audit_schema_version ORDER BY id`)
	require.NoError(t, err)
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5}, versions, "goose's own start row and each migration, once")
}

func TestNoRoleKeepsTheLoginRole(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d := newDB(t)
	s := d.open(t, postgres.Options{Role: postgres.NoRole})
	var user, login string
	require.NoError(t, postgres.QueryRow(context.Background(), s, `SELECT current_user, session_user`).Scan(&user, &login))
	assert.Equal(t, login, user)
}

// An owner that is not a superuser, as in production: it migrates, becomes
// a member of the application role and works as that role.
func TestAnOwnerWithoutSuperuserMigratesAndWorksAsTheApplicationRole(t *testing.T) {
	u := pgtest.URL(t)
	t.Parallel()
	schema := pgtest.Schema(t, u)
	owner, password := schema+"_owner", "pw-"+schema
	pgtest.Exec(t, u, "", fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'", owner, password))
	t.Cleanup(func() {
		pgtest.Exec(t, u, "", "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		pgtest.Exec(t, u, "", "DROP OWNED BY "+owner)
		pgtest.Exec(t, u, "", "DROP ROLE "+owner)
	})
	pgtest.Exec(t, u, "", fmt.Sprintf("ALTER SCHEMA %s OWNER TO %s", schema, owner))
	ownerURL, err := url.Parse(u)
	require.NoError(t, err)
	ownerURL.User = url.UserPassword(owner, password)

	ctx := context.Background()
	s, err := postgres.Open(ctx, ownerURL.String(), postgres.Options{Schema: schema})
	require.NoError(t, err)
	defer s.Close()
	var user string
	require.NoError(t, postgres.QueryRow(ctx, s, `SELECT current_user`).Scan(&user))
	assert.Equal(t, postgres.AppRole, user)
	_, err = s.Append(ctx, []audit.Event{audittest.Sample(1)})
	require.NoError(t, err)
	require.NoError(t, s.CheckAppendOnly(ctx))
	require.NoError(t, s.Ping(ctx))
}

func TestPingSaysWhetherAWriteCanBeTakenNow(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	tests := []struct {
		name string
		// hold takes what keeps writes out, on conn, in a transaction that
		// stays open until the test ends.
		hold func(t *testing.T, tx pgx.Tx, s *postgres.Store)
	}{
		{"WriteLockHeldByAnotherProcess", func(t *testing.T, tx pgx.Tx, s *postgres.Store) {
			_, err := tx.Exec(context.Background(), `SELECT pg_advisory_xact_lock($1)`, postgres.AppendLockKey(s))
			require.NoError(t, err)
		}},
		{"TableLockedByAMigration", func(t *testing.T, tx pgx.Tx, _ *postgres.Store) {
			_, err := tx.Exec(context.Background(), `LOCK TABLE audit_tree_hashes IN ACCESS EXCLUSIVE MODE`)
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDB(t)
			s := d.open(t, postgres.Options{LockWait: 100 * time.Millisecond})
			ctx := context.Background()
			require.NoError(t, s.Ping(ctx))
			tx, err := pgtest.Conn(t, d.url, d.schema).Begin(ctx)
			require.NoError(t, err)
			tt.hold(t, tx, s)
			began := time.Now()
			require.ErrorIs(t, s.Ping(ctx), audit.ErrUnavailable)
			assert.Less(t, time.Since(began), 2*time.Second, "Ping waits only briefly")
			require.NoError(t, tx.Rollback(ctx))
			require.NoError(t, s.Ping(ctx), "writable again")
		})
	}

	t.Run("ReadOnlyServer", func(t *testing.T) {
		t.Parallel()
		d := newDB(t)
		d.open(t, postgres.Options{}) // migrated
		ro, err := url.Parse(d.url)
		require.NoError(t, err)
		q := ro.Query()
		q.Set("default_transaction_read_only", "on")
		ro.RawQuery = q.Encode()
		s, err := postgres.Open(context.Background(), ro.String(), postgres.Options{Schema: d.schema})
		require.NoError(t, err)
		defer s.Close()
		err = s.Ping(context.Background())
		require.ErrorIs(t, err, audit.ErrUnavailable)
		assert.Contains(t, err.Error(), "takes no writes")
	})
}

// A process that stalls while it holds the write lock (its transaction
// left open) holds the others up only until the server ends it.
func TestAStalledWriterHoldsTheOthersUpOnlyBriefly(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	stalled := d.open(t, postgres.Options{IdleTimeout: 300 * time.Millisecond})
	other := d.open(t, postgres.Options{})
	tx, err := postgres.Begin(ctx, stalled)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgres.AppendLockKey(stalled))
	require.NoError(t, err)

	began := time.Now()
	appendCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	seqs, err := other.Append(appendCtx, []audit.Event{audittest.Sample(1)})
	require.NoError(t, err)
	assert.Equal(t, []int64{1}, seqs)
	assert.Less(t, time.Since(began), 3*time.Second)
	assert.Error(t, tx.Commit(ctx), "the server ended the stalled transaction")
}

// The store opens its connections before it is asked anything, and keeps
// them: the first requests after a quiet spell do not wait for
// connections (and their SET ROLE) to be made.
func TestTheStoreKeepsItsConnectionsOpen(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	s := newDB(t).open(t, postgres.Options{MaxConns: 3})
	require.Eventually(t, func() bool { return postgres.OpenConns(s) == 3 }, 10*time.Second, 10*time.Millisecond,
		"the pool holds its connections without being asked anything")
}
