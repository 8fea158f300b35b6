package view_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
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
// request (not a sign-in) started and ended, and can make each one take a
// fixed time, as a source across a network does.
type tracer struct {
	next  http.Handler
	delay time.Duration
	// together are paths whose requests must be open at the same time: a
	// request to one is held until one to each other has come, and fails
	// (409) when that takes longer than a client that waits for the first
	// answer would allow. take starts a new round.
	together []string

	mu      sync.Mutex
	spans   []span
	arrived map[string]chan struct{}
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
	if !t.meet(r.URL.Path) {
		http.Error(w, "the requests that belong together did not come together", http.StatusConflict)
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
	t.next.ServeHTTP(w, r)
	t.mu.Lock()
	t.spans = append(t.spans, span{method: r.Method, path: r.URL.Path, start: start, end: time.Now()})
	t.mu.Unlock()
}

// meet holds a request to one of together until one to each of the others
// has come; false when they did not come within 5 s.
func (t *tracer) meet(p string) bool {
	if !slices.ContainsFunc(t.together, func(q string) bool { return strings.HasSuffix(p, q) }) {
		return true
	}
	t.mu.Lock()
	if t.arrived == nil {
		t.arrived = map[string]chan struct{}{}
	}
	channel := func(q string) chan struct{} {
		if t.arrived[q] == nil {
			t.arrived[q] = make(chan struct{})
		}
		return t.arrived[q]
	}
	var wait []chan struct{}
	for _, q := range t.together {
		ch := channel(q)
		if strings.HasSuffix(p, q) {
			select {
			case <-ch:
			default:
				close(ch)
			}
			continue
		}
		wait = append(wait, ch)
	}
	t.mu.Unlock()
	timeout := time.After(5 * time.Second)
	for _, ch := range wait {
		select {
		case <-ch:
		case <-timeout:
			return false
		}
	}
	return true
}

// take returns the spans recorded since the last take.
func (t *tracer) take() []span {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.spans
	t.spans = nil
	t.arrived = nil
	return out
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
	engine  *policies.Engine
}

// newHarness starts the fakes with delay per request. together makes the
// Klantinteracties fake hold its partij and contacts requests until both
// have come, so that a connector that asks one after the other fails.
func newHarness(t testing.TB, delay time.Duration, together bool) *harness {
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
	urls := map[string]string{}
	for name, f := range fakes {
		tr := &tracer{next: f, delay: delay}
		if together && name == view.SourceKlantinteracties {
			tr.together = []string{"/partijen", "/klantcontacten"}
		}
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
// on the subject facts, compose. It returns the ruling decision.
func (h *harness) view(t testing.TB, c goldenCase) policies.Decision {
	t.Helper()
	in := policies.Input{Actor: c.Actor, Action: c.Action, Purpose: c.Request.Purpose, Sources: c.Request.Sources}
	dec, err := h.engine.Decide(context.Background(), in)
	require.NoError(t, err)
	require.True(t, dec.Allow, "%v", dec.Reasons)
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
	return dec
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

// TestOneRoundTripPerSource runs the view of every golden case against the
// fake sources through the real connectors and counts what each source
// is asked: Salesforce one composite request, Klantinteracties the partij
// and the contacts side by side (the fake holds each until the other has
// come), the BRP one request, and the Zaken API a zaak of its own only for a contact
// about a zaak the view's zaken do not hold.
func TestOneRoundTripPerSource(t *testing.T) {
	h := newHarness(t, 0, true)
	cases := goldenCases(t)
	require.NotEmpty(t, cases)
	// The first view signs in to Salesforce and fills the Zaken
	// connector's catalogue cache; later views are what a gateway in use
	// does.
	for _, c := range cases {
		h.view(t, c)
		h.takeAll()
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dec := h.view(t, c)
			got := h.takeAll()
			asked := func(src string) bool {
				_, permitted := dec.Sources[src]
				return permitted && (len(c.Request.Sources) == 0 || slices.Contains(c.Request.Sources, src))
			}
			// Asked under the first decision; the second one only narrows.
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
			want := expectedDomainLookups(t, c.Request.BSN, dec, asked)
			var lookups []string
			for _, s := range got[view.SourceZaken] {
				if dir, id := filepath.Split(s.path); strings.HasSuffix(dir, "/zaken/") && s.method == http.MethodGet {
					lookups = append(lookups, id)
				}
			}
			assert.ElementsMatch(t, want, lookups, "a zaak of its own only for a contact's zaak the view does not hold")
			for name := range h.tracers {
				if !asked(name) {
					assert.Empty(t, got[name], "%s is not asked", name)
				}
			}
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
		h.view(b, c)
		h.takeAll()
	}
	for _, name := range names {
		c := cases[name]
		b.Run(name, func(b *testing.B) {
			trips := map[string]int{}
			requests := map[string]int{}
			whole := 0
			for b.Loop() {
				h.view(b, c)
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
