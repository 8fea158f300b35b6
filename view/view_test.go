package view_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
	"github.com/klantbeeld/klantbeeld/view/viewtest"
)

const bsn = "999993653"

var request = view.Request{BSN: bsn, Purpose: "test", User: view.User{ID: "emp-1", Name: "Test medewerker"}}

func daysAgo(d int) time.Time { return now.AddDate(0, 0, -d) }

// allow is a decision that permits the sources with these rules.
func allow(rules map[string]policies.SourceRule) policies.Decision {
	return policies.Decision{Allow: true, ProcessingActivity: "test", Sources: rules}
}

// compose fetches and composes in one go, with the first decision ruling.
func compose(t *testing.T, sources []view.Source, req view.Request, dec policies.Decision) (view.View, map[string]audit.SourceAccess) {
	t.Helper()
	v, access := view.Fetch(context.Background(), sources, req, dec, nil).Compose(dec, now)
	byName := map[string]audit.SourceAccess{}
	for _, a := range access {
		byName[a.Source] = a
	}
	require.Len(t, byName, len(sources), "one audit record per source")
	return v, byName
}

func person() *brp.Person {
	return &brp.Person{Data: map[string]any{
		"burgerservicenummer": bsn,
		"naam":                map[string]any{"voornamen": "Suzanne", "geslachtsnaam": "Moulin"},
		"partners": []any{
			map[string]any{"naam": map[string]any{"voornamen": "Jean Marie", "geslachtsnaam": "Moulin"}, "burgerservicenummer": "999992934"},
			"not an object",
		},
		"geboorte":    map[string]any{"datum": map[string]any{"type": "Datum", "datum": "1985-12-01"}},
		"leeftijd":    40,
		"inOnderzoek": map[string]any{"naam": true},
	}}
}

// statusCase is one source in one situation and the status it gets.
type statusCase struct {
	name    string
	source  func() view.Source
	dec     policies.Decision
	asked   []string // the request's sources
	status  string
	errWord string
	called  bool
}

func TestStatusWords(t *testing.T) {
	brpRule := policies.SourceRule{Fields: []string{"naam"}}
	kiRule := policies.SourceRule{Undomained: true, Domains: []string{"BURZA"}, Fields: []string{"subject"}}
	tests := []statusCase{
		{"an answer is ok", func() view.Source { return view.NewBRP(&viewtest.BRP{Answer: person()}) }, allow(map[string]policies.SourceRule{"brp": brpRule}), nil, "ok", "", true},
		{"an unknown BSN is ok", func() view.Source { return view.NewBRP(&viewtest.BRP{}) }, allow(map[string]policies.SourceRule{"brp": brpRule}), nil, "ok", "", true},
		{"a contact about a zaak that cannot be placed makes it partial", func() view.Source {
			return view.NewKlantinteracties(&viewtest.Klantinteracties{Answer: []klantinteracties.Contact{{UUID: "k1", Onderwerp: "x", At: daysAgo(1), Zaken: []string{"z-gone"}}}})
		}, allow(map[string]policies.SourceRule{"klantinteracties": kiRule}), nil, "partial", "zaak_domain_unresolved", true},
		{"a source the policy does not permit is denied", func() view.Source { return view.NewBRP(&viewtest.BRP{Answer: person()}) }, allow(nil), nil, "denied", "", false},
		{"a source the caller left out is not requested", func() view.Source { return view.NewBRP(&viewtest.BRP{Answer: person()}) }, allow(map[string]policies.SourceRule{"brp": brpRule}), []string{"zaken"}, "not_requested", "", false},
		{"a source the caller left out and the policy refuses is not requested", func() view.Source { return view.NewBRP(&viewtest.BRP{Answer: person()}) }, allow(nil), []string{"zaken"}, "not_requested", "", false},
		{"a permitted source without connector is not configured", func() view.Source { return view.Unconfigured("brp") }, allow(map[string]policies.SourceRule{"brp": brpRule}), nil, "unavailable", "not_configured", false},
		{"a source without connector the policy refuses is denied", func() view.Source { return view.Unconfigured("brp") }, allow(nil), nil, "denied", "", false},
		{"a panicking connector is a connector error", func() view.Source { return view.NewBRP(&viewtest.BRP{Panic: "bug"}) }, allow(map[string]policies.SourceRule{"brp": brpRule}), nil, "unavailable", "connector_error", true},
	}
	for _, word := range []string{"timeout", "deadline", "circuit_open", "bad_response", "foreign_link", "rejected", "unavailable", "canceled", "error"} {
		want := word
		if word == "deadline" {
			want = "timeout"
		}
		tests = append(tests, statusCase{"a failure is unavailable: " + word, func() view.Source { return view.NewBRP(&viewtest.BRP{Err: word}) }, allow(map[string]policies.SourceRule{"brp": brpRule}), nil, "unavailable", want, true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.source()
			req := request
			req.Sources = tt.asked
			v, access := compose(t, []view.Source{src}, req, tt.dec)
			st := v.Sources[src.Name()]
			assert.Equal(t, tt.status, st.Status)
			assert.Equal(t, tt.errWord, st.Error)
			assert.Equal(t, tt.called, st.MS != nil, "ms exactly when the source was called")
			a := access[src.Name()]
			assert.Equal(t, tt.status, a.Status, "the audit record says the same")
			assert.Equal(t, tt.called, a.Called)
		})
	}
}

