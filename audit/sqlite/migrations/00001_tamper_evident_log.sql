-- The tamper-evident audit log (issue 6). Rows are only ever inserted:
-- triggers refuse UPDATE and DELETE, and refuse an insert that does not take
-- the next number, so a replacing insert (INSERT OR REPLACE) fails too.
-- Triggers are made here and nowhere else: the store checks at open that
-- they are all in place and never makes one again.

-- +goose Up

-- One row per request to a protected endpoint. record is the exact bytes of
-- audit.EncodeRecord, whose tlog.RecordHash is leaf seq-1 of the tree; the
-- searchable columns are generated from it, so they cannot disagree with it.
CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY,
    record     TEXT NOT NULL,
    time       TEXT GENERATED ALWAYS AS (json_extract(record, '$.time')) VIRTUAL,
    subject    TEXT GENERATED ALWAYS AS (json_extract(record, '$.subject')) VIRTUAL,
    actor_sub  TEXT GENERATED ALWAYS AS (json_extract(record, '$.actor.sub')) VIRTUAL,
    department TEXT GENERATED ALWAYS AS (json_extract(record, '$.actor.department')) VIRTUAL,
    purpose    TEXT GENERATED ALWAYS AS (json_extract(record, '$.purpose')) VIRTUAL,
    decision   TEXT GENERATED ALWAYS AS (json_extract(record, '$.decision')) VIRTUAL
);

CREATE INDEX audit_events_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_sub, seq);

-- The Merkle tree's hashes, by tlog stored hash index.
CREATE TABLE audit_tree_hashes (
    idx  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL CHECK (length(hash) = 32)
);

-- Signed checkpoints (C2SP signed notes) of the tree.
CREATE TABLE audit_checkpoints (
    id   INTEGER PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size > 0),
    note TEXT    NOT NULL
);

CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size, id);

-- +goose StatementBegin
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_events_next_seq BEFORE INSERT ON audit_events
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: an insert must take the next sequence number');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_tree_hashes_no_update BEFORE UPDATE ON audit_tree_hashes
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_hashes is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_tree_hashes_no_delete BEFORE DELETE ON audit_tree_hashes
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_hashes is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_tree_hashes_next_idx BEFORE INSERT ON audit_tree_hashes
WHEN NEW.idx IS NOT (SELECT COALESCE(MAX(idx), -1) + 1 FROM audit_tree_hashes)
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_hashes is append-only: an insert must take the next index');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_checkpoints_next_id BEFORE INSERT ON audit_checkpoints
WHEN NEW.id IS NOT (SELECT COALESCE(MAX(id), 0) + 1 FROM audit_checkpoints)
    OR NEW.size > (SELECT COALESCE(MAX(seq), 0) FROM audit_events)
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: an insert must take the next id and cover no more than the log');
END;
-- +goose StatementEnd

-- +goose Down
-- An audit log is never migrated down: going back would drop its history.
SELECT RAISE(ABORT, 'the audit log cannot be migrated down');
