package view

import (
	"context"
	"slices"
	"time"

	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/policies"
)

// SourceSalesforce is the CRM's name in views and policies.
const SourceSalesforce = "salesforce"

// Kinds of Salesforce record a rule can grant (policies.SourceRule.Records).
const (
	recordCases         = "cases"
	recordCallbacks     = "callbacks"
	recordOpenCallbacks = "open-callbacks"
	recordCalls         = "calls"
)

// escalateReminders is how many reminders make a callback escalated.
const escalateReminders = 3

// SalesforceClient is the Salesforce connector (connectors/salesforce) as
// the view uses it.
type SalesforceClient interface {
	// Profile returns the cases and tasks q asks for; an empty profile
	// when no Contact has the BSN.
	Profile(ctx context.Context, q salesforce.Query) (*salesforce.Profile, error)
}

// Salesforce is the CRM's part of a view: cases, callbacks and logged
// calls (as contacts) of the permitted domains and kinds.
type Salesforce struct{ client SalesforceClient }

var _ Source = (*Salesforce)(nil)

// NewSalesforce wraps the Salesforce connector.
func NewSalesforce(c SalesforceClient) *Salesforce { return &Salesforce{client: c} }

// Name is "salesforce".
func (*Salesforce) Name() string { return SourceSalesforce }

// Fetch asks, in one round trip, for the cases of the rule's disclosed and
// existence-only domains, and only the kinds of task the rule grants, so
// that what the purpose may not see stays in Salesforce. Errors are the
// connector's.
func (s *Salesforce) Fetch(ctx context.Context, req Request, rule policies.SourceRule) (Answer, error) {
	p, err := s.client.Profile(ctx, salesforce.Query{
		BSN:             req.BSN,
		CaseDomains:     union(rule.Domains, rule.ExistenceOnly),
		UndomainedTasks: rule.Undomained,
		Callbacks:       slices.Contains(rule.Records, recordCallbacks) || slices.Contains(rule.Records, recordOpenCallbacks),
		Calls:           slices.Contains(rule.Records, recordCalls),
	})
	if err != nil {
		return nil, err
	}
	return salesforceAnswer{profile: p}, nil
}

// salesforceAnswer is the resident's profile; nil when it has none.
type salesforceAnswer struct{ profile *salesforce.Profile }

// Disclose adds the cases of the rule's domains (when it grants cases),
// counts those of existence-only domains, and adds the tasks about the
// permitted cases or, where the rule grants undomained records, about no
// case: callbacks (all, or open ones only) and logged calls within the
// rule's age limit, as phone contacts.
func (a salesforceAnswer) Disclose(d *Disclosure, rule policies.SourceRule) {
	p := a.profile
	if p == nil {
		return
	}
	today := d.Now().Format(time.DateOnly)
	oldest := d.Oldest()
	caseDomain := map[string]string{}
	for _, k := range p.Cases {
		caseDomain[k.ID] = k.Domain
		switch {
		case slices.Contains(rule.Domains, k.Domain):
			if slices.Contains(rule.Records, recordCases) {
				d.CRMCase(CRMCase{
					CaseNumber: k.CaseNumber, Subject: k.Subject, Status: k.Status,
					Origin: k.Origin, CreatedAt: timestamp(k.Created), Domain: k.Domain,
				})
			}
		case slices.Contains(rule.ExistenceOnly, k.Domain):
			d.Withhold(k.Domain)
		}
	}
	for _, t := range p.Tasks {
		domain := ""
		if t.CaseID != "" {
			dom, ok := caseDomain[t.CaseID]
			if !ok {
				continue // about a case we cannot place in a domain
			}
			domain = dom
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
			escalated := t.Reminders >= escalateReminders
			reminders := t.Reminders
			d.Callback(Callback{
				Subject: t.Subject, Owner: t.Owner, Due: t.Due, Reminders: &reminders,
				Overdue: &overdue, Escalated: &escalated, Status: t.Status, Domain: domain, open: !t.Closed,
			})
		case "Call":
			if !slices.Contains(rule.Records, recordCalls) || t.Created.Before(oldest) {
				continue
			}
			d.Contact(t.Created, Contact{Channel: "telefoon", At: timestamp(t.Created), Subject: t.Subject, Domain: domain})
		}
	}
}

// union is a with the elements of b it lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
