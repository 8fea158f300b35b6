package view_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/fixtures"
	brpfake "github.com/klantbeeld/klantbeeld/fixtures/brp"
	kifake "github.com/klantbeeld/klantbeeld/fixtures/klantinteracties"
	sffake "github.com/klantbeeld/klantbeeld/fixtures/salesforce"
	zakenfake "github.com/klantbeeld/klantbeeld/fixtures/zaken"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
)

// tracer sits in front of one fake source: it records when each data
// request (not a sign-in) started and ended, can make each one take a fixed
// time, as a source across a network does, and can hold requests at a gate
// shared with the other sources' tracers.
type tracer struct {
	next  http.Handler
	delay time.Duration
	// label names a request at the gate: its source and what it asks.
	label func(r *http.Request) string
	gate  *gate

	mu    sync.Mutex
	spans []span
}

type span struct {
	method, path string
	start, end   time.Time
}

func (t *tracer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/services/oauth2/token" {
		t.next.ServeHTTP(w, r) // once per process, not per view
		return
	}
	start := time.Now()
	if t.gate != nil && !t.gate.pass(t.label(r)) {
		http.Error(w, "the requests that must be in flight together did not come together", http.StatusConflict)
		return
	}
	if t.delay > 0 {
		timer := time.NewTimer(t.delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
		}
	}
	// The answer is held until its span is recorded: a client that has it
	// may end its view and take the spans at once.
	rec := httptest.NewRecorder()
	t.next.ServeHTTP(rec, r)
	t.mu.Lock()
	t.spans = append(t.spans, span{method: r.Method, path: r.URL.Path, start: start, end: time.Now()})
	t.mu.Unlock()
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// take returns the spans recorded since the last take.
func (t *tracer) take() []span {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.spans
	t.spans = nil
	return out
}

// gate holds a request until a request of each label it awaits has come,
// so that those are in flight at the same time; a request that waits
// longer than gateTimeout is refused (409). A label it does not know
// passes at once.
type gate struct {
	mu      sync.Mutex
	awaits  map[string][]string
	arrived map[string]chan struct{}
}

// gateTimeout is well within the connectors' 5 s, so that a request that
// waits in vain fails as the gate's refusal.
const gateTimeout = 3 * time.Second

// arm starts a new view: label awaits the labels awaits[label].
func (g *gate) arm(awaits map[string][]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.awaits, g.arrived = awaits, map[string]chan struct{}{}
}

func (g *gate) channel(label string) chan struct{} {
	if g.arrived[label] == nil {
		g.arrived[label] = make(chan struct{})
	}
	return g.arrived[label]
}

