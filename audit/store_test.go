package audit_test

import (
	"testing"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
)

// The suites run against the in-memory store here, so that the audit
// package's own logic is checked without a database.
func TestMemoryConformance(t *testing.T) {
	audittest.Exercise(t, func(*testing.T) audit.Store { return &audittest.Memory{} })
}

func TestMemoryPolicies(t *testing.T) {
	audittest.ExercisePolicies(t, func(*testing.T) (audit.PolicyStore, func() audit.PolicyStore) {
		return &audittest.Memory{}, nil
	})
}

func TestMemoryShared(t *testing.T) {
	audittest.ExerciseShared(t, func(_ *testing.T, n int) []audit.Store {
		m := &audittest.Memory{}
		out := make([]audit.Store, n)
		for i := range out {
			out[i] = m
		}
		return out
	})
}

func TestMemoryTamper(t *testing.T) {
	audittest.Tamper(t, func(*testing.T) (audit.Store, audittest.Tamperer) {
		m := &audittest.Memory{}
		return m, m
	})
}

func TestMemoryContactSessions(t *testing.T) {
	audittest.ExerciseContactSessions(t, func(*testing.T) audittest.SessionStore { return &audittest.Memory{} })
}
