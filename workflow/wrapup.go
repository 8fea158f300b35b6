package workflow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// Employee is who wraps up: the caller, whose idempotency keys are theirs.
type Employee struct {
	Sub        string // token subject; the idempotency scope
	Department string
	Name       string
}

// WrapUp is one contact to record.
type WrapUp struct {
	BSN string
	// ResidentName is how the callback lists name the resident (never the
	// BSN); optional. It is also the betrokkene's contactnaam.
	ResidentName  string
	Kanaal        string // at most 50 characters, e.g. telefoon, balie, chat
	Onderwerp     string // at most 200
	Inhoud        string // at most 1000
	Vertrouwelijk bool
	// Zaak is the UUID of the zaak the contact was about; optional.
	Zaak string
	// Case is the Salesforce Case the Task is about (WhatId); optional.
	Case     string
	Callback *Callback
	Employee Employee
	// At is when the contact took place; zero means now.
	At time.Time
}

// Callback asks someone to call the resident back.
type Callback struct {
	GevraagdeHandeling string // at most 200 characters
	Toelichting        string // at most 1000
	Toegewezen         Assignee
	// Due is the deadline; zero means Config.Term of working time after
	// the contact.
	Due time.Time
}

// Write statuses per system.
const (
	// StatusWritten: everything for this system is written.
	StatusWritten = "written"
	// StatusPending: not (all) written yet; retried until it is.
	StatusPending = "pending"
	// StatusFailed: the system refused the write as invalid; it is not
	// retried (see Error).
	StatusFailed = "failed"
)

// Result says what a wrap-up wrote where.
type Result struct {
	// ID identifies the wrap-up; it is also the klantcontact's
	// referentienummer and the Task's Klantbeeld_Key__c.
	ID string
	// Replayed is true when the idempotency key had been used before: the
	// result is the first wrap-up's (in its current state).
	Replayed         bool
	Klantinteracties KlantinteractiesResult
	Salesforce       SalesforceResult
	// CallbackDue is the callback's deadline; zero without callback.
	CallbackDue time.Time
}

// KlantinteractiesResult are the objects written to Klantinteracties.
type KlantinteractiesResult struct {
	Status          string
	Error           string // the last failure, when not written
	Klantcontact    string
	Betrokkene      string
	Onderwerpobject string
	InterneTaak     string
}

// SalesforceResult is the Task written to Salesforce.
type SalesforceResult struct {
	Status string
	Error  string
	Task   string
}

// request is what the jobs need, stored in the wrap-up row.
type request struct {
	WrapUp
	Due time.Time `json:"due"`
}

func checkText(field, s string, n int, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid(field, "required")
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > n {
		return invalid(field, fmt.Sprintf("at most %d characters of valid UTF-8", n))
	}
	return nil
}

func (wu *WrapUp) validate() error {
	if err := bsn.Check(wu.BSN); err != nil {
		return invalid("bsn", "not a valid BSN")
	}
	for _, c := range []error{
		checkText("residentName", wu.ResidentName, 200, false),
		checkText("kanaal", wu.Kanaal, 50, true),
		checkText("onderwerp", wu.Onderwerp, 200, true),
		checkText("inhoud", wu.Inhoud, 1000, false),
		checkText("employee.sub", wu.Employee.Sub, 200, true),
	} {
		if c != nil {
			return c
		}
	}
	if wu.Zaak != "" && !upstream.IsUUID(wu.Zaak) {
		return invalid("zaak", "not a UUID")
	}
	if wu.Case != "" && !salesforceID(wu.Case) {
		return invalid("case", "not a Salesforce id")
	}
	if cb := wu.Callback; cb != nil {
		if err := checkText("callback.gevraagdeHandeling", cb.GevraagdeHandeling, 200, true); err != nil {
			return err
		}
		if err := checkText("callback.toelichting", cb.Toelichting, 1000, false); err != nil {
			return err
		}
		if err := checkAssignee(cb.Toegewezen); err != nil {
			return invalid("callback.toegewezen", err.Error())
		}
		if !cb.Due.IsZero() && !cb.Due.After(wu.At) {
			return invalid("callback.due", "must lie after the contact")
		}
	}
	return nil
}