func TestConnectorErrorsAreReportedByWhatTheyMatch(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"5xx", &upstream.StatusError{Source: "brp", Status: http.StatusBadGateway}, "unavailable"},
		{"429", &upstream.StatusError{Source: "brp", Status: http.StatusTooManyRequests}, "unavailable"},
		{"401", &upstream.StatusError{Source: "brp", Status: http.StatusUnauthorized}, "rejected"},
		{"the fields the BRP refuses", brp.ErrFields, "error"},
		{"the Salesforce request limit", fmt.Errorf("%w: %w", salesforce.ErrRequestLimit, upstream.ErrUnavailable), "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := view.NewBRP(errBRP{tt.err})
			v, _ := compose(t, []view.Source{src}, request, allow(map[string]policies.SourceRule{"brp": {Fields: []string{"naam"}}}))
			assert.Equal(t, view.SourceStatus{Status: "unavailable", Error: tt.want, MS: v.Sources["brp"].MS}, v.Sources["brp"])
		})
	}
}

// errBRP fails with err.
type errBRP struct{ err error }

func (e errBRP) Person(context.Context, string, []string) (*brp.Person, error) { return nil, e.err }

func TestAConnectorPanicTakesOutOnlyItsPart(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	z := &viewtest.Zaken{}
	ki := &viewtest.Klantinteracties{Answer: []klantinteracties.Contact{
		{UUID: "k1", Onderwerp: "over een zaak", At: daysAgo(1), Zaken: []string{"z-elsewhere"}},
	}}
	z.LookupPanic = true
	sources := []view.Source{
		view.NewBRP(&viewtest.BRP{Panic: "brp connector bug about " + bsn}),
		view.NewZaken(z, 0),
		view.NewKlantinteracties(ki),
	}
	dec := allow(map[string]policies.SourceRule{
		"brp":              {Fields: []string{"naam"}},
		"zaken":            {Domains: []string{"BURZA"}, MaxVertrouwelijkheid: "geheim", Fields: []string{"identificatie"}},
		"klantinteracties": {Domains: []string{"BURZA"}, Fields: []string{"subject"}},
	})
	var v view.View
	require.NotPanics(t, func() {
		v, _ = view.Fetch(context.Background(), sources, request, dec, logger).Compose(dec, now)
	})
	assert.Equal(t, "connector_error", v.Sources["brp"].Error)
	assert.Equal(t, "ok", v.Sources["zaken"].Status, "the others answer")
	assert.Equal(t, "connector_error", v.Sources["klantinteracties"].Error, "a panic while placing its contacts takes out klantinteracties")
	assert.Nil(t, v.Person)
	assert.Contains(t, logs.String(), "connector panic")
	assert.NotContains(t, logs.String(), bsn, "no BSN in any log line, not even a panic's")
}

