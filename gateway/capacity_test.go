package gateway_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/policies"
)

// heldPolicy holds every view's first decision until released, and says
// when one came: the view holds its place in flight meanwhile.
type heldPolicy struct {
	gateway.Decider
	entered chan struct{}
	release chan struct{}
}

func (p *heldPolicy) Decide(ctx context.Context, in policies.Input) (policies.Decision, error) {
	if in.Subject == nil {
		p.entered <- struct{}{}
		<-p.release
	}
	return p.Decider.Decide(ctx, in)
}

// Past MaxViewsInFlight a view is refused at once, recorded, before it is
// decided or any source is asked; once a view is done its place is free
// again.
func TestAViewPastTheViewsInFlightIsShed(t *testing.T) {
	engine, err := policies.NewEngine(context.Background(), policies.Embedded())
	require.NoError(t, err)
	held := &heldPolicy{Decider: engine, entered: make(chan struct{}, 4), release: make(chan struct{})}
	h := newHarness(t, withPolicy(held), withConfig(func(c *gateway.Config) { c.MaxViewsInFlight = 2 }))
	token := h.signer.token(t, employee("burgerzaken"))
	body := `{"bsn":"999993653","purpose":"reisdocumenten",` + zaakContext + `}`

	var wg sync.WaitGroup
	first := make([]answer, 2)
	for i := range first {
		wg.Go(func() { first[i] = h.view(token, body) })
		<-held.entered
	}
	a := h.view(token, body)
	require.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
	assert.Equal(t, "1", a.header.Get("Retry-After"))
	assert.Contains(t, a.json["detail"], "as many resident views as it may at once")
	assert.Empty(t, held.entered, "the refused view was not decided")
	assert.Zero(t, h.sourceCalls(), "no source was asked: the two views in flight wait for their decision")
	ev := h.lastEvent()
	assert.Equal(t, http.StatusServiceUnavailable, ev.Status)
	assert.Equal(t, audit.DecisionError, ev.Decision)
	assert.Equal(t, "reisdocumenten", ev.Purpose)
	assert.NotEmpty(t, ev.Subject, "recorded against the resident it was about")

	close(held.release)
	wg.Wait()
	for _, a := range first {
		assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
	}
	before := h.sourceCalls()
	a = h.view(token, body)
	assert.Equal(t, http.StatusOK, a.status, "the places are free again: %s", a.body)
	<-held.entered
	perView := h.sourceCalls() - before
	assert.Equal(t, 3*perView, h.sourceCalls(), "three views asked the sources, the refused one none")
	assert.Len(t, h.store.Events(), 4, "every view recorded, the refused one too")
}

func TestMaxViewsInFlightIsChecked(t *testing.T) {
	_, err := newGateway(t, func(c *gateway.Config) { c.MaxViewsInFlight = -1 })
	assert.ErrorContains(t, err, "MaxViewsInFlight")
}
