package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgtest"
)

// Every look-up made in a contact session first reads the session's last
// activity. A long session must not make each look-up read all of its
// events: the latest allowed one is found by one index entry, whatever
// the refused ones around it.
func TestASessionsLastActivityReadsOneEvent(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	d := newDB(t)
	s := d.open(t, postgres.Options{})
	opened := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	sess := audit.ContactSession{ID: "5e551000-0000-4000-8000-000000000042", Owner: "sdevries", Department: "kcc", Kanaal: "telefoon", OpenedAt: opened}
	require.NoError(t, s.AddContactSession(ctx, sess))
	other := sess
	other.ID = "5e551000-0000-4000-8000-000000000043"
	require.NoError(t, s.AddContactSession(ctx, other))

	const lookUps = 400
	var last time.Time
	for i := range lookUps / 50 {
		batch := make([]audit.Event, 0, 50)
		for j := range 50 {
			n := i*50 + j
			at := opened.Add(time.Duration(n) * time.Second)
			ev := audit.Event{
				Time: at, TraceID: fmt.Sprintf("%032x", n+1), SpanID: fmt.Sprintf("%016x", n+1),
				Operation: "POST /v1/resident-views", Actor: audit.Actor{Sub: "sdevries", Department: "kcc", Roles: []string{"medewerker"}},
				Purpose: "klantcontact", Subject: fmt.Sprintf("%064x", n), Context: &audit.Context{Type: audit.ContextContactSession, ID: sess.ID},
				Decision: audit.DecisionAllow, Status: 200,
			}
			switch {
			case n%4 == 1 || n == lookUps-1: // refused: no activity; the newest event of the session is one
				ev.Decision, ev.Status = audit.DecisionDeny, 403
			case n%4 == 2: // another session's
				ev.Context = &audit.Context{Type: audit.ContextContactSession, ID: other.ID}
			default:
				last = at
			}
			batch = append(batch, ev)
		}
		_, err := s.Append(ctx, batch)
		require.NoError(t, err)
	}
	// As autovacuum would have by now.
	pgtest.Exec(t, d.url, d.schema, `ANALYZE audit_events`)

	got, err := s.ContactSession(ctx, sess.ID)
	require.NoError(t, err)
	assert.Equal(t, last, got.LastActivity, "the latest allowed look-up, not the refused one after it")

	plan, err := postgres.ExplainContactSession(ctx, s, sess.ID)
	require.NoError(t, err)
	read := eventsRead(t, plan)
	assert.LessOrEqual(t, read, 1.0, "events of audit_events read for one session's last activity (the session has %d): %s", lookUps, plan)
}

// eventsRead sums the rows the plan's scans of audit_events returned (rows
// × loops), as EXPLAIN ANALYZE counted them.
func eventsRead(t *testing.T, plan []byte) float64 {
	t.Helper()
	var root []struct {
		Plan json.RawMessage `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(plan, &root))
	require.Len(t, root, 1)
	type node struct {
		Relation string  `json:"Relation Name"`
		Rows     float64 `json:"Actual Rows"`
		Loops    float64 `json:"Actual Loops"`
		Plans    []node  `json:"Plans"`
	}
	var n node
	require.NoError(t, json.Unmarshal(root[0].Plan, &n))
	var sum func(n node) (float64, bool)
	sum = func(n node) (float64, bool) {
		total, seen := 0.0, n.Relation == "audit_events"
		if seen {
			total = n.Rows * n.Loops
		}
		for _, c := range n.Plans {
			r, s := sum(c)
			total, seen = total+r, seen || s
		}
		return total, seen
	}
	total, seen := sum(n)
	require.True(t, seen, "the plan reads audit_events: %s", plan)
	return total
}
