package audittest

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/klantbeeld/klantbeeld/audit"
)

// Writers is how many requests BenchAppend appends from at once.
const Writers = 16

// BenchAppend measures durable appends per second into s from Writers
// concurrent requests through a Log: with maxBatch 0 the Log's group
// commit, with maxBatch 1 one transaction per event. It reports "events/s"
// and "events/txn", the events one transaction carried on average.
func BenchAppend(b *testing.B, s audit.Store, maxBatch int) {
	counted := &countingStore{Store: s}
	l := audit.NewLog(counted, audit.LogOptions{MaxBatch: maxBatch})
	defer l.Close()
	before, err := s.Stats(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	ev := Sample(1)
	// RunParallel runs parallelism × GOMAXPROCS goroutines: at least Writers.
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((Writers + procs - 1) / procs)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	after, err := s.Stats(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	n := float64(after.LastSeq - before.LastSeq)
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(n/float64(max(1, counted.appends.Load())), "events/txn")
}

// countingStore counts Append calls: transactions.
type countingStore struct {
	audit.Store
	appends atomic.Int64
}

func (c *countingStore) Append(ctx context.Context, events []audit.Event) ([]int64, error) {
	c.appends.Add(1)
	return c.Store.Append(ctx, events)
}

// Fill appends n events to s in transactions of 1000.
func Fill(tb testing.TB, s audit.Store, n int) {
	tb.Helper()
	const batch = 1000
	evs := make([]audit.Event, 0, batch)
	for i := range n {
		evs = append(evs, Sample(i))
		if len(evs) == batch || i == n-1 {
			if _, err := s.Append(context.Background(), evs); err != nil {
				tb.Fatal(err)
			}
			evs = evs[:0]
		}
	}
}

// BenchVerify measures Verify over a log of n events made in s (which must
// be empty), with one checkpoint at the end, and reports "events/s".
func BenchVerify(b *testing.B, s audit.Store, n int) {
	Fill(b, s, n)
	signer, verifier := NewSigner(b)
	if err := audit.NewCheckpointer(s, signer, audit.CheckpointerOptions{Interval: -1}).Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.Verify(context.Background(), s, verifier, audit.VerifyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Tree.N != int64(n) {
			b.Fatalf("verified %d events, want %d", rep.Tree.N, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
