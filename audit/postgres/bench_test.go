package postgres_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
)

// BenchmarkAppend measures durable appends (each committed before it
// returns) from audittest.Writers concurrent requests through the Log:
// group commit against one transaction per event, in one run, as for
// SQLite. GroupCommit/writers=N shows how group commit grows with the
// requests waiting at once.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		maxBatch int
	}{{"GroupCommit", 0}, {"TransactionPerEvent", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			audittest.BenchAppend(b, newDB(b).open(b, postgres.Options{}), bc.maxBatch)
		})
	}
	for _, writers := range []int{32, 64} {
		b.Run(fmt.Sprintf("GroupCommit/writers=%d", writers), func(b *testing.B) {
			s := newDB(b).open(b, postgres.Options{})
			l := audit.NewLog(s, audit.LogOptions{})
			defer l.Close()
			ev := audittest.Sample(1)
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkVerify measures audit.Verify over a log of 100,000 events.
func BenchmarkVerify(b *testing.B) {
	audittest.BenchVerify(b, newDB(b).open(b, postgres.Options{}), 100_000)
}