func TestFetchAsksExactlyWhatTheRulePermits(t *testing.T) {
	b := &viewtest.BRP{Answer: person()}
	z := &viewtest.Zaken{}
	sf := &viewtest.Salesforce{Answer: &salesforce.Profile{}}
	ki := &viewtest.Klantinteracties{}
	sources := []view.Source{view.NewBRP(b), view.NewZaken(z, 0), view.NewSalesforce(sf), view.NewKlantinteracties(ki)}

	t.Run("a rich rule", func(t *testing.T) {
		dec := allow(map[string]policies.SourceRule{
			"brp":              {Fields: []string{"naam", "partners.naam"}},
			"zaken":            {Domains: []string{"SOCZA"}, MaxVertrouwelijkheid: "geheim"},
			"salesforce":       {Domains: []string{"BURZA"}, ExistenceOnly: []string{"SOCZA", "BURZA"}, Undomained: true, Records: []string{"open-callbacks", "calls"}},
			"klantinteracties": {Vertrouwelijk: true},
		})
		view.Fetch(context.Background(), sources, request, dec, nil)
		assert.Equal(t, []string{"naam", "partners.naam"}, b.Fields())
		assert.Equal(t, zaken.Query{BSN: bsn, MaxVertrouwelijkheid: "geheim", User: zaken.User{ID: "emp-1", Representation: "Test medewerker"}}, z.Query())
		assert.Equal(t, salesforce.Query{BSN: bsn, CaseDomains: []string{"BURZA", "SOCZA"}, UndomainedTasks: true, Callbacks: true, Calls: true}, sf.Query(),
			"cases of existence-only domains are asked to count them; open callbacks are callbacks to the source")
		assert.Equal(t, klantinteracties.Query{BSN: bsn, IncludeVertrouwelijk: true}, ki.Query())
	})
	t.Run("a bare rule", func(t *testing.T) {
		req := request
		req.User.Name = ""
		dec := allow(map[string]policies.SourceRule{"zaken": {}, "salesforce": {}, "klantinteracties": {}})
		view.Fetch(context.Background(), sources, req, dec, nil)
		assert.Equal(t, zaken.Query{BSN: bsn, MaxVertrouwelijkheid: "openbaar", User: zaken.User{ID: "emp-1", Representation: "emp-1"}}, z.Query(),
			"no level granted is the least; the employee's id stands in for a missing name")
		assert.Equal(t, salesforce.Query{BSN: bsn}, sf.Query())
		assert.Equal(t, klantinteracties.Query{BSN: bsn}, ki.Query())
	})
	t.Run("sources not permitted or not asked are not called", func(t *testing.T) {
		calls := func() int { return b.Calls() + z.Calls() + sf.Calls() + ki.Calls() }
		before := calls()
		req := request
		req.Sources = []string{"brp"}
		view.Fetch(context.Background(), sources, req, allow(map[string]policies.SourceRule{"zaken": {}, "salesforce": {}}), nil)
		assert.Equal(t, before, calls())
	})
}

