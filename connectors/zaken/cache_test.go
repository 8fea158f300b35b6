package zaken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/fixtures"
	fakezaken "github.com/klantbeeld/klantbeeld/fixtures/zaken"
)

// clock is a settable time for cache tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func counter(n *atomic.Int64, val string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		n.Add(1)
		return val, nil
	}
}

func TestCacheKeepsAValueForItsTTL(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC)}
	c := newCache[string](time.Minute, clk.now)
	var loads atomic.Int64

	v, err := c.get(t.Context(), "k", counter(&loads, "one"))
	require.NoError(t, err)
	assert.Equal(t, "one", v)

	clk.add(59 * time.Second)
	v, _ = c.get(t.Context(), "k", counter(&loads, "two"))
	assert.Equal(t, "one", v, "within the TTL")
	assert.EqualValues(t, 1, loads.Load())

	clk.add(time.Second)
	v, _ = c.get(t.Context(), "k", counter(&loads, "two"))
	assert.Equal(t, "two", v, "reloaded once the TTL has passed")
	assert.EqualValues(t, 2, loads.Load())
}

func TestCacheDoesNotKeepFailures(t *testing.T) {
	c := newCache[string](time.Minute, time.Now)
	boom := errors.New("boom")
	_, err := c.get(t.Context(), "k", func(context.Context) (string, error) { return "", boom })
	require.ErrorIs(t, err, boom)
	v, err := c.get(t.Context(), "k", func(context.Context) (string, error) { return "ok", nil })
	require.NoError(t, err)
	assert.Equal(t, "ok", v)
}

func TestCacheWithoutTTLKeepsNothing(t *testing.T) {
	c := newCache[string](-1, time.Now)
	var loads atomic.Int64
	for range 3 {
		_, err := c.get(t.Context(), "k", counter(&loads, "v"))
		require.NoError(t, err)
	}
	assert.EqualValues(t, 3, loads.Load())
}

func TestCacheSharesConcurrentMisses(t *testing.T) {
	c := newCache[string](time.Minute, time.Now)
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(context.Context) (string, error) {
		loads.Add(1)
		<-release
		return "v", nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			v, err := c.get(context.Background(), "k", load)
			assert.NoError(t, err)
			assert.Equal(t, "v", v)
		})
	}
	time.Sleep(20 * time.Millisecond) // let the waiters queue up behind the first load
	close(release)
	wg.Wait()
	assert.EqualValues(t, 1, loads.Load())
}

func TestCacheWaiterGivesUpWithItsOwnContext(t *testing.T) {
	c := newCache[string](time.Minute, time.Now)
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = c.get(context.Background(), "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "v", nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	_, err := c.get(ctx, "k", func(context.Context) (string, error) { t.Error("the waiter loaded"); return "", nil })
	require.ErrorIs(t, err, upstream.ErrTimeout)
	close(release)
}

func TestCacheWaiterLoadsItselfWhenTheLoaderGaveUp(t *testing.T) {
	c := newCache[string](time.Minute, time.Now)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := c.get(context.Background(), "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "", fmt.Errorf("x: %w", context.Canceled)
		})
		done <- err
	}()
	<-started
	got := make(chan string)
	go func() {
		v, err := c.get(t.Context(), "k", func(context.Context) (string, error) { return "mine", nil })
		assert.NoError(t, err)
		got <- v
	}()
	time.Sleep(10 * time.Millisecond)
	close(release)
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, "mine", <-got)
}

func TestCacheStaysBounded(t *testing.T) {
	c := newCache[int](time.Hour, time.Now)
	for i := range maxEntries + 10 {
		_, err := c.get(t.Context(), fmt.Sprint(i), func(context.Context) (int, error) { return i, nil })
		require.NoError(t, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	assert.LessOrEqual(t, len(c.entries), maxEntries)
}

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
	clk := &clock{t: time.Now()}
	c.now = clk.now

	for _, step := range []struct {
		advance time.Duration
		want    int64
	}{{0, 1}, {4 * time.Minute, 1}, {2 * time.Minute, 2}} {
		clk.add(step.advance)
		d, err := c.Domain(t.Context(), fixtures.ZaakUUID(101), User{ID: "u"})
		require.NoError(t, err)
		assert.Equal(t, fixtures.BURZA, d)
		assert.Equal(t, step.want, zaaktypen.Load(), "after %s", step.advance)
	}
}
