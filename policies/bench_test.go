package policies_test

import (
	"context"
	"testing"

	"github.com/klantbeeld/klantbeeld/policies"
)

// BenchmarkDecide is the policy's share of every view: one prepared query.
func BenchmarkDecide(b *testing.B) {
	e, err := policies.NewEngine(context.Background(), policies.Embedded())
	if err != nil {
		b.Fatal(err)
	}
	in := policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "klantcontact"}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, err := e.Decide(ctx, in)
			if err != nil || !d.Allow {
				b.Fatal(d, err)
			}
		}
	})
}