func TestProjection(t *testing.T) {
	z := &viewtest.Zaken{Answer: []zaken.Zaak{{UUID: "z1", Identificatie: "ZAAK-1", Omschrijving: "geheim verhaal", Zaaktype: "Paspoort", Domain: "BURZA", Vertrouwelijkheid: "intern", Startdatum: "2026-11-01"}}}
	sf := &viewtest.Salesforce{Answer: &salesforce.Profile{Tasks: []salesforce.Task{
		{ID: "t1", Subtype: "Task", Subject: "Terugbellen", Owner: "Jan", Due: "2026-11-30", Reminders: 0, Created: daysAgo(1)},
	}}}
	ki := &viewtest.Klantinteracties{Answer: []klantinteracties.Contact{{UUID: "k1", Kanaal: "balie", Onderwerp: "Vraag", Inhoud: "", At: daysAgo(1)}}}
	sources := []view.Source{view.NewBRP(&viewtest.BRP{Answer: person()}), view.NewZaken(z, 0), view.NewSalesforce(sf), view.NewKlantinteracties(ki)}
	dec := allow(map[string]policies.SourceRule{
		"brp":              {Fields: []string{"naam.voornamen", "partners.naam.voornamen", "geboorte", "leeftijd.jaren"}},
		"zaken":            {Domains: []string{"BURZA"}, MaxVertrouwelijkheid: "vertrouwelijk", Fields: []string{"identificatie", "einddatum", "nonexistent"}},
		"salesforce":       {Undomained: true, Records: []string{"callbacks"}, Fields: []string{"subject", "reminders", "overdue"}},
		"klantinteracties": {Undomained: true, Fields: []string{"subject", "content", "confidential"}},
	})
	v, access := compose(t, sources, request, dec)
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	var got struct {
		Person   map[string]any   `json:"person"`
		Cases    []map[string]any `json:"cases"`
		CRM      map[string][]map[string]any
		Contacts []map[string]any `json:"contacts"`
	}
	require.NoError(t, json.Unmarshal(raw, &got))

	assert.Equal(t, map[string]any{
		"naam":        map[string]any{"voornamen": "Suzanne"},
		"partners":    []any{map[string]any{"naam": map[string]any{"voornamen": "Jean Marie"}}, map[string]any{}},
		"geboorte":    map[string]any{"datum": map[string]any{"type": "Datum", "datum": "1985-12-01"}},
		"inOnderzoek": map[string]any{"naam": true},
	}, got.Person, "field paths into objects and array elements; a path through a number keeps nothing; the BRP's own indications stay")
	assert.Equal(t, []string{"geboorte", "inOnderzoek", "naam", "partners"}, access["brp"].Fields)

	assert.Equal(t, []map[string]any{{"source": "zaken", "identificatie": "ZAAK-1"}}, got.Cases, "an empty permitted field is left out")
	assert.Equal(t, []string{"identificatie"}, access["zaken"].Fields, "only fields with a value were disclosed")

	assert.Equal(t, []map[string]any{{"source": "salesforce", "subject": "Terugbellen", "reminders": float64(0), "overdue": false}}, got.CRM["callbacks"],
		"a permitted zero or false is shown")
	assert.Equal(t, []map[string]any{{"source": "klantinteracties", "subject": "Vraag", "confidential": false}}, got.Contacts)
	assert.Equal(t, []string{"confidential", "subject"}, access["klantinteracties"].Fields)
}

