package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/sqlite"
)

// BenchmarkLogAppend measures durable appends (WAL, synchronous=FULL) from
// many concurrent requests through the group-committing Log.
func BenchmarkLogAppend(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := audit.NewLog(s, audit.LogOptions{})
	defer l.Close()
	ev := audittest.Sample(1)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
