package gateway

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/policies"
)

// Source statuses in a view.
const (
	statusOK          = "ok"
	statusPartial     = "partial"
	statusUnavailable = "unavailable"
	statusDenied      = "denied"
)

// Kinds of Salesforce record a policy can grant.
const (
	recordCases         = "cases"
	recordCallbacks     = "callbacks"
	recordOpenCallbacks = "open-callbacks"
	recordCalls         = "calls"
)

// Signals are computed over what is disclosed, never over what is withheld.
const (
	repeatWindow      = 14 * 24 * time.Hour
	escalateReminders = 3
)

// View is the answer of POST /v1/resident-views.
type View struct {
	BSN      string                  `json:"bsn"`
	Purpose  string                  `json:"purpose"`
	Person   map[string]any          `json:"person"`
	Cases    []Record                `json:"cases"`
	CRM      CRM                     `json:"crm"`
	Contacts []Record                `json:"contacts"`
	Signals  Signals                 `json:"signals"`
	Withheld []Withheld              `json:"withheld,omitempty"`
	Sources  map[string]SourceStatus `json:"sources"`
	Notes    []string                `json:"notes,omitempty"`
	AuditSeq int64                   `json:"auditSeq"`
}

// Record is one disclosed record with only its permitted fields.
type Record map[string]any

// CRM is what Salesforce contributes.
type CRM struct {
	Cases     []Record `json:"cases"`
	Callbacks []Record `json:"callbacks"`
}

// Signals for the front office.
type Signals struct {
	RepeatContacts   int `json:"repeatContacts"`
	OverdueCallbacks int `json:"overdueCallbacks"`
}

// Withheld says that records exist that the purpose may know of but not see.
type Withheld struct {
	Source string `json:"source"`
	Domain string `json:"domain"`
	Count  int    `json:"count"`
	Note   string `json:"note,omitempty"`
}

// SourceStatus is how one source fared.
type SourceStatus struct {
	Status string `json:"status"`
	MS     *int64 `json:"ms,omitempty"`
	Error  string `json:"error,omitempty"`
}

// autoDelivered are the BRP's own indications that come with any person;
// they tell the reader how to treat the data, so they are kept.
var autoDelivered = []string{"geheimhoudingPersoonsgegevens", "opschortingBijhouding", "inOnderzoek", "rni", "verificatie"}

// composer builds one view.
type composer struct {
	f        *fetched
	dec      policies.Decision
	now      time.Time
	view     View
	access   map[string]*audit.SourceAccess
	fields   map[string]map[string]bool
	withheld map[[2]string]int
	contacts []dated
	overdue  int
}

type dated struct {
	at  time.Time
	rec Record
}

// compose filters what the sources answered down to what the decision
// permits and reports, per source, what was disclosed.
func compose(f *fetched, dec policies.Decision, req viewRequest, now time.Time) (View, []audit.SourceAccess) {
	c := &composer{
		f: f, dec: dec, now: now,
		view: View{
			BSN: req.BSN, Purpose: req.Purpose,
			Cases: []Record{}, CRM: CRM{Cases: []Record{}, Callbacks: []Record{}}, Contacts: []Record{},
			Sources: map[string]SourceStatus{}, Notes: dec.Notes,
		},
		access:   map[string]*audit.SourceAccess{},
		fields:   map[string]map[string]bool{},
		withheld: map[[2]string]int{},
	}
	for _, name := range SourceNames {
		c.source(name)
	}
	slices.SortStableFunc(c.contacts, func(a, b dated) int { return b.at.Compare(a.at) })
	for _, d := range c.contacts {
		c.view.Contacts = append(c.view.Contacts, d.rec)
	}
	c.view.Signals = Signals{RepeatContacts: repeatContacts(c.contacts, now), OverdueCallbacks: c.overdue}
	c.view.Withheld = c.withheldList()

	out := make([]audit.SourceAccess, 0, len(SourceNames))
	for _, name := range SourceNames {
		a := c.access[name]
		for fld := range c.fields[name] {
			a.Fields = append(a.Fields, fld)
		}
		slices.Sort(a.Fields)
		out = append(out, *a)
	}
	return c.view, out
}

func (c *composer) source(name string) {
	call, fetched := c.f.calls[name]
	a := &audit.SourceAccess{Source: name, Called: fetched && call.called}
	c.access[name] = a
	c.fields[name] = map[string]bool{}
	rule, permitted := c.dec.Sources[name]
	status := SourceStatus{Status: statusOK}
	switch {
	case !permitted || !fetched:
		status = SourceStatus{Status: statusDenied}
	case call.err != nil:
		status = SourceStatus{Status: statusUnavailable, Error: reason(call.err)}
	default:
		ms := call.ms
		status.MS = &ms
		var unresolved int
		switch name {
		case SourceBRP:
			c.brp(rule)
		case SourceZaken:
			c.zaken(rule)
		case SourceSalesforce:
			c.salesforce(rule)
		case SourceKlantinteracties:
			unresolved = c.klantinteracties(rule)
		}
		if unresolved > 0 {
			status.Status, status.Error = statusPartial, "zaak_domain_unresolved"
		}
	}
	if call != nil && call.called && status.MS == nil {
		ms := call.ms
		status.MS = &ms
	}
	a.Status = status.Status
	c.view.Sources[name] = status
}