func salesforceID(s string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// newID is a wrap-up id: "kb" and 8 base32 characters, 10 in all, the
// most a referentienummer holds.
func newID() string { return "kb" + strings.ToLower(rand.Text()[:8]) }

type kiArgs struct {
	WrapUp string `json:"wrapUp"`
}

func (kiArgs) Kind() string { return "klantbeeld_wrapup_klantinteracties" }

type sfArgs struct {
	WrapUp string `json:"wrapUp"`
}

func (sfArgs) Kind() string { return "klantbeeld_wrapup_salesforce" }

var uniqueByArgs = &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}

// WrapUp records the contact in Klantinteracties and Salesforce. The
// wrap-up and its writes are durable once it returns without error; it
// waits up to Config.WriteWait for the first attempt of each write, and
// the result says per system what is written and what is still pending
// (retried until written).
//
// idempotencyKey (1 to 255 characters, per Employee.Sub) makes a retry
// safe: the same key with the same wrap-up returns the first result with
// Replayed set and writes nothing; with a different wrap-up it is
// ErrKeyReused. Errors: *ValidationError (ErrInvalid), ErrKeyReused, or a
// database error (nothing was recorded).
func (w *Workflow) WrapUp(ctx context.Context, wu WrapUp, idempotencyKey string) (*Result, error) {
	if wu.At.IsZero() {
		wu.At = w.cfg.Now()
	}
	wu.At = wu.At.UTC()
	if err := checkText("idempotencyKey", idempotencyKey, 255, true); err != nil {
		return nil, err
	}
	if err := wu.validate(); err != nil {
		return nil, err
	}
	if cb := wu.Callback; cb != nil {
		// An owner nobody can reach would never be reminded.
		if _, err := w.cfg.Directory.SalesforceOwner(cb.Toegewezen); err != nil {
			return nil, invalid("callback.toegewezen", "not in the directory (no Salesforce owner)")
		}
		if _, err := w.cfg.Directory.Email(cb.Toegewezen); err != nil {
			return nil, invalid("callback.toegewezen", "not in the directory (no e-mail address)")
		}
	}
	req := request{WrapUp: wu}
	if cb := wu.Callback; cb != nil {
		req.Due = cb.Due
		if req.Due.IsZero() {
			req.Due = w.cfg.Calendar.Add(wu.At, w.cfg.Term)
		}
		req.Due = req.Due.UTC()
	}
	hash := requestHash(wu)
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var id string
	replayed := false
	for attempt := 0; ; attempt++ {
		id = newID()
		err = w.db.inTx(ctx, func(q querier, insert inserter) error {
			var prevID, prevHash string
			err := q.queryRow(ctx, `SELECT id, request_hash FROM {p}workflow_wrapup WHERE caller = $1 AND idem_key = $2`,
				wu.Employee.Sub, idempotencyKey).Scan(&prevID, &prevHash)
			if err == nil {
				if prevHash != hash {
					return ErrKeyReused
				}
				id, replayed = prevID, true
				return nil
			}
			if !isNoRows(err) {
				return err
			}
			if _, err := q.exec(ctx, `INSERT INTO {p}workflow_wrapup (id, caller, idem_key, request_hash, request, created_at, ki_status, sf_status)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
				id, wu.Employee.Sub, idempotencyKey, hash, string(body), formatTime(w.cfg.Now()), StatusPending); err != nil {
				return err
			}
			if cb := wu.Callback; cb != nil {
				subject := ""
				if w.cfg.Pseudonyms != nil {
					subject = w.cfg.Pseudonyms.Pseudonym(wu.BSN)
				}
				assignee, _ := json.Marshal(cb.Toegewezen)
				if _, err := q.exec(ctx, `INSERT INTO {p}workflow_callback (id, assignee, department, resident_name, subject, onderwerp,
					gevraagde_handeling, due_at, next_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)`,
					id, string(assignee), cb.Toegewezen.department(), wu.ResidentName, subject, wu.Onderwerp,
					cb.GevraagdeHandeling, formatTime(req.Due), formatTime(w.cfg.Now())); err != nil {
					return err
				}
			}
			if err := insert(kiArgs{WrapUp: id}, uniqueByArgs); err != nil {
				return err
			}
			return insert(sfArgs{WrapUp: id}, uniqueByArgs)
		})
		if err != nil && w.db.isUniqueViolation(err) && attempt < 3 {
			// A concurrent call with the same key won, or (rarely) the id
			// was taken: look again.
			continue
		}
		break
	}
	if err != nil {
		return nil, err
	}
	if !replayed {
		w.waitFirstAttempts(ctx, id)
	}
	// Recorded: answer with the state even when the caller's context ran
	// out while waiting.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	res, err := w.result(rctx, id)
	if err != nil {
		return nil, err
	}
	res.Replayed = replayed
	return res, nil
}

func isNoRows(err error) bool {
	return errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows)
}

// requestHash tells one wrap-up from another for ErrKeyReused.
func requestHash(wu WrapUp) string {
	wu.At = time.Time{} // a retry made later is the same wrap-up
	b, _ := json.Marshal(wu)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// waitFirstAttempts waits until both writes were tried once, WriteWait
// passed or ctx ended.
func (w *Workflow) waitFirstAttempts(ctx context.Context, id string) {
	deadline := time.NewTimer(w.cfg.WriteWait)
	defer deadline.Stop()
	tick := time.NewTicker(min(25*time.Millisecond, w.cfg.PollInterval))
	defer tick.Stop()
	for {
		var ki, sf int
		err := w.db.queryRow(ctx, `SELECT ki_attempts, sf_attempts FROM {p}workflow_wrapup WHERE id = $1`, id).Scan(&ki, &sf)
		if err != nil || ki > 0 && sf > 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// Result returns the current state of the wrap-up with this id.
func (w *Workflow) Result(ctx context.Context, id string) (*Result, error) {
	return w.result(ctx, id)
}

func (w *Workflow) result(ctx context.Context, id string) (*Result, error) {
	r := &Result{ID: id}
	var due *string
	err := w.db.queryRow(ctx, `SELECT w.ki_status, w.ki_error, w.klantcontact, w.betrokkene, w.onderwerpobject, w.internetaak,
		w.sf_status, w.sf_error, w.sf_task, c.due_at
		FROM {p}workflow_wrapup w LEFT JOIN {p}workflow_callback c ON c.id = w.id WHERE w.id = $1`, id).Scan(
		&r.Klantinteracties.Status, &r.Klantinteracties.Error, &r.Klantinteracties.Klantcontact, &r.Klantinteracties.Betrokkene,
		&r.Klantinteracties.Onderwerpobject, &r.Klantinteracties.InterneTaak,
		&r.Salesforce.Status, &r.Salesforce.Error, &r.Salesforce.Task, &due)
	if err != nil {
		return nil, fmt.Errorf("workflow: wrap-up %s: %w", id, err)
	}
	if due != nil {
		r.CallbackDue = parseTime(*due)
	}
	return r, nil
}

// row is a wrap-up as the jobs read it.
type row struct {
	id                                                         string
	req                                                        request
	kiStatus, sfStatus                                         string
	partij, sfContact                                          *string
	klantcontact, betrokkene, onderwerpobject, actor, internet string
	sfTask                                                     string
}

func (w *Workflow) load(ctx context.Context, id string) (*row, error) {
	r := &row{id: id}
	var body string
	err := w.db.queryRow(ctx, `SELECT request, ki_status, sf_status, partij, sf_contact, klantcontact, betrokkene,
		onderwerpobject, actor, internetaak, sf_task FROM {p}workflow_wrapup WHERE id = $1`, id).Scan(
		&body, &r.kiStatus, &r.sfStatus, &r.partij, &r.sfContact, &r.klantcontact, &r.betrokkene,
		&r.onderwerpobject, &r.actor, &r.internet, &r.sfTask)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(body), &r.req); err != nil {
		return nil, err
	}
	return r, nil
}

// set stores one column of the wrap-up row (a produced id, a status).
func (w *Workflow) set(ctx context.Context, id, column string, value any) error {
	_, err := w.db.exec(ctx, `UPDATE {p}workflow_wrapup SET `+column+` = $1 WHERE id = $2`, value, id)
	return err
}

// permanent reports whether err is a refusal that a retry will not change
// (the source found the request invalid), as opposed to a source that is
// down, slow, or refused the credentials (which an operator can fix).
func permanent(err error) bool {
	var se *upstream.StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case 400, 404, 409, 422: // bad request, not found, conflict, unprocessable
			return true
		}
	}
	if ae, ok := errors.AsType[*salesforce.APIError](err); ok {
		switch ae.Status {
		case 400, 404:
			return true
		}
	}
	return errors.Is(err, klantinteracties.ErrInvalidWrite) || errors.Is(err, salesforce.ErrInvalidTask) ||
		errors.Is(err, ErrUnknownAssignee)
}

// finish records the outcome of one attempt for a system ("ki" or "sf").
func (w *Workflow) finish(ctx context.Context, id, sys string, err error) error {
	status, msg := StatusWritten, ""
	if err != nil {
		status, msg = StatusPending, bsn.Redact(err.Error())
		if permanent(err) {
			status = StatusFailed
		}
		if len(msg) > 500 {
			msg = msg[:500]
		}
	}
	if _, dbErr := w.db.exec(ctx, `UPDATE {p}workflow_wrapup SET `+sys+`_status = $1, `+sys+`_error = $2, `+sys+`_attempts = `+sys+`_attempts + 1 WHERE id = $3`,
		status, msg, id); dbErr != nil {
		return dbErr
	}
	if err == nil {
		// Both written: the BSN is no longer needed to retry anything.
		if _, dbErr := w.db.exec(ctx, `UPDATE {p}workflow_wrapup SET request = '{}' WHERE id = $1 AND ki_status = $2 AND sf_status = $2`,
			id, StatusWritten); dbErr != nil {
			return dbErr
		}
		return nil
	}
	w.log.Warn("wrap-up write failed", "wrapUp", id, "system", sys, "status", status, "error", msg)
	if status == StatusFailed {
		return river.JobCancel(err)
	}
	return err
}

type kiWorker struct {
	river.WorkerDefaults[kiArgs]
	w *Workflow
}

func (k *kiWorker) Work(ctx context.Context, job *river.Job[kiArgs]) error {
	w := k.w
	r, err := w.load(ctx, job.Args.WrapUp)
	if err != nil {
		return err
	}
	if r.kiStatus != StatusPending {
		return nil
	}
	return w.finish(ctx, r.id, "ki", w.writeKlantinteracties(ctx, r))
}

// writeKlantinteracties writes what is not written yet, storing each id
// before the next step.
func (w *Workflow) writeKlantinteracties(ctx context.Context, r *row) error {
	ki := w.cfg.Klantinteracties
	req := r.req
	if r.partij == nil {
		p, err := ki.Partij(ctx, req.BSN)
		if err != nil {
			return err
		}
		if err := w.set(ctx, r.id, "partij", p); err != nil {
			return err
		}
		r.partij = &p
	}
	if r.klantcontact == "" {
		kc, err := ki.FindKlantcontact(ctx, r.id)
		if err != nil {
			return err
		}
		if kc == nil {
			kc, err = ki.CreateKlantcontact(ctx, klantinteracties.NewKlantcontact{
				Referentienummer: r.id, Kanaal: req.Kanaal, Onderwerp: req.Onderwerp, Inhoud: req.Inhoud,
				Vertrouwelijk: req.Vertrouwelijk, At: req.At,
			})
			if err != nil {
				return err
			}
		}
		if err := w.set(ctx, r.id, "klantcontact", kc.UUID); err != nil {
			return err
		}
		r.klantcontact = kc.UUID
	}
	if r.betrokkene == "" {
		b, err := ki.FindBetrokkene(ctx, r.klantcontact, *r.partij)
		if err == nil && b == "" {
			b, err = ki.CreateBetrokkene(ctx, r.klantcontact, *r.partij, req.ResidentName)
		}
		if err != nil {
			return err
		}
		if err := w.set(ctx, r.id, "betrokkene", b); err != nil {
			return err
		}
	}
	if req.Zaak != "" && r.onderwerpobject == "" {
		o, err := ki.FindZaakOnderwerpobject(ctx, r.klantcontact, req.Zaak)
		if err == nil && o == "" {
			o, err = ki.CreateZaakOnderwerpobject(ctx, r.klantcontact, req.Zaak)
		}
		if err != nil {
			return err
		}
		if err := w.set(ctx, r.id, "onderwerpobject", o); err != nil {
			return err
		}
	}
	if cb := req.Callback; cb != nil && r.internet == "" {
		if r.actor == "" {
			a, err := ki.EnsureActor(ctx, cb.Toegewezen.actor())
			if err != nil {
				return err
			}
			if err := w.set(ctx, r.id, "actor", a); err != nil {
				return err
			}
			r.actor = a
		}
		t, err := ki.FindInterneTaak(ctx, r.klantcontact)
		if err == nil && t == nil {
			t, err = ki.CreateInterneTaak(ctx, klantinteracties.NewInterneTaak{
				Klantcontact: r.klantcontact, GevraagdeHandeling: cb.GevraagdeHandeling,
				Toelichting: cb.Toelichting, Actoren: []string{r.actor},
			})
		}
		if err != nil {
			return err
		}
		if err := w.set(ctx, r.id, "internetaak", t.UUID); err != nil {
			return err
		}
	}
	return nil
}

type sfWorker struct {
	river.WorkerDefaults[sfArgs]
	w *Workflow
}

func (s *sfWorker) Work(ctx context.Context, job *river.Job[sfArgs]) error {
	w := s.w
	r, err := w.load(ctx, job.Args.WrapUp)
	if err != nil {
		return err
	}
	if r.sfStatus != StatusPending {
		return nil
	}
	return w.finish(ctx, r.id, "sf", w.writeSalesforce(ctx, r))
}

func (w *Workflow) writeSalesforce(ctx context.Context, r *row) error {
	sf := w.cfg.Salesforce
	req := r.req
	if r.sfContact == nil {
		c, err := sf.ContactID(ctx, req.BSN)
		if err != nil {
			return err
		}
		if err := w.set(ctx, r.id, "sf_contact", c); err != nil {
			return err
		}
		r.sfContact = &c
	}
	if r.sfTask != "" {
		return nil
	}
	t := salesforce.NewTask{
		Key: r.id, WhoID: *r.sfContact, WhatID: req.Case, Subject: req.Onderwerp,
		Description: req.Inhoud,
	}
	if cb := req.Callback; cb != nil {
		owner, err := w.cfg.Directory.SalesforceOwner(cb.Toegewezen)
		if err != nil {
			return err
		}
		t.Subtype, t.Status, t.OwnerID = salesforce.SubtypeTask, salesforce.TaskNotStarted, owner
		t.Subject = "Terugbellen: " + cb.GevraagdeHandeling
		// ActivityDate is the due date as the municipality's calendar has it.
		y, m, d := req.Due.In(w.cfg.Calendar.Location).Date()
		t.Due, t.ReminderAt = time.Date(y, m, d, 0, 0, 0, 0, time.UTC), req.Due
	} else {
		// No callback: the contact as a logged call, owned by whoever
		// wrapped it up when Salesforce knows them.
		t.Subtype, t.Status = salesforce.SubtypeCall, salesforce.TaskCompleted
		if owner, err := w.cfg.Directory.SalesforceOwner(Assignee{Kind: Medewerker, ID: req.Employee.Sub}); err == nil {
			t.OwnerID = owner
		}
	}
	id, _, err := sf.EnsureTask(ctx, t)
	if err != nil {
		return err
	}
	return w.set(ctx, r.id, "sf_task", id)
}
