// Package audittest holds the conformance suite every audit.Store must pass
// (Exercise) and Memory, an in-memory store that tests can make fail.
package audittest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
)

// Exercise runs the conformance suite against stores made by open. Each
// subtest gets a new, empty store.
func Exercise(t *testing.T, open func(t *testing.T) audit.Store) {
	t.Run("AppendAssignsConsecutiveSequenceNumbers", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		seqs, err := s.Append(ctx, []audit.Event{Sample(1), Sample(2), Sample(3)})
		require.NoError(t, err)
		assert.Equal(t, []int64{1, 2, 3}, seqs)
		seqs, err = s.Append(ctx, []audit.Event{Sample(4)})
		require.NoError(t, err)
		assert.Equal(t, []int64{4}, seqs)
	})

	t.Run("GetReturnsTheEventAsAppended", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		want := Sample(7)
		seqs, err := s.Append(ctx, []audit.Event{want})
		require.NoError(t, err)
		got, err := s.Get(ctx, seqs[0])
		require.NoError(t, err)
		want.Seq = seqs[0]
		assert.True(t, want.Time.Equal(got.Time), "time %v, want %v", got.Time, want.Time)
		got.Time = want.Time
		assert.Equal(t, want, got)
	})

	t.Run("GetUnknownIsNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.Get(context.Background(), 42)
		require.ErrorIs(t, err, audit.ErrNotFound)
	})

	t.Run("ListPagesInOrder", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		var evs []audit.Event
		for i := range 5 {
			evs = append(evs, Sample(i))
		}
		_, err := s.Append(ctx, evs)
		require.NoError(t, err)
		page, err := s.List(ctx, 0, 2)
		require.NoError(t, err)
		require.Len(t, page, 2)
		assert.Equal(t, []int64{1, 2}, seqsOf(page))
		page, err = s.List(ctx, 2, 10)
		require.NoError(t, err)
		assert.Equal(t, []int64{3, 4, 5}, seqsOf(page))
		page, err = s.List(ctx, 5, 10)
		require.NoError(t, err)
		assert.Empty(t, page)
	})

	t.Run("ConcurrentAppendsGetUniqueGaplessNumbers", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		var mu sync.Mutex
		var all []int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					seqs, err := s.Append(ctx, []audit.Event{Sample(g*100 + i)})
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					all = append(all, seqs...)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		slices.Sort(all)
		require.Len(t, all, 80)
		for i, seq := range all {
			require.Equal(t, int64(i+1), seq)
		}
	})

	t.Run("PingWhenOpen", func(t *testing.T) {
		require.NoError(t, open(t).Ping(context.Background()))
	})

	t.Run("ClosedStoreIsUnavailable", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Close())
		_, err := s.Append(context.Background(), []audit.Event{Sample(1)})
		require.ErrorIs(t, err, audit.ErrUnavailable)
		require.ErrorIs(t, s.Ping(context.Background()), audit.ErrUnavailable)
	})
}

func seqsOf(evs []audit.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// Sample is a fully populated event, distinct per n.
func Sample(n int) audit.Event {
	return audit.Event{
		Time:               time.Date(2026, 11, 23, 10, 0, n%60, 123456789, time.UTC),
		TraceID:            fmt.Sprintf("%032x", n+1),
		SpanID:             fmt.Sprintf("%016x", n+1),
		ForeignOperation:   &audit.ForeignOperation{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", FSCTransactionID: "fsc-1"},
		Operation:          "POST /v1/resident-views",
		Actor:              audit.Actor{Sub: fmt.Sprintf("emp-%d", n), Department: "burgerzaken", Roles: []string{"medewerker"}},
		Purpose:            "reisdocumenten",
		ProcessingActivity: "https://register.gemeente.example/verwerkingsactiviteiten/burza-reisdocumenten",
		Subject:            fmt.Sprintf("%064x", n),
		Context:            &audit.Context{Type: "klantcontact", ID: "b0000000-0000-4000-8000-000000000101"},
		Decision:           audit.DecisionAllow,
		Reasons:            []string{`purpose "reisdocumenten" is granted to department "burgerzaken"`},
		PolicyVersion:      "sha256:abc",
		Sources: []audit.SourceAccess{
			{Source: "brp", Status: "ok", Called: true, Fields: []string{"naam"}, Records: 1},
			{Source: "zaken", Status: "ok", Called: true, Fields: []string{"identificatie"}, Records: 2, Withheld: 1},
		},
		Status: 200,
	}
}

// Memory is an in-memory audit.Store. Fail makes it refuse until healed.
type Memory struct {
	mu      sync.Mutex
	events  []audit.Event
	fail    error
	appends int
	delay   time.Duration
}

var _ audit.Store = (*Memory)(nil)

// Fail makes every following call return err (wrapped in
// audit.ErrUnavailable); Fail(nil) heals.
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// Delay makes every Append take d, to let callers pile up.
func (m *Memory) Delay(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delay = d
}

// Appends is how many Append calls (transactions) succeeded.
func (m *Memory) Appends() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appends
}

// Events returns a copy of every stored event.
func (m *Memory) Events() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// Append implements audit.Store.
func (m *Memory) Append(_ context.Context, events []audit.Event) ([]int64, error) {
	m.mu.Lock()
	d := m.delay
	m.mu.Unlock()
	time.Sleep(d)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, m.fail)
	}
	seqs := make([]int64, len(events))
	for i, ev := range events {
		ev.Seq = int64(len(m.events) + 1)
		m.events = append(m.events, ev)
		seqs[i] = ev.Seq
	}
	m.appends++
	return seqs, nil
}

// Get implements audit.Store.
func (m *Memory) Get(_ context.Context, seq int64) (audit.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return audit.Event{}, fmt.Errorf("%w: %w", audit.ErrUnavailable, m.fail)
	}
	if seq < 1 || seq > int64(len(m.events)) {
		return audit.Event{}, audit.ErrNotFound
	}
	return m.events[seq-1], nil
}

// List implements audit.Store.
func (m *Memory) List(_ context.Context, after int64, limit int) ([]audit.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, m.fail)
	}
	after = max(after, 0)
	if after >= int64(len(m.events)) {
		return nil, nil
	}
	end := min(int64(len(m.events)), after+int64(limit))
	return slices.Clone(m.events[after:end]), nil
}

// Ping implements audit.Store.
func (m *Memory) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, m.fail)
	}
	return nil
}

// Close implements audit.Store: a closed Memory is unavailable.
func (m *Memory) Close() error {
	m.Fail(fmt.Errorf("closed"))
	return nil
}
