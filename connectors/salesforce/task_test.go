package salesforce_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/fixtures"
	"github.com/klantbeeld/klantbeeld/fixtures/contract"
	sffake "github.com/klantbeeld/klantbeeld/fixtures/salesforce"
)

type taskEnv struct {
	fake   *sffake.Fake
	rec    *contract.Recorder
	client *salesforce.Client
}

func newTaskEnv(t *testing.T) *taskEnv {
	t.Helper()
	e := &taskEnv{fake: sffake.New(sffake.Options{ConsumerKey: consumerKey, Username: username,
		PublicKey: key(t).Public(), Now: func() time.Time { return testNow }})}
	e.rec = &contract.Recorder{Next: e.fake}
	srv := httptest.NewServer(e.rec)
	t.Cleanup(srv.Close)
	var err error
	e.client, err = salesforce.New(salesforce.Config{URL: srv.URL, LoginURL: srv.URL, ConsumerKey: consumerKey,
		Username: username, PrivateKey: key(t), Now: func() time.Time { return testNow },
		HTTP: upstream.Config{RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond, BreakerCooldown: time.Millisecond}})
	require.NoError(t, err)
	return e
}

func (e *taskEnv) task(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, task := range e.fake.Tasks() {
		if task["Id"] == id {
			return task
		}
	}
	t.Fatalf("no Task %s in the fake", id)
	return nil
}

// writes are the POST and PATCH bodies the connector sent; each is checked
// against the fake's Task schema.
func (e *taskEnv) checkWrites(t *testing.T) (posts, patches int) {
	t.Helper()
	for _, ex := range e.rec.Exchanges() {
		switch ex.Request.Method {
		case http.MethodPost:
			if strings.HasSuffix(ex.Request.URL.Path, "/sobjects/Task") {
				posts++
				assert.NoError(t, sffake.ValidateTaskBody(ex.RequestBody, true), "%s", ex.RequestBody)
			}
		case http.MethodPatch:
			patches++
			assert.NoError(t, sffake.ValidateTaskBody(ex.RequestBody, false), "%s", ex.RequestBody)
		}
	}
	return posts, patches
}

func TestCallbackTaskLifecycle(t *testing.T) {
	e := newTaskEnv(t)
	ctx := context.Background()
	suzanne, _ := fixtures.ResidentByBSN(fixtures.BSNSuzanne)

	contact, err := e.client.ContactID(ctx, fixtures.BSNSuzanne)
	require.NoError(t, err)
	assert.Equal(t, suzanne.CRM.ContactID, contact)
	none, err := e.client.ContactID(ctx, fixtures.BSNUnknown)
	require.NoError(t, err)
	assert.Empty(t, none)

	due := time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
	nt := salesforce.NewTask{Key: "kbtask0001", Subtype: salesforce.SubtypeTask, Subject: "Terugbellen: levertijd",
		WhoID: contact, WhatID: suzanne.CRM.Cases[0].ID, OwnerID: fixtures.Owners[1].ID, Due: due, ReminderAt: due, Description: "Na 14:00"}
	id, created, err := e.client.EnsureTask(ctx, nt)
	require.NoError(t, err)
	assert.True(t, created)
	again, created, err := e.client.EnsureTask(ctx, nt)
	require.NoError(t, err)
	assert.False(t, created, "the retry finds the Task")
	assert.Equal(t, id, again)

	task := e.task(t, id)
	assert.Equal(t, "Terugbellen: levertijd", task["Subject"])
	assert.Equal(t, contact, task["WhoId"])
	assert.Equal(t, suzanne.CRM.Cases[0].ID, task["WhatId"])
	assert.Equal(t, fixtures.Owners[1].ID, task["OwnerId"])
	assert.Equal(t, "2026-11-25", task["ActivityDate"])
	assert.Equal(t, true, task["IsReminderSet"])
	assert.Equal(t, "2026-11-25T10:30:00.000+0000", task["ReminderDateTime"])
	assert.InDelta(t, 0, task["Reminders__c"], 0)
	assert.Equal(t, "Not Started", task["Status"])

	open, err := e.client.OpenCallbacks(ctx, []string{fixtures.Owners[1].ID})
	require.NoError(t, err)
	var mine *salesforce.Callback
	for i := range open {
		if open[i].ID == id {
			mine = &open[i]
		}
		assert.Equal(t, fixtures.Owners[1].ID, open[i].OwnerID)
	}
	require.NotNil(t, mine)
	assert.Equal(t, "kbtask0001", mine.Key)
	assert.Equal(t, "2026-11-25", mine.Due)
	assert.Equal(t, "Jan de Vries", mine.Owner)

	// A reminder, then the escalation to the queue.
	two, reminded := 2, testNow.Add(time.Hour)
	require.NoError(t, e.client.UpdateTask(ctx, id, salesforce.TaskUpdate{Reminders: &two, ReminderAt: &reminded}))
	queue, yes := sffake.Queues[0].ID, true
	require.NoError(t, e.client.UpdateTask(ctx, id, salesforce.TaskUpdate{OwnerID: &queue, Escalated: &yes}))
	open, err = e.client.OpenCallbacks(ctx, []string{queue})
	require.NoError(t, err)
	require.Len(t, open, 1)
	assert.Equal(t, id, open[0].ID)
	assert.Equal(t, 2, open[0].Reminders)
	assert.True(t, open[0].Escalated)
	assert.Equal(t, "Wachtrij Burgerzaken", open[0].Owner)
	assert.Equal(t, reminded, open[0].ReminderAt)

	done := salesforce.TaskCompleted
	require.NoError(t, e.client.UpdateTask(ctx, id, salesforce.TaskUpdate{Status: &done}))
	open, err = e.client.OpenCallbacks(ctx, []string{queue})
	require.NoError(t, err)
	assert.Empty(t, open)
	cb, closed, err := e.client.Callback(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, cb)
	assert.True(t, closed)

	posts, patches := e.checkWrites(t)
	assert.Equal(t, 1, posts, "created once")
	assert.Equal(t, 3, patches)
}

