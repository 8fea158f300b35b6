package workflow_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/fixtures"
	sffake "github.com/klantbeeld/klantbeeld/fixtures/salesforce"
	"github.com/klantbeeld/klantbeeld/workflow"
)

// tasksWithKey are the fake org's Tasks written for one wrap-up.
func tasksWithKey(e *env, key string) []map[string]any {
	var out []map[string]any
	for _, t := range e.sf.Tasks() {
		if t["Klantbeeld_Key__c"] == key {
			out = append(out, t)
		}
	}
	return out
}

// contactsWithRef are the klantcontacten of the resident with this
// referentienummer, as the read side sees them.
func contactsWithRef(t *testing.T, e *env, ref string) []klantinteracties.Contact {
	t.Helper()
	all, err := e.kiC.Contacts(context.Background(), klantinteracties.Query{BSN: fixtures.BSNSuzanne, IncludeVertrouwelijk: true})
	require.NoError(t, err)
	kc, err := e.kiC.FindKlantcontact(context.Background(), ref)
	require.NoError(t, err)
	var out []klantinteracties.Contact
	for _, c := range all {
		if kc != nil && c.UUID == kc.UUID {
			out = append(out, c)
		}
	}
	return out
}

func TestWrapUpWritesBothSystemsAndTheViewSeesIt(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	w := startWorkflow(t, cfg)
	wu := suzanneWrapUp()

	res, err := w.WrapUp(context.Background(), wu, "key-1")
	require.NoError(t, err)
	assert.False(t, res.Replayed)
	require.Equal(t, workflow.StatusWritten, res.Klantinteracties.Status, res.Klantinteracties.Error)
	require.Equal(t, workflow.StatusWritten, res.Salesforce.Status, res.Salesforce.Error)
	for _, id := range []string{res.Klantinteracties.Klantcontact, res.Klantinteracties.Betrokkene,
		res.Klantinteracties.Onderwerpobject, res.Klantinteracties.InterneTaak} {
		assert.Len(t, id, 36)
	}
	// 48 working hours from Monday 10:00 is Wednesday 10:00.
	assert.Equal(t, "2026-11-18T10:00:00Z", res.CallbackDue.UTC().Format(time.RFC3339))

	// The read side finds the contact on the resident, with its zaak and taak.
	contacts := contactsWithRef(t, e, res.ID)
	require.Len(t, contacts, 1)
	c := contacts[0]
	assert.Equal(t, "telefoon", c.Kanaal)
	assert.Equal(t, []string{wu.Zaak}, c.Zaken)
	require.Len(t, c.Taken, 1)
	assert.Equal(t, res.Klantinteracties.InterneTaak, c.Taken[0].UUID)
	assert.Equal(t, klantinteracties.StatusTeVerwerken, c.Taken[0].Status)

	tasks := tasksWithKey(e, res.ID)
	require.Len(t, tasks, 1)
	task := tasks[0]
	assert.Equal(t, res.Salesforce.Task, task["Id"])
	assert.Equal(t, fixtures.Owners[1].ID, task["OwnerId"])
	assert.Equal(t, "0030900000SuZaNAAV", task["WhoId"])
	assert.Equal(t, "2026-11-18", task["ActivityDate"])
	assert.Equal(t, true, task["IsReminderSet"])
	assert.InDelta(t, 0, task["Reminders__c"], 0)
	assert.Equal(t, "Task", task["TaskSubtype"])
	assert.Equal(t, "Not Started", task["Status"])
}

func TestWrapUpRetriedWithTheSameKeyWritesNothingTwice(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	w := startWorkflow(t, cfg)
	ctx := context.Background()
	wu := suzanneWrapUp()

	first, err := w.WrapUp(ctx, wu, "same-key")
	require.NoError(t, err)
	require.Equal(t, workflow.StatusWritten, first.Klantinteracties.Status)
	e.clock.Set(e.clock.Now().Add(time.Minute)) // the retry comes later
	again, err := w.WrapUp(ctx, wu, "same-key")
	require.NoError(t, err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.ID, again.ID)
	assert.Equal(t, first.Klantinteracties, again.Klantinteracties)
	assert.Equal(t, first.Salesforce, again.Salesforce)
	assert.Len(t, contactsWithRef(t, e, first.ID), 1)
	assert.Len(t, tasksWithKey(e, first.ID), 1)

	// Another employee's key is theirs: a new wrap-up.
	other := wu
	other.Employee.Sub = "kcc-bert"
	third, err := w.WrapUp(ctx, other, "same-key")
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, third.ID)

	// The same key for a different wrap-up is refused.
	changed := wu
	changed.Onderwerp = "Iets anders"
	_, err = w.WrapUp(ctx, changed, "same-key")
	assert.ErrorIs(t, err, workflow.ErrKeyReused)
}

