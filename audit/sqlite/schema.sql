-- The audit log: one row per request to a protected endpoint. Rows are only
-- ever inserted; triggers (triggers.sql) refuse UPDATE and DELETE.
CREATE TABLE IF NOT EXISTS audit_events (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at        TEXT    NOT NULL,
    trace_id           TEXT    NOT NULL,
    operation          TEXT    NOT NULL,
    actor_sub          TEXT    NOT NULL,
    actor_department   TEXT    NOT NULL,
    actor_organisation TEXT    NOT NULL,
    purpose            TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    decision           TEXT    NOT NULL,
    status             INTEGER NOT NULL,
    record             BLOB    NOT NULL
);

CREATE INDEX IF NOT EXISTS audit_events_subject ON audit_events (subject, seq);
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (actor_sub, seq);
