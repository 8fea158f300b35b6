package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/klantbeeld/klantbeeld/audit/audittest"
)

// BenchmarkAppend measures durable appends (WAL, synchronous=FULL) from 16
// concurrent requests through the Log: group commit against one
// transaction per event, in one run.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		maxBatch int
	}{{"GroupCommit", 0}, {"TransactionPerEvent", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			audittest.BenchAppend(b, openAt(b, filepath.Join(b.TempDir(), "audit.db")), bc.maxBatch)
		})
	}
}

// BenchmarkVerify measures audit.Verify over a log of 100,000 events.
func BenchmarkVerify(b *testing.B) {
	audittest.BenchVerify(b, openAt(b, filepath.Join(b.TempDir(), "audit.db")), 100_000)
}
