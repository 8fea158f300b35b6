package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/gateway"
)

// holdingLog holds the access-log line of a request until released (or a
// timeout, so that a failing test does not hang), and passes the rest.
type holdingLog struct {
	release <-chan struct{}
}

func (holdingLog) Enabled(context.Context, slog.Level) bool { return true }
func (h holdingLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "request" {
		select {
		case <-h.release:
		case <-time.After(10 * time.Second):
		}
	}
	return nil
}
func (h holdingLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h holdingLog) WithGroup(string) slog.Handler      { return h }

// The client has the whole view as soon as it is written: its length is
// said and it is flushed, so what the gateway does after (the access log
// line, the metrics) is not in the client's wait.
func TestAViewIsCompleteOnTheWireBeforeTheAccessLogLine(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, withConfig(func(c *gateway.Config) { c.Logger = slog.New(holdingLog{release: release}) }))
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	// Cleanups run last first: the held line goes before the server waits for it.
	t.Cleanup(func() { close(release) })

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/resident-views",
		strings.NewReader(`{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+h.signer.token(t, employee("burgerzaken")))
	req.Header.Set("Content-Type", "application/json")

	type got struct {
		resp *http.Response
		body []byte
		err  error
	}
	done := make(chan got, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err != nil {
			done <- got{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- got{resp, body, err}
	}()
	select {
	case g := <-done:
		require.NoError(t, g.err)
		assert.Equal(t, http.StatusOK, g.resp.StatusCode, "%s", g.body)
		assert.Equal(t, strconv.Itoa(len(g.body)), g.resp.Header.Get("Content-Length"))
		assert.Empty(t, g.resp.TransferEncoding, "not chunked: the length is said")
		assert.Contains(t, string(g.body), `"auditSeq"`)
	case <-time.After(5 * time.Second):
		t.Fatal("the view did not reach the client while its access log line was held")
	}
}
