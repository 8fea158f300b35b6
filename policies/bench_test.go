package policies

import (
	"context"
	"slices"
	"testing"
	"time"
)

// The policy's share of every view: BenchmarkDecideCached is what almost
// every request pays, BenchmarkDecideUncached the first request of a claim
// set after an activation (the prepared query, no compiler per request).
// Both report the median of the per-operation times as p50-µs.

func BenchmarkDecideCached(b *testing.B) {
	c := benchCompiled(b)
	ctx := context.Background()
	in := benchInput()
	if _, err := c.decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	benchP50(b, func() {
		d, err := c.decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatal(d, err)
		}
	})
}

func BenchmarkDecideUncached(b *testing.B) {
	c := benchCompiled(b)
	ctx := context.Background()
	in := benchInput()
	benchP50(b, func() {
		d, err := c.decideFresh(ctx, normalize(in))
		if err != nil || !d.Allow {
			b.Fatal(d, err)
		}
	})
}

func benchCompiled(b *testing.B) *compiled {
	b.Helper()
	c, err := compile(context.Background(), Embedded())
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchInput is a KCC employee's klantcontact look-up: four sources, an
// existence-only domain, a context and subject facts.
func benchInput() Input {
	return Input{
		Actor:   Actor{Sub: "sdevries", Department: "kcc", Roles: []string{"medewerker"}},
		Action:  ActionResidentView,
		Purpose: "klantcontact",
		Context: &Context{Type: "contact-session", ID: "6f1a8f4e-2b7c-4d0a-9a35-0c6a1b2e3d4f"},
		Subject: &Subject{Opschorting: "O"},
	}
}

// benchP50 runs op b.N times, timing each, and reports the median.
func benchP50(b *testing.B, op func()) {
	b.Helper()
	b.ReportAllocs()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		op()
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	if len(durations) == 0 {
		return
	}
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds())/1e3, "p50-µs")
}
