package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// VerifyError is tampering found by Verify or CheckIntegrity. It wraps
// ErrTampered.
type VerifyError struct {
	// Seq is the first sequence number that does not match (for a
	// rewrite only a checkpoint reveals: the first event after the last
	// checkpoint that still matches); 0 when the fault is in no event.
	Seq int64
	// Checkpoint is the ID of the stored checkpoint involved; 0 for none,
	// -1 for the checkpoint kept outside (the witness).
	Checkpoint int64
	// Reason says what does not match.
	Reason string
}

func (e *VerifyError) Error() string {
	switch {
	case e.Seq > 0:
		return fmt.Sprintf("audit: tampered from event %d: %s", e.Seq, e.Reason)
	case e.Checkpoint > 0:
		return fmt.Sprintf("audit: tampered: checkpoint %d: %s", e.Checkpoint, e.Reason)
	}
	return "audit: tampered: " + e.Reason
}

// Unwrap makes a VerifyError match ErrTampered.
func (e *VerifyError) Unwrap() error { return ErrTampered }

// WitnessID is VerifyError.Checkpoint for the checkpoint kept outside.
const WitnessID = -1

// VerifyOptions tune Verify. Zero values mean the defaults.
type VerifyOptions struct {
	// Witness is a signed checkpoint kept outside the database (what a
	// witness holds, or the WitnessFile of a Checkpointer); nil: none.
	Witness []byte
	// Progress is called after each batch with the events verified and
	// the total; nil: not called.
	Progress func(verified, total int64)
	// BatchSize is the number of events read at a time; 0: 4096.
	BatchSize int
}

// VerifyReport is what Verify checked.
type VerifyReport struct {
	// Tree is the tree recomputed from the rows.
	Tree tlog.Tree
	// Checkpoints is the number of stored checkpoints checked.
	Checkpoints int
	// Latest is the size of the largest checkpoint checked (the witness's
	// included), 0 when there is none.
	Latest int64
}

// checkpointTree is a checkpoint opened for comparison with the recomputed tree.
type checkpointTree struct {
	id   int64
	tree tlog.Tree
}

// Verify recomputes the whole log from its rows and checks it: every row's
// record names the row's sequence number and the numbers run 1, 2, 3, ...
// without gaps; every leaf (tlog.RecordHash of the stored bytes) and every
// tree hash above it equals the stored hash; the counts of events and hashes
// fit the last sequence number; every stored checkpoint is signed by
// verifier, its size column matches its text, and its root equals the
// recomputed root at its size — so every later checkpoint is consistent with
// every earlier one, all being prefixes of the one recomputed tree; and so
// is opts.Witness, and the log is at least as long as every checkpoint.
//
// The log is the snapshot Store.Stats gives at the start: events appended
// while Verify runs are not checked. Tampering is returned as a *VerifyError
// naming the first sequence number that does not match; store errors wrap
// ErrUnavailable.
func Verify(ctx context.Context, s Store, verifier note.Verifier, opts VerifyOptions) (VerifyReport, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 4096
	}
	// Checkpoints first: all of them then cover no more than the Stats after.
	cps, err := openCheckpoints(ctx, s, verifier)
	if err != nil {
		return VerifyReport{}, err
	}
	rep := VerifyReport{Checkpoints: len(cps)}
	st, err := s.Stats(ctx)
	if err != nil {
		return rep, err
	}
	if opts.Witness != nil {
		w, err := OpenCheckpoint(opts.Witness, verifier)
		if err != nil {
			return rep, &VerifyError{Checkpoint: WitnessID, Reason: "the checkpoint kept outside: " + err.Error()}
		}
		cps = append(cps, checkpointTree{id: WitnessID, tree: w})
	}
	slices.SortStableFunc(cps, func(a, b checkpointTree) int { return cmp.Compare(a.tree.N, b.tree.N) })
	for _, c := range cps {
		rep.Latest = max(rep.Latest, c.tree.N)
	}
	if rep.Latest > st.LastSeq {
		c := cps[len(cps)-1]
		return rep, &VerifyError{Seq: st.LastSeq + 1, Checkpoint: c.id, Reason: fmt.Sprintf("the log ends at event %d but %s covers %d events", st.LastSeq, checkpointName(c.id), c.tree.N)}
	}

	v := verification{tree: newTree(), cps: cps}
	for batch, err := range readBatches(ctx, s, st.LastSeq, opts.BatchSize) {
		if err != nil {
			return rep, err
		}
		if err := v.check(batch); err != nil {
			return rep, err
		}
		if opts.Progress != nil {
			opts.Progress(v.tree.size, st.LastSeq)
		}
	}
	if v.tree.size != st.LastSeq {
		return rep, &VerifyError{Seq: v.tree.size + 1, Reason: fmt.Sprintf("event %d is missing: the log ends at %d", v.tree.size+1, st.LastSeq)}
	}
	if err := v.checkpointsAt(st.LastSeq); err != nil {
		return rep, err
	}
	if st.Events != st.LastSeq {
		return rep, &VerifyError{Reason: fmt.Sprintf("%d event rows for sequence numbers 1 to %d", st.Events, st.LastSeq)}
	}
	if want := tlog.StoredHashCount(st.LastSeq); st.Hashes != want {
		return rep, &VerifyError{Seq: st.LastSeq + 1, Reason: fmt.Sprintf("%d tree hashes stored for %d events, want %d: events after %d are missing", st.Hashes, st.LastSeq, want, st.LastSeq)}
	}
	root, err := v.tree.root()
	if err != nil {
		return rep, err
	}
	rep.Tree = tlog.Tree{N: st.LastSeq, Hash: root}
	return rep, nil
}