func TestWrapUpWithSalesforceDownIsCompletedWhenItIsBack(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	cfg.WriteWait = 2 * time.Second
	w := startWorkflow(t, cfg)
	ctx := context.Background()
	e.sf.SetDown(true)

	res, err := w.WrapUp(ctx, suzanneWrapUp(), "down-key")
	require.NoError(t, err)
	assert.Equal(t, workflow.StatusWritten, res.Klantinteracties.Status, res.Klantinteracties.Error)
	assert.Equal(t, workflow.StatusPending, res.Salesforce.Status)
	assert.NotEmpty(t, res.Salesforce.Error)
	assert.NotContains(t, res.Salesforce.Error, fixtures.BSNSuzanne)
	assert.Empty(t, res.Salesforce.Task)
	assert.Len(t, contactsWithRef(t, e, res.ID), 1)

	// A retry of the request while Salesforce is still down writes nothing new.
	again, err := w.WrapUp(ctx, suzanneWrapUp(), "down-key")
	require.NoError(t, err)
	assert.True(t, again.Replayed)
	assert.Equal(t, workflow.StatusPending, again.Salesforce.Status)

	e.sf.SetDown(false)
	eventually(t, "the Task is written", func() bool {
		r, err := w.Result(ctx, res.ID)
		return err == nil && r.Salesforce.Status == workflow.StatusWritten
	})
	assert.Len(t, tasksWithKey(e, res.ID), 1)
	assert.Len(t, contactsWithRef(t, e, res.ID), 1)
}

func TestWrapUpValidation(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	w := startWorkflow(t, cfg)
	for name, change := range map[string]func(*workflow.WrapUp){
		"bsn":                         func(wu *workflow.WrapUp) { wu.BSN = "123456789" },
		"kanaal":                      func(wu *workflow.WrapUp) { wu.Kanaal = "" },
		"onderwerp":                   func(wu *workflow.WrapUp) { wu.Onderwerp = strings.Repeat("x", 201) },
		"zaak":                        func(wu *workflow.WrapUp) { wu.Zaak = "BURZA-1" },
		"callback.toegewezen":         func(wu *workflow.WrapUp) { wu.Callback.Toegewezen.Kind = "team" },
		"callback.due":                func(wu *workflow.WrapUp) { wu.Callback.Due = wu.At.Add(-time.Hour) },
		"employee.sub":                func(wu *workflow.WrapUp) { wu.Employee.Sub = "" },
		"callback.gevraagdeHandeling": func(wu *workflow.WrapUp) { wu.Callback.GevraagdeHandeling = " " },
		"callback.toegewezen ":        func(wu *workflow.WrapUp) { wu.Callback.Toegewezen.ID = "onbekend" },
	} {
		t.Run(name, func(t *testing.T) {
			wu := suzanneWrapUp()
			wu.At = e.clock.Now()
			change(&wu)
			_, err := w.WrapUp(context.Background(), wu, "k-"+name)
			require.ErrorIs(t, err, workflow.ErrInvalid)
			var ve *workflow.ValidationError
			require.True(t, errors.As(err, &ve))
			assert.Equal(t, strings.TrimSpace(name), ve.Field)
			assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
		})
	}
	assert.Empty(t, e.audit.Events())
}

// TestReminderCycle runs a callback left alone through its three
// reminders and the escalation on the injected clock.
func TestReminderCycle(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	w := startWorkflow(t, cfg)
	runCycle(t, e, []*workflow.Workflow{w})
}

