package audit

import (
	"context"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// Batch is what one Store.Append writes inside its transaction: the
// records, numbered after the last stored one, and the tree hashes they add,
// a contiguous run of stored hash indexes.
type Batch struct {
	Records []Record
	Hashes  []StoredHash
}

// NewBatch numbers events last+1, last+2, ..., encodes each (EncodeRecord)
// and computes the tree hashes that adding them stores (tlog.StoredHashes).
// The older hashes it needs are the tree's frontier at size last: it reads
// them from r in one call, so r must read the stored hashes inside the
// append transaction. Errors from r are returned as they are.
func NewBatch(last int64, events []Event, r tlog.HashReader) (Batch, error) {
	t, err := resumeTree(last, r)
	if err != nil {
		return Batch{}, err
	}
	b := Batch{Records: make([]Record, 0, len(events)), Hashes: make([]StoredHash, 0, 2*len(events)+1)}
	for i, ev := range events {
		ev.Seq = last + 1 + int64(i)
		data, err := EncodeRecord(ev)
		if err != nil {
			return Batch{}, err
		}
		first := tlog.StoredHashIndex(0, t.size)
		hashes, err := t.add(data)
		if err != nil {
			return Batch{}, err
		}
		b.Records = append(b.Records, Record{Seq: ev.Seq, Data: data})
		for j, h := range hashes {
			b.Hashes = append(b.Hashes, StoredHash{Index: first + int64(j), Hash: h})
		}
	}
	return b, nil
}

// FrontierIndexes are the stored hash indexes of the complete subtrees that
// make up a tree of size n, largest first: what tlog needs to add leaf n or
// to compute the root of size n.
func FrontierIndexes(n int64) []int64 {
	var out []int64
	for level := 63 - bits.LeadingZeros64(uint64(n)); level >= 0; level-- {
		if n>>level&1 == 1 {
			out = append(out, tlog.StoredHashIndex(level, n>>level-1))
		}
	}
	return out
}

// tree recomputes a Merkle tree leaf by leaf, keeping only its frontier:
// per level the hash of the last complete subtree, which is all that adding
// a leaf or computing the root reads. It is a tlog.HashReader over them.
type tree struct {
	size     int64
	frontier []node // by level
}

// node is a complete subtree: its index at its level, and its hash.
type node struct {
	index int64
	hash  tlog.Hash
}

func newTree() *tree { return &tree{} }

// resumeTree starts a tree at size n from its frontier read from r.
func resumeTree(n int64, r tlog.HashReader) (*tree, error) {
	t := newTree()
	t.size = n
	if n == 0 {
		return t, nil
	}
	idx := FrontierIndexes(n)
	hs, err := r.ReadHashes(idx)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(idx) {
		return nil, fmt.Errorf("audit: hash reader returned %d hashes for %d indexes", len(hs), len(idx))
	}
	for i, x := range idx {
		level, k := tlog.SplitStoredHashIndex(x)
		t.set(level, k, hs[i])
	}
	return t, nil
}

func (t *tree) set(level int, k int64, h tlog.Hash) {
	for len(t.frontier) <= level {
		t.frontier = append(t.frontier, node{index: -1})
	}
	t.frontier[level] = node{index: k, hash: h}
}

// add appends the leaf for data and returns the hashes to store from
// tlog.StoredHashIndex(0, size) on, as tlog.StoredHashes does.
func (t *tree) add(data []byte) ([]tlog.Hash, error) {
	n := t.size
	h := tlog.RecordHash(data)
	hs := make([]tlog.Hash, 1, 2)
	hs[0] = h
	// While the node is a right child (odd index) it completes its parent;
	// its left sibling is the frontier's node at that level.
	for level, k := 0, n; k&1 == 1; level, k = level+1, k>>1 {
		if level >= len(t.frontier) || t.frontier[level].index != k-1 {
			return nil, fmt.Errorf("audit: tree hash %d missing", tlog.StoredHashIndex(level, k-1))
		}
		h = tlog.NodeHash(t.frontier[level].hash, h)
		hs = append(hs, h)
	}
	for level, x := range hs {
		t.set(level, n>>level, x)
	}
	t.size++
	return hs, nil
}

// ReadHashes implements tlog.HashReader over the frontier.
func (t *tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		level, k := tlog.SplitStoredHashIndex(x)
		if level >= len(t.frontier) || t.frontier[level].index != k {
			return nil, fmt.Errorf("audit: tree hash %d not kept", x)
		}
		out[i] = t.frontier[level].hash
	}
	return out, nil
}

// root is the tree hash at the current size.
func (t *tree) root() (tlog.Hash, error) {
	if t.size == 0 {
		return tlog.Hash{}, nil
	}
	return tlog.TreeHash(t.size, t)
}

// HashReader is the tlog.HashReader of a store: ReadHashes with ctx.
func HashReader(ctx context.Context, s Store) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return s.ReadHashes(ctx, indexes)
	})
}

// TreeHash is the root hash of the first size events as the store's hashes
// say (the zero hash for size 0).
func TreeHash(ctx context.Context, s Store, size int64) (tlog.Hash, error) {
	if size == 0 {
		return tlog.Hash{}, nil
	}
	return tlog.TreeHash(size, HashReader(ctx, s))
}

// InclusionProof proves that event seq is in the tree of the given size
// (seq <= size): check it with tlog.CheckRecord(proof, size, root, seq-1,
// tlog.RecordHash(record bytes)).
func InclusionProof(ctx context.Context, s Store, seq, size int64) (tlog.RecordProof, error) {
	if seq < 1 || seq > size {
		return nil, fmt.Errorf("audit: no inclusion proof of event %d in a tree of %d: %w", seq, size, ErrNotFound)
	}
	return tlog.ProveRecord(size, seq-1, HashReader(ctx, s))
}

// ConsistencyProof proves that the tree of size to extends the tree of size
// from (0 < from <= to): check it with tlog.CheckTree(proof, to, rootTo,
// from, rootFrom).
func ConsistencyProof(ctx context.Context, s Store, from, to int64) (tlog.TreeProof, error) {
	if from < 1 || from > to {
		return nil, fmt.Errorf("audit: no consistency proof from %d to %d: %w", from, to, ErrNotFound)
	}
	return tlog.ProveTree(to, from, HashReader(ctx, s))
}

// Contiguous reports whether indexes is one ascending run (x, x+1, …), which
// a store can read with one range scan.
func Contiguous(indexes []int64) bool {
	for i := 1; i < len(indexes); i++ {
		if indexes[i] != indexes[i-1]+1 {
			return false
		}
	}
	return true
}

// OrderHashes puts stored hash rows (index → bytes) into the order indexes
// asks for, as Store.ReadHashes returns them: a missing index wraps
// ErrNotFound, a row that is not a hash wraps ErrTampered.
func OrderHashes(indexes []int64, rows map[int64][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := rows[x]
		if !ok {
			return nil, fmt.Errorf("tree hash %d: %w", x, ErrNotFound)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("%w: tree hash %d has %d bytes", ErrTampered, x, len(h))
		}
		copy(out[i][:], h)
	}
	return out, nil
}
