package view_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
	"github.com/klantbeeld/klantbeeld/view/viewtest"
)

// waiting is a source that answers once until is closed, and fails when
// that does not happen within 5 s: a source slower than what it waits for.
type waiting struct {
	name  string
	until <-chan struct{}
}

type emptyAnswer struct{}

func (emptyAnswer) Disclose(*view.Disclosure, policies.SourceRule) {}

func (w waiting) Name() string { return w.name }

func (w waiting) Fetch(ctx context.Context, _ view.Request, _ policies.SourceRule) (view.Answer, error) {
	select {
	case <-w.until:
		return emptyAnswer{}, nil
	case <-time.After(5 * time.Second):
		return nil, errors.New("what it waited for did not come while it was on its way")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// signalling closes lookedUp at its first Domain call.
type signalling struct {
	fake     *viewtest.Zaken
	once     sync.Once
	lookedUp chan struct{}
}

func (s *signalling) Zaken(ctx context.Context, q zaken.Query) ([]zaken.Zaak, error) {
	return s.fake.Zaken(ctx, q)
}

func (s *signalling) Domain(ctx context.Context, id string, u zaken.User) (string, error) {
	s.once.Do(func() { close(s.lookedUp) })
	return s.fake.Domain(ctx, id, u)
}

// TestZaakLookUpsDoNotWaitForSlowerSources: the zaak of a contact that the
// view's zaken do not hold is looked up once Zaken and Klantinteracties
// have answered, while a slower source is still on its way (it answers only
// after the look-up has started), and the contact is placed as before.
func TestZaakLookUpsDoNotWaitForSlowerSources(t *testing.T) {
	z := &signalling{fake: &viewtest.Zaken{
		Answer:  []zaken.Zaak{{UUID: "z1", Domain: "BURZA", Vertrouwelijkheid: "openbaar"}},
		Domains: map[string]string{"z-elsewhere": "BURZA"},
	}, lookedUp: make(chan struct{})}
	ki := &viewtest.Klantinteracties{Answer: []klantinteracties.Contact{
		{UUID: "k1", Onderwerp: "in view", At: daysAgo(1), Zaken: []string{"z1"}},
		{UUID: "k2", Onderwerp: "elsewhere", At: daysAgo(2), Zaken: []string{"z-elsewhere"}},
	}}
	sources := []view.Source{
		waiting{name: "brp", until: z.lookedUp},
		view.NewZaken(z, 0),
		waiting{name: "salesforce", until: z.lookedUp},
		view.NewKlantinteracties(ki),
	}
	dec := allow(map[string]policies.SourceRule{
		"brp": {}, "salesforce": {},
		"zaken":            {Domains: []string{"BURZA"}, MaxVertrouwelijkheid: "openbaar"},
		"klantinteracties": {Domains: []string{"BURZA"}, Fields: []string{"subject", "domain"}},
	})
	v, _ := compose(t, sources, request, dec)
	for _, name := range []string{"brp", "salesforce", "zaken", "klantinteracties"} {
		assert.Equal(t, view.StatusOK, v.Sources[name].Status, "%s: %s", name, v.Sources[name].Error)
	}
	require.Len(t, v.Contacts, 2)
	assert.Equal(t, "BURZA", v.Contacts[1].Domain)
	assert.Equal(t, []string{"z-elsewhere"}, z.fake.LookedUp())
}

// resolving is an answer that resolves with whatever others it is given.
type resolving struct {
	mu     sync.Mutex
	others []view.Answer
}

func (r *resolving) Disclose(*view.Disclosure, policies.SourceRule) {}

func (r *resolving) Resolve(_ context.Context, others []view.Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.others = others
}

type resolvingSource struct{ answer *resolving }

func (resolvingSource) Name() string { return "resolving" }

func (s resolvingSource) Fetch(context.Context, view.Request, policies.SourceRule) (view.Answer, error) {
	return s.answer, nil
}

type slow struct {
	name   string
	answer view.Answer
}

func (s slow) Name() string { return s.name }

func (s slow) Fetch(context.Context, view.Request, policies.SourceRule) (view.Answer, error) {
	time.Sleep(20 * time.Millisecond)
	return s.answer, nil
}

// TestAResolverThatIsNotDependentWaitsForEverySource: a Resolver whose
// source does not say what it depends on gets the answers of every other
// source that answered, in the order the sources were given.
func TestAResolverThatIsNotDependentWaitsForEverySource(t *testing.T) {
	r := &resolving{}
	a, b := &emptyAnswer{}, &resolving{}
	sources := []view.Source{slow{"a", a}, resolvingSource{r}, slow{"b", b}, view.Unconfigured("c")}
	dec := allow(map[string]policies.SourceRule{"a": {}, "resolving": {}, "b": {}, "c": {}})
	view.Fetch(context.Background(), sources, request, dec, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Equal(t, []view.Answer{a, b}, r.others)
}
