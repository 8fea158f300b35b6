package view

import (
	"cmp"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/policies"
)

// repeatWindow is how close two contacts must be to count as a repeat, and
// how far back repeats are counted.
const repeatWindow = 14 * 24 * time.Hour

// Compose discloses what the sources answered as dec permits (dec is the
// decision that rules the disclosure: the second one when the subject facts
// led to one) and returns the view with, per source in the order Fetch got
// them, the audit record of what left it. now is the clock of the age limits
// and signals.
//
// Every source appears in View.Sources: not_requested when the request left
// it out, denied when dec does not permit it (or permits it but it was not
// fetched under the first decision), unavailable when its fetch failed,
// partial when its answer held records back, else ok. A panic in an
// Answer's Disclose is a bug of this package: it is not recovered.
func (f *Fetched) Compose(dec policies.Decision, now time.Time) (View, []audit.SourceAccess) {
	b := &builder{now: now, withheld: map[withheldKey]*Withheld{}}
	v := View{
		BSN: f.req.BSN, Purpose: f.req.Purpose,
		Cases: []Case{}, CRM: CRM{Cases: []CRMCase{}, Callbacks: []Callback{}}, Contacts: []Contact{},
		Sources: make(map[string]SourceStatus, len(f.sources)), Notes: notes(dec.Notes, f.Subject()),
	}
	access := make([]audit.SourceAccess, 0, len(f.sources))
	for _, name := range f.sources {
		status, a := f.disclose(b, name, dec)
		v.Sources[name] = status
		access = append(access, a)
	}
	b.finish(&v)
	return v, access
}

// disclose lets one source's answer into the view.
func (f *Fetched) disclose(b *builder, name string, dec policies.Decision) (SourceStatus, audit.SourceAccess) {
	c, fetched := f.calls[name]
	rule, permitted := dec.Sources[name]
	a := audit.SourceAccess{Source: name, Called: fetched && c.called}
	var status SourceStatus
	switch {
	case !f.req.asks(name):
		status.Status = StatusNotRequested
	case !permitted || !fetched:
		status.Status = StatusDenied
	case c.err != nil:
		status = SourceStatus{Status: StatusUnavailable, Error: reason(c.err)}
	default:
		d := &Disclosure{b: b, source: name, rule: rule, access: &a, fields: map[string]bool{}}
		c.answer.Disclose(d, rule)
		status.Status = StatusOK
		if d.partial != "" {
			status.Status, status.Error = StatusPartial, d.partial
		}
		a.Fields = slices.Sorted(maps.Keys(d.fields))
	}
	if a.Called {
		ms := c.ms
		status.MS = &ms
	}
	a.Status = status.Status
	return status, a
}

// Disclosure is the view under construction as one source's Answer sees
// it. Every record added is projected to the fields of the rule it was made
// with (the rule Disclose is given): the others are zeroed, so they are
// omitted. Its Source is set to the source's name. What is added is counted
// in the source's audit record: records, and the names of the fields that
// had a value.
type Disclosure struct {
	b       *builder
	source  string
	rule    policies.SourceRule
	access  *audit.SourceAccess
	fields  map[string]bool
	partial string
}

// Now is the clock of this view.
func (d *Disclosure) Now() time.Time { return d.b.now }

// Oldest is the earliest moment the rule's age limit (MaxAgeDays) lets
// through; the zero time when the rule has none.
func (d *Disclosure) Oldest() time.Time {
	if d.rule.MaxAgeDays <= 0 {
		return time.Time{}
	}
	return d.b.now.AddDate(0, 0, -d.rule.MaxAgeDays)
}

// Person sets the view's person: a JSON object the source has projected
// itself (the BRP's field paths are not flat). Its top-level names are the
// fields disclosed.
func (d *Disclosure) Person(p json.RawMessage) {
	var top map[string]json.RawMessage
	_ = upstream.DecodeJSON(p, &top)
	for k := range top {
		d.fields[k] = true
	}
	d.b.person = p
	d.access.Records++
}

// Case adds a zaak. Cases are ordered by the full record: newest
// startdatum first, then by identificatie.
func (d *Disclosure) Case(c Case) {
	c.Source = d.source
	d.b.cases = append(d.b.cases, entry[Case]{full: c, shown: disclose(d, c)})
}

// CRMCase adds a CRM case. They are ordered newest first.
func (d *Disclosure) CRMCase(c CRMCase) {
	c.Source = d.source
	d.b.crmCases = append(d.b.crmCases, entry[CRMCase]{full: c, shown: disclose(d, c)})
}

// Callback adds a callback; an overdue one counts in Signals even when the
// field may not be shown. They are ordered by due date.
func (d *Disclosure) Callback(c Callback) {
	c.Source = d.source
	if c.Overdue != nil && *c.Overdue {
		d.b.overdue++
	}
	d.b.callbacks = append(d.b.callbacks, entry[Callback]{full: c, shown: disclose(d, c)})
}

// Contact adds a contact that took place at at (which orders the contacts,
// newest first, and counts for the repeat signal whether or not its at
// field may be shown).
func (d *Disclosure) Contact(at time.Time, c Contact) {
	c.Source = d.source
	d.b.contacts = append(d.b.contacts, dated{at: at, shown: disclose(d, c)})
}