// runCycle wraps up a callback on ws[0] and moves the clock through its
// term three times and once more, checking after each step what the owner,
// both systems and the audit log got, and that each step happened once.
func runCycle(t *testing.T, e *env, ws []*workflow.Workflow) {
	t.Helper()
	ctx := context.Background()
	res, err := ws[0].WrapUp(ctx, suzanneWrapUp(), "cycle")
	require.NoError(t, err)
	require.Equal(t, workflow.StatusWritten, res.Salesforce.Status, res.Salesforce.Error)
	require.Equal(t, workflow.StatusWritten, res.Klantinteracties.Status, res.Klantinteracties.Error)
	jdevries := workflow.Assignee{Kind: workflow.Medewerker, ID: "jdevries"}

	search := func() workflow.OpenCallback {
		t.Helper()
		r, err := ws[len(ws)-1].Search(ctx, workflow.SearchQuery{Owners: []workflow.Assignee{jdevries,
			{Kind: workflow.Groep, ID: "burgerzaken-queue"}}})
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"klantinteracties": "ok", "salesforce": "ok"}, r.Sources)
		for _, c := range r.Callbacks {
			if c.ID == res.ID {
				return c
			}
		}
		t.Fatalf("callback %s not in the search", res.ID)
		return workflow.OpenCallback{}
	}
	cb := search()
	assert.Equal(t, "Suzanne Moulin", cb.ResidentName)
	assert.False(t, cb.Overdue)
	assert.Zero(t, cb.RemindersSent)
	assert.Equal(t, res.Klantinteracties.InterneTaak, cb.InterneTaak)
	assert.Equal(t, res.Salesforce.Task, cb.SalesforceTask)

	// Before the term nothing happens.
	e.clock.Set(res.CallbackDue.Add(-time.Minute))
	time.Sleep(300 * time.Millisecond) // several scans
	assert.Empty(t, e.mail.Messages())

	// Each term passes: one reminder each. The weekend in between (the
	// third term starts on a Friday) is skipped by the next term.
	at := res.CallbackDue
	for n := 1; n <= 3; n++ {
		at = at.Add(time.Second)
		e.clock.Set(at)
		eventually(t, "reminder audited", func() bool { return countOps(e, workflow.OperationReminder) == n })
		eventually(t, "Reminders__c updated", func() bool {
			return tasksWithKey(e, res.ID)[0]["Reminders__c"] == float64(n)
		})
		time.Sleep(200 * time.Millisecond) // room for a duplicate to show
		assert.Equal(t, n, countMail(e.mail.Messages(), "j.devries@gemeente.example", "Herinnering"), "reminder %d mailed once", n)
		assert.Equal(t, n, countOps(e, workflow.OperationReminder), "reminder %d audited once", n)
		// The callback's own row is updated last, after the audit event.
		var cb workflow.OpenCallback
		eventually(t, "the callback counts the reminder", func() bool {
			cb = search()
			return cb.RemindersSent == n
		})
		assert.True(t, cb.Overdue)
		assert.False(t, cb.Escalated)
		at = workflow.DutchCalendar().Add(at, workflow.DefaultTerm)
	}
	// The third term passes: the backup takes over.
	e.clock.Set(at.Add(time.Second))
	eventually(t, "reassignment audited", func() bool { return countOps(e, workflow.OperationReassign) == 1 })
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 1, countOps(e, workflow.OperationReassign))
	assert.Equal(t, 3, countOps(e, workflow.OperationReminder))
	assert.Equal(t, 1, countMail(e.mail.Messages(), "coordinator.burgerzaken@gemeente.example", "overgedragen"))

	task := tasksWithKey(e, res.ID)[0]
	assert.Equal(t, sffake.Queues[0].ID, task["OwnerId"])
	assert.Equal(t, true, task["Escalated__c"])
	taak, err := e.kiC.InterneTaak(ctx, res.Klantinteracties.InterneTaak)
	require.NoError(t, err)
	backupActor, err := e.kiC.EnsureActor(ctx, klantinteracties.Actor{Kind: klantinteracties.ActorGroep, ID: "burgerzaken-queue"})
	require.NoError(t, err)
	assert.Equal(t, []string{backupActor}, taak.Actoren)

	// The callback's own row is updated last, after the audit event; until
	// then the search shows it escalated (Salesforce says so) but still
	// with its old owner.
	eventually(t, "the callback shows the backup", func() bool {
		cb = search()
		return cb.Escalated && cb.Assignee.ID == "burgerzaken-queue"
	})

	for _, ev := range e.audit.Events() {
		assert.Equal(t, workflow.WorkflowActor, ev.Actor.Sub)
		require.NotNil(t, ev.Context)
		assert.Equal(t, "internetaak", ev.Context.Type)
		assert.Equal(t, res.Klantinteracties.InterneTaak, ev.Context.ID)
		assert.NotContains(t, strings.Join(ev.Reasons, " "), fixtures.BSNSuzanne)
	}
	for _, m := range e.mail.Messages() {
		assert.NotContains(t, m.Data, fixtures.BSNSuzanne)
	}

	// Nothing more after the escalation.
	e.clock.Set(workflow.DutchCalendar().Add(at, 10*workflow.DefaultTerm))
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, e.audit.Events(), 4)
}

func countOps(e *env, op string) int {
	n := 0
	for _, ev := range e.audit.Events() {
		if ev.Operation == op {
			n++
		}
	}
	return n
}

