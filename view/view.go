// Package view owns what each source system contributes to a resident view:
// per source, a fetch with exactly what the purpose decision permits and a
// disclosure that lets only the permitted records and fields through and
// counts what is shown as existence only; the typed records of the view; the
// parallel fan-out; and the signals for the front office.
//
// A source is one file here (brp.go, zaken.go, salesforce.go,
// klantinteracties.go) that wraps its connector through a small interface of
// its own and implements Source. Nothing in this package knows the list of
// sources: cmd/klantbeeld builds it, and the fan-out and the composition work
// on whatever Sources they are given. The package speaks no HTTP.
package view

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/policies"
)

// Statuses of a source in a view and in its audit event.
const (
	// StatusOK: the source answered and its part is complete (an unknown
	// BSN is an answer too: that part is empty).
	StatusOK = "ok"
	// StatusPartial: the source answered, but some of its records could not
	// be judged and were held back; SourceStatus.Error says why.
	StatusPartial = "partial"
	// StatusUnavailable: the source failed, or is not configured;
	// SourceStatus.Error says which.
	StatusUnavailable = "unavailable"
	// StatusDenied: the policy did not permit the source for this purpose.
	StatusDenied = "denied"
	// StatusNotRequested: the caller left the source out of "sources".
	StatusNotRequested = "not_requested"
)

// View is the answer of POST /v1/resident-views. The JSON names are the
// API's contract (openapi/klantbeeld.yaml).
type View struct {
	BSN     string `json:"bsn"`
	Purpose string `json:"purpose"`
	// Person is the BRP v2 Persoon with only the permitted fields and the
	// indications the BRP delivers by itself; JSON null when the BRP does
	// not know the BSN or was not asked.
	Person   json.RawMessage `json:"person"`
	Cases    []Case          `json:"cases"`
	CRM      CRM             `json:"crm"`
	Contacts []Contact       `json:"contacts"`
	Signals  Signals         `json:"signals"`
	// Withheld only has items where the policy grants existence only.
	Withheld []Withheld `json:"withheld,omitempty"`
	// Sources names every source the gateway has, whatever happened to it.
	Sources map[string]SourceStatus `json:"sources"`
	// Notes are the policy's notes on this view (e.g. the resident is deceased).
	Notes []string `json:"notes,omitempty"`
	// AuditSeq is the sequence number of the audit event of this access;
	// the gateway sets it once the event is durable.
	AuditSeq int64 `json:"auditSeq"`
}

// Records below are projected to the fields a rule permits by zeroing the
// others, so every field but Source is omitted when empty. Booleans and
// counts are pointers: a permitted false or 0 is shown, a withheld one is not.

// Case is a zaak, newest first in View.Cases.
type Case struct {
	Source                      string `json:"source"`
	Identificatie               string `json:"identificatie,omitempty"`
	Omschrijving                string `json:"omschrijving,omitempty"`
	Zaaktype                    string `json:"zaaktype,omitempty"`
	Domain                      string `json:"domain,omitempty"`
	Status                      string `json:"status,omitempty"`
	Startdatum                  string `json:"startdatum,omitempty"`
	Einddatum                   string `json:"einddatum,omitempty"`
	EinddatumGepland            string `json:"einddatumGepland,omitempty"`
	Vertrouwelijkheidaanduiding string `json:"vertrouwelijkheidaanduiding,omitempty"`
}

// CRM is what the CRM contributes besides contacts.
type CRM struct {
	Cases     []CRMCase  `json:"cases"`
	Callbacks []Callback `json:"callbacks"`
}

// CRMCase is a case in the CRM, newest first.
type CRMCase struct {
	Source     string `json:"source"`
	CaseNumber string `json:"caseNumber,omitempty"`
	Subject    string `json:"subject,omitempty"`
	Status     string `json:"status,omitempty"`
	Origin     string `json:"origin,omitempty"`
	// CreatedAt is RFC 3339 in UTC.
	CreatedAt string `json:"createdAt,omitempty"`
	Domain    string `json:"domain,omitempty"`
}

