package salesforce

// The write side: callback Tasks (and the logged call of a contact without
// one) created and updated through the sObject resource, and the open
// callbacks of an owner read back with SOQL.
//
// Idempotency: the REST API has no idempotency key and Task custom fields
// cannot be external ids, so a Task carries its writer's key in the custom
// text field Klantbeeld_Key__c and EnsureTask asks for a Task with that key
// before it creates one (query-before-create). A create whose answer was
// lost is found by the retry instead of being made twice. Updates (PATCH)
// set absolute values and may be repeated.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// ErrInvalidTask: a value of a Task write or read failed validation;
// nothing was sent.
var ErrInvalidTask = errors.New("salesforce: invalid task")

// Task statuses and subtypes the write side uses.
const (
	TaskNotStarted = "Not Started"
	TaskCompleted  = "Completed"
	SubtypeTask    = "Task" // a callback
	SubtypeCall    = "Call" // a logged call
)

// NewTask is a Task to create.
type NewTask struct {
	// Key identifies the Task for EnsureTask (Klantbeeld_Key__c): 1 to 64
	// ASCII letters, digits, '-' or '_'.
	Key     string
	Subtype string // SubtypeTask (callback) or SubtypeCall
	Subject string
	Status  string    // "" means TaskNotStarted
	WhoID   string    // the resident's Contact; "" when Salesforce has none
	WhatID  string    // the Case, when there is one
	OwnerID string    // a User or a queue; "" means the integration user
	Due     time.Time // ActivityDate (the date in UTC); zero: none
	// ReminderAt sets IsReminderSet and ReminderDateTime; zero: no reminder.
	ReminderAt  time.Time
	Description string
}

// TaskUpdate changes a Task; nil fields stay as they are.
type TaskUpdate struct {
	OwnerID    *string
	Status     *string
	ReminderAt *time.Time // sets IsReminderSet too
	Reminders  *int       // Reminders__c
	Escalated  *bool      // Escalated__c
}

// Callback is an open callback Task as OpenCallbacks reads it.
type Callback struct {
	ID, Subject, Status, OwnerID, Owner string // Owner: Owner.Name

	Key        string    // Klantbeeld_Key__c; "" for Tasks made elsewhere
	Due        string    // ActivityDate YYYY-MM-DD, "" when none
	ReminderAt time.Time // zero when none
	Reminders  int
	Escalated  bool
	WhoID      string
	WhatID     string
	Created    time.Time
}

func validKey(s string) bool {
	return len(s) >= 1 && len(s) <= 64 && allBytes(s, func(c byte) bool {
		return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
	})
}

// ContactID returns the Id of the resident's Contact (BSN__c), "" when
// none has the BSN. No error holds the BSN.
func (c *Client) ContactID(ctx context.Context, burgerservicenummer string) (string, error) {
	b, err := newBSN(burgerservicenummer)
	if err != nil {
		return "", err
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	soql, err := contactSOQL(b)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	contacts, err := queryAll[contactRecord](ctx, c, soql)
	if err != nil {
		return "", bsn.RedactError(err)
	}
	switch len(contacts) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%w (%w)", ErrAmbiguousContact, upstream.ErrBadResponse)
	}
	if _, err := newID(contacts[0].ID); err != nil {
		return "", badResponse("Contact Id: %v", err)
	}
	return contacts[0].ID, nil
}

const callbackFields = "Id, Subject, Status, OwnerId, Owner.Name, ActivityDate, ReminderDateTime, " +
	"Reminders__c, Escalated__c, WhoId, WhatId, Klantbeeld_Key__c, CreatedDate"

// FindTask returns the Id of the Task with this key, "" when none.
func (c *Client) FindTask(ctx context.Context, key string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("%w: key must be 1 to 64 letters, digits, '-' or '_'", ErrInvalidTask)
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	// validKey leaves nothing that needs escaping.
	soql := "SELECT Id FROM Task WHERE Klantbeeld_Key__c = '" + key + "' ORDER BY CreatedDate ASC LIMIT 1"
	rows, err := queryAll[contactRecord](ctx, c, soql)
	if err != nil || len(rows) == 0 {
		return "", err
	}
	if _, err := newID(rows[0].ID); err != nil {
		return "", badResponse("Task Id: %v", err)
	}
	return rows[0].ID, nil
}

