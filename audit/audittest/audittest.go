// Package audittest holds the conformance suites every audit.Store must pass
// (Exercise, ExerciseShared and, with an engine's Tamperer, Tamper), and
// Memory, an in-memory store that tests can make fail.
package audittest

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
)

// Exercise runs the conformance suite against stores made by open. Each
// subtest gets a new, empty store.
func Exercise(t *testing.T, open func(t *testing.T) audit.Store) {
	ctx := context.Background()

	t.Run("AppendAssignsConsecutiveSequenceNumbers", func(t *testing.T) {
		s := open(t)
		seqs, err := s.Append(ctx, []audit.Event{Sample(1), Sample(2), Sample(3)})
		require.NoError(t, err)
		assert.Equal(t, []int64{1, 2, 3}, seqs)
		seqs, err = s.Append(ctx, []audit.Event{Sample(4)})
		require.NoError(t, err)
		assert.Equal(t, []int64{4}, seqs)
	})

	t.Run("AppendIgnoresTheEventsOwnSeq", func(t *testing.T) {
		s := open(t)
		ev := Sample(1)
		ev.Seq = 99
		seqs, err := s.Append(ctx, []audit.Event{ev})
		require.NoError(t, err)
		assert.Equal(t, []int64{1}, seqs)
	})

	t.Run("RecordKeepsTheExactBytesOfTheEvent", func(t *testing.T) {
		s := open(t)
		want := Sample(7)
		want.Time = want.Time.In(time.FixedZone("CET", 3600)) // stored as UTC
		seqs, err := s.Append(ctx, []audit.Event{Sample(6), want})
		require.NoError(t, err)
		got, err := s.Record(ctx, seqs[1])
		require.NoError(t, err)
		want.Seq = seqs[1]
		data, err := audit.EncodeRecord(want)
		require.NoError(t, err)
		assert.Equal(t, audit.Record{Seq: 2, Data: data}, got, "the stored bytes are EncodeRecord's, seq included")
		ev, err := got.Event()
		require.NoError(t, err)
		assert.True(t, want.Time.Equal(ev.Time), "time %v, want %v", ev.Time, want.Time)
		ev.Time = want.Time
		assert.Equal(t, want, ev)
	})

	t.Run("RecordUnknownIsNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.Record(ctx, 1)
		require.ErrorIs(t, err, audit.ErrNotFound)
		appendN(t, s, 2)
		_, err = s.Record(ctx, 3)
		require.ErrorIs(t, err, audit.ErrNotFound)
	})

	t.Run("RecordsPageInOrder", func(t *testing.T) {
		s := open(t)
		appendN(t, s, 5)
		page, err := s.Records(ctx, 0, 2)
		require.NoError(t, err)
		assert.Equal(t, []int64{1, 2}, seqsOf(page))
		page, err = s.Records(ctx, 2, 10)
		require.NoError(t, err)
		assert.Equal(t, []int64{3, 4, 5}, seqsOf(page))
		page, err = s.Records(ctx, 5, 10)
		require.NoError(t, err)
		assert.Empty(t, page)
	})

	t.Run("StoredTreeIsTheTreeOfTheRecords", func(t *testing.T) {
		s := open(t)
		// Batches of odd sizes cross subtree boundaries of every height.
		for _, n := range []int{1, 2, 5, 1, 8, 3, 13} {
			appendN(t, s, n)
		}
		recs := allRecords(t, s)
		ref := reference(t, recs)
		require.Len(t, recs, 33)
		st, err := s.Stats(ctx)
		require.NoError(t, err)
		assert.Equal(t, audit.Stats{LastSeq: 33, Events: 33, Hashes: tlog.StoredHashCount(33)}, st)
		idx := make([]int64, len(ref.hashes))
		for i := range idx {
			idx[i] = int64(i)
		}
		stored, err := s.ReadHashes(ctx, idx)
		require.NoError(t, err)
		assert.Equal(t, ref.hashes, stored, "every stored hash as tlog.StoredHashes computes it")
		for _, r := range recs {
			leaf, err := s.ReadHashes(ctx, []int64{tlog.StoredHashIndex(0, r.Seq-1)})
			require.NoError(t, err)
			assert.Equal(t, tlog.RecordHash(r.Data), leaf[0], "leaf %d is the record hash of the stored bytes", r.Seq)
		}
		root, err := audit.TreeHash(ctx, s, 33)
		require.NoError(t, err)
		assert.Equal(t, ref.root(t, 33), root)
	})

	t.Run("ReadHashesOfAnUnstoredIndexIsNotFound", func(t *testing.T) {
		s := open(t)
		appendN(t, s, 3)
		_, err := s.ReadHashes(ctx, []int64{0, tlog.StoredHashCount(3)})
		require.ErrorIs(t, err, audit.ErrNotFound)
	})

	t.Run("ReadHashesAnswersInTheOrderAsked", func(t *testing.T) {
		s := open(t)
		appendN(t, s, 6)
		all, err := s.ReadHashes(ctx, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8})
		require.NoError(t, err)
		got, err := s.ReadHashes(ctx, []int64{8, 2, 2, 0})
		require.NoError(t, err)
		assert.Equal(t, []tlog.Hash{all[8], all[2], all[2], all[0]}, got)
	})

	t.Run("InclusionProofsVerifyWithTlogAlone", func(t *testing.T) {
		s := open(t)
		appendN(t, s, 4)
		appendN(t, s, 9)
		recs := allRecords(t, s)
		ref := reference(t, recs)
		for _, size := range []int64{1, 2, 7, 8, 13} {
			root := ref.root(t, size)
			for _, r := range recs[:size] {
				proof, err := audit.InclusionProof(ctx, s, r.Seq, size)
				require.NoError(t, err)
				require.NoError(t, tlog.CheckRecord(proof, size, root, r.Seq-1, tlog.RecordHash(r.Data)), "event %d in tree %d", r.Seq, size)
				other := slices.Clone(r.Data)
				other[len(other)-2] ^= 1
				assert.Error(t, tlog.CheckRecord(proof, size, root, r.Seq-1, tlog.RecordHash(other)), "a changed record fails its proof")
			}
		}
		_, err := audit.InclusionProof(ctx, s, 14, 13)
		require.ErrorIs(t, err, audit.ErrNotFound)
		_, err = audit.InclusionProof(ctx, s, 3, 14)
		require.ErrorIs(t, err, audit.ErrNotFound, "no proof in a tree larger than the log")
	})

	t.Run("ConsistencyProofsVerifyWithTlogAlone", func(t *testing.T) {
		s := open(t)
		appendN(t, s, 11)
		ref := reference(t, allRecords(t, s))
		for from := int64(1); from <= 11; from++ {
			for to := from; to <= 11; to++ {
				proof, err := audit.ConsistencyProof(ctx, s, from, to)
				require.NoError(t, err)
				require.NoError(t, tlog.CheckTree(proof, to, ref.root(t, to), from, ref.root(t, from)), "%d to %d", from, to)
			}
		}
		_, err := audit.ConsistencyProof(ctx, s, 5, 4)
		require.ErrorIs(t, err, audit.ErrNotFound)
		_, err = audit.ConsistencyProof(ctx, s, 5, 12)
		require.ErrorIs(t, err, audit.ErrNotFound, "no proof for a tree larger than the log")
	})

	t.Run("CheckpointsAreKeptInOrder", func(t *testing.T) {
		s := open(t)
		_, err := s.LatestCheckpoint(ctx)
		require.ErrorIs(t, err, audit.ErrNotFound)
		appendN(t, s, 5)
		var want []audit.Checkpoint
		for i, size := range []int64{2, 5, 3, 5} {
			c := audit.Checkpoint{Size: size, Note: fmt.Appendf(nil, "note %d\n", i)}
			id, err := s.AddCheckpoint(ctx, c)
			require.NoError(t, err)
			c.ID = int64(i + 1)
			assert.Equal(t, c.ID, id)
			want = append(want, c)
		}
		got, err := s.Checkpoints(ctx, 0, 10)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		got, err = s.Checkpoints(ctx, 1, 2)
		require.NoError(t, err)
		assert.Equal(t, want[1:3], got)
		got, err = s.Checkpoints(ctx, 4, 2)
		require.NoError(t, err)
		assert.Empty(t, got)
		latest, err := s.LatestCheckpoint(ctx)
		require.NoError(t, err)
		assert.Equal(t, want[3], latest, "the largest tree, the newest among equals")
	})

	t.Run("CheckpointerSignsTheStoredTreeWhenItGrew", func(t *testing.T) {
		s := open(t)
		signer, verifier := NewSigner(t)
		cp := audit.NewCheckpointer(s, signer, audit.CheckpointerOptions{Interval: -1})
		_, err := cp.Checkpoint(ctx)
		require.ErrorIs(t, err, audit.ErrNotFound, "no checkpoint of an empty log")
		appendN(t, s, 6)
		c1, err := cp.Checkpoint(ctx)
		require.NoError(t, err)
		tree, err := audit.OpenCheckpoint(c1.Note, verifier)
		require.NoError(t, err)
		ref := reference(t, allRecords(t, s))
		assert.Equal(t, tlog.Tree{N: 6, Hash: ref.root(t, 6)}, tree)
		again, err := cp.Checkpoint(ctx)
		require.NoError(t, err)
		assert.Equal(t, c1, again, "no new checkpoint while the tree did not grow")
		appendN(t, s, 1)
		require.NoError(t, cp.Close(), "Close makes the last one")
		latest, err := s.LatestCheckpoint(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(7), latest.Size)
		assert.Equal(t, int64(2), latest.ID)
	})

	t.Run("SearchFiltersNewestFirst", func(t *testing.T) {
		s := open(t)
		base := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
		var evs []audit.Event
		for i := range 12 {
			ev := Sample(i)
			ev.Time = base.Add(time.Duration(i) * time.Minute)
			ev.Subject = []string{"p-anna", "p-bert", "p-cees"}[i%3]
			ev.Actor.Sub = []string{"emp-1", "emp-2"}[i%2]
			ev.Actor.Department = []string{"burgerzaken", "belastingen", "sociaal"}[i%3]
			ev.Purpose = []string{"reisdocumenten", "inzage"}[i/6]
			ev.Decision = []string{audit.DecisionAllow, audit.DecisionDeny, audit.DecisionAllow, audit.DecisionError}[i%4]
			evs = append(evs, ev)
		}
		_, err := s.Append(ctx, evs)
		require.NoError(t, err)
		tests := []struct {
			name   string
			filter audit.Filter
			want   []int64
		}{
			{"everything", audit.Filter{}, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{"subject", audit.Filter{Subject: "p-bert"}, []int64{11, 8, 5, 2}},
			{"actor", audit.Filter{Actor: "emp-2"}, []int64{12, 10, 8, 6, 4, 2}},
			{"department", audit.Filter{Department: "sociaal"}, []int64{12, 9, 6, 3}},
			{"purpose", audit.Filter{Purpose: "inzage"}, []int64{12, 11, 10, 9, 8, 7}},
			{"decision", audit.Filter{Decision: audit.DecisionDeny}, []int64{10, 6, 2}},
			{"from inclusive", audit.Filter{From: base.Add(9 * time.Minute)}, []int64{12, 11, 10}},
			{"to exclusive", audit.Filter{To: base.Add(2 * time.Minute)}, []int64{2, 1}},
			{"from and to in another zone", audit.Filter{From: base.Add(3 * time.Minute).In(time.FixedZone("CET", 3600)), To: base.Add(5*time.Minute + time.Nanosecond)}, []int64{6, 5, 4}},
			{"all together", audit.Filter{Subject: "p-anna", Actor: "emp-2", Purpose: "inzage", Decision: audit.DecisionAllow, Department: "burgerzaken"}, nil},
			{"several", audit.Filter{Subject: "p-anna", Actor: "emp-1", Decision: audit.DecisionAllow}, []int64{7, 1}},
			{"before the cursor", audit.Filter{Subject: "p-cees", Before: 9}, []int64{6, 3}},
			{"limited", audit.Filter{Limit: 2}, []int64{12, 11}},
			{"nobody", audit.Filter{Subject: "p-nobody"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Search(ctx, tt.filter)
				require.NoError(t, err)
				assert.Equal(t, tt.want, seqsOf(got))
				for _, r := range got {
					want, err := s.Record(ctx, r.Seq)
					require.NoError(t, err)
					assert.Equal(t, want, r, "search returns the stored record")
				}
			})
		}
	})

	t.Run("SearchCursorVisitsEveryMatchOnce", func(t *testing.T) {
		s := open(t)
		appendN(t, s, 23)
		var seen []int64
		f := audit.Filter{Department: "burgerzaken", Limit: 5}
		for range 10 {
			page, err := s.Search(ctx, f)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			assert.LessOrEqual(t, len(page), 5)
			seen = append(seen, seqsOf(page)...)
			f.Before = page[len(page)-1].Seq
		}
		want := make([]int64, 0, 23)
		for seq := int64(23); seq >= 1; seq-- {
			want = append(want, seq)
		}
		assert.Equal(t, want, seen)
	})

	t.Run("SearchLimitIsCapped", func(t *testing.T) {
		s := open(t)
		appendN(t, s, audit.DefaultSearchLimit+1)
		page, err := s.Search(ctx, audit.Filter{})
		require.NoError(t, err)
		assert.Len(t, page, audit.DefaultSearchLimit, "limit 0 is the default")
		assert.Equal(t, audit.MaxSearchLimit, audit.Filter{Limit: 1 << 20}.PageSize())
	})

	t.Run("AppendOnlyTriggersAreInPlace", func(t *testing.T) {
		require.NoError(t, open(t).CheckAppendOnly(ctx))
	})

	t.Run("ConcurrentAppendsGetUniqueGaplessNumbers", func(t *testing.T) {
		s := open(t)
		var mu sync.Mutex
		var all []int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 10 {
					seqs, err := s.Append(ctx, []audit.Event{Sample(g*100 + i)})
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					all = append(all, seqs...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		assertGapless(t, all, 80)
	})

	t.Run("SeveralLogsOnOneStoreMakeOneVerifiableLog", func(t *testing.T) {
		s := open(t)
		appendConcurrently(t, []audit.Store{s, s, s}, 12, 10)
		signer, verifier := NewSigner(t)
		require.NoError(t, audit.NewCheckpointer(s, signer, audit.CheckpointerOptions{Interval: -1}).Close())
		rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
		require.NoError(t, err)
		assert.Equal(t, int64(120), rep.Tree.N)
	})

	t.Run("UntouchedLogVerifies", func(t *testing.T) {
		s := open(t)
		signer, verifier := NewSigner(t)
		cp := audit.NewCheckpointer(s, signer, audit.CheckpointerOptions{Interval: -1})
		var witness []byte
		for _, n := range []int{3, 1, 7, 5} {
			appendN(t, s, n)
			c, err := cp.Checkpoint(ctx)
			require.NoError(t, err)
			if c.Size == 11 {
				witness = c.Note
			}
		}
		appendN(t, s, 2) // after the last checkpoint
		var progress []int64
		rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{Witness: witness, BatchSize: 4, Progress: func(done, total int64) {
			assert.Equal(t, int64(18), total)
			progress = append(progress, done)
		}})
		require.NoError(t, err)
		ref := reference(t, allRecords(t, s))
		assert.Equal(t, audit.VerifyReport{Tree: tlog.Tree{N: 18, Hash: ref.root(t, 18)}, Checkpoints: 4, Latest: 16}, rep)
		assert.Equal(t, []int64{4, 8, 12, 16, 18}, progress)
		require.NoError(t, audit.CheckIntegrity(ctx, s, verifier, audit.IntegrityOptions{Witness: witness}))
		require.NoError(t, audit.CheckIntegrity(ctx, s, verifier, audit.IntegrityOptions{Witness: witness, Quick: true}))
	})

	t.Run("EmptyLogVerifies", func(t *testing.T) {
		s := open(t)
		_, verifier := NewSigner(t)
		rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
		require.NoError(t, err)
		assert.Zero(t, rep.Tree.N)
		require.NoError(t, audit.CheckIntegrity(ctx, s, verifier, audit.IntegrityOptions{}))
	})

	t.Run("PingWhenOpen", func(t *testing.T) {
		require.NoError(t, open(t).Ping(ctx))
	})

	t.Run("ClosedStoreIsUnavailable", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Close())
		_, err := s.Append(ctx, []audit.Event{Sample(1)})
		require.ErrorIs(t, err, audit.ErrUnavailable)
		require.ErrorIs(t, s.Ping(ctx), audit.ErrUnavailable)
		_, err = s.Record(ctx, 1)
		require.ErrorIs(t, err, audit.ErrUnavailable)
	})
}

