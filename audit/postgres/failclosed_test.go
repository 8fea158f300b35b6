package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgtest"
)

// PostgreSQL goes away in the middle of a load and comes back: no append is
// reported stored that is not committed, none that is committed is
// reported failed (a commit whose answer was lost is settled), none is
// stored twice, and the same store takes appends again without reopening.
func TestFailsClosedWhenPostgresIsCutOffMidLoad(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	d := newDB(t)
	proxy := pgtest.NewProxy(t, pgtest.Addr(t, d.url))
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.WithAddr(t, d.url, proxy.Addr()), postgres.Options{Schema: d.schema, MaxConns: 8})
	require.NoError(t, err)
	defer s.Close()
	l := audit.NewLog(s, audit.LogOptions{WriteTimeout: 5 * time.Second})

	type stored struct {
		trace string
		seq   int64
	}
	var (
		mu              sync.Mutex
		reported        []stored
		failed          int
		restored        atomic.Bool
		storedAfterCut  atomic.Int64
		next            atomic.Int64
		stop            = make(chan struct{})
		wg              sync.WaitGroup
		reportedStored  = func() int { mu.Lock(); defer mu.Unlock(); return len(reported) }
		reportedFailure = func() int { mu.Lock(); defer mu.Unlock(); return failed }
	)
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ev := audittest.Sample(int(next.Add(1))) // a trace id of its own
				seq, err := l.Append(ctx, ev)
				mu.Lock()
				if err == nil {
					reported = append(reported, stored{ev.TraceID, seq})
					if restored.Load() {
						storedAfterCut.Add(1)
					}
				} else {
					assert.ErrorIs(t, err, audit.ErrUnavailable)
					failed++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond) // as a client backing off
				}
			}
		})
	}

	require.Eventually(t, func() bool { return reportedStored() >= 200 }, 20*time.Second, time.Millisecond, "the load runs")
	served := proxy.Served()
	proxy.Cut()
	cutAt := time.Now()
	// Appends fail while PostgreSQL is away. But a batch whose COMMIT was
	// in flight first tries, up to its write timeout, to learn whether the
	// commit landed, and the appends behind it wait: PostgreSQL comes back
	// well within that timeout, so the batch learns its outcome (and
	// reports it) rather than giving up on an unknown one.
	require.Eventually(t, func() bool { return reportedFailure() > 0 || time.Since(cutAt) > 2*time.Second }, 15*time.Second, time.Millisecond)
	proxy.Restore()
	restored.Store(true)
	require.Eventually(t, func() bool { return storedAfterCut.Load() >= 200 }, 20*time.Second, time.Millisecond,
		"the same store takes appends again")
	close(stop)
	wg.Wait()
	require.NoError(t, l.Close())
	assert.Greater(t, proxy.Served(), served, "the store connected anew")

	// What PostgreSQL holds, read around the proxy.
	direct := d.open(t, postgres.Options{})
	recs, err := direct.Records(ctx, 0, 1<<20)
	require.NoError(t, err)
	seqsOf := map[string][]int64{}
	for _, r := range recs {
		ev, err := r.Event()
		require.NoError(t, err)
		seqsOf[ev.TraceID] = append(seqsOf[ev.TraceID], r.Seq)
	}
	for trace, seqs := range seqsOf {
		assert.Len(t, seqs, 1, "event %s stored once", trace)
	}
	for _, r := range reported {
		assert.Equal(t, []int64{r.seq}, seqsOf[r.trace], "event %s was reported stored as %d", r.trace, r.seq)
	}
	assert.Len(t, recs, len(reported), "every stored event was reported stored (%d failures)", failed)
	if failed == 0 {
		t.Log("the cut caught a COMMIT in flight, which was settled once PostgreSQL was back: no append failed")
	}
	t.Logf("%d appends stored, %d failed", len(reported), failed)

	_, verifier := audittest.NewSigner(t)
	rep, err := audit.Verify(ctx, direct, verifier, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(len(recs)), rep.Tree.N)
}

