package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgtest"
)

// db is one test's database: the server's URL and a schema of its own.
type db struct {
	url, schema string
}

func newDB(t testing.TB) db {
	t.Helper()
	u := pgtest.URL(t)
	return db{url: u, schema: pgtest.Schema(t, u)}
}

// open opens a store on the test's schema, as one gateway process would,
// and closes it when the test ends.
func (d db) open(t testing.TB, opts postgres.Options) *postgres.Store {
	t.Helper()
	opts.Schema = d.schema
	s, err := postgres.Open(context.Background(), d.url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	audittest.Exercise(t, func(t *testing.T) audit.Store {
		return newDB(t).open(t, postgres.Options{})
	})
}

func TestPolicyConformance(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	audittest.ExercisePolicies(t, func(t *testing.T) (audit.PolicyStore, func() audit.PolicyStore) {
		d := newDB(t)
		s := d.open(t, postgres.Options{})
		return s, func() audit.PolicyStore {
			require.NoError(t, s.Close())
			return d.open(t, postgres.Options{})
		}
	})
}

func TestSharedByThreeProcesses(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	audittest.ExerciseShared(t, func(t *testing.T, n int) []audit.Store {
		d := newDB(t)
		stores := make([]audit.Store, n)
		for i := range stores {
			stores[i] = d.open(t, postgres.Options{})
		}
		return stores
	})
}

func TestTamper(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	audittest.Tamper(t, func(t *testing.T) (audit.Store, audittest.Tamperer) {
		d := newDB(t)
		return d.open(t, postgres.Options{}), &tamperer{conn: pgtest.Conn(t, d.url, d.schema)}
	})
}

func TestContactSessionConformance(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	audittest.ExerciseContactSessions(t, func(t *testing.T) audittest.SessionStore {
		return newDB(t).open(t, postgres.Options{})
	})
}