// ExerciseShared checks what several processes sharing one database see:
// open returns n stores on one new, empty database, each as another
// process would open it. Appends through a Log on each (and a Checkpointer
// on each) make one gap-free sequence and one tree that verifies.
func ExerciseShared(t *testing.T, open func(t *testing.T, n int) []audit.Store) {
	ctx := context.Background()
	stores := open(t, 3)
	signer, verifier := NewSigner(t)
	var cps []*audit.Checkpointer
	for _, s := range stores {
		cps = append(cps, audit.NewCheckpointer(s, signer, audit.CheckpointerOptions{Interval: 5 * time.Millisecond}))
	}
	appendConcurrently(t, stores, 16, 25)
	for _, c := range cps {
		require.NoError(t, c.Close())
	}
	for _, s := range stores {
		rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
		require.NoError(t, err)
		assert.Equal(t, int64(400), rep.Tree.N)
		assert.Equal(t, int64(400), rep.Latest, "the last Close checkpointed the whole tree")
	}
}

// appendConcurrently appends perWriter events from each of writers
// goroutines through one Log per store, and checks the numbers given.
func appendConcurrently(t *testing.T, stores []audit.Store, writers, perWriter int) {
	t.Helper()
	var logs []*audit.Log
	for _, s := range stores {
		logs = append(logs, audit.NewLog(s, audit.LogOptions{}))
	}
	var mu sync.Mutex
	var all []int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			l := logs[w%len(logs)]
			for i := range perWriter {
				seq, err := l.Append(context.Background(), Sample(w*1000+i))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				all = append(all, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, l := range logs {
		require.NoError(t, l.Close())
	}
	assertGapless(t, all, writers*perWriter)
}

func assertGapless(t *testing.T, seqs []int64, n int) {
	t.Helper()
	seqs = slices.Sorted(slices.Values(seqs))
	require.Len(t, seqs, n)
	for i, seq := range seqs {
		require.Equal(t, int64(i+1), seq, "sequence numbers are 1..%d without gaps or doubles", n)
	}
}

func appendN(t *testing.T, s audit.Store, n int) []int64 {
	t.Helper()
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = Sample(i)
	}
	seqs, err := s.Append(context.Background(), evs)
	require.NoError(t, err)
	return seqs
}

func allRecords(t *testing.T, s audit.Store) []audit.Record {
	t.Helper()
	recs, err := s.Records(context.Background(), 0, 1<<20)
	require.NoError(t, err)
	return recs
}

// referenceTree is the tree of records computed by tlog alone, to check the
// stores and audit's helpers against.
type referenceTree struct{ hashes []tlog.Hash }

func reference(t *testing.T, recs []audit.Record) referenceTree {
	t.Helper()
	var ref referenceTree
	for i, r := range recs {
		hs, err := tlog.StoredHashes(int64(i), r.Data, ref)
		require.NoError(t, err)
		ref.hashes = append(ref.hashes, hs...)
	}
	return ref
}

func (r referenceTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = r.hashes[x]
	}
	return out, nil
}

