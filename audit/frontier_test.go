package audit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
)

// hashStore is the stored hashes of a tree, counting reads.
type hashStore struct {
	hashes map[int64]tlog.Hash
	reads  int
}

func (h *hashStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	h.reads++
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = h.hashes[x]
	}
	return out, nil
}

func (h *hashStore) add(b audit.Batch) {
	for _, sh := range b.Hashes {
		h.hashes[sh.Index] = sh.Hash
	}
}

func TestFrontierBuildsTheSameTreeWithoutReadingItBack(t *testing.T) {
	plain, cached := &hashStore{hashes: map[int64]tlog.Hash{}}, &hashStore{hashes: map[int64]tlog.Hash{}}
	var f audit.Frontier
	last := int64(0)
	for i, n := range []int{1, 3, 2, 7, 1, 16, 5} {
		events := make([]audit.Event, n)
		for j := range events {
			events[j] = audittest.Sample(int(last) + j)
		}
		want, err := audit.NewBatch(last, events, plain)
		require.NoError(t, err)
		plain.add(want)
		got, kept, err := f.NewBatch(last, events, cached)
		require.NoError(t, err)
		assert.Equal(t, want, got, "batch %d", i)
		cached.add(got)
		kept()
		last += int64(n)
	}
	assert.LessOrEqual(t, cached.reads, 1, "only the first batch reads the tree (none for an empty one)")
	assert.Greater(t, plain.reads, 4)
}

func TestFrontierReadsATreeOfAnotherSize(t *testing.T) {
	s := &hashStore{hashes: map[int64]tlog.Hash{}}
	var f audit.Frontier
	b, kept, err := f.NewBatch(0, []audit.Event{audittest.Sample(0), audittest.Sample(1)}, s)
	require.NoError(t, err)
	s.add(b)
	kept()
	// Another process appended three events: the kept frontier is not theirs.
	other, err := audit.NewBatch(2, []audit.Event{audittest.Sample(2), audittest.Sample(3), audittest.Sample(4)}, s)
	require.NoError(t, err)
	s.add(other)
	reads := s.reads
	want, err := audit.NewBatch(5, []audit.Event{audittest.Sample(5)}, s)
	require.NoError(t, err)
	got, _, err := f.NewBatch(5, []audit.Event{audittest.Sample(5)}, s)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, reads+2, s.reads, "both read the stored tree")

	// A batch that was not committed (kept not called) leaves the frontier of size 2.
	_, _, err = f.NewBatch(2, []audit.Event{audittest.Sample(2)}, s)
	require.NoError(t, err)
	assert.Equal(t, reads+2, s.reads, "the tree of size 2 is still the kept one")
}
