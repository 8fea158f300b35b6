package audittest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
)

// SessionStore is a log that keeps contact sessions beside it.
type SessionStore interface {
	audit.Store
	audit.ContactSessionStore
}

// ExerciseContactSessions runs the conformance suite of
// audit.ContactSessionStore, and of the log's search by context and by
// flag that sessions and reviews rely on. open makes a store on a new,
// empty database.
func ExerciseContactSessions(t *testing.T, open func(t *testing.T) SessionStore) {
	ctx := context.Background()
	opened := time.Date(2026, 12, 3, 9, 15, 30, 123456789, time.FixedZone("CET", 3600))
	session := func(n int) audit.ContactSession {
		return audit.ContactSession{
			ID: fmt.Sprintf("5e551000-0000-4000-8000-%012d", n), Owner: "sdevries", Department: "kcc",
			Kanaal: "telefoon", OpenedAt: opened,
		}
	}
	lookUp := func(id string, at time.Time, decision, subject string) audit.Event {
		return audit.Event{
			Time: at, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
			Operation: "POST /v1/resident-views", Actor: audit.Actor{Sub: "sdevries", Department: "kcc", Roles: []string{"medewerker"}},
			Purpose: "klantcontact", Subject: subject, Context: &audit.Context{Type: audit.ContextContactSession, ID: id},
			Decision: decision, Status: 200,
		}
	}

	t.Run("AnOpenedSessionRoundTrips", func(t *testing.T) {
		s := open(t)
		want := session(1)
		require.NoError(t, s.AddContactSession(ctx, want))
		got, err := s.ContactSession(ctx, want.ID)
		require.NoError(t, err)
		want.OpenedAt = audit.SessionTime(opened)
		want.LastActivity = want.OpenedAt
		assert.Equal(t, want, got)
		assert.Equal(t, time.UTC, got.OpenedAt.Location())
		assert.Equal(t, audit.SessionOpen, got.State(opened.Add(time.Minute), 30*time.Minute))
		assert.Equal(t, audit.SessionExpired, got.State(opened.Add(31*time.Minute), 30*time.Minute))
	})

	t.Run("AnUnknownSessionIsNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.ContactSession(ctx, session(1).ID)
		require.ErrorIs(t, err, audit.ErrNotFound)
		_, err = s.CloseContactSession(ctx, session(1).ID, "kc-1", opened)
		require.ErrorIs(t, err, audit.ErrNotFound)
	})

	t.Run("AnIdTakenIsAConflict", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.AddContactSession(ctx, session(1)))
		other := session(1)
		other.Owner = "jdoe"
		err := s.AddContactSession(ctx, other)
		require.ErrorIs(t, err, audit.ErrConflict)
		got, err := s.ContactSession(ctx, other.ID)
		require.NoError(t, err)
		assert.Equal(t, "sdevries", got.Owner, "the session first stored is kept")
	})

	t.Run("AnIncompleteSessionIsRefused", func(t *testing.T) {
		s := open(t)
		for name, change := range map[string]func(*audit.ContactSession){
			"NoID":     func(c *audit.ContactSession) { c.ID = "" },
			"NoOwner":  func(c *audit.ContactSession) { c.Owner = "" },
			"NoKanaal": func(c *audit.ContactSession) { c.Kanaal = "" },
			"NoTime":   func(c *audit.ContactSession) { c.OpenedAt = time.Time{} },
		} {
			t.Run(name, func(t *testing.T) {
				c := session(2)
				change(&c)
				err := s.AddContactSession(ctx, c)
				require.Error(t, err)
				assert.NotErrorIs(t, err, audit.ErrUnavailable)
			})
		}
		_, err := s.ContactSession(ctx, session(2).ID)
		require.ErrorIs(t, err, audit.ErrNotFound, "nothing was stored")
	})

	t.Run("LastActivityIsTheLatestAllowedLookUpInTheSession", func(t *testing.T) {
		s := open(t)
		a, b := session(1), session(2)
		require.NoError(t, s.AddContactSession(ctx, a))
		require.NoError(t, s.AddContactSession(ctx, b))
		_, err := s.Append(ctx, []audit.Event{
			lookUp(a.ID, opened.Add(5*time.Minute), audit.DecisionAllow, "p1"),
			lookUp(a.ID, opened.Add(10*time.Minute), audit.DecisionAllow, "p1"),
			// Not activity: a refusal, an event about no resident (reading
			// the session), another session's look-up.
			lookUp(a.ID, opened.Add(20*time.Minute), audit.DecisionDeny, "p1"),
			lookUp(a.ID, opened.Add(25*time.Minute), audit.DecisionAllow, ""),
			lookUp(b.ID, opened.Add(40*time.Minute), audit.DecisionAllow, "p2"),
		})
		require.NoError(t, err)
		got, err := s.ContactSession(ctx, a.ID)
		require.NoError(t, err)
		assert.True(t, got.LastActivity.Equal(opened.Add(10*time.Minute)), "last activity %v", got.LastActivity)
		assert.Equal(t, audit.SessionOpen, got.State(opened.Add(39*time.Minute), 30*time.Minute))
		assert.Equal(t, audit.SessionExpired, got.State(opened.Add(41*time.Minute), 30*time.Minute))
		got, err = s.ContactSession(ctx, b.ID)
		require.NoError(t, err)
		assert.True(t, got.LastActivity.Equal(opened.Add(40*time.Minute)), "last activity %v", got.LastActivity)
	})

	t.Run("ClosingKeepsTheKlantcontactAndMayBeRetried", func(t *testing.T) {
		s := open(t)
		c := session(1)
		require.NoError(t, s.AddContactSession(ctx, c))
		closed := opened.Add(12 * time.Minute)
		got, err := s.CloseContactSession(ctx, c.ID, "kc-1", closed)
		require.NoError(t, err)
		assert.True(t, got.ClosedAt.Equal(audit.SessionTime(closed)))
		assert.Equal(t, "kc-1", got.Klantcontact)
		assert.Equal(t, audit.SessionClosed, got.State(closed, time.Hour))

		again, err := s.CloseContactSession(ctx, c.ID, "kc-1", closed.Add(time.Minute))
		require.NoError(t, err, "the same wrap-up again")
		assert.Equal(t, got, again, "nothing changed")

		_, err = s.CloseContactSession(ctx, c.ID, "kc-2", closed.Add(time.Minute))
		require.ErrorIs(t, err, audit.ErrConflict)
		read, err := s.ContactSession(ctx, c.ID)
		require.NoError(t, err)
		assert.Equal(t, got, read)
	})

	t.Run("ClosingNeedsAKlantcontactAndATime", func(t *testing.T) {
		s := open(t)
		c := session(1)
		require.NoError(t, s.AddContactSession(ctx, c))
		_, err := s.CloseContactSession(ctx, c.ID, "", opened)
		require.Error(t, err)
		_, err = s.CloseContactSession(ctx, c.ID, "kc-1", time.Time{})
		require.Error(t, err)
		read, err := s.ContactSession(ctx, c.ID)
		require.NoError(t, err)
		assert.True(t, read.ClosedAt.IsZero(), "still open")
	})

	t.Run("TheEventsOfASessionAreFoundByItsContext", func(t *testing.T) {
		s := open(t)
		a, b := session(1).ID, session(2).ID
		events := []audit.Event{
			lookUp(a, opened.Add(time.Minute), audit.DecisionAllow, "p1"),
			lookUp(b, opened.Add(2*time.Minute), audit.DecisionAllow, "p2"),
			lookUp(a, opened.Add(3*time.Minute), audit.DecisionDeny, "p1"),
		}
		zaak := lookUp(a, opened.Add(4*time.Minute), audit.DecisionAllow, "p1")
		zaak.Context = &audit.Context{Type: "zaak", ID: a} // the same id, another type
		events = append(events, zaak)
		seqs, err := s.Append(ctx, events)
		require.NoError(t, err)
		got, err := audit.SessionEvents(ctx, s, a)
		require.NoError(t, err)
		require.Len(t, got, 2)
		assert.Equal(t, []int64{seqs[2], seqs[0]}, []int64{got[0].Seq, got[1].Seq}, "newest first")
		recs, err := s.Search(ctx, audit.Filter{Context: &audit.Context{Type: audit.ContextContactSession, ID: a}, Decision: audit.DecisionAllow})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, seqs[0], recs[0].Seq)
		recs, err = s.Search(ctx, audit.Filter{Subject: "p2", Context: &audit.Context{Type: audit.ContextContactSession, ID: a}})
		require.NoError(t, err)
		assert.Empty(t, recs, "the context is a condition beside the subject")
	})

	t.Run("FlaggedEventsAreFoundByTheFlag", func(t *testing.T) {
		s := open(t)
		plain := lookUp(session(1).ID, opened, audit.DecisionAllow, "p1")
		plain.Context = nil
		glass := plain
		glass.BreakGlass = &audit.BreakGlass{Reason: "Spoedmelding van de politie over deze inwoner"}
		glass.Flagged = true
		refused := glass
		refused.Decision = audit.DecisionDeny
		seqs, err := s.Append(ctx, []audit.Event{plain, glass, plain, refused, plain})
		require.NoError(t, err)
		for name, f := range map[string]audit.Filter{
			"Alone":          {Flagged: true},
			"WithTheSubject": {Flagged: true, Subject: "p1"},
			"WithTheActor":   {Flagged: true, Actor: "sdevries"},
		} {
			t.Run(name, func(t *testing.T) {
				recs, err := s.Search(ctx, f)
				require.NoError(t, err)
				require.Len(t, recs, 2)
				assert.Equal(t, []int64{seqs[3], seqs[1]}, []int64{recs[0].Seq, recs[1].Seq})
				ev, err := recs[1].Event()
				require.NoError(t, err)
				assert.Equal(t, glass.BreakGlass, ev.BreakGlass)
			})
		}
		recs, err := s.Search(ctx, audit.Filter{Flagged: true, Decision: audit.DecisionAllow})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, seqs[1], recs[0].Seq)
	})

	t.Run("AClosedStoreIsUnavailable", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.AddContactSession(ctx, session(1)))
		if m, ok := s.(*Memory); ok {
			m.Fail(fmt.Errorf("down"))
		} else {
			require.NoError(t, s.Close())
		}
		_, err := s.ContactSession(ctx, session(1).ID)
		require.ErrorIs(t, err, audit.ErrUnavailable)
		require.ErrorIs(t, s.AddContactSession(ctx, session(2)), audit.ErrUnavailable)
		_, err = s.CloseContactSession(ctx, session(1).ID, "kc-1", opened)
		require.ErrorIs(t, err, audit.ErrUnavailable)
	})
}