// pass tells that label came, then waits for what it awaits; false when
// that did not come within gateTimeout.
func (g *gate) pass(label string) bool {
	g.mu.Lock()
	if ch := g.channel(label); !isClosed(ch) {
		close(ch)
	}
	var wait []chan struct{}
	for _, l := range g.awaits[label] {
		wait = append(wait, g.channel(l))
	}
	g.mu.Unlock()
	timeout := time.After(gateTimeout)
	for _, ch := range wait {
		select {
		case <-ch:
		case <-timeout:
			return false
		}
	}
	return true
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// roundTrips is the longest chain of spans in which each started after the
// one before had ended: how many times a view waited for the source in a
// row. Parallel requests count once.
func roundTrips(spans []span) int {
	spans = slices.Clone(spans)
	slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	depth := make([]int, len(spans))
	longest := 0
	for i, s := range spans {
		depth[i] = 1
		for j := range i {
			if !spans[j].end.After(s.start) {
				depth[i] = max(depth[i], depth[j]+1)
			}
		}
		longest = max(longest, depth[i])
	}
	return longest
}

// harness is the four fake sources behind tracers and the view's sources
// over the real connectors, wired as cmd does.
type harness struct {
	sources []view.Source
	tracers map[string]*tracer // by source name
	gate    *gate              // nil: requests are not held
	engine  *policies.Engine
}

// Labels of the requests at the gate.
const (
	labelBRP          = "brp"
	labelSalesforce   = "salesforce"
	labelPartijen     = "klantinteracties partijen"
	labelContacten    = "klantinteracties klantcontacten"
	labelZaken        = "zaken listing"
	labelZaakPrefix   = "zaken zaak " // + the zaak's UUID
	labelZakenOther   = "zaken other"
	labelUnknown      = "other"
	zaakLookupsAtOnce = 4 // view.NewZaken(z, 0)
)

// label names a request to source at the gate.
func label(source string, r *http.Request) string {
	p := r.URL.Path
	switch {
	case source == view.SourceBRP:
		return labelBRP
	case source == view.SourceSalesforce:
		return labelSalesforce
	case source == view.SourceKlantinteracties && strings.HasSuffix(p, "/partijen"):
		return labelPartijen
	case source == view.SourceKlantinteracties && strings.HasSuffix(p, "/klantcontacten"):
		return labelContacten
	case source == view.SourceZaken && strings.HasSuffix(p, "/zaken"):
		return labelZaken
	case source == view.SourceZaken && strings.HasSuffix(path.Dir(p), "/zaken"):
		return labelZaakPrefix + path.Base(p)
	case source == view.SourceZaken:
		return labelZakenOther
	}
	return labelUnknown
}

// newHarness starts the fakes with delay per request. gated puts a gate
// before them (see harness.view).
func newHarness(t testing.TB, delay time.Duration, gated bool) *harness {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	const (
		brpKey   = "brp-key"
		zakenID  = "klantbeeld"
		zakenSec = "zaken-secret-of-enough-length-for-hs256"
		kiToken  = "ki-token"
		sfKey    = "3MVG9klantbeeld"
		sfUser   = "integratie@klantbeeld.gemeente.example"
	)
	brpHandler, err := brpfake.New(brpfake.Options{APIKey: brpKey})
	require.NoError(t, err)
	fakes := map[string]http.Handler{
		view.SourceBRP:              brpHandler,
		view.SourceZaken:            zakenfake.New(zakenfake.Options{ClientID: zakenID, Secret: zakenSec}),
		view.SourceSalesforce:       sffake.New(sffake.Options{ConsumerKey: sfKey, Username: sfUser, PublicKey: &key.PublicKey}),
		view.SourceKlantinteracties: kifake.New(kifake.Options{Token: kiToken}),
	}
	h := &harness{tracers: map[string]*tracer{}}
	if gated {
		h.gate = &gate{}
	}
	urls := map[string]string{}
	for name, f := range fakes {
		tr := &tracer{next: f, delay: delay, gate: h.gate, label: func(r *http.Request) string { return label(name, r) }}
		srv := httptest.NewServer(tr)
		t.Cleanup(srv.Close)
		h.tracers[name], urls[name] = tr, srv.URL
	}
	cfg := upstream.Config{Timeout: 5 * time.Second}
	b, err := brp.New(brp.Config{URL: urls[view.SourceBRP] + brpfake.BasePath, APIKey: brpKey, HTTP: cfg})
	require.NoError(t, err)
	z, err := zaken.New(zaken.Config{ZakenURL: urls[view.SourceZaken] + zakenfake.ZakenPath, CatalogiURL: urls[view.SourceZaken] + zakenfake.CatalogiPath,
		ClientID: zakenID, Secret: zakenSec, HTTP: cfg})
	require.NoError(t, err)
	sf, err := salesforce.New(salesforce.Config{URL: urls[view.SourceSalesforce], LoginURL: urls[view.SourceSalesforce],
		ConsumerKey: sfKey, Username: sfUser, PrivateKey: key, HTTP: cfg})
	require.NoError(t, err)
	ki, err := klantinteracties.New(klantinteracties.Config{URL: urls[view.SourceKlantinteracties] + kifake.BasePath, Token: kiToken, HTTP: cfg})
	require.NoError(t, err)
	h.sources = []view.Source{view.NewBRP(b), view.NewZaken(z, 0), view.NewSalesforce(sf), view.NewKlantinteracties(ki)}
	h.engine, err = policies.NewEngine(context.Background(), policies.Embedded())
	require.NoError(t, err)
	return h
}

// view runs one view as the gateway does: decide, fetch, decide again
// on the subject facts, compose. arm, when not nil, sets the gate for the
// fetch under the first decision. It returns the first decision, which the
// sources are asked under (the second one only narrows what is disclosed).
func (h *harness) view(t testing.TB, c goldenCase, arm func(first policies.Decision) map[string][]string) policies.Decision {
	t.Helper()
	in := policies.Input{Actor: c.Actor, Action: c.Action, Purpose: c.Request.Purpose, Sources: c.Request.Sources, Context: c.Context}
	dec, err := h.engine.Decide(context.Background(), in)
	require.NoError(t, err)
	require.True(t, dec.Allow, "%v", dec.Reasons)
	first := dec
	if h.gate != nil {
		var awaits map[string][]string
		if arm != nil {
			awaits = arm(first)
		}
		h.gate.arm(awaits)
	}
	f := view.Fetch(context.Background(), h.sources, c.Request, dec, nil)
	if s := f.Subject(); s != nil {
		in.Subject = s
		if dec, err = h.engine.Decide(context.Background(), in); err != nil {
			require.NoError(t, err)
		}
	}
	if dec.Allow {
		v, _ := f.Compose(dec, time.Now())
		for name, s := range v.Sources {
			require.NotEqual(t, view.StatusUnavailable, s.Status, "%s: %s", name, s.Error)
		}
	}
	return first
}

// takeAll returns what every tracer recorded since the last take.
func (h *harness) takeAll() map[string][]span {
	out := map[string][]span{}
	for name, tr := range h.tracers {
		out[name] = tr.take()
	}
	return out
}

// goldenCases are the requests of the golden cases: every purpose, with
// the personas that exercise them.
func goldenCases(t testing.TB) map[string]goldenCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*", "case.json"))
	require.NoError(t, err)
	out := map[string]goldenCase{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var c goldenCase
		require.NoError(t, dec.Decode(&c), "%s", file)
		out[filepath.Base(filepath.Dir(file))] = c
	}
	return out
}

