package workflow

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
)

// Audit operations of the callback cycle.
const (
	OperationReminder = "callback.reminder"
	OperationReassign = "callback.reassign"
	// WorkflowActor is the audit actor of what the job runner does.
	WorkflowActor = "klantbeeld-workflow"
)

// scanArgs is the periodic look for callbacks past their term.
type scanArgs struct{}

func (scanArgs) Kind() string { return "klantbeeld_callback_scan" }

func (scanArgs) InsertOpts() river.InsertOpts {
	// At most one scan waiting at a time, whichever gateway enqueued it.
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateRunning,
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateScheduled, rivertype.JobStateRetryable,
	}}}
}

// stepArgs is one step of one callback: reminder Step (1…N), or the
// escalation (N+1). Unique by its arguments in every state, so each step
// runs once however many gateways scan.
type stepArgs struct {
	Callback string `json:"callback"`
	Step     int    `json:"step"`
}

func (stepArgs) Kind() string { return "klantbeeld_callback_step" }

type scanWorker struct {
	river.WorkerDefaults[scanArgs]
	w *Workflow
}

func (s *scanWorker) Work(ctx context.Context, _ *river.Job[scanArgs]) error {
	return s.w.scan(ctx)
}

// scan inserts the next step of every open callback whose moment has come.
func (w *Workflow) scan(ctx context.Context) error {
	now := formatTime(w.cfg.Now())
	rs, err := w.db.query(ctx, `SELECT id, reminders FROM {p}workflow_callback
		WHERE closed = 0 AND escalated = 0 AND next_at <= $1 ORDER BY next_at`, now)
	if err != nil {
		return err
	}
	type due struct {
		id   string
		step int
	}
	var todo []due
	for rs.Next() {
		var d due
		if err := rs.Scan(&d.id, &d.step); err != nil {
			rs.Close()
			return err
		}
		d.step++
		todo = append(todo, d)
	}
	err = rs.Err()
	rs.Close()
	if err != nil {
		return err
	}
	for _, d := range todo {
		if err := w.db.insert(ctx, stepArgs{Callback: d.id, Step: d.step}, uniqueByArgs); err != nil {
			return err
		}
	}
	return nil
}

// cbRow is a callback as the step job reads it.
type cbRow struct {
	id, department, residentName, subject, onderwerp, handeling string
	assignee                                                    Assignee
	due, next                                                   time.Time
	reminders                                                   int
	escalated, closed                                           bool
	stepDone                                                    string
	internetaak, sfTask, klantcontact                           string
}

func (w *Workflow) loadCallback(ctx context.Context, id string) (*cbRow, error) {
	c := &cbRow{id: id}
	var assignee, due, next string
	var escalated, closed int
	err := w.db.queryRow(ctx, `SELECT c.assignee, c.department, c.resident_name, c.subject, c.onderwerp, c.gevraagde_handeling,
		c.due_at, c.next_at, c.reminders, c.escalated, c.closed, c.step_done, w.internetaak, w.sf_task, w.klantcontact
		FROM {p}workflow_callback c JOIN {p}workflow_wrapup w ON w.id = c.id WHERE c.id = $1`, id).Scan(
		&assignee, &c.department, &c.residentName, &c.subject, &c.onderwerp, &c.handeling,
		&due, &next, &c.reminders, &escalated, &closed, &c.stepDone, &c.internetaak, &c.sfTask, &c.klantcontact)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(assignee), &c.assignee); err != nil {
		return nil, err
	}
	c.due, c.next = parseTime(due), parseTime(next)
	c.escalated, c.closed = escalated != 0, closed != 0
	return c, nil
}

func (c *cbRow) done(part string) bool { return slices.Contains(strings.Split(c.stepDone, ","), part) }

// markDone records that part of the current step is done, so a retried
// step does not repeat it.
func (w *Workflow) markDone(ctx context.Context, c *cbRow, part string) error {
	done := part
	if c.stepDone != "" {
		done = c.stepDone + "," + part
	}
	if _, err := w.db.exec(ctx, `UPDATE {p}workflow_callback SET step_done = $1 WHERE id = $2`, done, c.id); err != nil {
		return err
	}
	c.stepDone = done
	return nil
}

type stepWorker struct {
	river.WorkerDefaults[stepArgs]
	w *Workflow
}

func (s *stepWorker) Work(ctx context.Context, job *river.Job[stepArgs]) error {
	return s.w.step(ctx, job.Args.Callback, job.Args.Step)
}

// ErrNoBackup: a callback is due for escalation but Config.Backup names no
// backup for its department; the step is retried (after a configuration
// change, it goes through).
var ErrNoBackup = errors.New("workflow: no backup configured for the department")

