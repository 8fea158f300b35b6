package zaken

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/fixtures"
	fakezaken "github.com/klantbeeld/klantbeeld/fixtures/zaken"
)

// TestClientRefetchesCatalogiAfterTheTTL drives the client's cache clock.
func TestClientRefetchesCatalogiAfterTheTTL(t *testing.T) {
	var zaaktypen atomic.Int64
	fake := fakezaken.New(fakezaken.Options{ClientID: "klantbeeld", Secret: "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"})
	srv, err := fixtures.Start("zaken", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/zaaktypen/") {
			zaaktypen.Add(1)
		}
		fake.ServeHTTP(w, r)
	}), "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)

	c, err := New(Config{
		ZakenURL: srv.URL() + fakezaken.ZakenPath, CatalogiURL: srv.URL() + fakezaken.CatalogiPath,
		ClientID: "klantbeeld", Secret: "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t",
		HTTP:     upstream.Config{Transport: tr},
		CacheTTL: 5 * time.Minute,
	})
	require.NoError(t, err)
	// Domain runs in this goroutine only, so the clock needs no lock.
	start, elapsed := time.Now(), time.Duration(0)
	c.now = func() time.Time { return start.Add(elapsed) }

	for _, step := range []struct {
		advance time.Duration
		want    int64
	}{{0, 1}, {4 * time.Minute, 1}, {2 * time.Minute, 2}} {
		elapsed += step.advance
		d, err := c.Domain(t.Context(), fixtures.ZaakUUID(101), User{ID: "u"})
		require.NoError(t, err)
		assert.Equal(t, fixtures.BURZA, d)
		assert.Equal(t, step.want, zaaktypen.Load(), "after %s", step.advance)
	}
}