func reason(err error) string {
	switch {
	case errors.Is(err, errNotConfigured):
		return "not_configured"
	case errors.Is(err, errConnector):
		return "connector_error"
	}
	return upstream.Reason(err)
}

// disclose adds a record's fields to what the source disclosed.
func (c *composer) disclose(source string, rec Record) {
	c.access[source].Records++
	for k := range rec {
		if k != "source" {
			c.fields[source][k] = true
		}
	}
}

func (c *composer) withhold(source, domain string) {
	c.withheld[[2]string{source, domain}]++
	c.access[source].Withheld++
}

func (c *composer) brp(rule policies.SourceRule) {
	if c.f.person == nil {
		return
	}
	person := projectPaths(c.f.person.Data, rule.Fields)
	for _, k := range autoDelivered {
		if v, ok := c.f.person.Data[k]; ok {
			person[k] = v
		}
	}
	c.view.Person = person
	c.disclose(SourceBRP, Record(person))
}

func (c *composer) zaken(rule policies.SourceRule) {
	maxLevel := zaken.Level(rule.MaxVertrouwelijkheid)
	type item struct {
		start, id string
		rec       Record
	}
	var items []item
	for _, z := range c.f.zaken {
		if lvl := zaken.Level(z.Vertrouwelijkheid); lvl == 0 || lvl > maxLevel {
			continue // the source should not have sent it
		}
		switch {
		case slices.Contains(rule.Domains, z.Domain):
			rec := project(Record{
				"source": SourceZaken, "identificatie": z.Identificatie, "omschrijving": z.Omschrijving,
				"zaaktype": z.Zaaktype, "domain": z.Domain, "status": z.Status, "startdatum": z.Startdatum,
				"einddatum": z.Einddatum, "einddatumGepland": z.EinddatumGepland,
				"vertrouwelijkheidaanduiding": z.Vertrouwelijkheid,
			}, rule.Fields)
			items = append(items, item{z.Startdatum, z.Identificatie, rec})
			c.disclose(SourceZaken, rec)
		case slices.Contains(rule.ExistenceOnly, z.Domain):
			c.withhold(SourceZaken, z.Domain)
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(strings.Compare(b.start, a.start), strings.Compare(a.id, b.id))
	})
	for _, it := range items {
		c.view.Cases = append(c.view.Cases, it.rec)
	}
}

func (c *composer) salesforce(rule policies.SourceRule) {
	p := c.f.profile
	if p == nil {
		return
	}
	today := c.now.Format(time.DateOnly)
	since := c.since(rule)
	caseDomain := map[string]string{}
	for _, k := range p.Cases {
		caseDomain[k.ID] = k.Domain
		switch {
		case slices.Contains(rule.Domains, k.Domain):
			if !slices.Contains(rule.Records, recordCases) {
				continue
			}
			rec := project(Record{
				"source": SourceSalesforce, "caseNumber": k.CaseNumber, "subject": k.Subject, "status": k.Status,
				"origin": k.Origin, "createdAt": timestamp(k.Created), "domain": k.Domain,
			}, rule.Fields)
			c.view.CRM.Cases = append(c.view.CRM.Cases, rec)
			c.disclose(SourceSalesforce, rec)
		case slices.Contains(rule.ExistenceOnly, k.Domain):
			c.withhold(SourceSalesforce, k.Domain)
		}
	}
	for _, t := range p.Tasks {
		domain := ""
		if t.CaseID != "" {
			d, ok := caseDomain[t.CaseID]
			if !ok {
				continue // about a case we cannot place in a domain
			}
			domain = d
		}
		if domain == "" && !rule.Undomained || domain != "" && !slices.Contains(rule.Domains, domain) {
			continue
		}
		switch t.Subtype {
		case "Task":
			all := slices.Contains(rule.Records, recordCallbacks)
			open := slices.Contains(rule.Records, recordOpenCallbacks) && !t.Closed
			if !all && !open {
				continue
			}
			overdue := !t.Closed && t.Due != "" && t.Due < today
			rec := project(Record{
				"source": SourceSalesforce, "subject": t.Subject, "owner": t.Owner, "due": t.Due,
				"reminders": t.Reminders, "overdue": overdue, "escalated": t.Reminders >= escalateReminders,
				"status": t.Status, "domain": domain,
			}, rule.Fields)
			if overdue {
				c.overdue++
			}
			c.view.CRM.Callbacks = append(c.view.CRM.Callbacks, rec)
			c.disclose(SourceSalesforce, rec)
		case "Call":
			if !slices.Contains(rule.Records, recordCalls) || t.Created.Before(since) {
				continue
			}
			rec := project(Record{
				"source": SourceSalesforce, "channel": "telefoon", "at": timestamp(t.Created),
				"subject": t.Subject, "domain": domain,
			}, rule.Fields)
			c.contacts = append(c.contacts, dated{t.Created, rec})
			c.disclose(SourceSalesforce, rec)
		}
	}
	slices.SortStableFunc(c.view.CRM.Cases, func(a, b Record) int { return strings.Compare(str(b["createdAt"]), str(a["createdAt"])) })
	slices.SortStableFunc(c.view.CRM.Callbacks, func(a, b Record) int { return strings.Compare(str(a["due"]), str(b["due"])) })
}