func TestSignals(t *testing.T) {
	contact := func(uuid string, at time.Time) klantinteracties.Contact {
		return klantinteracties.Contact{UUID: uuid, Onderwerp: uuid, At: at}
	}
	tests := []struct {
		name     string
		contacts []klantinteracties.Contact
		calls    []salesforce.Task
		repeat   int
	}{
		{"no contacts", nil, nil, 0},
		{"one contact", []klantinteracties.Contact{contact("a", daysAgo(1))}, nil, 0},
		{"a second contact within two weeks", []klantinteracties.Contact{contact("a", daysAgo(1)), contact("b", daysAgo(10))}, nil, 1},
		{"three contacts in two weeks", []klantinteracties.Contact{contact("a", daysAgo(1)), contact("b", daysAgo(3)), contact("c", daysAgo(9))}, nil, 2},
		{"an earlier contact older than the window still makes a repeat", []klantinteracties.Contact{contact("a", daysAgo(10)), contact("b", daysAgo(20))}, nil, 1},
		{"contacts more than two weeks apart", []klantinteracties.Contact{contact("a", daysAgo(1)), contact("b", daysAgo(16))}, nil, 0},
		{"only old contacts", []klantinteracties.Contact{contact("a", daysAgo(15)), contact("b", daysAgo(16))}, nil, 0},
		{"a withheld vertrouwelijk contact does not count", []klantinteracties.Contact{contact("a", daysAgo(1)), {UUID: "v", Vertrouwelijk: true, At: daysAgo(2)}}, nil, 0},
		{"a logged call counts with the contacts", []klantinteracties.Contact{contact("a", daysAgo(1))}, []salesforce.Task{{ID: "c", Subtype: "Call", Created: daysAgo(2), Closed: true}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := []view.Source{
				view.NewSalesforce(&viewtest.Salesforce{Answer: &salesforce.Profile{Tasks: tt.calls}}),
				view.NewKlantinteracties(&viewtest.Klantinteracties{Answer: tt.contacts}),
			}
			dec := allow(map[string]policies.SourceRule{
				"salesforce":       {Undomained: true, Records: []string{"calls"}},
				"klantinteracties": {Undomained: true}, // no field shown: the signal is about what is disclosed, not what is displayed
			})
			v, _ := compose(t, sources, request, dec)
			assert.Equal(t, tt.repeat, v.Signals.RepeatContacts)
		})
	}

	t.Run("overdue callbacks", func(t *testing.T) {
		sf := &viewtest.Salesforce{Answer: &salesforce.Profile{
			Cases: []salesforce.Case{{ID: "c-b", Domain: "BURZA"}, {ID: "c-s", Domain: "SOCZA"}},
			Tasks: []salesforce.Task{
				{ID: "late", Subtype: "Task", Due: "2026-11-20", CaseID: "c-b"},
				{ID: "late-undomained", Subtype: "Task", Due: "2026-11-01"},
				{ID: "due-today", Subtype: "Task", Due: "2026-11-23", CaseID: "c-b"},
				{ID: "no-due-date", Subtype: "Task", CaseID: "c-b"},
				{ID: "late-but-closed", Subtype: "Task", Due: "2026-11-20", CaseID: "c-b", Closed: true},
				{ID: "late-other-domain", Subtype: "Task", Due: "2026-11-20", CaseID: "c-s"},
				{ID: "late-unknown-case", Subtype: "Task", Due: "2026-11-20", CaseID: "c-x"},
			},
		}}
		dec := allow(map[string]policies.SourceRule{"salesforce": {Domains: []string{"BURZA"}, Undomained: true, Records: []string{"callbacks"}, Fields: []string{"due"}}})
		v, access := compose(t, []view.Source{view.NewSalesforce(sf)}, request, dec)
		assert.Equal(t, 2, v.Signals.OverdueCallbacks, "counted although the overdue field is not shown")
		assert.Equal(t, 5, access["salesforce"].Records)
		var due []string
		for _, c := range v.CRM.Callbacks {
			due = append(due, c.Due)
			assert.Nil(t, c.Overdue)
		}
		assert.Equal(t, []string{"", "2026-11-01", "2026-11-20", "2026-11-20", "2026-11-23"}, due, "the one due first first")
	})
}

