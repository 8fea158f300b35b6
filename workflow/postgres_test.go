package workflow_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
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
}
