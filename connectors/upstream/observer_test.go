package upstream_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
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

func TestDo_BodiesAreTheirOwnWithOrWithoutContentLength(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 10000)
	s := startSource(t, func(w http.ResponseWriter, r *http.Request) {
		body := r.URL.Query().Get("say") + big
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		_, _ = io.WriteString(w, body)
	})
	c := newClient(t, fast(s.base))
	var kept [][]byte
	for _, q := range []string{"?say=a", "?say=b&chunked=1", "?say=c&chunked=1", "?say=d"} {
		resp, err := c.Do(context.Background(), get(s.base+"/x"+q))
		require.NoError(t, err)
		kept = append(kept, resp.Body)
	}
	for i, want := range []string{"a", "b", "c", "d"} {
		assert.Equal(t, want+big, string(kept[i]), "answer %d kept intact after later ones", i)
	}
}

func TestDo_AnswerShorterThanItsContentLengthIsUnavailable(t *testing.T) {
	t.Parallel()
	s := startSource(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, `{"half":`)
		panic(http.ErrAbortHandler)
	})
	c := newClient(t, fast(s.base))
	_, err := c.Do(context.Background(), upstream.Request{Method: http.MethodGet, URL: s.base + "/x"})
	require.ErrorIs(t, err, upstream.ErrUnavailable)
}
