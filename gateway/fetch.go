package gateway

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/policies"
)

// Errors of a source that are ours, not the source's.
var (
	// errNotConfigured: the policy permits a source this gateway has no connector for.
	errNotConfigured = errors.New("source not configured")
	// errConnector: the connector itself failed (a bug); see the log.
	errConnector = errors.New("connector error")
)

// call is what happened with one source.
type call struct {
	called bool
	err    error
	ms     int64
}

// fetched is everything the permitted sources answered for one view.
type fetched struct {
	calls    map[string]*call // only permitted sources have an entry
	person   *brp.Person
	zaken    []zaken.Zaak
	profile  *salesforce.Profile
	contacts []klantinteracties.Contact
	// zaakDomains maps the UUID of every zaak a contact links to its domain,
	// where that could be found out; a missing entry means unresolved.
	zaakDomains map[string]string
}

// fetch calls the sources the decision permits, in parallel, each within
// its own timeout, and resolves the domains of zaken that contacts link.
// Sources the decision does not name are not called.
func (g *Gateway) fetch(ctx context.Context, bsn string, id Identity, dec policies.Decision) *fetched {
	f := &fetched{calls: map[string]*call{}, zaakDomains: map[string]string{}}
	user := zaken.User{ID: id.Sub, Representation: id.Name}
	if user.Representation == "" {
		user.Representation = id.Sub
	}
	var wg sync.WaitGroup
	run := func(name string, configured bool, do func() error) {
		if _, ok := dec.Sources[name]; !ok {
			return
		}
		c := &call{}
		f.calls[name] = c
		if !configured {
			c.err = errNotConfigured
			return
		}
		c.called = true
		wg.Go(func() {
			start := time.Now()
			defer func() {
				c.ms = time.Since(start).Milliseconds()
				// A connector bug takes out its own part of the view, not the process.
				if v := recover(); v != nil {
					g.log.Error("connector panic", "source", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
					c.err = fmt.Errorf("%w: connector failed", errConnector)
				}
			}()
			c.err = do()
		})
	}
	src := g.cfg.Sources
	run(SourceBRP, src.BRP != nil, func() (err error) {
		f.person, err = src.BRP.Person(ctx, bsn, dec.Sources[SourceBRP].Fields)
		return err
	})
	run(SourceZaken, src.Zaken != nil, func() (err error) {
		rule := dec.Sources[SourceZaken]
		max := rule.MaxVertrouwelijkheid
		if max == "" {
			max = "openbaar" // no level granted: the least
		}
		f.zaken, err = src.Zaken.Zaken(ctx, zaken.Query{BSN: bsn, MaxVertrouwelijkheid: max, User: user})
		return err
	})
	run(SourceSalesforce, src.Salesforce != nil, func() (err error) {
		rule := dec.Sources[SourceSalesforce]
		f.profile, err = src.Salesforce.Profile(ctx, salesforce.Query{
			BSN:             bsn,
			CaseDomains:     union(rule.Domains, rule.ExistenceOnly),
			UndomainedTasks: rule.Undomained,
			Callbacks:       slices.Contains(rule.Records, recordCallbacks) || slices.Contains(rule.Records, recordOpenCallbacks),
			Calls:           slices.Contains(rule.Records, recordCalls),
		})
		return err
	})
	run(SourceKlantinteracties, src.Klantinteracties != nil, func() (err error) {
		f.contacts, err = src.Klantinteracties.Contacts(ctx, klantinteracties.Query{
			BSN:                  bsn,
			IncludeVertrouwelijk: dec.Sources[SourceKlantinteracties].Vertrouwelijk,
		})
		return err
	})
	wg.Wait()
	g.resolveZaakDomains(ctx, f, user)
	return f
}

// resolveZaakDomains finds the domain of every zaak a contact links: from the
// zaken already fetched, else by asking the Zaken API, but only when the
// policy permits calling it. Unresolved links leave their contacts withheld.
func (g *Gateway) resolveZaakDomains(ctx context.Context, f *fetched, user zaken.User) {
	for _, z := range f.zaken {
		f.zaakDomains[z.UUID] = z.Domain
	}
	var missing []string
	for _, c := range f.contacts {
		for _, id := range c.Zaken {
			if _, ok := f.zaakDomains[id]; !ok && !slices.Contains(missing, id) {
				missing = append(missing, id)
			}
		}
	}
	// Only ask a Zaken API the policy permits and that just answered: a
	// failing one would add its timeout to the view for nothing.
	zc, permitted := f.calls[SourceZaken]
	if len(missing) == 0 || !permitted || !zc.called || zc.err != nil {
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, g.cfg.DomainLookups)
	for _, id := range missing {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			domain, err := g.cfg.Sources.Zaken.Domain(ctx, id, user)
			if err != nil {
				return // unresolved: the contact stays withheld
			}
			mu.Lock()
			f.zaakDomains[id] = domain
			mu.Unlock()
		})
	}
	wg.Wait()
}

// calledOnly is the audit view of a fetch whose data was not disclosed.
func (f *fetched) calledOnly() []audit.SourceAccess {
	var out []audit.SourceAccess
	for _, name := range SourceNames {
		c, ok := f.calls[name]
		out = append(out, audit.SourceAccess{Source: name, Status: statusDenied, Called: ok && c.called})
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
