-- Contact sessions (a contact with a resident in progress) kept beside the
-- log, so that every gateway on the database sees them, and the search of
-- the events made in one (by their context) and of events flagged for
-- review (break-glass). A session is one row and its closing another: like
-- the log they are only ever inserted, and triggers refuse UPDATE, DELETE
-- and an insert that would replace a row. A session's activity is not
-- stored: it is read from the events that name it.

-- +goose Up

-- Generated from the record, as the other search columns: context_key is
-- audit.Context.Key (type "/" id), flagged is 1 for an event flagged for
-- review.
ALTER TABLE audit_events ADD COLUMN context_key TEXT
    GENERATED ALWAYS AS (json_extract(record, '$.context.type') || '/' || json_extract(record, '$.context.id')) VIRTUAL;
ALTER TABLE audit_events ADD COLUMN flagged INTEGER
    GENERATED ALWAYS AS (CASE WHEN json_extract(record, '$.flagged') = 1 THEN 1 ELSE 0 END) VIRTUAL;

CREATE INDEX audit_events_context ON audit_events (context_key, seq) WHERE context_key IS NOT NULL;
CREATE INDEX audit_events_flagged ON audit_events (seq) WHERE flagged = 1;

-- opened_at and closed_at are audit.SessionTimeFormat text (UTC, fixed
-- width), the events' time format, so that they compare as time.
CREATE TABLE audit_contact_sessions (
    id         TEXT PRIMARY KEY CHECK (id <> ''),
    owner      TEXT NOT NULL CHECK (owner <> ''),
    department TEXT NOT NULL,
    kanaal     TEXT NOT NULL CHECK (kanaal <> ''),
    opened_at  TEXT NOT NULL
);

CREATE TABLE audit_contact_session_closures (
    session_id   TEXT PRIMARY KEY,
    klantcontact TEXT NOT NULL CHECK (klantcontact <> ''),
    closed_at    TEXT NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER audit_contact_sessions_no_update BEFORE UPDATE ON audit_contact_sessions
BEGIN
    SELECT RAISE(ABORT, 'audit_contact_sessions is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_contact_sessions_no_delete BEFORE DELETE ON audit_contact_sessions
BEGIN
    SELECT RAISE(ABORT, 'audit_contact_sessions is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_contact_sessions_new_id BEFORE INSERT ON audit_contact_sessions
WHEN EXISTS (SELECT 1 FROM audit_contact_sessions WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'audit_contact_sessions is append-only: an insert must take a new id');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_contact_session_closures_no_update BEFORE UPDATE ON audit_contact_session_closures
BEGIN
    SELECT RAISE(ABORT, 'audit_contact_session_closures is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_contact_session_closures_no_delete BEFORE DELETE ON audit_contact_session_closures
BEGIN
    SELECT RAISE(ABORT, 'audit_contact_session_closures is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_contact_session_closures_once BEFORE INSERT ON audit_contact_session_closures
WHEN EXISTS (SELECT 1 FROM audit_contact_session_closures WHERE session_id = NEW.session_id)
    OR NOT EXISTS (SELECT 1 FROM audit_contact_sessions WHERE id = NEW.session_id)
BEGIN
    SELECT RAISE(ABORT, 'audit_contact_session_closures is append-only: a session is closed once, and must exist');
END;
-- +goose StatementEnd

-- +goose Down
-- An audit log is never migrated down: going back would drop its history.
SELECT RAISE(ABORT, 'the audit log cannot be migrated down');