func (w *Workflow) step(ctx context.Context, id string, step int) error {
	c, err := w.loadCallback(ctx, id)
	if err != nil {
		return err
	}
	if c.closed || c.escalated || c.reminders != step-1 {
		return nil // done already, or overtaken
	}
	closed, err := w.closedAtSource(ctx, c)
	if err != nil {
		return err
	}
	if closed {
		_, err := w.db.exec(ctx, `UPDATE {p}workflow_callback SET closed = 1 WHERE id = $1`, id)
		return err
	}
	n := w.cfg.RemindersBeforeEscalation
	if step <= n {
		return w.remind(ctx, c, step)
	}
	return w.escalate(ctx, c)
}

// closedAtSource asks both systems whether the callback was handled.
func (w *Workflow) closedAtSource(ctx context.Context, c *cbRow) (bool, error) {
	if c.internetaak != "" {
		t, err := w.cfg.Klantinteracties.InterneTaak(ctx, c.internetaak)
		if err != nil {
			return false, err
		}
		if t.Status == klantinteracties.StatusVerwerkt {
			return true, nil
		}
	}
	if c.sfTask != "" {
		_, closed, err := w.cfg.Salesforce.Callback(ctx, c.sfTask)
		if err != nil {
			return false, err
		}
		if closed {
			return true, nil
		}
	}
	return false, nil
}

func (w *Workflow) mail(ctx context.Context, to Assignee, subject, body string) error {
	addr, err := w.cfg.Directory.Email(to)
	if err != nil {
		return err
	}
	return w.mailer.Send(ctx, Mail{To: addr, Subject: subject, Body: body})
}

func (w *Workflow) remind(ctx context.Context, c *cbRow, step int) error {
	now := w.cfg.Now()
	n := w.cfg.RemindersBeforeEscalation
	if !c.done("mail") {
		subject := fmt.Sprintf("Herinnering %d van %d: terugbelverzoek %s", step, n, c.id)
		body := fmt.Sprintf("Het terugbelverzoek %s (%s) is op %s verlopen en nog niet afgehandeld.\n\nGevraagde handeling: %s\n\n"+
			"Na %d herinneringen gaat het verzoek naar de achtervang.",
			c.id, c.onderwerp, c.due.In(w.cfg.Calendar.Location).Format("02-01-2006 15:04"), c.handeling, n)
		if err := w.mail(ctx, c.assignee, subject, body); err != nil {
			return err
		}
		if err := w.markDone(ctx, c, "mail"); err != nil {
			return err
		}
	}
	if c.sfTask != "" && !c.done("sf") {
		if err := w.cfg.Salesforce.UpdateTask(ctx, c.sfTask, salesforce.TaskUpdate{Reminders: &step, ReminderAt: &now}); err != nil {
			return err
		}
		if err := w.markDone(ctx, c, "sf"); err != nil {
			return err
		}
	}
	if !c.done("audit") {
		if err := w.audit(ctx, c, OperationReminder, fmt.Sprintf("reminder %d of %d to %s", step, n, c.assignee.key())); err != nil {
			return err
		}
		if err := w.markDone(ctx, c, "audit"); err != nil {
			return err
		}
	}
	next := w.cfg.Calendar.Add(now, w.cfg.Term)
	_, err := w.db.exec(ctx, `UPDATE {p}workflow_callback SET reminders = $1, next_at = $2, step_done = '' WHERE id = $3 AND reminders = $4`,
		step, formatTime(next), c.id, step-1)
	return err
}

func (w *Workflow) escalate(ctx context.Context, c *cbRow) error {
	backup, ok := w.cfg.Backup[c.department]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoBackup, c.department)
	}
	if c.internetaak != "" && !c.done("ki") {
		actor, err := w.cfg.Klantinteracties.EnsureActor(ctx, backup.actor())
		if err != nil {
			return err
		}
		if _, err := w.cfg.Klantinteracties.UpdateInterneTaak(ctx, c.internetaak, klantinteracties.TaakUpdate{Actoren: []string{actor}}); err != nil {
			return err
		}
		if err := w.markDone(ctx, c, "ki"); err != nil {
			return err
		}
	}
	if c.sfTask != "" && !c.done("sf") {
		owner, err := w.cfg.Directory.SalesforceOwner(backup)
		if err != nil {
			return err
		}
		escalated := true
		if err := w.cfg.Salesforce.UpdateTask(ctx, c.sfTask, salesforce.TaskUpdate{OwnerID: &owner, Escalated: &escalated}); err != nil {
			return err
		}
		if err := w.markDone(ctx, c, "sf"); err != nil {
			return err
		}
	}
	if !c.done("mail") {
		subject := "Terugbelverzoek overgedragen: " + c.id
		body := fmt.Sprintf("Het terugbelverzoek %s (%s) is na %d herinneringen aan %s niet afgehandeld en is aan u toegewezen.\n\nGevraagde handeling: %s",
			c.id, c.onderwerp, w.cfg.RemindersBeforeEscalation, c.assignee.key(), c.handeling)
		if err := w.mail(ctx, backup, subject, body); err != nil {
			return err
		}
		if err := w.markDone(ctx, c, "mail"); err != nil {
			return err
		}
	}
	if !c.done("audit") {
		if err := w.audit(ctx, c, OperationReassign, fmt.Sprintf("reassigned from %s to backup %s after %d reminders",
			c.assignee.key(), backup.key(), w.cfg.RemindersBeforeEscalation)); err != nil {
			return err
		}
		if err := w.markDone(ctx, c, "audit"); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(backup)
	_, err := w.db.exec(ctx, `UPDATE {p}workflow_callback SET escalated = 1, assignee = $1, step_done = '' WHERE id = $2 AND escalated = 0`,
		string(b), c.id)
	return err
}