func TestHandledCallbackGetsNoReminder(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	w := startWorkflow(t, cfg)
	ctx := context.Background()
	res, err := w.WrapUp(ctx, suzanneWrapUp(), "handled")
	require.NoError(t, err)
	require.Equal(t, workflow.StatusWritten, res.Klantinteracties.Status)
	done := klantinteracties.StatusVerwerkt
	_, err = e.kiC.UpdateInterneTaak(ctx, res.Klantinteracties.InterneTaak, klantinteracties.TaakUpdate{Status: &done})
	require.NoError(t, err)

	e.clock.Set(res.CallbackDue.Add(time.Hour))
	time.Sleep(400 * time.Millisecond)
	assert.Empty(t, e.mail.Messages())
	assert.Empty(t, e.audit.Events())
	r, err := w.Search(ctx, workflow.SearchQuery{Owners: []workflow.Assignee{{Kind: workflow.Medewerker, ID: "jdevries"}}})
	require.NoError(t, err)
	for _, c := range r.Callbacks {
		assert.NotEqual(t, res.ID, c.ID)
	}
}

// TestLostAnswersAreNotWrittenTwice loses the answer to the first
// klantcontact POST and the first Task POST: both were carried out, the
// retries find them (referentienummer, Klantbeeld_Key__c) instead of
// creating them again.
func TestLostAnswersAreNotWrittenTwice(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	w := startWorkflow(t, cfg)
	ctx := context.Background()
	e.loseKI.Store(1)
	e.loseSF.Store(1)
	res, err := w.WrapUp(ctx, suzanneWrapUp(), "lost")
	require.NoError(t, err)
	eventually(t, "both written", func() bool {
		r, err := w.Result(ctx, res.ID)
		return err == nil && r.Klantinteracties.Status == workflow.StatusWritten && r.Salesforce.Status == workflow.StatusWritten
	})
	assert.Equal(t, int32(0), e.loseKI.Load())
	assert.Equal(t, int32(0), e.loseSF.Load())
	assert.Len(t, contactsWithRef(t, e, res.ID), 1)
	assert.Len(t, tasksWithKey(e, res.ID), 1)
}

// TestWrapUpIsDurableAcrossARestart records a wrap-up while both systems
// are down, stops that workflow, and lets a new one on the same database
// finish the writes.
func TestWrapUpIsDurableAcrossARestart(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	cfg.WriteWait = 500 * time.Millisecond
	ctx := context.Background()
	e.ki.SetDown(true)
	e.sf.SetDown(true)
	first, err := workflow.New(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, first.Start(ctx))
	res, err := first.WrapUp(ctx, suzanneWrapUp(), "restart")
	require.NoError(t, err)
	assert.Equal(t, workflow.StatusPending, res.Klantinteracties.Status)
	assert.Equal(t, workflow.StatusPending, res.Salesforce.Status)
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, first.Stop(stopCtx))

	e.ki.SetDown(false)
	e.sf.SetDown(false)
	second := startWorkflow(t, cfg)
	eventually(t, "both written after the restart", func() bool {
		r, err := second.Result(ctx, res.ID)
		return err == nil && r.Klantinteracties.Status == workflow.StatusWritten && r.Salesforce.Status == workflow.StatusWritten
	})
	assert.Len(t, contactsWithRef(t, e, res.ID), 1)
	assert.Len(t, tasksWithKey(e, res.ID), 1)
}

func TestWrapUpWithoutCallbackIsALoggedCall(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	w := startWorkflow(t, cfg)
	wu := suzanneWrapUp()
	wu.Callback, wu.Zaak = nil, ""
	res, err := w.WrapUp(context.Background(), wu, "no-callback")
	require.NoError(t, err)
	require.Equal(t, workflow.StatusWritten, res.Klantinteracties.Status, res.Klantinteracties.Error)
	require.Equal(t, workflow.StatusWritten, res.Salesforce.Status, res.Salesforce.Error)
	assert.Empty(t, res.Klantinteracties.InterneTaak)
	assert.Empty(t, res.Klantinteracties.Onderwerpobject)
	assert.True(t, res.CallbackDue.IsZero())
	task := tasksWithKey(e, res.ID)[0]
	assert.Equal(t, "Call", task["TaskSubtype"])
	assert.Equal(t, "Completed", task["Status"])
	assert.Equal(t, fixtures.Owners[0].ID, task["OwnerId"], "owned by the employee who wrapped up")
	c := contactsWithRef(t, e, res.ID)
	require.Len(t, c, 1)
	assert.Empty(t, c[0].Taken)
}