// The connection breaks at COMMIT, before its answer: Append finds out what
// became of the transaction (waiting while PostgreSQL cannot be reached)
// and never reports stored what is not, nor stores anything twice. A
// store's first append reads the log in a transaction of its own and ends
// it with COMMIT: settled by txid_status, and reported as it went. The
// appends after it build on the frontier the store kept, in one statement
// that commits by itself: settled by the record it inserts, once its
// server process has ended; one that did not commit is made again, on the
// log as read, on another connection.
func TestACommitWhoseAnswerIsLostIsSettled(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	tests := []struct {
		name      string
		delivered bool // the COMMIT reached the server
		refuse    time.Duration
	}{
		{"CommittedThoughTheAnswerWasLost", true, 0},
		{"CommittedAndPostgresAwayForAWhile", true, 500 * time.Millisecond},
		{"LostWithTheConnection", false, 0},
		{"LostAndPostgresAwayForAWhile", false, 500 * time.Millisecond},
	}
	for _, kept := range []bool{false, true} {
		path := map[bool]string{false: "ReadingTheLogFirst", true: "OnTheKeptFrontier"}[kept]
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				d := newDB(t)
				proxy := pgtest.NewProxy(t, pgtest.Addr(t, d.url))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				dsn := pgtest.WithoutTLS(t, pgtest.WithAddr(t, d.url, proxy.Addr()))
				s, err := postgres.Open(ctx, dsn, postgres.Options{Schema: d.schema})
				require.NoError(t, err)
				defer s.Close()
				var before int64
				if kept {
					_, err = s.Append(ctx, []audit.Event{audittest.Sample(1)})
					require.NoError(t, err)
					before = 1
					proxy.CutAtSending([]byte(audittest.Sample(2).TraceID), tt.delivered, tt.refuse)
				} else {
					proxy.CutAtCommit(tt.delivered, tt.refuse)
				}

				seqs, err := s.Append(ctx, []audit.Event{audittest.Sample(2), audittest.Sample(3)})
				require.Equal(t, 1, proxy.CommitsCut(), "the connection broke at COMMIT")
				direct := d.open(t, postgres.Options{})
				st, serr := direct.Stats(ctx)
				require.NoError(t, serr)
				switch {
				case kept:
					require.NoError(t, err, "committed, or made again once it was known not to be")
					assert.Equal(t, []int64{2, 3}, seqs)
					assert.Equal(t, int64(3), st.LastSeq)
					// Which it was: an append made again reads the log first.
					madeAgain := postgres.KeptAppends(s) == 0
					t.Logf("the statement cut had committed: %v", !madeAgain)
					switch {
					case !tt.delivered:
						assert.True(t, madeAgain, "a statement that never reached the server did not commit")
					case tt.refuse > 0:
						// pgx, losing the connection, asks the server to
						// cancel the statement; with PostgreSQL away the
						// request does not get there.
						assert.False(t, madeAgain, "the statement delivered committed")
					}
				case tt.delivered:
					require.NoError(t, err, "the transaction committed")
					assert.Equal(t, []int64{1, 2}, seqs)
					assert.Equal(t, int64(2), st.LastSeq)
				default:
					require.ErrorIs(t, err, audit.ErrUnavailable)
					assert.Equal(t, before, st.LastSeq, "nothing of the lost transaction was stored")
				}
				recs, err := direct.Records(ctx, 0, 100)
				require.NoError(t, err)
				traces := map[string]int{}
				for _, r := range recs {
					ev, err := r.Event()
					require.NoError(t, err)
					traces[ev.TraceID]++
				}
				for trace, n := range traces {
					assert.Equal(t, 1, n, "event %s stored once", trace)
				}

				seqs, err = s.Append(ctx, []audit.Event{audittest.Sample(4)})
				require.NoError(t, err, "the store goes on")
				assert.Equal(t, []int64{st.LastSeq + 1}, seqs)
				_, verifier := audittest.NewSigner(t)
				rep, err := audit.Verify(ctx, direct, verifier, audit.VerifyOptions{})
				require.NoError(t, err, "the tree holds what the log holds")
				assert.Equal(t, st.LastSeq+1, rep.Tree.N)
			})
		}
	}
}
