-- Contact sessions (a contact with a resident in progress) kept beside the
-- log in the same schema, so that every gateway on the database sees them,
-- and the search of the events made in one (by their context) and of
-- events flagged for review (break-glass). A session is one row and its
-- closing another: like the log they are only ever inserted; triggers
-- refuse UPDATE, DELETE and TRUNCATE and fire ALWAYS. A session's activity
-- is not stored: it is read from the events that name it. The application
-- role may only INSERT and SELECT.

-- +goose Up

-- audit_context_key is audit.Context.Key of the record's context (type "/"
-- id), NULL without one; audit_flagged whether the record is flagged for
-- review. Indexed as expressions, so the events table is not rewritten.
-- +goose StatementBegin
CREATE FUNCTION audit_context_key(record bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    j jsonb := replace(convert_from(record, 'UTF8'), '\u0000', '\ufffd')::jsonb;
BEGIN
    RETURN (j -> 'context' ->> 'type') || '/' || (j -> 'context' ->> 'id');
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit_flagged(record bytea) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    j jsonb := replace(convert_from(record, 'UTF8'), '\u0000', '\ufffd')::jsonb;
BEGIN
    RETURN coalesce(j -> 'flagged' = 'true'::jsonb, false);
END
$$;
-- +goose StatementEnd

CREATE INDEX audit_events_context ON audit_events (audit_context_key(record), seq);
CREATE INDEX audit_events_flagged ON audit_events (seq) WHERE audit_flagged(record);

CREATE TABLE audit_contact_sessions (
    id         text        PRIMARY KEY CHECK (id <> ''),
    owner      text        NOT NULL CHECK (owner <> ''),
    department text        NOT NULL,
    kanaal     text        NOT NULL CHECK (kanaal <> ''),
    opened_at  timestamptz NOT NULL
);

CREATE TABLE audit_contact_session_closures (
    session_id   text        PRIMARY KEY,
    klantcontact text        NOT NULL CHECK (klantcontact <> ''),
    closed_at    timestamptz NOT NULL
);

-- A closing names a stored session: checked here rather than by a foreign
-- key, whose checks session_replication_role = replica would skip.
-- +goose StatementBegin
CREATE FUNCTION audit_contact_session_closures_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted i
               WHERE NOT EXISTS (SELECT 1 FROM audit_contact_sessions s WHERE s.id = i.session_id)) THEN
        RAISE EXCEPTION 'audit_contact_session_closures: a closing must name a stored session'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_contact_sessions_no_update BEFORE UPDATE ON audit_contact_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_contact_sessions_no_delete BEFORE DELETE ON audit_contact_sessions
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_contact_sessions_no_truncate BEFORE TRUNCATE ON audit_contact_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
ALTER TABLE audit_contact_sessions
    ENABLE ALWAYS TRIGGER audit_contact_sessions_no_update,
    ENABLE ALWAYS TRIGGER audit_contact_sessions_no_delete,
    ENABLE ALWAYS TRIGGER audit_contact_sessions_no_truncate;

CREATE TRIGGER audit_contact_session_closures_no_update BEFORE UPDATE ON audit_contact_session_closures
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_contact_session_closures_no_delete BEFORE DELETE ON audit_contact_session_closures
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_contact_session_closures_no_truncate BEFORE TRUNCATE ON audit_contact_session_closures
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_contact_session_closures_of_session AFTER INSERT ON audit_contact_session_closures
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION audit_contact_session_closures_check();
ALTER TABLE audit_contact_session_closures
    ENABLE ALWAYS TRIGGER audit_contact_session_closures_no_update,
    ENABLE ALWAYS TRIGGER audit_contact_session_closures_no_delete,
    ENABLE ALWAYS TRIGGER audit_contact_session_closures_no_truncate,
    ENABLE ALWAYS TRIGGER audit_contact_session_closures_of_session;

-- The application role reads and appends, nothing else (00001 made it and
-- gave it USAGE on the schema).
REVOKE ALL ON audit_contact_sessions, audit_contact_session_closures FROM PUBLIC;
GRANT SELECT, INSERT ON audit_contact_sessions, audit_contact_session_closures TO klantbeeld_app;

-- +goose Down
-- An audit log is never migrated down: going back would drop its history.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: it is never migrated down';
END
$$;
-- +goose StatementEnd