func TestZaakDomainsOfContacts(t *testing.T) {
	contacts := []klantinteracties.Contact{
		{UUID: "k-in-view", Onderwerp: "in view", At: daysAgo(1), Zaken: []string{"z1"}},
		{UUID: "k-elsewhere", Onderwerp: "elsewhere", At: daysAgo(2), Zaken: []string{"z-elsewhere"}},
		{UUID: "k-two", Onderwerp: "two domains", At: daysAgo(3), Zaken: []string{"z1", "z-socza"}},
	}
	kiRule := policies.SourceRule{Domains: []string{"BURZA", "SOCZA"}, Fields: []string{"subject", "domain"}}
	zRule := policies.SourceRule{Domains: []string{"BURZA"}, MaxVertrouwelijkheid: "geheim"}
	newZaken := func() *viewtest.Zaken {
		return &viewtest.Zaken{
			Answer:  []zaken.Zaak{{UUID: "z1", Domain: "BURZA", Vertrouwelijkheid: "openbaar"}, {UUID: "z-socza", Domain: "SOCZA", Vertrouwelijkheid: "geheim"}},
			Domains: map[string]string{"z-elsewhere": "BURZA"},
		}
	}
	tests := []struct {
		name     string
		zaken    func() *viewtest.Zaken
		dec      policies.Decision
		asked    []string
		subjects []string
		domains  []string
		lookups  []string
		status   string
	}{
		{"from the zaken in the view, else looked up", newZaken, allow(map[string]policies.SourceRule{"zaken": zRule, "klantinteracties": kiRule}), nil,
			[]string{"in view", "elsewhere", "two domains"}, []string{"BURZA", "BURZA", "BURZA,SOCZA"}, []string{"z-elsewhere"}, "ok"},
		{"not when Zaken is not permitted", newZaken, allow(map[string]policies.SourceRule{"klantinteracties": kiRule}), nil,
			nil, nil, nil, "partial"},
		{"not when Zaken is not asked", newZaken, allow(map[string]policies.SourceRule{"zaken": zRule, "klantinteracties": kiRule}), []string{"klantinteracties"},
			nil, nil, nil, "partial"},
		{"not when Zaken failed", func() *viewtest.Zaken { z := newZaken(); z.Err = "timeout"; return z }, allow(map[string]policies.SourceRule{"zaken": zRule, "klantinteracties": kiRule}), nil,
			nil, nil, nil, "partial"},
		{"a zaak that is not found holds its contact back", func() *viewtest.Zaken { z := newZaken(); z.Domains = nil; return z }, allow(map[string]policies.SourceRule{"zaken": zRule, "klantinteracties": kiRule}), nil,
			[]string{"in view", "two domains"}, []string{"BURZA", "BURZA,SOCZA"}, []string{"z-elsewhere"}, "partial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := tt.zaken()
			req := request
			req.Sources = tt.asked
			v, access := compose(t, []view.Source{view.NewZaken(z, 0), view.NewKlantinteracties(&viewtest.Klantinteracties{Answer: contacts})}, req, tt.dec)
			var subjects, domains []string
			for _, c := range v.Contacts {
				subjects = append(subjects, c.Subject)
				domains = append(domains, c.Domain)
			}
			assert.Equal(t, tt.subjects, subjects)
			assert.Equal(t, tt.domains, domains)
			assert.Equal(t, tt.lookups, z.LookedUp())
			assert.Equal(t, tt.status, v.Sources["klantinteracties"].Status)
			assert.Equal(t, len(contacts)-len(tt.subjects), access["klantinteracties"].Withheld, "held back, counted in the audit record")
			assert.Empty(t, v.Withheld, "not shown as existence only: their domain is unknown")
		})
	}

	t.Run("at most the configured number of look-ups at once", func(t *testing.T) {
		z := &viewtest.Zaken{Domains: map[string]string{}, LookupDelay: 5 * time.Millisecond}
		var many []klantinteracties.Contact
		for i := range 12 {
			id := fmt.Sprintf("z%d", i)
			z.Domains[id] = "BURZA"
			many = append(many, klantinteracties.Contact{UUID: "k" + id, At: daysAgo(1), Zaken: []string{id, "z0"}})
		}
		dec := allow(map[string]policies.SourceRule{"zaken": zRule, "klantinteracties": kiRule})
		v, _ := compose(t, []view.Source{view.NewZaken(z, 3), view.NewKlantinteracties(&viewtest.Klantinteracties{Answer: many})}, request, dec)
		assert.Len(t, v.Contacts, 12)
		assert.Len(t, z.LookedUp(), 12, "each zaak once")
		assert.LessOrEqual(t, z.MaxInFlight(), 3)
	})
}