func TestLoggedCallTask(t *testing.T) {
	e := newTaskEnv(t)
	id, _, err := e.client.EnsureTask(context.Background(), salesforce.NewTask{Key: "kbcall0001", Subtype: salesforce.SubtypeCall,
		Subject: "Vraag over afval", Status: salesforce.TaskCompleted})
	require.NoError(t, err)
	task := e.task(t, id)
	assert.Equal(t, "Call", task["TaskSubtype"])
	assert.Equal(t, true, task["IsClosed"])
	assert.Equal(t, false, task["IsReminderSet"])
	e.checkWrites(t)
}

func TestTaskWriteErrors(t *testing.T) {
	e := newTaskEnv(t)
	ctx := context.Background()

	err := e.client.UpdateTask(ctx, "00T090000000000AAA", salesforce.TaskUpdate{Escalated: new(true)})
	var apiErr *salesforce.APIError
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, "NOT_FOUND", apiErr.Code)
	assert.Equal(t, http.StatusNotFound, apiErr.Status)
	assert.ErrorIs(t, err, upstream.ErrRejected)

	_, _, err = e.client.EnsureTask(ctx, salesforce.NewTask{Key: "kbx", Subtype: salesforce.SubtypeTask, Subject: "x", WhoID: "003090000000000AAA"})
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, "INVALID_CROSS_REFERENCE_KEY", apiErr.Code)
	assert.Equal(t, []string{"WhoId"}, apiErr.Fields)

	// Refused before anything is sent.
	before := len(e.rec.Exchanges())
	for _, nt := range []salesforce.NewTask{
		{Key: "bad key", Subtype: salesforce.SubtypeTask, Subject: "x"},
		{Key: "kb1", Subtype: "Meeting", Subject: "x"},
		{Key: "kb1", Subtype: salesforce.SubtypeTask, Subject: " "},
		{Key: "kb1", Subtype: salesforce.SubtypeTask, Subject: "x", OwnerID: "Jan"},
	} {
		_, _, err := e.client.EnsureTask(ctx, nt)
		assert.ErrorIs(t, err, salesforce.ErrInvalidTask)
	}
	_, err = e.client.FindTask(ctx, "x' OR Subject != '")
	assert.ErrorIs(t, err, salesforce.ErrInvalidTask)
	_, err = e.client.OpenCallbacks(ctx, []string{"0050900000AbCdF' OR Id != '"})
	assert.ErrorIs(t, err, salesforce.ErrInvalidTask)
	assert.Len(t, e.rec.Exchanges(), before)

	e.fake.SetDown(true)
	_, _, err = e.client.EnsureTask(ctx, salesforce.NewTask{Key: "kbdown", Subtype: salesforce.SubtypeTask, Subject: "x"})
	assert.ErrorIs(t, err, upstream.ErrUnavailable)
	e.fake.SetDown(false)
	time.Sleep(5 * time.Millisecond) // the breaker's cooldown
	found, err := e.client.FindTask(ctx, "kbdown")
	require.NoError(t, err)
	assert.Empty(t, found, "nothing was written while down")
}
