package upstream_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// observed is an upstream.Observer that keeps what it is told.
type observed struct {
	mu       sync.Mutex
	calls    []string
	statuses []int
	circuits []bool
}

func (o *observed) Call(source, outcome string, status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d <= 0 {
		outcome += " (no duration)"
	}
	o.calls = append(o.calls, source+" "+outcome)
	o.statuses = append(o.statuses, status)
}

func (o *observed) Circuit(source string, open bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.circuits = append(o.circuits, open)
}

func TestObserver_IsToldOfEveryCallAndTheBreakerOpening(t *testing.T) {
	t.Parallel()
	status := 200
	rt := &countingTransport{respond: func(r *http.Request) (*http.Response, error) { return answer(r, status, `{}`), nil }}
	obs := &observed{}
	cfg := fast("https://zaken.example")
	cfg.Transport, cfg.BreakerFailures, cfg.Retries, cfg.Observer = rt, 2, -1, obs
	c := newClient(t, cfg)

	_, err := c.Do(context.Background(), get("https://zaken.example/x?bsn="+bsn))
	require.NoError(t, err)
	status = 404
	_, err = c.Do(context.Background(), get("https://zaken.example/x"))
	require.ErrorIs(t, err, upstream.ErrRejected)
	status = 503
	openCircuit(t, c, "https://zaken.example/x", 2)

	assert.Equal(t, []string{"zaken ok", "zaken rejected", "zaken unavailable", "zaken unavailable", "zaken circuit_open"}, obs.calls)
	assert.Equal(t, []int{200, 404, 503, 503, 0}, obs.statuses)
	assert.Equal(t, []bool{true}, obs.circuits, "told once: the breaker opened")
}

func TestOutcome_WordsMatchTheClassification(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		upstream.ErrTimeout, upstream.ErrCircuitOpen, upstream.ErrBadResponse, upstream.ErrForeignLink,
		upstream.ErrRejected, upstream.ErrUnavailable, context.Canceled, context.DeadlineExceeded,
		&upstream.StatusError{Status: 502}, &upstream.StatusError{Status: 403},
	} {
		assert.Equal(t, upstream.Reason(err), upstream.Outcome(err), "%v", err)
	}
	assert.Equal(t, "ok", upstream.Outcome(nil))
}