func count(spans []span, match func(span) bool) int {
	n := 0
	for _, s := range spans {
		if match(s) {
			n++
		}
	}
	return n
}

// expectedDomainLookups are the zaken the resident's contacts link (those
// klantinteracties gives under the rule) that are not among the zaken the
// Zaken source lists under its rule: only these cost a Zaken call.
func expectedDomainLookups(t testing.TB, bsn string, dec policies.Decision, asked func(string) bool) []string {
	t.Helper()
	ki, kiOK := dec.Sources[view.SourceKlantinteracties]
	zr, zOK := dec.Sources[view.SourceZaken]
	if !kiOK || !zOK || !asked(view.SourceKlantinteracties) || !asked(view.SourceZaken) {
		return nil
	}
	r, ok := fixtures.ResidentByBSN(bsn)
	if !ok {
		return nil // only in the BRP's test persons
	}
	maxLevel := zr.MaxVertrouwelijkheid
	if maxLevel == "" {
		maxLevel = "openbaar"
	}
	listed := map[string]bool{}
	for _, z := range r.Zaken {
		if zaken.Level(z.Vertrouwelijkheid) <= zaken.Level(maxLevel) {
			listed[z.UUID] = true
		}
	}
	var out []string
	for _, c := range r.Contacts {
		if c.Zaak == "" || c.Vertrouwelijk && !ki.Vertrouwelijk || listed[c.Zaak] || slices.Contains(out, c.Zaak) {
			continue
		}
		out = append(out, c.Zaak)
	}
	return out
}

// askedBy reports whether the view of c asks src under dec.
func askedBy(dec policies.Decision, c goldenCase) func(src string) bool {
	return func(src string) bool {
		_, permitted := dec.Sources[src]
		return permitted && (len(c.Request.Sources) == 0 || slices.Contains(c.Request.Sources, src))
	}
}

// others are the labels but l.
func others(labels []string, l string) []string {
	return slices.DeleteFunc(slices.Clone(labels), func(o string) bool { return o == l })
}

