package view

import (
	"context"
	"slices"
	"sync"

	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/policies"
)

// SourceZaken is the zaakregistratie's name in views and policies.
const SourceZaken = "zaken"

// ZakenClient is the Zaken connector (connectors/zaken) as the view uses it.
type ZakenClient interface {
	// Zaken lists the resident's zaken up to q.MaxVertrouwelijkheid, each
	// with its domain; nil, nil for a resident the source does not know.
	Zaken(ctx context.Context, q zaken.Query) ([]zaken.Zaak, error)
	// Domain resolves the domain of one zaak; zaken.ErrNotFound when the
	// zaak does not exist.
	Domain(ctx context.Context, zaakUUID string, u zaken.User) (string, error)
}

// Zaken is the ZGW Zaken API's part of a view: the cases of the permitted
// domains up to the permitted vertrouwelijkheidaanduiding, and the count of
// those of existence-only domains. Its answer also tells the domain of a
// zaak (see ZaakDomains), for contacts about zaken.
type Zaken struct {
	client  ZakenClient
	lookups int
}

var _ zaakDomainSource = (*Zaken)(nil)

// answersZaakDomains marks Zaken as a source whose answers are ZaakDomains.
func (*Zaken) answersZaakDomains() {}

// NewZaken wraps the Zaken connector. domainLookups is how many zaak
// domains may be looked up at once for contacts that link a zaak the view
// does not hold; 0 or less: 4.
func NewZaken(c ZakenClient, domainLookups int) *Zaken {
	if domainLookups <= 0 {
		domainLookups = 4
	}
	return &Zaken{client: c, lookups: domainLookups}
}

// Name is "zaken".
func (*Zaken) Name() string { return SourceZaken }

// Fetch lists the resident's zaken up to the rule's maximum
// vertrouwelijkheidaanduiding (openbaar when the rule names none), on
// behalf of the request's user, so that the source filters too. Errors are
// the connector's.
func (s *Zaken) Fetch(ctx context.Context, req Request, rule policies.SourceRule) (Answer, error) {
	user := zaken.User{ID: req.User.ID, Representation: req.User.Name}
	if user.Representation == "" {
		user.Representation = req.User.ID
	}
	maxLevel := rule.MaxVertrouwelijkheid
	if maxLevel == "" {
		maxLevel = "openbaar" // no level granted: the least
	}
	zs, err := s.client.Zaken(ctx, zaken.Query{BSN: req.BSN, MaxVertrouwelijkheid: maxLevel, User: user})
	if err != nil {
		return nil, err
	}
	return &zakenAnswer{zaken: zs, client: s.client, user: user, lookups: s.lookups}, nil
}

// zakenAnswer is the resident's zaken, and what it takes to look up others.
type zakenAnswer struct {
	zaken   []zaken.Zaak
	client  ZakenClient
	user    zaken.User
	lookups int
}

// Disclose adds the zaken of the rule's domains with its fields, and counts
// those of existence-only domains. Zaken above the rule's level are
// dropped, not counted: the source should not have sent them.
func (a *zakenAnswer) Disclose(d *Disclosure, rule policies.SourceRule) {
	maxLevel := zaken.Level(rule.MaxVertrouwelijkheid)
	for _, z := range a.zaken {
		if lvl := zaken.Level(z.Vertrouwelijkheid); lvl == 0 || lvl > maxLevel {
			continue
		}
		switch {
		case slices.Contains(rule.Domains, z.Domain):
			d.Case(Case{
				Identificatie: z.Identificatie, Omschrijving: z.Omschrijving, Zaaktype: z.Zaaktype,
				Domain: z.Domain, Status: z.Status, Startdatum: z.Startdatum, Einddatum: z.Einddatum,
				EinddatumGepland: z.EinddatumGepland, Vertrouwelijkheidaanduiding: z.Vertrouwelijkheid,
			})
		case slices.Contains(rule.ExistenceOnly, z.Domain):
			d.Withhold(z.Domain)
		}
	}
}

// ZaakDomains tells the domain of the zaken ids (UUIDs): from the zaken
// the source just answered, else by asking the Zaken API, at most lookups
// at a time. A zaak it could not place (not found, the source failed, no
// domain) is missing from the map. A panic of a look-up is raised again in
// the caller's goroutine, where the fan-out recovers it.
func (a *zakenAnswer) ZaakDomains(ctx context.Context, ids []string) map[string]string {
	out := map[string]string{}
	var missing []string
	for _, id := range ids {
		if i := slices.IndexFunc(a.zaken, func(z zaken.Zaak) bool { return z.UUID == id }); i >= 0 {
			if d := a.zaken[i].Domain; d != "" {
				out[id] = d
			}
			continue
		}
		if !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var panicked any
	sem := make(chan struct{}, a.lookups)
	for _, id := range missing {
		wg.Go(func() {
			defer func() {
				if v := recover(); v != nil {
					mu.Lock()
					panicked = v
					mu.Unlock()
				}
			}()
			sem <- struct{}{}
			defer func() { <-sem }()
			domain, err := a.client.Domain(ctx, id, a.user)
			if err != nil || domain == "" {
				return // unplaced: the contacts about it are held back
			}
			mu.Lock()
			out[id] = domain
			mu.Unlock()
		})
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	return out
}