func checkpointName(id int64) string {
	if id == WitnessID {
		return "the checkpoint kept outside"
	}
	return fmt.Sprintf("checkpoint %d", id)
}

// openCheckpoints reads and opens every stored checkpoint.
func openCheckpoints(ctx context.Context, s Store, verifier note.Verifier) ([]checkpointTree, error) {
	var out []checkpointTree
	var after int64
	for {
		page, err := s.Checkpoints(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		for _, c := range page {
			if c.ID != after+1 {
				return nil, &VerifyError{Checkpoint: after + 1, Reason: fmt.Sprintf("checkpoint %d is missing (next stored is %d)", after+1, c.ID)}
			}
			after = c.ID
			tree, err := OpenCheckpoint(c.Note, verifier)
			if err != nil {
				return nil, &VerifyError{Checkpoint: c.ID, Reason: err.Error()}
			}
			if tree.N != c.Size {
				return nil, &VerifyError{Checkpoint: c.ID, Reason: fmt.Sprintf("stored as size %d but signed for %d", c.Size, tree.N)}
			}
			out = append(out, checkpointTree{id: c.ID, tree: tree})
		}
	}
}

// verification is the state of Verify between batches.
type verification struct {
	tree *tree
	cps  []checkpointTree // by size; those checked are dropped
	// verified is the largest checkpoint size found matching (0: none yet);
	// a rewrite that only a later checkpoint reveals starts after it.
	verified int64
}

func (v *verification) check(b recordBatch) error {
	want := b.hashes
	for _, r := range b.records {
		seq := v.tree.size + 1
		if r.Seq != seq {
			return &VerifyError{Seq: seq, Reason: fmt.Sprintf("event %d is missing (next stored is %d)", seq, r.Seq)}
		}
		if named, ok := RecordSeq(r.Data); !ok || named != seq {
			reason := "the stored record is not an event record"
			if ok {
				reason = fmt.Sprintf("row %d holds the record of event %d", seq, named)
			}
			return &VerifyError{Seq: seq, Reason: reason}
		}
		if err := v.checkpointsAt(seq - 1); err != nil {
			return err
		}
		hs, err := v.tree.add(r.Data)
		if err != nil {
			return err
		}
		for i, h := range hs {
			if len(want) == 0 {
				return &VerifyError{Seq: seq, Reason: "its tree hashes are missing"}
			}
			if want[0] != h {
				what := "its leaf hash does not match the stored record"
				if i > 0 {
					what = fmt.Sprintf("the stored tree hash %d above it does not match", tlog.StoredHashIndex(0, seq-1)+int64(i))
				}
				return &VerifyError{Seq: seq, Reason: what}
			}
			want = want[1:]
		}
	}
	return nil
}

// checkpointsAt compares every checkpoint of size n with the tree, which
// must be at size n.
func (v *verification) checkpointsAt(n int64) error {
	for len(v.cps) > 0 && v.cps[0].tree.N <= n {
		c := v.cps[0]
		v.cps = v.cps[1:]
		root, err := v.tree.root()
		if err != nil {
			return err
		}
		if root != c.tree.Hash {
			return &VerifyError{Seq: v.verified + 1, Checkpoint: c.id, Reason: fmt.Sprintf("the events up to %d do not match %s", n, checkpointName(c.id))}
		}
		v.verified = n
	}
	return nil
}

// recordBatch is one read of Verify: records and the tree hashes stored for them.
type recordBatch struct {
	records []Record
	hashes  []tlog.Hash
}

// readBatches reads the records up to last and their stored hashes in
// batches of size events: records and hashes each by their own goroutine,
// a batch ahead of the caller, so that reading (what a verification mostly
// waits for) runs on two connections at once. Batch k holds the records
// read after event k×size and the hashes of events k×size+1 to (k+1)×size
// as an intact log numbers them; the caller finds any gap.
func readBatches(ctx context.Context, s Store, last int64, size int) func(yield func(recordBatch, error) bool) {
	return func(yield func(recordBatch, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		type part struct {
			recs   []Record
			hashes []tlog.Hash
			err    error
		}
		recs, hashes := make(chan part, 1), make(chan part, 1)
		send := func(ch chan part, p part) bool {
			select {
			case ch <- p:
				return p.err == nil
			case <-ctx.Done():
				return false
			}
		}
		go func() {
			defer close(recs)
			for after := int64(0); after < last; after += int64(size) {
				r, err := s.Records(ctx, after, int(min(int64(size), last-after)))
				if !send(recs, part{recs: r, err: err}) {
					return
				}
			}
		}()
		go func() {
			defer close(hashes)
			for after := int64(0); after < last; after += int64(size) {
				h, err := readHashRange(ctx, s, after, min(after+int64(size), last))
				if !send(hashes, part{hashes: h, err: err}) {
					return
				}
			}
		}()
		defer func() {
			// Stop the readers and wait for them: the store stays ours alone.
			cancel()
			for range recs {
			}
			for range hashes {
			}
		}()
		for r := range recs {
			h, ok := <-hashes
			if r.err == nil && !ok {
				r.err = errors.New("audit: verify: hash reader stopped")
			}
			err := cmp.Or(r.err, h.err)
			if !yield(recordBatch{records: r.recs, hashes: h.hashes}, err) || err != nil {
				return
			}
		}
	}
}

// readHashRange reads the stored hashes of events from+1 to to, as many as
// are stored: a log cut short has fewer.
func readHashRange(ctx context.Context, s Store, from, to int64) ([]tlog.Hash, error) {
	lo, hi := tlog.StoredHashCount(from), tlog.StoredHashCount(to)
	idx := make([]int64, hi-lo)
	for i := range idx {
		idx[i] = lo + int64(i)
	}
	hs, err := s.ReadHashes(ctx, idx)
	if errors.Is(err, ErrNotFound) {
		return readHashesUpTo(ctx, s, idx)
	}
	return hs, err
}

// readHashesUpTo reads the hashes of idx that are stored, stopping at the
// first missing one: a log cut short has fewer hashes than events.
func readHashesUpTo(ctx context.Context, s Store, idx []int64) ([]tlog.Hash, error) {
	lo, hi := 0, len(idx) // idx[:lo] stored, idx[hi-1] not
	for lo < hi {
		mid := (lo + hi) / 2
		if _, err := s.ReadHashes(ctx, idx[mid:mid+1]); err == nil {
			lo = mid + 1
		} else if errors.Is(err, ErrNotFound) {
			hi = mid
		} else {
			return nil, err
		}
	}
	if lo == 0 {
		return nil, nil
	}
	return s.ReadHashes(ctx, idx[:lo])
}

// IntegrityOptions tune CheckIntegrity. Zero values mean the defaults.
type IntegrityOptions struct {
	// Quick skips recomputing every leaf: only the triggers, the counts and
	// the latest checkpoint against the stored tree are checked, which
	// misses a changed or swapped record whose hashes were left alone.
	// Zero: a full Verify.
	Quick bool
	// Witness is a checkpoint kept outside the database (nil: none), as
	// VerifyOptions.Witness.
	Witness []byte
	// Progress as in VerifyOptions.
	Progress func(verified, total int64)
}

// CheckIntegrity is the start-up check: every append-only trigger is in
// place (Store.CheckAppendOnly) and the stored log matches its latest
// checkpoint — by a full Verify, or with opts.Quick only by the counts and
// the latest checkpoint's signature and root recomputed from the stored
// hashes. It returns nil or an error that names what is wrong: wrapping
// ErrTampered (a *VerifyError when a sequence number is known) or
// ErrUnavailable. It changes nothing.
func CheckIntegrity(ctx context.Context, s Store, verifier note.Verifier, opts IntegrityOptions) error {
	if err := s.CheckAppendOnly(ctx); err != nil {
		return err
	}
	if !opts.Quick {
		_, err := Verify(ctx, s, verifier, VerifyOptions{Witness: opts.Witness, Progress: opts.Progress})
		return err
	}
	st, err := s.Stats(ctx)
	if err != nil {
		return err
	}
	if st.Events != st.LastSeq {
		return &VerifyError{Reason: fmt.Sprintf("%d event rows for sequence numbers 1 to %d: run audit verify to find the first missing", st.Events, st.LastSeq)}
	}
	if want := tlog.StoredHashCount(st.LastSeq); st.Hashes != want {
		return &VerifyError{Reason: fmt.Sprintf("%d tree hashes stored for %d events, want %d", st.Hashes, st.LastSeq, want)}
	}
	type signed struct {
		id   int64
		note []byte
	}
	var check []signed
	latest, err := s.LatestCheckpoint(ctx)
	switch {
	case err == nil:
		check = append(check, signed{latest.ID, latest.Note})
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if opts.Witness != nil {
		check = append(check, signed{WitnessID, opts.Witness})
	}
	for _, c := range check {
		tree, err := OpenCheckpoint(c.note, verifier)
		if err != nil {
			return &VerifyError{Checkpoint: c.id, Reason: err.Error()}
		}
		if c.id == latest.ID && tree.N != latest.Size {
			return &VerifyError{Checkpoint: c.id, Reason: fmt.Sprintf("stored as size %d but signed for %d", latest.Size, tree.N)}
		}
		if tree.N > st.LastSeq {
			return &VerifyError{Seq: st.LastSeq + 1, Checkpoint: c.id, Reason: fmt.Sprintf("the log ends at event %d but %s covers %d events", st.LastSeq, checkpointName(c.id), tree.N)}
		}
		root, err := TreeHash(ctx, s, tree.N)
		if err != nil {
			return fmt.Errorf("%w: tree of %d: %w", ErrUnavailable, tree.N, err)
		}
		if root != tree.Hash {
			return &VerifyError{Checkpoint: c.id, Reason: fmt.Sprintf("the stored tree of %d events does not match %s: run audit verify to find the first event", tree.N, checkpointName(c.id))}
		}
	}
	return nil
}
