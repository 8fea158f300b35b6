package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
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
	c := upstream.NewCache[string]("zaken", time.Minute, clk.now)
	var loads atomic.Int64

	v, err := c.Get(t.Context(), "k", counter(&loads, "one"))
	require.NoError(t, err)
	assert.Equal(t, "one", v)

	clk.add(59 * time.Second)
	v, _ = c.Get(t.Context(), "k", counter(&loads, "two"))
	assert.Equal(t, "one", v, "within the TTL")
	assert.EqualValues(t, 1, loads.Load())

	clk.add(time.Second)
	v, _ = c.Get(t.Context(), "k", counter(&loads, "two"))
	assert.Equal(t, "two", v, "reloaded once the TTL has passed")
	assert.EqualValues(t, 2, loads.Load())
}

func TestCacheDoesNotKeepFailures(t *testing.T) {
	c := upstream.NewCache[string]("zaken", time.Minute, time.Now)
	boom := errors.New("boom")
	_, err := c.Get(t.Context(), "k", func(context.Context) (string, error) { return "", boom })
	require.ErrorIs(t, err, boom)
	v, err := c.Get(t.Context(), "k", func(context.Context) (string, error) { return "ok", nil })
	require.NoError(t, err)
	assert.Equal(t, "ok", v)
}

func TestCacheWithoutTTLKeepsNothing(t *testing.T) {
	c := upstream.NewCache[string]("zaken", -1, time.Now)
	var loads atomic.Int64
	for range 3 {
		_, err := c.Get(t.Context(), "k", counter(&loads, "v"))
		require.NoError(t, err)
	}
	assert.EqualValues(t, 3, loads.Load())
}

func TestCacheSharesConcurrentMisses(t *testing.T) {
	c := upstream.NewCache[string]("zaken", time.Minute, time.Now)
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
			v, err := c.Get(context.Background(), "k", load)
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
	c := upstream.NewCache[string]("zaken", time.Minute, time.Now)
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = c.Get(context.Background(), "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "v", nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "k", func(context.Context) (string, error) { t.Error("the waiter loaded"); return "", nil })
	require.ErrorIs(t, err, upstream.ErrTimeout)
	close(release)
}

func TestCacheWaiterLoadsItselfWhenTheLoaderGaveUp(t *testing.T) {
	c := upstream.NewCache[string]("zaken", time.Minute, time.Now)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := c.Get(context.Background(), "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "", fmt.Errorf("x: %w", context.Canceled)
		})
		done <- err
	}()
	<-started
	got := make(chan string)
	go func() {
		v, err := c.Get(t.Context(), "k", func(context.Context) (string, error) { return "mine", nil })
		assert.NoError(t, err)
		got <- v
	}()
	time.Sleep(10 * time.Millisecond)
	close(release)
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, "mine", <-got)
}

func TestCacheStaysBounded(t *testing.T) {
	c := upstream.NewCache[int]("zaken", time.Hour, time.Now)
	for i := range upstream.MaxCacheEntries + 10 {
		_, err := c.Get(t.Context(), fmt.Sprint(i), func(context.Context) (int, error) { return i, nil })
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, c.Len(), upstream.MaxCacheEntries)
}