func (r referenceTree) root(t *testing.T, n int64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(n, r)
	require.NoError(t, err)
	return h
}

func seqsOf(recs []audit.Record) []int64 {
	if len(recs) == 0 {
		return nil
	}
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// NewSigner makes a checkpoint signing key for a test and its verifier.
func NewSigner(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, audit.DefaultOrigin)
	require.NoError(t, err)
	s, err := note.NewSigner(skey)
	require.NoError(t, err)
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	return s, v
}

// Sample is a fully populated event, distinct per n.
func Sample(n int) audit.Event {
	return audit.Event{
		Time:               time.Date(2026, 11, 23, 10, 0, n%60, 123456789, time.UTC),
		TraceID:            fmt.Sprintf("%032x", n+1),
		SpanID:             fmt.Sprintf("%016x", n+1),
		ForeignOperation:   &audit.ForeignOperation{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", FSCTransactionID: "fsc-1"},
		Operation:          "POST /v1/resident-views",
		Actor:              audit.Actor{Sub: fmt.Sprintf("emp-%d", n), Department: "burgerzaken", Roles: []string{"medewerker"}},
		Purpose:            "reisdocumenten",
		ProcessingActivity: "https://register.gemeente.example/verwerkingsactiviteiten/burza-reisdocumenten",
		Subject:            fmt.Sprintf("%064x", n),
		Context:            &audit.Context{Type: "klantcontact", ID: "b0000000-0000-4000-8000-000000000101"},
		Decision:           audit.DecisionAllow,
		Reasons:            []string{`purpose "reisdocumenten" is granted to department "burgerzaken"`},
		PolicyVersion:      "sha256:abc",
		Sources: []audit.SourceAccess{
			{Source: "brp", Status: "ok", Called: true, Fields: []string{"naam"}, Records: 1},
			{Source: "zaken", Status: "ok", Called: true, Fields: []string{"identificatie"}, Records: 2, Withheld: 1},
		},
		Status: 200,
	}
}
