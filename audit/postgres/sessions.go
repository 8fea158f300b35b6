package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgdb"
)

// AddContactSession implements audit.ContactSessionStore: an insert that
// does nothing when the id is taken, so that of two processes adding one
// id only the first stores it.
func (s *Store) AddContactSession(ctx context.Context, c audit.ContactSession) error {
	if err := audit.CheckContactSession(c); err != nil {
		return err
	}
	_, err := s.q.InsertContactSession(ctx, pgdb.InsertContactSessionParams{
		ID: c.ID, Owner: c.Owner, Department: c.Department, Kanaal: c.Kanaal,
		OpenedAt: pgtype.Timestamptz{Time: audit.SessionTime(c.OpenedAt), Valid: true},
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("audit postgres: contact session %s: %w", c.ID, audit.ErrConflict)
	}
	if err != nil {
		return unavailable("insert contact session", err)
	}
	return nil
}

// ContactSession implements audit.ContactSessionStore.
func (s *Store) ContactSession(ctx context.Context, id string) (audit.ContactSession, error) {
	r, err := s.q.GetContactSession(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.ContactSession{}, fmt.Errorf("audit postgres: contact session %s: %w", id, audit.ErrNotFound)
	}
	if err != nil {
		return audit.ContactSession{}, unavailable("contact session", err)
	}
	out := audit.ContactSession{
		ID: r.ID, Owner: r.Owner, Department: r.Department, Kanaal: r.Kanaal,
		OpenedAt: r.OpenedAt.Time.UTC(), Klantcontact: r.Klantcontact,
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
	if r.ClosedAt.Valid {
		out.ClosedAt = r.ClosedAt.Time.UTC()
	}
	return out, nil
}

// CloseContactSession implements audit.ContactSessionStore. The closing is
// an insert that does nothing when the session is closed already; the
// session is then read again to tell a retry from a conflict.
func (s *Store) CloseContactSession(ctx context.Context, id, klantcontact string, at time.Time) (audit.ContactSession, error) {
	if err := audit.CheckClose(klantcontact, at); err != nil {
		return audit.ContactSession{}, err
	}
	c, err := s.ContactSession(ctx, id)
	if err != nil {
		return audit.ContactSession{}, err
	}
	if c.ClosedAt.IsZero() {
		n, err := s.q.InsertContactSessionClosure(ctx, pgdb.InsertContactSessionClosureParams{
			SessionID: id, Klantcontact: klantcontact, ClosedAt: pgtype.Timestamptz{Time: audit.SessionTime(at), Valid: true},
		})
		if err != nil {
			return audit.ContactSession{}, unavailable("insert contact session closing", err)
		}
		if n == 1 {
			c.ClosedAt, c.Klantcontact = audit.SessionTime(at), klantcontact
			return c, nil
		}
		// Another process closed it meanwhile: as it did.
		if c, err = s.ContactSession(ctx, id); err != nil {
			return audit.ContactSession{}, err
		}
	}
	if c.Klantcontact != klantcontact {
		return audit.ContactSession{}, fmt.Errorf("audit postgres: contact session %s is closed with another klantcontact: %w", id, audit.ErrConflict)
	}
	return c, nil
}
