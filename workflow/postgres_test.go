package workflow_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit/postgres/pgtest"
	"github.com/klantbeeld/klantbeeld/workflow"
)

// TestTwoGatewaysOnPostgreSQLSendEachReminderOnce runs the reminder cycle
// with two workflows (two gateways) on one PostgreSQL database: River
// elects one leader for the scan, and the step jobs are unique, so every
// reminder and the escalation happen once (runCycle counts them).
func TestTwoGatewaysOnPostgreSQLSendEachReminderOnce(t *testing.T) {
	dsn := pgtest.URL(t)
	schema := pgtest.Schema(t, dsn)
	e := newEnv(t)
	var ws []*workflow.Workflow
	for range 2 {
		pool, err := pgxpool.New(context.Background(), dsn)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		cfg := e.config(t)
		cfg.Pool, cfg.Schema = pool, schema
		ws = append(ws, startWorkflow(t, cfg))
	}
	runCycle(t, e, ws)
}

// TestWrapUpOnPostgreSQLIsIdempotent is the same-key retry on PostgreSQL,
// sent to the other gateway.
func TestWrapUpOnPostgreSQLIsIdempotent(t *testing.T) {
	dsn := pgtest.URL(t)
	schema := pgtest.Schema(t, dsn)
	e := newEnv(t)
	var ws []*workflow.Workflow
	for range 2 {
		pool, err := pgxpool.New(context.Background(), dsn)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		cfg := e.config(t)
		cfg.Pool, cfg.Schema = pool, schema
		ws = append(ws, startWorkflow(t, cfg))
	}
	ctx := context.Background()
	first, err := ws[0].WrapUp(ctx, suzanneWrapUp(), "pg-key")
	require.NoError(t, err)
	require.Equal(t, workflow.StatusWritten, first.Klantinteracties.Status, first.Klantinteracties.Error)
	require.Equal(t, workflow.StatusWritten, first.Salesforce.Status, first.Salesforce.Error)
	again, err := ws[1].WrapUp(ctx, suzanneWrapUp(), "pg-key")
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, first.ID, again.ID)
	require.Len(t, tasksWithKey(e, first.ID), 1)
	require.Len(t, contactsWithRef(t, e, first.ID), 1)

	// The same new key at both gateways at once: one wrap-up.
	results := make([]*workflow.Result, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			r, err := ws[i].WrapUp(ctx, suzanneWrapUp(), "pg-race")
			assert.NoError(t, err)
			results[i] = r
		})
	}
	wg.Wait()
	require.NotNil(t, results[0])
	require.NotNil(t, results[1])
	assert.Equal(t, results[0].ID, results[1].ID)
	assert.NotEqual(t, results[0].Replayed, results[1].Replayed, "one wrote, the other replayed")
	eventually(t, "the race's wrap-up is written", func() bool {
		r, err := ws[0].Result(ctx, results[0].ID)
		return err == nil && r.Klantinteracties.Status == workflow.StatusWritten && r.Salesforce.Status == workflow.StatusWritten
	})
	assert.Len(t, tasksWithKey(e, results[0].ID), 1)
	assert.Len(t, contactsWithRef(t, e, results[0].ID), 1)
}