// EnsureTask returns the Id of the Task with t.Key, creating it when there
// is none. created says which.
func (c *Client) EnsureTask(ctx context.Context, t NewTask) (id string, created bool, err error) {
	body, err := t.body()
	if err != nil {
		return "", false, err
	}
	found, err := c.FindTask(ctx, t.Key)
	if err != nil || found != "" {
		return found, false, err
	}
	var out struct {
		ID      string          `json:"id"`
		Success bool            `json:"success"`
		Errors  json.RawMessage `json:"errors"`
	}
	if err := c.write(ctx, http.MethodPost, c.sobjectURL("Task", ""), body, &out); err != nil {
		return "", false, err
	}
	if !out.Success {
		return "", false, badResponse("Task create answered success false")
	}
	if _, err := newID(out.ID); err != nil {
		return "", false, badResponse("created Task Id: %v", err)
	}
	return out.ID, true, nil
}

func (t NewTask) body() (map[string]any, error) {
	bad := func(s string) error { return fmt.Errorf("%w: %s", ErrInvalidTask, s) }
	if !validKey(t.Key) {
		return nil, bad("key must be 1 to 64 letters, digits, '-' or '_'")
	}
	if t.Subtype != SubtypeTask && t.Subtype != SubtypeCall {
		return nil, bad("subtype must be Task or Call")
	}
	if strings.TrimSpace(t.Subject) == "" || len([]rune(t.Subject)) > 255 {
		return nil, bad("subject must be 1 to 255 characters")
	}
	if len([]rune(t.Description)) > 32000 {
		return nil, bad("description longer than 32000 characters")
	}
	status := t.Status
	if status == "" {
		status = TaskNotStarted
	}
	body := map[string]any{
		"Klantbeeld_Key__c": t.Key,
		"TaskSubtype":       t.Subtype,
		"Subject":           t.Subject,
		"Status":            status,
		"Reminders__c":      0,
		"Escalated__c":      false,
		"IsReminderSet":     !t.ReminderAt.IsZero(),
	}
	for field, v := range map[string]string{"WhoId": t.WhoID, "WhatId": t.WhatID, "OwnerId": t.OwnerID} {
		if v == "" {
			continue
		}
		if _, err := newID(v); err != nil {
			return nil, bad(field + " is not a Salesforce id")
		}
		body[field] = v
	}
	if !t.Due.IsZero() {
		body["ActivityDate"] = t.Due.UTC().Format(time.DateOnly)
	}
	if !t.ReminderAt.IsZero() {
		body["ReminderDateTime"] = formatDateTime(t.ReminderAt)
	}
	if t.Description != "" {
		body["Description"] = t.Description
	}
	return body, nil
}

func formatDateTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// UpdateTask changes the Task with this Id (PATCH, 204).
func (c *Client) UpdateTask(ctx context.Context, taskID string, u TaskUpdate) error {
	if _, err := newID(taskID); err != nil {
		return fmt.Errorf("%w: task id is not a Salesforce id", ErrInvalidTask)
	}
	body := map[string]any{}
	if u.OwnerID != nil {
		if _, err := newID(*u.OwnerID); err != nil {
			return fmt.Errorf("%w: OwnerId is not a Salesforce id", ErrInvalidTask)
		}
		body["OwnerId"] = *u.OwnerID
	}
	if u.Status != nil {
		body["Status"] = *u.Status
	}
	if u.ReminderAt != nil {
		body["IsReminderSet"] = !u.ReminderAt.IsZero()
		if u.ReminderAt.IsZero() {
			body["ReminderDateTime"] = nil
		} else {
			body["ReminderDateTime"] = formatDateTime(*u.ReminderAt)
		}
	}
	if u.Reminders != nil {
		if *u.Reminders < 0 || *u.Reminders > maxReminders {
			return fmt.Errorf("%w: reminders out of range", ErrInvalidTask)
		}
		body["Reminders__c"] = *u.Reminders
	}
	if u.Escalated != nil {
		body["Escalated__c"] = *u.Escalated
	}
	if len(body) == 0 {
		return nil
	}
	return c.write(ctx, http.MethodPatch, c.sobjectURL("Task", taskID), body, nil)
}

// OpenCallbacks returns the open callback Tasks (TaskSubtype 'Task', not
// closed) owned by any of owners (User or queue Ids), soonest due first.
func (c *Client) OpenCallbacks(ctx context.Context, owners []string) ([]Callback, error) {
	var ids []id
	for _, o := range owners {
		v, err := newID(o)
		if err != nil {
			return nil, fmt.Errorf("%w: owner is not a Salesforce id", ErrInvalidTask)
		}
		ids = append(ids, v)
	}
	if len(ids) == 0 {
		return []Callback{}, nil
	}
	in, err := list(ids)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	st, err := quote(subtypeCallback)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	soql := "SELECT " + callbackFields + " FROM Task WHERE TaskSubtype = " + st +
		" AND IsClosed = false AND OwnerId IN " + in + " ORDER BY ActivityDate ASC NULLS LAST, CreatedDate ASC"
	rows, err := queryAll[callbackRecord](ctx, c, soql)
	if err != nil {
		return nil, err
	}
	out := []Callback{}
	for _, r := range rows {
		cb, err := r.callback()
		if err != nil {
			return nil, err
		}
		out = append(out, cb)
	}
	return out, nil
}