// Callback is a callback request (terugbelverzoek), the one due first first.
type Callback struct {
	Source  string `json:"source"`
	Subject string `json:"subject,omitempty"`
	Owner   string `json:"owner,omitempty"`
	// Due is YYYY-MM-DD.
	Due       string `json:"due,omitempty"`
	Reminders *int   `json:"reminders,omitempty"`
	// Overdue: open and due before today. Disclosed overdue callbacks are
	// counted in Signals whether or not this field may be shown.
	Overdue *bool `json:"overdue,omitempty"`
	// Escalated: the owner has been reminded three times or more.
	Escalated *bool  `json:"escalated,omitempty"`
	Status    string `json:"status,omitempty"`
	Domain    string `json:"domain,omitempty"`
	// open: not yet done, whether or not Status may be shown (Signals).
	open bool
}

// Contact is a contact with the resident on any channel, newest first.
type Contact struct {
	Source  string `json:"source"`
	Channel string `json:"channel,omitempty"`
	// At is RFC 3339 in UTC.
	At      string `json:"at,omitempty"`
	Subject string `json:"subject,omitempty"`
	Content string `json:"content,omitempty"`
	// Domain is the domain of the zaken the contact was about, comma-separated.
	Domain       string        `json:"domain,omitempty"`
	Confidential *bool         `json:"confidential,omitempty"`
	Tasks        []ContactTask `json:"tasks,omitempty"`
}

// ContactTask is a task a contact led to.
type ContactTask struct {
	Action string `json:"action"`
	Status string `json:"status"`
}

// Signals for the front office, computed over what is disclosed only;
// what needs doing first.
type Signals struct {
	// Handover is the virtual assistant's latest chat whose interne taak
	// is still open; absent when there is none.
	Handover *Handover `json:"handover,omitempty"`
	// OpenCallbacks: disclosed callbacks and interne taken still open.
	OpenCallbacks int `json:"openCallbacks"`
	// RepeatContacts: contacts of the last 14 days that came within 14
	// days of an earlier one.
	RepeatContacts int `json:"repeatContacts"`
	// OverdueCallbacks: disclosed open callbacks due before today.
	OverdueCallbacks int `json:"overdueCallbacks"`
}

// Withheld says that records exist that the purpose may know of but not see.
type Withheld struct {
	Source string `json:"source"`
	Domain string `json:"domain"`
	Count  int    `json:"count"`
	// Note says whom to contact, as the policy words it.
	Note string `json:"note,omitempty"`
	// Code is the policy's stable reason code for holding the records
	// back (policies.SourceRule.ExistenceCode), e.g. existence_only.
	Code string `json:"code,omitempty"`
}

// SourceStatus is how one source fared.
type SourceStatus struct {
	// Status is one of the Status constants.
	Status string `json:"status"`
	// MS is how long the source took; absent when it was not called.
	MS *int64 `json:"ms,omitempty"`
	// Error says why the source is unavailable or partial: timeout,
	// circuit_open, bad_response, foreign_link, rejected, unavailable,
	// canceled, error, not_configured, connector_error, or a source's own
	// word for partial (zaak_domain_unresolved).
	Error string `json:"error,omitempty"`
}

// Request is what one view is about.
type Request struct {
	BSN     string
	Purpose string
	// Sources the caller asked for; empty means all. A source left out is
	// not called, whatever the decision permits.
	Sources []string
	// User is the employee on whose behalf the sources are asked.
	User User
}

// User is the employee behind a request, passed to sources that record
// on whose behalf they are asked (the Zaken API).
type User struct {
	// ID is the token's sub; Name its name claim ("" when absent).
	ID, Name string
}