// TestSearchMergesBothSystems lists a department's callbacks: the one
// written here once (not once per system), a Salesforce Task made
// elsewhere, most urgent first; with Klantinteracties down the list still
// holds the workflow's own callbacks and says which source is missing.
func TestSearchMergesBothSystems(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t)
	cfg.DB = openSQLite(t)
	w := startWorkflow(t, cfg)
	ctx := context.Background()
	wu := suzanneWrapUp()
	wu.Callback.Toegewezen = workflow.Assignee{Kind: workflow.Afdeling, ID: "burgerzaken"}
	wu.Callback.Due = e.clock.Now().Add(time.Hour)
	soon, err := w.WrapUp(ctx, wu, "soon")
	require.NoError(t, err)
	wu.Callback.Due = e.clock.Now().Add(72 * time.Hour)
	wu.Onderwerp = "Verhuizing"
	later, err := w.WrapUp(ctx, wu, "later")
	require.NoError(t, err)
	// A callback made in Salesforce itself, for the department's queue, overdue.
	sfOnly, _, err := e.sfC.EnsureTask(ctx, salesforce.NewTask{Key: "elsewhere", Subtype: salesforce.SubtypeTask,
		Subject: "Terugbellen (CRM)", OwnerID: sffake.Queues[0].ID, Due: e.clock.Now().AddDate(0, 0, -2)})
	require.NoError(t, err)
	e.clock.Set(e.clock.Now().Add(2 * time.Hour))

	q := workflow.SearchQuery{Owners: []workflow.Assignee{{Kind: workflow.Afdeling, ID: "burgerzaken"}}}
	r, err := w.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"klantinteracties": "ok", "salesforce": "ok"}, r.Sources)
	var ids []string
	for _, c := range r.Callbacks {
		ids = append(ids, c.ID)
	}
	// The scenario's own interne taak for burgerzaken (open, no due date
	// set by us) is among them too, after those that are due.
	assert.Equal(t, []string{"salesforce:" + sfOnly, soon.ID, "klantinteracties:f0000000-0000-4000-8000-000000000303", later.ID}, ids)
	assert.True(t, r.Callbacks[0].Overdue)
	assert.True(t, r.Callbacks[1].Overdue)
	assert.False(t, r.Callbacks[3].Overdue)
	assert.Equal(t, "Suzanne Moulin", r.Callbacks[1].ResidentName)
	assert.Empty(t, r.Callbacks[0].ResidentName)
	for _, c := range r.Callbacks {
		assert.NotContains(t, c.ResidentName+c.Onderwerp+c.ID, fixtures.BSNSuzanne)
	}

	// Someone else's list holds their own (the scenario's CRM callbacks of
	// Jan de Vries, one with three reminders), not the department's.
	r, err = w.Search(ctx, workflow.SearchQuery{Owners: []workflow.Assignee{{Kind: workflow.Medewerker, ID: "jdevries"}}})
	require.NoError(t, err)
	require.NotEmpty(t, r.Callbacks)
	for _, c := range r.Callbacks {
		assert.NotContains(t, []string{soon.ID, later.ID, "salesforce:" + sfOnly}, c.ID)
		assert.Equal(t, "jdevries", c.Assignee.ID)
	}
	assert.Equal(t, 3, r.Callbacks[0].RemindersSent, "the most overdue first")

	e.ki.SetDown(true)
	r, err = w.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, "unavailable", r.Sources["klantinteracties"])
	assert.Len(t, r.Callbacks, 3)

	_, err = w.Search(ctx, workflow.SearchQuery{})
	assert.ErrorIs(t, err, workflow.ErrInvalid)
	_, err = w.Search(ctx, workflow.SearchQuery{Owners: []workflow.Assignee{{Kind: "team", ID: "x"}}})
	assert.ErrorIs(t, err, workflow.ErrInvalid)
}

func TestNewChecksConfig(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for name, change := range map[string]func(*workflow.Config){
		"no database":     func(c *workflow.Config) { c.DB = nil },
		"schema":          func(c *workflow.Config) { c.Schema = "x" },
		"no audit":        func(c *workflow.Config) { c.Audit = nil },
		"no smtp":         func(c *workflow.Config) { c.SMTP.Addr = "" },
		"no directory":    func(c *workflow.Config) { c.Directory = nil },
		"bad backup":      func(c *workflow.Config) { c.Backup = map[string]workflow.Assignee{"x": {Kind: "team", ID: "y"}} },
		"negative term":   func(c *workflow.Config) { c.Term = -time.Hour },
		"no salesforce":   func(c *workflow.Config) { c.Salesforce = nil },
		"no klantcontact": func(c *workflow.Config) { c.Klantinteracties = nil },
	} {
		cfg := e.config(t)
		cfg.DB = openSQLite(t)
		change(&cfg)
		_, err := workflow.New(ctx, cfg)
		assert.Error(t, err, name)
	}
}