// Callback reads one callback Task by Id; nil when it does not exist.
// Closed is reported through Status.
func (c *Client) Callback(ctx context.Context, taskID string) (*Callback, bool, error) {
	tid, err := newID(taskID)
	if err != nil {
		return nil, false, fmt.Errorf("%w: task id is not a Salesforce id", ErrInvalidTask)
	}
	q, err := quote(tid)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrInvalidQuery, err)
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	rows, err := queryAll[callbackRecord](ctx, c, "SELECT "+callbackFields+", IsClosed FROM Task WHERE Id = "+q)
	if err != nil || len(rows) == 0 {
		return nil, false, err
	}
	cb, err := rows[0].callback()
	if err != nil {
		return nil, false, err
	}
	return &cb, rows[0].IsClosed, nil
}

type callbackRecord struct {
	ID           string `json:"Id"`
	Subject      string
	Status       string
	OwnerID      string `json:"OwnerId"`
	Owner        *struct{ Name string }
	ActivityDate *string
	Reminder     *string  `json:"ReminderDateTime"`
	Reminders    *float64 `json:"Reminders__c"`
	Escalated    *bool    `json:"Escalated__c"`
	WhoID        *string  `json:"WhoId"`
	WhatID       *string  `json:"WhatId"`
	Key          *string  `json:"Klantbeeld_Key__c"`
	CreatedDate  string
	IsClosed     bool
}

func (r callbackRecord) callback() (Callback, error) {
	if _, err := newID(r.ID); err != nil {
		return Callback{}, badResponse("Task Id: %v", err)
	}
	cb := Callback{ID: r.ID, Subject: r.Subject, Status: r.Status, OwnerID: r.OwnerID}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	cb.WhoID, cb.WhatID, cb.Key = deref(r.WhoID), deref(r.WhatID), deref(r.Key)
	if r.Owner != nil {
		cb.Owner = r.Owner.Name
	}
	if r.Escalated != nil {
		cb.Escalated = *r.Escalated
	}
	if d := deref(r.ActivityDate); d != "" {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return Callback{}, badResponse("Task ActivityDate: %v", err)
		}
		cb.Due = d
	}
	if s := deref(r.Reminder); s != "" {
		at, err := parseDateTime(s)
		if err != nil {
			return Callback{}, badResponse("Task ReminderDateTime: %v", err)
		}
		cb.ReminderAt = at
	}
	if r.Reminders != nil {
		n := *r.Reminders
		if n < 0 || n > maxReminders || n != math.Trunc(n) {
			return Callback{}, badResponse("Task Reminders__c is not a count")
		}
		cb.Reminders = int(n)
	}
	created, err := parseDateTime(r.CreatedDate)
	if err != nil {
		return Callback{}, badResponse("Task CreatedDate: %v", err)
	}
	cb.Created = created
	return cb, nil
}

// sobjectURL is the sObject resource of object, or of one record.
func (c *Client) sobjectURL(object, recordID string) string {
	base := strings.TrimSuffix(c.queryURL, "/query") + "/sobjects/" + object
	if recordID != "" {
		base += "/" + url.PathEscape(recordID)
	}
	return base
}

// write sends body as JSON with an authenticated request that the HTTP
// client does not retry as it retries a read, and decodes a JSON answer
// into out (nil: the answer, e.g. 204, is not read).
func (c *Client) write(ctx context.Context, method, target string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidTask, err)
	}
	ctx, cancel := c.http.Bound(ctx)
	defer cancel()
	return c.do(ctx, method, target, b, false, out)
}

// queryAll runs soql and reads every page of its answer.
func queryAll[T any](ctx context.Context, c *Client, soql string) ([]T, error) {
	var all []T
	err := upstream.Pages(ctx, c.http, c.queryURL+"?"+url.Values{"q": {soql}}.Encode(),
		func(ctx context.Context, link string, page *queryPage[T]) error { return c.get(ctx, link, page) },
		func(r T) error {
			all = append(all, r)
			return nil
		},
		upstream.PageOptions{},
	)
	if err != nil {
		return nil, err
	}
	return all, nil
}