func (w *Workflow) audit(ctx context.Context, c *cbRow, op, reason string) error {
	ev := audit.Event{
		Time:      w.cfg.Now().UTC(),
		Operation: op,
		Actor:     audit.Actor{Sub: WorkflowActor, Department: c.department},
		Purpose:   "klantcontact",
		Subject:   c.subject,
		Decision:  audit.DecisionAllow,
		Reasons:   []string{reason},
	}
	switch {
	case c.internetaak != "":
		ev.Context = &audit.Context{Type: "internetaak", ID: c.internetaak}
	case c.klantcontact != "":
		ev.Context = &audit.Context{Type: "klantcontact", ID: c.klantcontact}
	}
	if c.internetaak != "" {
		ev.Sources = append(ev.Sources, audit.SourceAccess{Source: "klantinteracties", Status: "ok", Called: true})
	}
	if c.sfTask != "" {
		ev.Sources = append(ev.Sources, audit.SourceAccess{Source: "salesforce", Status: "ok", Called: true})
	}
	_, err := w.cfg.Audit.Append(ctx, ev)
	return err
}

// SearchQuery names whose open callbacks to list: typically the caller as
// a medewerker and their afdeling.
type SearchQuery struct {
	Owners []Assignee
}

// OpenCallback is one open callback in a search.
type OpenCallback struct {
	// ID is the wrap-up's id for callbacks made here; for one made
	// elsewhere "salesforce:<Task Id>" or "klantinteracties:<uuid>".
	ID                 string
	Onderwerp          string
	GevraagdeHandeling string
	// ResidentName as given at wrap-up; "" when unknown. Never a BSN.
	ResidentName  string
	Assignee      Assignee
	Due           time.Time
	RemindersSent int
	Overdue       bool
	Escalated     bool
	// InterneTaak and SalesforceTask are the records in each system; ""
	// where the system has none (or it is still being written).
	InterneTaak    string
	SalesforceTask string
}

// SearchResult is the merged list and how each system answered.
type SearchResult struct {
	Callbacks []OpenCallback
	// Sources says per system "ok" or "unavailable" (then the list holds
	// what the other system and the workflow's own records know).
	Sources map[string]string
}