func TestSubjectFacts(t *testing.T) {
	tests := []struct {
		name  string
		brp   *viewtest.BRP
		facts *policies.Subject
	}{
		{"none", &viewtest.BRP{Answer: person()}, nil},
		{"geheimhouding", &viewtest.BRP{Answer: &brp.Person{Data: map[string]any{}, Geheimhouding: true}}, &policies.Subject{Geheimhouding: true}},
		{"deceased", &viewtest.BRP{Answer: &brp.Person{Data: map[string]any{}, Opschorting: "O"}}, &policies.Subject{Opschorting: "O"}},
		{"an unknown BSN tells nothing", &viewtest.BRP{}, nil},
		{"a failed BRP tells nothing", &viewtest.BRP{Err: "timeout"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := view.Fetch(context.Background(), []view.Source{view.NewBRP(tt.brp)}, request, allow(map[string]policies.SourceRule{"brp": {Fields: []string{"naam"}}}), nil)
			assert.Equal(t, tt.facts, f.Subject())
		})
	}
}

func TestTheSecondDecisionRulesTheDisclosure(t *testing.T) {
	z := &viewtest.Zaken{Answer: []zaken.Zaak{{UUID: "z1", Identificatie: "ZAAK-1", Omschrijving: "Paspoort", Domain: "BURZA", Vertrouwelijkheid: "openbaar"}}}
	sources := []view.Source{view.NewBRP(&viewtest.BRP{Answer: person()}), view.NewZaken(z, 0)}
	first := allow(map[string]policies.SourceRule{
		"brp":   {Fields: []string{"naam", "geboorte"}},
		"zaken": {Domains: []string{"BURZA"}, MaxVertrouwelijkheid: "openbaar", Fields: []string{"identificatie", "omschrijving"}},
	})
	second := allow(map[string]policies.SourceRule{"brp": {Fields: []string{"naam"}}})
	second.Notes = []string{"the resident is deceased (opschortingBijhouding O)"}
	f := view.Fetch(context.Background(), sources, request, first, nil)
	v, access := f.Compose(second, now)

	var p map[string]any
	require.NoError(t, json.Unmarshal(v.Person, &p))
	assert.Contains(t, p, "naam")
	assert.NotContains(t, p, "geboorte", "the second decision's fields")
	assert.Empty(t, v.Cases)
	assert.Equal(t, "denied", v.Sources["zaken"].Status)
	assert.NotNil(t, v.Sources["zaken"].MS, "it was called")
	assert.Equal(t, audit.SourceAccess{Source: "zaken", Status: "denied", Called: true}, access[1])
	assert.Equal(t, second.Notes, v.Notes)

	t.Run("refused", func(t *testing.T) {
		req := request
		req.Sources = []string{"brp"}
		f := view.Fetch(context.Background(), sources, req, first, nil)
		assert.Equal(t, []audit.SourceAccess{
			{Source: "brp", Status: "denied", Called: true},
			{Source: "zaken", Status: "not_requested"},
		}, f.Refused(), "nothing was disclosed; what was called is recorded")
	})
}

// dossiers is a fifth source, as a new file in this package would add
// one: it wraps its own connector, and its answer adds cases and counts
// existence-only ones through the Disclosure alone.
type dossiers struct {
	records []dossier
	rule    policies.SourceRule
}

type dossier struct{ id, domain, started string }

func (d *dossiers) Name() string { return "dossiers" }

func (d *dossiers) Fetch(_ context.Context, _ view.Request, rule policies.SourceRule) (view.Answer, error) {
	d.rule = rule
	return dossierAnswer(d.records), nil
}

