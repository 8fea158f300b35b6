package audit

import (
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Frontier keeps, in memory, the right edge of the tree (the hashes
// FrontierIndexes names) after the last batch a store committed, so that
// the next batch is built without reading those hashes back. It is only
// used for the tree of the size it was kept for: a store that finds
// another last sequence number in its transaction (another process
// appended, or a commit whose outcome was lost) reads them as before. The
// zero Frontier keeps nothing yet; it is safe for concurrent use.
type Frontier struct {
	mu     sync.Mutex
	size   int64
	hashes map[int64]tlog.Hash
}

// NewBatch is NewBatch on a tree of size last whose hashes are read from
// the kept frontier when it is this tree's, else from r. After the batch
// is committed the caller calls kept, so that the frontier of the grown
// tree is kept for the next batch; a batch that is not committed leaves
// the kept frontier as it was.
func (f *Frontier) NewBatch(last int64, events []Event, r tlog.HashReader) (b Batch, kept func(), err error) {
	read := map[int64]tlog.Hash{}
	b, err = NewBatch(last, events, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs, ok := f.lookup(last, idx)
		if !ok {
			var err error
			if hs, err = r.ReadHashes(idx); err != nil {
				return nil, err
			}
		}
		for i, x := range idx {
			if i < len(hs) {
				read[x] = hs[i]
			}
		}
		return hs, nil
	}))
	if err != nil {
		return Batch{}, nil, err
	}
	size := last + int64(len(b.Records))
	for _, h := range b.Hashes {
		read[h.Index] = h.Hash
	}
	next := map[int64]tlog.Hash{}
	for _, x := range FrontierIndexes(size) {
		h, ok := read[x]
		if !ok {
			return b, func() { f.keep(0, nil) }, nil // cannot happen: keep nothing
		}
		next[x] = h
	}
	return b, func() { f.keep(size, next) }, nil
}

// Size is the size of the tree whose frontier is kept, and whether one is.
func (f *Frontier) Size() (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size, f.hashes != nil
}

func (f *Frontier) lookup(size int64, idx []int64) ([]tlog.Hash, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hashes == nil || f.size != size {
		return nil, false
	}
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := f.hashes[x]
		if !ok {
			return nil, false
		}
		out[i] = h
	}
	return out, true
}

func (f *Frontier) keep(size int64, hashes map[int64]tlog.Hash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.size, f.hashes = size, hashes
}