// Search returns the open callbacks assigned to any of q.Owners, from
// Klantinteracties and Salesforce together (one entry for a callback that
// is in both), most urgent first: the earliest due, escalated before
// others at the same moment. A system that is down makes its part come
// from the workflow's own records and its source "unavailable", not an
// error.
func (w *Workflow) Search(ctx context.Context, q SearchQuery) (*SearchResult, error) {
	if len(q.Owners) == 0 {
		return nil, invalid("owners", "name at least one owner")
	}
	for i, o := range q.Owners {
		if err := checkAssignee(o); err != nil {
			return nil, invalid("owners["+strconv.Itoa(i)+"]", err.Error())
		}
	}
	now := w.cfg.Now()
	res := &SearchResult{Sources: map[string]string{"klantinteracties": "ok", "salesforce": "ok"}}

	// The workflow's own open callbacks of these owners.
	ours := map[string]*OpenCallback{}
	byTaak, byTask := map[string]*OpenCallback{}, map[string]*OpenCallback{}
	rs, err := w.db.query(ctx, `SELECT c.id, c.assignee, c.resident_name, c.onderwerp, c.gevraagde_handeling, c.due_at, c.reminders,
		c.escalated, w.internetaak, w.sf_task FROM {p}workflow_callback c JOIN {p}workflow_wrapup w ON w.id = c.id WHERE c.closed = 0`)
	if err != nil {
		return nil, err
	}
	for rs.Next() {
		var cb OpenCallback
		var assignee, due string
		var escalated int
		if err := rs.Scan(&cb.ID, &assignee, &cb.ResidentName, &cb.Onderwerp, &cb.GevraagdeHandeling, &due, &cb.RemindersSent,
			&escalated, &cb.InterneTaak, &cb.SalesforceTask); err != nil {
			rs.Close()
			return nil, err
		}
		if json.Unmarshal([]byte(assignee), &cb.Assignee) != nil || !ownedBy(cb.Assignee, q.Owners) {
			continue
		}
		cb.Due, cb.Escalated = parseTime(due), escalated != 0
		ours[cb.ID] = &cb
		if cb.InterneTaak != "" {
			byTaak[cb.InterneTaak] = &cb
		}
		if cb.SalesforceTask != "" {
			byTask[cb.SalesforceTask] = &cb
		}
	}
	err = rs.Err()
	rs.Close()
	if err != nil {
		return nil, err
	}
	seenTaak, seenTask := map[string]bool{}, map[string]bool{}
	var others []OpenCallback

	for _, o := range q.Owners {
		taken, err := w.cfg.Klantinteracties.OpenInterneTakenFor(ctx, o.actor())
		if err != nil {
			res.Sources["klantinteracties"] = "unavailable"
			break
		}
		for _, t := range taken {
			seenTaak[t.UUID] = true
			if _, mine := byTaak[t.UUID]; mine || slices.ContainsFunc(others, func(c OpenCallback) bool { return c.InterneTaak == t.UUID }) {
				continue
			}
			due := w.cfg.Calendar.Add(t.ToegewezenOp, w.cfg.Term)
			others = append(others, OpenCallback{
				ID: "klantinteracties:" + t.UUID, GevraagdeHandeling: t.GevraagdeHandeling,
				Assignee: o, Due: due, InterneTaak: t.UUID,
			})
		}
	}
	var owners []string
	ownerOf := map[string]Assignee{}
	for _, o := range q.Owners {
		if id, err := w.cfg.Directory.SalesforceOwner(o); err == nil {
			owners = append(owners, id)
			ownerOf[id] = o
		}
	}
	if tasks, err := w.cfg.Salesforce.OpenCallbacks(ctx, owners); err != nil {
		res.Sources["salesforce"] = "unavailable"
	} else {
		for _, t := range tasks {
			seenTask[t.ID] = true
			if cb, mine := byTask[t.ID]; mine {
				cb.RemindersSent = max(cb.RemindersSent, t.Reminders)
				cb.Escalated = cb.Escalated || t.Escalated
				continue
			}
			if cb, mine := ours[t.Key]; mine {
				cb.SalesforceTask = t.ID
				seenTask[t.ID] = true
				continue
			}
			cb := OpenCallback{
				ID: "salesforce:" + t.ID, Onderwerp: t.Subject, Assignee: ownerOf[t.OwnerID],
				RemindersSent: t.Reminders, Escalated: t.Escalated, SalesforceTask: t.ID,
			}
			if d, err := time.ParseInLocation(time.DateOnly, t.Due, w.cfg.Calendar.Location); err == nil {
				// Due on that day: overdue from the next day on.
				cb.Due = d.AddDate(0, 0, 1).Add(-time.Second)
			}
			others = append(others, cb)
		}
	}
	for _, cb := range ours {
		// A record the reachable system no longer lists as open was
		// handled there.
		if res.Sources["klantinteracties"] == "ok" && cb.InterneTaak != "" && !seenTaak[cb.InterneTaak] ||
			res.Sources["salesforce"] == "ok" && cb.SalesforceTask != "" && !seenTask[cb.SalesforceTask] {
			continue
		}
		res.Callbacks = append(res.Callbacks, *cb)
	}
	res.Callbacks = append(res.Callbacks, others...)
	for i := range res.Callbacks {
		cb := &res.Callbacks[i]
		cb.Overdue = !cb.Due.IsZero() && now.After(cb.Due)
	}
	slices.SortStableFunc(res.Callbacks, func(a, b OpenCallback) int {
		if a.Due.IsZero() != b.Due.IsZero() {
			if a.Due.IsZero() {
				return 1
			}
			return -1
		}
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		if a.Escalated != b.Escalated {
			if a.Escalated {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.RemindersSent, a.RemindersSent), strings.Compare(a.ID, b.ID))
	})
	if res.Callbacks == nil {
		res.Callbacks = []OpenCallback{}
	}
	return res, nil
}

func ownedBy(a Assignee, owners []Assignee) bool {
	return slices.ContainsFunc(owners, func(o Assignee) bool { return o.Kind == a.Kind && o.ID == a.ID })
}
