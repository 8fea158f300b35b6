package audit

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// ContextContactSession is the Context type of a look-up made during a
// contact session: its ID is the session's.
const ContextContactSession = "contact-session"

// Key is the context as the stores index it: type and id, which no type
// (a word without "/") makes ambiguous.
func (c Context) Key() string { return c.Type + "/" + c.ID }

// ContactSession is one contact with a resident in progress: an employee
// answering a call, a chat, a visit. Look-ups made during it name it as
// their context (ContextContactSession), and it ends when it is wrapped
// up into a klantcontact or after it was left idle too long.
type ContactSession struct {
	// ID is given by the caller (a random UUID) and unique.
	ID string
	// Owner is the sub of the employee who opened it, Department theirs.
	Owner      string
	Department string
	// Kanaal is the channel of the contact (telefoon, e-mail, whatsapp, chat, balie).
	Kanaal string
	// OpenedAt is when it was opened; stores keep it in UTC to the microsecond.
	OpenedAt time.Time
	// LastActivity is when the session was last used: the Time of the
	// latest allowed event about a resident (a look-up) with the session
	// as its context, or OpenedAt before the first. Stores compute it
	// from the log; it is ignored on add.
	LastActivity time.Time
	// ClosedAt is when it was closed (zero while it is not), Klantcontact
	// the id of the klantcontact it was wrapped up into.
	ClosedAt     time.Time
	Klantcontact string
}

// Session states (ContactSession.State).
const (
	SessionOpen    = "open"
	SessionExpired = "expired" // idle for longer than the timeout
	SessionClosed  = "closed"
)

// State is the session's state at now with the given idle timeout.
func (s ContactSession) State(now time.Time, idle time.Duration) string {
	switch {
	case !s.ClosedAt.IsZero():
		return SessionClosed
	case now.Sub(s.LastActivity) > idle:
		return SessionExpired
	}
	return SessionOpen
}

// ExpiresAt is when an open session times out unless used before then.
func (s ContactSession) ExpiresAt(idle time.Duration) time.Time {
	return s.LastActivity.Add(idle)
}

// ContactSessionStore keeps the contact sessions beside the log, where
// every gateway on the database sees them. Like the log it only ever
// inserts: a session is one row, its closing another, and its activity is
// read from the log's events, so there is no update or delete.
//
// Every method's I/O errors wrap ErrUnavailable.
type ContactSessionStore interface {
	// AddContactSession stores a new open session (LastActivity, ClosedAt
	// and Klantcontact are ignored; OpenedAt is kept in UTC to the
	// microsecond). It returns an error wrapping ErrConflict when the id
	// is taken, a plain error when CheckContactSession refuses s, or
	// ErrUnavailable. Nothing is stored unless it returns nil.
	AddContactSession(ctx context.Context, s ContactSession) error
	// ContactSession returns the session with that id, its LastActivity
	// read from the log, or an error wrapping ErrNotFound.
	ContactSession(ctx context.Context, id string) (ContactSession, error)
	// CloseContactSession closes the session at at, wrapped up into the
	// klantcontact with that id, and returns it closed. Closing a session
	// that is closed already with the same klantcontact changes nothing
	// and returns it as it is (a wrap-up may be retried); with another
	// klantcontact it is an error wrapping ErrConflict. An unknown session
	// is ErrNotFound; an empty klantcontact or a zero at a plain error.
	// Whether the session has timed out is the caller's to judge: a
	// session left idle can still be wrapped up.
	CloseContactSession(ctx context.Context, id, klantcontact string, at time.Time) (ContactSession, error)
}

// MaxSessionField bounds the text fields of a session (in characters).
const MaxSessionField = 200

// CheckContactSession reports why s cannot be stored whatever is stored,
// or nil: a store calls it before it writes.
func CheckContactSession(s ContactSession) error {
	for name, v := range map[string]string{"id": s.ID, "owner": s.Owner, "kanaal": s.Kanaal} {
		if v == "" {
			return fmt.Errorf("audit: a contact session without %s", name)
		}
	}
	for name, v := range map[string]string{"id": s.ID, "owner": s.Owner, "department": s.Department, "kanaal": s.Kanaal} {
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxSessionField {
			return fmt.Errorf("audit: contact session %s is not UTF-8 or longer than %d characters", name, MaxSessionField)
		}
	}
	return checkTime("opened", s.OpenedAt)
}

// CheckClose reports why a session cannot be closed with klantcontact at
// at whatever is stored, or nil.
func CheckClose(klantcontact string, at time.Time) error {
	if klantcontact == "" || !utf8.ValidString(klantcontact) || utf8.RuneCountInString(klantcontact) > MaxSessionField {
		return fmt.Errorf("audit: a contact session is closed with a klantcontact id of 1 to %d characters", MaxSessionField)
	}
	return checkTime("closed", at)
}

func checkTime(what string, t time.Time) error {
	switch {
	case t.IsZero():
		return fmt.Errorf("audit: a contact session without the time it was %s", what)
	case t.UTC().Year() < 1 || t.UTC().Year() > 9999:
		return fmt.Errorf("audit: contact session time %v is outside the years 1 to 9999", t)
	}
	return nil
}

// SessionEvents reads every event made in the contact session id (whose
// Context is the session), newest first, paging through s.Search.
func SessionEvents(ctx context.Context, s interface {
	Search(ctx context.Context, f Filter) ([]Record, error)
}, id string) ([]Event, error) {
	f := Filter{Context: &Context{Type: ContextContactSession, ID: id}, Limit: MaxSearchLimit}
	var out []Event
	for {
		recs, err := s.Search(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			ev, err := r.Event()
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		if len(recs) < f.PageSize() {
			return out, nil
		}
		f.Before = recs[len(recs)-1].Seq
	}
}

// SessionTimeFormat is how SQLite stores a session's times: that of the
// records, so that they compare with the events' times as text.
const SessionTimeFormat = RecordTimeFormat

// SessionTime is t as the stores keep it: UTC, to the microsecond.
func SessionTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