// klantinteracties filters contacts and returns how many could not be
// placed in a domain (and so were withheld).
func (c *composer) klantinteracties(rule policies.SourceRule) (unresolved int) {
	since := c.since(rule)
	for _, k := range c.f.contacts {
		if k.Vertrouwelijk && !rule.Vertrouwelijk || k.At.Before(since) {
			continue
		}
		domains, ok := c.contactDomains(k.Zaken)
		if !ok {
			unresolved++
			c.access[SourceKlantinteracties].Withheld++
			continue
		}
		permitted := len(domains) == 0 && rule.Undomained
		if len(domains) > 0 {
			permitted = true
			for _, d := range domains {
				permitted = permitted && slices.Contains(rule.Domains, d)
			}
		}
		if !permitted {
			for _, d := range domains {
				if slices.Contains(rule.ExistenceOnly, d) {
					c.withhold(SourceKlantinteracties, d)
					break
				}
			}
			continue
		}
		rec := Record{
			"source": SourceKlantinteracties, "channel": k.Kanaal, "at": timestamp(k.At),
			"subject": k.Onderwerp, "content": k.Inhoud, "confidential": k.Vertrouwelijk,
		}
		if len(domains) > 0 {
			rec["domain"] = strings.Join(domains, ",")
		}
		if len(k.Taken) > 0 {
			tasks := make([]any, 0, len(k.Taken))
			for _, t := range k.Taken {
				tasks = append(tasks, map[string]any{"action": t.GevraagdeHandeling, "status": t.Status})
			}
			rec["tasks"] = tasks
		}
		rec = project(rec, rule.Fields)
		c.contacts = append(c.contacts, dated{k.At, rec})
		c.disclose(SourceKlantinteracties, rec)
	}
	return unresolved
}

// contactDomains are the distinct domains of the zaken a contact links, or
// false when one of them could not be resolved.
func (c *composer) contactDomains(zaakIDs []string) ([]string, bool) {
	var out []string
	for _, id := range zaakIDs {
		d, ok := c.f.zaakDomains[id]
		if !ok || d == "" {
			return nil, false
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out, true
}

// since is the oldest moment a rule's age limit lets through.
func (c *composer) since(rule policies.SourceRule) time.Time {
	if rule.MaxAgeDays <= 0 {
		return time.Time{}
	}
	return c.now.AddDate(0, 0, -rule.MaxAgeDays)
}

func (c *composer) withheldList() []Withheld {
	var out []Withheld
	for key, n := range c.withheld {
		rule := c.dec.Sources[key[0]]
		out = append(out, Withheld{Source: key[0], Domain: key[1], Count: n, Note: rule.ExistenceNotes[key[1]]})
	}
	slices.SortFunc(out, func(a, b Withheld) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Domain, b.Domain))
	})
	return out
}

// repeatContacts counts the contacts of the last 14 days that came within
// 14 days after an earlier contact. contacts are sorted newest first.
func repeatContacts(contacts []dated, now time.Time) int {
	n := 0
	for i, d := range contacts {
		if now.Sub(d.at) > repeatWindow {
			break
		}
		if i+1 < len(contacts) && d.at.Sub(contacts[i+1].at) <= repeatWindow {
			n++
		}
	}
	return n
}

// project keeps "source" and the permitted fields that have a value.
func project(rec Record, fields []string) Record {
	out := Record{"source": rec["source"]}
	for _, f := range fields {
		v, ok := rec[f]
		if !ok || v == nil || v == "" {
			continue
		}
		out[f] = v
	}
	return out
}

// projectPaths copies the dotted field paths (BRP "fields" notation:
// "naam", "partners.naam.voornamen") from data; arrays are projected per element.
func projectPaths(data map[string]any, paths []string) map[string]any {
	out := map[string]any{}
	for _, p := range paths {
		copyPath(out, data, strings.Split(p, "."))
	}
	return out
}

func copyPath(dst, src map[string]any, segs []string) {
	v, ok := src[segs[0]]
	if !ok {
		return
	}
	if len(segs) == 1 {
		dst[segs[0]] = v
		return
	}
	switch sv := v.(type) {
	case map[string]any:
		sub, _ := dst[segs[0]].(map[string]any)
		if sub == nil {
			sub = map[string]any{}
			dst[segs[0]] = sub
		}
		copyPath(sub, sv, segs[1:])
	case []any:
		arr, _ := dst[segs[0]].([]any)
		if len(arr) != len(sv) {
			arr = make([]any, len(sv))
			for i := range arr {
				arr[i] = map[string]any{}
			}
			dst[segs[0]] = arr
		}
		for i, el := range sv {
			if m, ok := el.(map[string]any); ok {
				copyPath(arr[i].(map[string]any), m, segs[1:])
			}
		}
	}
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
