package view

import (
	"context"
	"slices"
	"strings"

	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/policies"
)

// SourceKlantinteracties is the contact register's name in views and policies.
const SourceKlantinteracties = "klantinteracties"

// KlantinteractiesClient is the Klantinteracties connector
// (connectors/klantinteracties) as the view uses it.
type KlantinteractiesClient interface {
	// Contacts returns the resident's contacts; nil, nil when no partij
	// has the BSN.
	Contacts(ctx context.Context, q klantinteracties.Query) ([]klantinteracties.Contact, error)
}

// ZaakDomains is an Answer that can tell the domain of zaken: a contact
// about a zaak belongs to the zaak's domain. The Zaken source's answer is
// one.
type ZaakDomains interface {
	// ZaakDomains returns the domain of each zaak of ids (UUIDs) it could
	// place; a zaak it could not is missing from the map.
	ZaakDomains(ctx context.Context, ids []string) map[string]string
}

// zaakDomainSource is a Source whose answers are ZaakDomains (Zaken).
type zaakDomainSource interface {
	Source
	answersZaakDomains()
}

// Klantinteracties is the contact register's part of a view: the contacts
// on every channel of the permitted domains (the domain of the zaken they
// were about) or of none, within the rule's age limit.
type Klantinteracties struct{ client KlantinteractiesClient }

var _ Dependent = (*Klantinteracties)(nil)

// DependsOn is true of the sources that tell zaak domains: the zaken the
// contacts link are placed as soon as these and the contacts are in, while
// slower sources are still on their way.
func (*Klantinteracties) DependsOn(other Source) bool {
	_, ok := other.(zaakDomainSource)
	return ok
}

// NewKlantinteracties wraps the Klantinteracties connector.
func NewKlantinteracties(c KlantinteractiesClient) *Klantinteracties {
	return &Klantinteracties{client: c}
}

// Name is "klantinteracties".
func (*Klantinteracties) Name() string { return SourceKlantinteracties }

// Fetch asks for the resident's contacts, vertrouwelijke only when the rule
// permits them. Errors are the connector's.
func (s *Klantinteracties) Fetch(ctx context.Context, req Request, rule policies.SourceRule) (Answer, error) {
	cs, err := s.client.Contacts(ctx, klantinteracties.Query{BSN: req.BSN, IncludeVertrouwelijk: rule.Vertrouwelijk})
	if err != nil {
		return nil, err
	}
	return &klantinteractiesAnswer{contacts: cs, domains: map[string]string{}}, nil
}

// klantinteractiesAnswer is the resident's contacts and the domains of the
// zaken they link, as far as they could be placed.
type klantinteractiesAnswer struct {
	contacts []klantinteracties.Contact
	domains  map[string]string // zaak UUID → domain; missing: unplaced
}

// Resolve places the zaken the contacts link by asking the answers that
// can tell zaak domains (the Zaken source's, when it was permitted and
// answered). Without one, contacts about a zaak are held back.
func (a *klantinteractiesAnswer) Resolve(ctx context.Context, others []Answer) {
	var ids []string
	for _, c := range a.contacts {
		for _, id := range c.Zaken {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	for _, o := range others {
		if len(ids) == 0 {
			return
		}
		zd, ok := o.(ZaakDomains)
		if !ok {
			continue
		}
		for id, d := range zd.ZaakDomains(ctx, ids) {
			a.domains[id] = d
		}
		ids = slices.DeleteFunc(ids, func(id string) bool { _, ok := a.domains[id]; return ok })
	}
}

// Disclose adds the contacts the rule permits: not vertrouwelijk unless it
// says so, not older than its age limit, and of no domain (when it permits
// undomained records) or only of permitted domains. A contact of a domain
// that is existence-only is counted; one about a zaak that could not be
// placed is held back and makes the part partial (zaak_domain_unresolved).
func (a *klantinteractiesAnswer) Disclose(d *Disclosure, rule policies.SourceRule) {
	oldest := d.Oldest()
	for _, k := range a.contacts {
		if k.Vertrouwelijk && !rule.Vertrouwelijk || k.At.Before(oldest) {
			continue
		}
		domains, ok := a.contactDomains(k.Zaken)
		if !ok {
			d.HoldBack()
			d.Partial("zaak_domain_unresolved")
			continue
		}
		permitted := len(domains) == 0 && rule.Undomained
		if len(domains) > 0 {
			permitted = true
			for _, dom := range domains {
				permitted = permitted && slices.Contains(rule.Domains, dom)
			}
		}
		if !permitted {
			for _, dom := range domains {
				if slices.Contains(rule.ExistenceOnly, dom) {
					d.Withhold(dom)
					break
				}
			}
			continue
		}
		confidential := k.Vertrouwelijk
		c := Contact{
			Channel: k.Kanaal, At: timestamp(k.At), Subject: k.Onderwerp, Content: k.Inhoud,
			Domain: strings.Join(domains, ","), Confidential: &confidential,
		}
		for _, t := range k.Taken {
			c.Tasks = append(c.Tasks, ContactTask{Action: t.GevraagdeHandeling, Status: t.Status})
		}
		d.Contact(k.At, c)
	}
}

// contactDomains are the distinct domains of the zaken a contact links,
// sorted, or false when one of them could not be placed.
func (a *klantinteractiesAnswer) contactDomains(zaakIDs []string) ([]string, bool) {
	var out []string
	for _, id := range zaakIDs {
		dom, ok := a.domains[id]
		if !ok || dom == "" {
			return nil, false
		}
		if !slices.Contains(out, dom) {
			out = append(out, dom)
		}
	}
	slices.Sort(out)
	return out, true
}