// Source is one source system's part of a view.
type Source interface {
	// Name is the source's name in the API and the policies ("brp").
	Name() string
	// Fetch asks the source for what rule, the decision's rule for this
	// source, permits and no more. It is only called for a source the
	// decision permits and the request asks for, concurrently with the
	// other sources.
	//
	// It returns a non-nil Answer when err is nil; a resident the source
	// does not know is an Answer that discloses nothing. Errors:
	// ErrNotConfigured (nothing was sent: the view reports not_configured
	// and the source as not called); an error matching one of the
	// connectors/upstream sentinels, reported by its word (timeout,
	// circuit_open, bad_response, foreign_link, rejected, unavailable);
	// context.Canceled or DeadlineExceeded (canceled, timeout); anything else
	// is "error". A panic is recovered by the fan-out and reported as
	// connector_error; the other sources are unaffected.
	Fetch(ctx context.Context, req Request, rule policies.SourceRule) (Answer, error)
}

// Answer is what one source answered, before disclosure.
type Answer interface {
	// Disclose adds to d the records and fields rule permits, and counts
	// in d what may only be known to exist. rule is the rule of the
	// decision that rules the disclosure, which may be a later one than the
	// rule Fetch got (once the BRP told the subject facts); Disclose must
	// not assume it permits more. It may be called more than once and must
	// not change the Answer.
	Disclose(d *Disclosure, rule policies.SourceRule)
}

// Resolver is an Answer that needs other sources' answers before it can be
// disclosed: Klantinteracties places a contact in a domain by the zaak it
// links. The fan-out calls Resolve once, before any disclosure, with the
// answers of the other sources that answered without error: of those its
// Source depends on when it is Dependent, as soon as these are in (the other
// sources may still be on their way), else of all, after every one answered.
// Resolve may change its own answer only. A panic is reported as
// connector_error.
type Resolver interface {
	Resolve(ctx context.Context, others []Answer)
}

// Dependent is a Source whose Answer (a Resolver) can only use the answers
// of some other sources, so that what Resolve asks need not wait for the
// slower rest.
type Dependent interface {
	Source
	// DependsOn reports whether Resolve may use other's answer; it must
	// not depend on anything but other.
	DependsOn(other Source) bool
}

// SubjectFacts is an Answer that learned facts about the resident that the
// policy acts on (the BRP: geheimhouding, opschorting).
type SubjectFacts interface {
	// SubjectFacts returns the facts, or nil when there are none to tell.
	SubjectFacts() *policies.Subject
}

// ErrNotConfigured is what a Source returns that has no connector in this
// gateway's configuration; see Unconfigured.
var ErrNotConfigured = errors.New("view: source not configured")

// errConnector is a connector that broke its contract (a panic, an answer
// of nil without an error): a bug, logged, shown as connector_error.
var errConnector = errors.New("view: connector failed")

// Unconfigured is a source the gateway knows but has no connector for: it
// appears in every view, unavailable with not_configured where the policy
// permits it, and is never called.
func Unconfigured(name string) Source { return unconfigured(name) }

type unconfigured string

func (u unconfigured) Name() string { return string(u) }

func (unconfigured) Fetch(context.Context, Request, policies.SourceRule) (Answer, error) {
	return nil, ErrNotConfigured
}

// WithTrace makes the source requests made under ctx carry a W3C
// traceparent with traceID (32 lower-case hex digits), so a view's trace
// continues into every source.
func WithTrace(ctx context.Context, traceID string) context.Context {
	return upstream.WithTrace(ctx, traceID)
}

// reason is the word for err in a view's "sources" entry.
func reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNotConfigured):
		return "not_configured"
	case errors.Is(err, errConnector):
		return "connector_error"
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, upstream.ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(err, upstream.ErrBadResponse):
		return "bad_response"
	case errors.Is(err, upstream.ErrForeignLink):
		return "foreign_link"
	case errors.Is(err, upstream.ErrRejected):
		return "rejected"
	case errors.Is(err, upstream.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "error"
	}
}
