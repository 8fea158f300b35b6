package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/sqlite/sqlitedb"
)

// AddContactSession implements audit.ContactSessionStore. The look-up and
// the insert share one transaction under the write lock.
func (s *Store) AddContactSession(ctx context.Context, c audit.ContactSession) error {
	if err := audit.CheckContactSession(c); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		return unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit: a no-op
	q := s.q.WithTx(tx)
	switch _, err := q.GetContactSession(ctx, c.ID); {
	case err == nil:
		return fmt.Errorf("contact session %s: %w", c.ID, audit.ErrConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return unavailable(err)
	}
	err = q.InsertContactSession(ctx, sqlitedb.InsertContactSessionParams{
		ID: c.ID, Owner: c.Owner, Department: c.Department, Kanaal: c.Kanaal,
		OpenedAt: sessionTime(c.OpenedAt),
	})
	if err != nil {
		return unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// ContactSession implements audit.ContactSessionStore.
func (s *Store) ContactSession(ctx context.Context, id string) (audit.ContactSession, error) {
	return contactSession(ctx, s.q, id)
}

func contactSession(ctx context.Context, q *sqlitedb.Queries, id string) (audit.ContactSession, error) {
	r, err := q.GetContactSession(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.ContactSession{}, fmt.Errorf("contact session %s: %w", id, audit.ErrNotFound)
	}
	if err != nil {
		return audit.ContactSession{}, unavailable(err)
	}
	out := audit.ContactSession{ID: r.ID, Owner: r.Owner, Department: r.Department, Kanaal: r.Kanaal, Klantcontact: r.Klantcontact}
	if out.OpenedAt, err = parseSessionTime(r.OpenedAt); err != nil {
		return audit.ContactSession{}, fmt.Errorf("contact session %s: opened: %w", id, err)
	}
	out.LastActivity = out.OpenedAt
	if r.LastEvent != "" {
		last, err := time.Parse(audit.RecordTimeFormat, r.LastEvent)
		if err != nil {
			return audit.ContactSession{}, fmt.Errorf("%w: contact session %s: event time %q", audit.ErrTampered, id, r.LastEvent)
		}
		if last.After(out.LastActivity) {
			out.LastActivity = last
		}
	}
	if r.ClosedAt != "" {
		if out.ClosedAt, err = parseSessionTime(r.ClosedAt); err != nil {
			return audit.ContactSession{}, fmt.Errorf("contact session %s: closed: %w", id, err)
		}
	}
	return out, nil
}

// CloseContactSession implements audit.ContactSessionStore: it reads the
// session and inserts its closing in one transaction under the write lock.
func (s *Store) CloseContactSession(ctx context.Context, id, klantcontact string, at time.Time) (audit.ContactSession, error) {
	if err := audit.CheckClose(klantcontact, at); err != nil {
		return audit.ContactSession{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		return audit.ContactSession{}, unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit: a no-op
	q := s.q.WithTx(tx)
	c, err := contactSession(ctx, q, id)
	if err != nil {
		return audit.ContactSession{}, err
	}
	switch {
	case c.ClosedAt.IsZero():
	case c.Klantcontact == klantcontact:
		return c, nil
	default:
		return audit.ContactSession{}, fmt.Errorf("contact session %s is closed with another klantcontact: %w", id, audit.ErrConflict)
	}
	err = q.InsertContactSessionClosure(ctx, sqlitedb.InsertContactSessionClosureParams{
		SessionID: id, Klantcontact: klantcontact, ClosedAt: sessionTime(at),
	})
	if err != nil {
		return audit.ContactSession{}, unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return audit.ContactSession{}, unavailable(err)
	}
	c.ClosedAt, c.Klantcontact = audit.SessionTime(at), klantcontact
	return c, nil
}

func sessionTime(t time.Time) string { return audit.SessionTime(t).Format(audit.SessionTimeFormat) }

func parseSessionTime(s string) (time.Time, error) {
	t, err := time.Parse(audit.SessionTimeFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: stored time %q", audit.ErrTampered, s)
	}
	return t, nil
}