type dossierAnswer []dossier

func (a dossierAnswer) Disclose(d *view.Disclosure, rule policies.SourceRule) {
	for _, r := range a {
		switch {
		case slices.Contains(rule.Domains, r.domain):
			d.Case(view.Case{Source: "not me", Identificatie: r.id, Domain: r.domain, Startdatum: r.started, Omschrijving: "secret"})
		case slices.Contains(rule.ExistenceOnly, r.domain):
			d.Withhold(r.domain)
		}
	}
}

func TestAFifthSourceNeedsNoOtherEdit(t *testing.T) {
	fifth := &dossiers{records: []dossier{
		{"DOS-1", "BURZA", "2026-11-05"},
		{"DOS-2", "SOCZA", "2026-11-06"},
	}}
	z := &viewtest.Zaken{Answer: []zaken.Zaak{
		{UUID: "z1", Identificatie: "ZAAK-1", Domain: "BURZA", Vertrouwelijkheid: "openbaar", Startdatum: "2026-11-10"},
		{UUID: "z2", Identificatie: "ZAAK-2", Domain: "BURZA", Vertrouwelijkheid: "openbaar", Startdatum: "2026-11-01"},
	}}
	sources := []view.Source{view.NewZaken(z, 0), fifth}
	rule := policies.SourceRule{Domains: []string{"BURZA"}, ExistenceOnly: []string{"SOCZA"}, ExistenceNotes: map[string]string{"SOCZA": "contact Sociale Zaken"}, Fields: []string{"identificatie", "startdatum"}}
	dec := allow(map[string]policies.SourceRule{
		"zaken":    {Domains: []string{"BURZA"}, MaxVertrouwelijkheid: "openbaar", Fields: []string{"identificatie", "startdatum"}},
		"dossiers": rule,
	})
	v, access := compose(t, sources, request, dec)

	assert.Equal(t, rule, fifth.rule, "it fetches with its own rule")
	assert.Equal(t, []view.Case{
		{Source: "zaken", Identificatie: "ZAAK-1", Startdatum: "2026-11-10"},
		{Source: "dossiers", Identificatie: "DOS-1", Startdatum: "2026-11-05"},
		{Source: "zaken", Identificatie: "ZAAK-2", Startdatum: "2026-11-01"},
	}, v.Cases, "its cases are projected, named after it and ordered with the others")
	assert.Equal(t, []view.Withheld{{Source: "dossiers", Domain: "SOCZA", Count: 1, Note: "contact Sociale Zaken", Code: "existence_only"}}, v.Withheld)
	assert.Equal(t, "ok", v.Sources["dossiers"].Status)
	assert.Equal(t, audit.SourceAccess{Source: "dossiers", Status: "ok", Called: true, Fields: []string{"identificatie", "startdatum"}, Records: 1, Withheld: 1}, access["dossiers"])

	v, _ = compose(t, sources, request, allow(map[string]policies.SourceRule{"zaken": dec.Sources["zaken"]}))
	assert.Equal(t, "denied", v.Sources["dossiers"].Status, "a policy that does not know it denies it")
}

func TestAnEmptyViewHasEmptyListsAndNoPerson(t *testing.T) {
	v, _ := compose(t, []view.Source{view.NewBRP(&viewtest.BRP{})}, request, allow(map[string]policies.SourceRule{"brp": {Fields: []string{"naam"}}}))
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	assert.JSONEq(t, `{"bsn":"999993653","purpose":"test","person":null,"cases":[],"crm":{"cases":[],"callbacks":[]},"contacts":[],
		"signals":{"openCallbacks":0,"repeatContacts":0,"overdueCallbacks":0},"sources":{"brp":{"status":"ok","ms":`+fmt.Sprint(*v.Sources["brp"].MS)+`}},"auditSeq":0}`, string(raw))
}