// TestOneRoundTripPerSource runs the view of every golden case against the
// fake sources through the real connectors, with the Zaken connector's
// catalogue cache warm, and counts what each source is asked: Salesforce
// one composite request, Klantinteracties the partij and the contacts, the
// BRP one request, the Zaken API one listing (the statussen expanded) and a
// zaak of its own only for a contact about a zaak the view's zaken do not
// hold.
//
// A gate before the fakes holds every source's first requests until those
// of all the asked sources have come, and the BRP's and Salesforce's until
// the zaak look-ups have come too: a source that asks one thing after
// another, or a look-up that waits for the slower sources, is refused and
// fails the view. So the view waits for the sources once in a row, twice
// when it looks a zaak up.
func TestOneRoundTripPerSource(t *testing.T) {
	h := newHarness(t, 0, true)
	cases := goldenCases(t)
	require.NotEmpty(t, cases)
	// The first view signs in to Salesforce and fills the Zaken
	// connector's catalogue cache (also with the zaaktypen of the zaken
	// looked up); later views are what a gateway in use does.
	for _, c := range cases {
		h.view(t, c, nil)
		h.takeAll()
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h.takeAll()       // what a view that failed before left
			var want []string // the zaken looked up
			dec := h.view(t, c, func(first policies.Decision) map[string][]string {
				asked := askedBy(first, c)
				var firstTrip, lookups []string
				for src, labels := range map[string][]string{
					view.SourceBRP: {labelBRP}, view.SourceSalesforce: {labelSalesforce},
					view.SourceKlantinteracties: {labelPartijen, labelContacten}, view.SourceZaken: {labelZaken},
				} {
					if asked(src) {
						firstTrip = append(firstTrip, labels...)
					}
				}
				want = expectedDomainLookups(t, c.Request.BSN, first, asked)
				require.LessOrEqual(t, len(want), zaakLookupsAtOnce, "the gate holds the look-ups together: no more than go at once")
				for _, id := range want {
					lookups = append(lookups, labelZaakPrefix+id)
				}
				awaits := map[string][]string{}
				for _, l := range firstTrip {
					awaits[l] = others(firstTrip, l)
				}
				for _, l := range lookups {
					awaits[l] = others(lookups, l)
				}
				for _, slower := range []string{labelBRP, labelSalesforce} {
					if slices.Contains(firstTrip, slower) {
						awaits[slower] = append(awaits[slower], lookups...)
					}
				}
				return awaits
			})
			got := h.takeAll()
			asked := askedBy(dec, c)
			if asked(view.SourceSalesforce) {
				assert.Len(t, got[view.SourceSalesforce], 1, "Salesforce: one request")
				assert.Equal(t, 1, count(got[view.SourceSalesforce], func(s span) bool {
					return s.method == http.MethodPost && strings.HasSuffix(s.path, "/composite")
				}), "the composite resource")
			}
			if asked(view.SourceKlantinteracties) {
				assert.Equal(t, 1, count(got[view.SourceKlantinteracties], func(s span) bool { return strings.HasSuffix(s.path, "/partijen") }))
				assert.Equal(t, 1, count(got[view.SourceKlantinteracties], func(s span) bool { return strings.HasSuffix(s.path, "/klantcontacten") }))
				assert.Len(t, got[view.SourceKlantinteracties], 2, "nothing else")
			}
			if asked(view.SourceBRP) {
				assert.Len(t, got[view.SourceBRP], 1)
			}
			if asked(view.SourceZaken) {
				assert.Equal(t, 1, count(got[view.SourceZaken], func(s span) bool {
					return s.method == http.MethodGet && strings.HasSuffix(s.path, "/zaken")
				}), "Zaken: one listing, the statussen expanded in it")
				assert.Len(t, got[view.SourceZaken], 1+len(want), "nothing but the listing and the look-ups: no status, no catalogue")
			}
			var lookups []string
			for _, s := range got[view.SourceZaken] {
				if dir, id := filepath.Split(s.path); strings.HasSuffix(dir, "/zaken/") && s.method == http.MethodGet {
					lookups = append(lookups, id)
				}
			}
			assert.ElementsMatch(t, want, lookups, "a zaak of its own only for a contact's zaak the view does not hold")
			var all []span
			for name, spans := range got {
				if !asked(name) {
					assert.Empty(t, spans, "%s is not asked", name)
				}
				all = append(all, spans...)
			}
			trips := 1
			if len(want) > 0 {
				trips = 2
			}
			assert.Equal(t, trips, roundTrips(all), "round trips the view waits for in a row")
		})
	}
}

// BenchmarkResidentView runs the golden cases' views against fake sources
// that take a fixed 20 ms per request, and reports per source the round
// trips a view waits for in a row (requests in parallel count once), and
// for the view as a whole; ns/op is then about 20 ms times the view's.
func BenchmarkResidentView(b *testing.B) {
	const delay = 20 * time.Millisecond
	h := newHarness(b, delay, false)
	cases := goldenCases(b)
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, c := range cases {
		h.view(b, c, nil)
		h.takeAll()
	}
	for _, name := range names {
		c := cases[name]
		b.Run(name, func(b *testing.B) {
			trips := map[string]int{}
			requests := map[string]int{}
			whole := 0
			for b.Loop() {
				h.view(b, c, nil)
				var all []span
				for src, spans := range h.takeAll() {
					trips[src] += roundTrips(spans)
					requests[src] += len(spans)
					all = append(all, spans...)
				}
				whole += roundTrips(all)
			}
			for src, n := range trips {
				b.ReportMetric(float64(n)/float64(b.N), src+"-trips/op")
				b.ReportMetric(float64(requests[src])/float64(b.N), src+"-requests/op")
			}
			b.ReportMetric(float64(whole)/float64(b.N), "view-trips/op")
		})
	}
}
