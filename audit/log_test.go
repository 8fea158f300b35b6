package audit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
)

func TestLogGroupsConcurrentAppendsIntoFewTransactions(t *testing.T) {
	store := &audittest.Memory{}
	store.Delay(20 * time.Millisecond) // a slow fsync lets waiters pile up
	l := audit.NewLog(store, audit.LogOptions{})
	defer l.Close()

	const n = 50
	var wg sync.WaitGroup
	seqs := make(chan int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, err := l.Append(context.Background(), audittest.Sample(i))
			assert.NoError(t, err)
			seqs <- seq
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		assert.False(t, seen[s], "sequence number %d given twice", s)
		seen[s] = true
	}
	assert.Len(t, seen, n)
	assert.Less(t, store.Appends(), n/2, "appends should be batched")
	assert.Len(t, store.Events(), n)
}

func TestLogFailsEveryWaiterWhenTheStoreFails(t *testing.T) {
	store := &audittest.Memory{}
	store.Fail(errors.New("disk full"))
	l := audit.NewLog(store, audit.LogOptions{})
	defer l.Close()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, err := l.Append(context.Background(), audittest.Sample(i))
			assert.ErrorIs(t, err, audit.ErrUnavailable)
			assert.Zero(t, seq)
		}()
	}
	wg.Wait()
	assert.Empty(t, store.Events())

	store.Fail(nil)
	seq, err := l.Append(context.Background(), audittest.Sample(1))
	require.NoError(t, err, "the log recovers when the store does")
	assert.Equal(t, int64(1), seq)
}

func TestLogFailsExactlyTheBatchWhoseAppendFailed(t *testing.T) {
	store := &audittest.Memory{}
	store.Delay(20 * time.Millisecond) // the first write is slow, the rest pile up behind it
	store.FailNextAppend(errors.New("disk full"))
	l := audit.NewLog(store, audit.LogOptions{})
	defer l.Close()

	const n = 30
	var mu sync.Mutex
	var failed int
	var seqs []int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			seq, err := l.Append(context.Background(), audittest.Sample(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				assert.ErrorIs(t, err, audit.ErrUnavailable)
				assert.Zero(t, seq)
				failed++
				return
			}
			seqs = append(seqs, seq)
		})
		if i == 0 {
			time.Sleep(5 * time.Millisecond) // the first is written alone
		}
	}
	wg.Wait()
	batches := store.Batches()
	require.Greater(t, len(batches), 1)
	assert.Equal(t, batches[0], failed, "exactly the events of the failed transaction fail")
	assert.Equal(t, 1, batches[0], "the first was written alone")
	assert.Len(t, store.Events(), n-failed, "every later batch is stored")
	slices.Sort(seqs)
	for i, seq := range seqs {
		assert.Equal(t, int64(i+1), seq, "the failed batch leaves no gap")
	}
}

func TestLogPingReportsTheStore(t *testing.T) {
	store := &audittest.Memory{}
	l := audit.NewLog(store, audit.LogOptions{})
	defer l.Close()
	require.NoError(t, l.Ping(context.Background()))
	store.Fail(errors.New("write lock held"))
	require.ErrorIs(t, l.Ping(context.Background()), audit.ErrUnavailable)
}

func TestLogWriteIsNotCancelledByTheCaller(t *testing.T) {
	store := &audittest.Memory{}
	store.Delay(30 * time.Millisecond)
	l := audit.NewLog(store, audit.LogOptions{})
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up before we even started
	seq, err := l.Append(ctx, audittest.Sample(1))
	require.NoError(t, err)
	assert.Equal(t, int64(1), seq)
	assert.Len(t, store.Events(), 1)
}

func TestLogCloseWritesWhatWasHandedOver(t *testing.T) {
	store := &audittest.Memory{}
	store.Delay(10 * time.Millisecond)
	l := audit.NewLog(store, audit.LogOptions{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.Append(context.Background(), audittest.Sample(i)); err != nil {
				assert.ErrorIs(t, err, audit.ErrClosed)
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, l.Close())
	wg.Wait()
	_, err := l.Append(context.Background(), audittest.Sample(99))
	require.ErrorIs(t, err, audit.ErrClosed)
	// Everything that was not refused with ErrClosed is stored.
	for i, ev := range store.Events() {
		assert.Equal(t, int64(i+1), ev.Seq)
	}
}

func TestPseudonym(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	p, err := audit.NewPseudonymizer(key)
	require.NoError(t, err)
	a := p.Pseudonym("999993653")
	assert.Len(t, a, 64)
	assert.Equal(t, a, p.Pseudonym("999993653"), "same BSN, same pseudonym: searchable")
	assert.NotEqual(t, a, p.Pseudonym("999990020"))
	assert.NotContains(t, a, "999993653")

	other, err := audit.NewPseudonymizer([]byte("another key of at least 32 bytes!"))
	require.NoError(t, err)
	assert.NotEqual(t, a, other.Pseudonym("999993653"), "the pseudonym depends on the key")

	_, err = audit.NewPseudonymizer([]byte("short"))
	require.Error(t, err)
}

func TestLoadKeyCreatesOnceAndKeeps(t *testing.T) {
	path := t.TempDir() + "/keys/pseudonym.key"
	_, err := audit.LoadKey(path, false)
	require.Error(t, err, "without create a missing key is an error")
	k1, err := audit.LoadKey(path, true)
	require.NoError(t, err)
	assert.Len(t, k1, audit.MinKeySize)
	k2, err := audit.LoadKey(path, true)
	require.NoError(t, err)
	assert.Equal(t, k1, k2)
}

func TestLogObserveIsToldOfEveryBatchAfterItsWaiters(t *testing.T) {
	store := &audittest.Memory{}
	store.Delay(5 * time.Millisecond)
	var mu sync.Mutex
	var events int
	var batches []error
	var commit time.Duration
	l := audit.NewLog(store, audit.LogOptions{Observe: func(n int, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		events += n
		commit += d
		batches = append(batches, err)
	}})
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := l.Append(context.Background(), audittest.Sample(i))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	store.Fail(errors.New("disk full"))
	_, err := l.Append(context.Background(), audittest.Sample(n))
	require.ErrorIs(t, err, audit.ErrUnavailable)
	require.NoError(t, l.Close())

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, n+1, events, "every event in one observed batch")
	assert.Len(t, batches, store.Appends()+1, "one observation per transaction, the failed one too")
	assert.ErrorIs(t, batches[len(batches)-1], audit.ErrUnavailable)
	assert.GreaterOrEqual(t, commit, time.Duration(store.Appends())*5*time.Millisecond, "the commit time is the store's")
}
