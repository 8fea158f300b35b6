package gateway_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/view"
)

// heldBRP holds every Person call until released, and says when one came.
type heldBRP struct {
	view.BRPClient
	entered chan struct{}
	release chan struct{}
}

func (b *heldBRP) Person(ctx context.Context, bsn string, fields []string) (*brp.Person, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.BRPClient.Person(ctx, bsn, fields)
}

// Past MaxViewsInFlight a view is refused at once, recorded, before any
// source is asked; once a view is done its place is free again.
func TestAViewPastTheViewsInFlightIsShed(t *testing.T) {
	held := &heldBRP{entered: make(chan struct{}, 4), release: make(chan struct{})}
	h := newHarness(t, withConfig(func(c *gateway.Config) {
		c.MaxViewsInFlight = 2
		c.Sources[0] = view.NewBRP(held)
	}))
	held.BRPClient = h.brp
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
	assert.Empty(t, held.entered, "the BRP was not asked for the refused view")
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
