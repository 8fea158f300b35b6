package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
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

// A process appends in one round trip before the COMMIT while it is the
// only one appending; when another process appended meanwhile, its append
// is still made, with the log's state read first, and the one round trip
// comes back once the log is again as it left it. Nothing of a refused
// attempt is stored: the numbering stays gap-free and the tree verifies.
func TestAnAppendAfterAnotherProcesssIsBuiltOnTheLog(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	d := newDB(t)
	a, b := d.open(t, postgres.Options{}), d.open(t, postgres.Options{})
	n := 0
	appendTo := func(s *postgres.Store, events int) []int64 {
		t.Helper()
		batch := make([]audit.Event, events)
		for i := range batch {
			n++
			batch[i] = audittest.Sample(n)
		}
		seqs, err := s.Append(ctx, batch)
		require.NoError(t, err)
		return seqs
	}

	assert.Equal(t, []int64{1, 2}, appendTo(a, 2))
	assert.Equal(t, int64(0), postgres.KeptAppends(a), "a's first append reads the log")
	assert.Equal(t, []int64{3}, appendTo(a, 1))
	assert.Equal(t, int64(1), postgres.KeptAppends(a), "then a builds on what it keeps")

	assert.Equal(t, []int64{4, 5, 6}, appendTo(b, 3))
	assert.Equal(t, []int64{7}, appendTo(a, 1), "a finds b's events and numbers after them")
	assert.Equal(t, int64(1), postgres.KeptAppends(a))
	assert.Equal(t, []int64{8, 9}, appendTo(a, 2), "a reads the log once more, and finds it as it left it")
	assert.Equal(t, int64(1), postgres.KeptAppends(a))
	assert.Equal(t, []int64{10}, appendTo(a, 1))
	assert.Equal(t, int64(2), postgres.KeptAppends(a), "a builds on what it keeps again")
	assert.Equal(t, []int64{11}, appendTo(b, 1), "b, whose kept frontier is old, reads the log")

	_, verifier := audittest.NewSigner(t)
	rep, err := audit.Verify(ctx, a, verifier, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(11), rep.Tree.N)
	recs, err := a.Records(ctx, 0, 100)
	require.NoError(t, err)
	require.Len(t, recs, 11)
	for i, r := range recs {
		ev, err := r.Event()
		require.NoError(t, err)
		assert.Equal(t, audittest.Sample(i+1).TraceID, ev.TraceID, "event %d is the %dth appended", r.Seq, i+1)
	}
}