// Withhold counts a record of domain that the rule grants existence only:
// it shows in the view's "withheld" with the rule's note and reason code
// for the domain.
func (d *Disclosure) Withhold(domain string) {
	k := withheldKey{d.source, domain}
	w := d.b.withheld[k]
	if w == nil {
		w = &Withheld{Source: d.source, Domain: domain, Note: d.rule.ExistenceNotes[domain], Code: d.rule.ExistenceCode(domain)}
		d.b.withheld[k] = w
	}
	w.Count++
	d.access.Withheld++
}

// HoldBack counts a record that could not be judged (e.g. its domain is
// unknown) and so is neither shown nor said to exist; only the audit
// record counts it. Call Partial too to tell the caller.
func (d *Disclosure) HoldBack() { d.access.Withheld++ }

// Partial marks the source's part incomplete, with reason as its error word.
func (d *Disclosure) Partial(reason string) { d.partial = reason }

// disclose projects rec to the rule's fields and records what it shows.
func disclose[T any](d *Disclosure, rec T) T {
	shown := project(rec, d.rule.Fields)
	for _, f := range present(shown) {
		d.fields[f] = true
	}
	d.access.Records++
	return shown
}

// entry is a record as the source had it, which orders its list, and as
// it is shown.
type entry[T any] struct{ full, shown T }

type dated struct {
	at    time.Time
	shown Contact
}

type withheldKey struct{ source, domain string }

// builder collects what every source disclosed for one view.
type builder struct {
	now       time.Time
	person    json.RawMessage
	cases     []entry[Case]
	crmCases  []entry[CRMCase]
	callbacks []entry[Callback]
	contacts  []dated
	overdue   int
	withheld  map[withheldKey]*Withheld
}

// finish orders the lists, whichever sources they came from, and computes
// the signals.
func (b *builder) finish(v *View) {
	v.Person = b.person
	slices.SortStableFunc(b.cases, func(x, y entry[Case]) int {
		return cmp.Or(strings.Compare(y.full.Startdatum, x.full.Startdatum), strings.Compare(x.full.Identificatie, y.full.Identificatie))
	})
	slices.SortStableFunc(b.crmCases, func(x, y entry[CRMCase]) int { return strings.Compare(y.full.CreatedAt, x.full.CreatedAt) })
	slices.SortStableFunc(b.callbacks, func(x, y entry[Callback]) int { return strings.Compare(x.full.Due, y.full.Due) })
	slices.SortStableFunc(b.contacts, func(x, y dated) int { return y.at.Compare(x.at) })
	for _, e := range b.cases {
		v.Cases = append(v.Cases, e.shown)
	}
	for _, e := range b.crmCases {
		v.CRM.Cases = append(v.CRM.Cases, e.shown)
	}
	for _, e := range b.callbacks {
		v.CRM.Callbacks = append(v.CRM.Callbacks, e.shown)
	}
	for _, c := range b.contacts {
		v.Contacts = append(v.Contacts, c.shown)
	}
	v.Signals = Signals{RepeatContacts: repeatContacts(b.contacts, b.now), OverdueCallbacks: b.overdue}
	v.Signals.OpenCallbacks, v.Signals.Handover = frontOffice(b.callbacks, b.contacts)
	for _, w := range b.withheld {
		v.Withheld = append(v.Withheld, *w)
	}
	slices.SortFunc(v.Withheld, func(x, y Withheld) int {
		return cmp.Or(strings.Compare(x.Source, y.Source), strings.Compare(x.Domain, y.Domain))
	})
}

// repeatContacts counts the contacts of the last 14 days that came within
// 14 days after an earlier contact. contacts are sorted newest first.
func repeatContacts(contacts []dated, now time.Time) int {
	n := 0
	for i, c := range contacts {
		if now.Sub(c.at) > repeatWindow {
			break
		}
		if i+1 < len(contacts) && c.at.Sub(contacts[i+1].at) <= repeatWindow {
			n++
		}
	}
	return n
}

// project zeroes every field of the record rec whose JSON name is not in
// fields, except "source": a record always says where it comes from.
func project[T any](rec T, fields []string) T {
	v := reflect.ValueOf(&rec).Elem()
	for i, name := range disclosable(v.Type()) {
		if name != "" && !slices.Contains(fields, name) {
			v.Field(i).SetZero()
		}
	}
	return rec
}

// present lists the JSON names of rec's fields that have a value, except
// "source": the fields it discloses.
func present[T any](rec T) []string {
	var out []string
	v := reflect.ValueOf(rec)
	for i, name := range disclosable(v.Type()) {
		if name != "" && !v.Field(i).IsZero() {
			out = append(out, name)
		}
	}
	return out
}

// fieldNames holds disclosable's answer per record type.
var fieldNames sync.Map // reflect.Type → []string

// disclosable is, for each field of the struct type t, the JSON name under
// which a policy may disclose it: "" for "source" and for what JSON skips.
// It is worked out once per type, not for every record of every view.
func disclosable(t reflect.Type) []string {
	if names, ok := fieldNames.Load(t); ok {
		return names.([]string)
	}
	names := make([]string, t.NumField())
	for i := range names {
		if name, ok := jsonName(t.Field(i)); ok && name != "source" {
			names[i] = name
		}
	}
	cached, _ := fieldNames.LoadOrStore(t, names)
	return cached.([]string)
}

// jsonName is the name field f has in JSON; false for fields JSON skips.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return f.Name, true
	}
	return name, true
}

// timestamp is how the view writes a moment: RFC 3339 in UTC, "" for none.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
