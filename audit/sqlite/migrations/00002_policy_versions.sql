-- The policy bundle versions and their activations (issue 7), kept beside
-- the log and append-only like it: triggers refuse UPDATE and DELETE, and
-- an insert that does not take the next number (so a replacing insert
-- fails too). An activation must name a stored version, and as its previous
-- version the one the last activation named: the history is one chain.
-- As with the log, the triggers are made here and nowhere else, and the
-- store refuses to open without them.

-- +goose Up

-- One row per bundle version, numbered in the order first stored. files is
-- audit.EncodePolicyVersion's JSON: equal files are equal text.
CREATE TABLE audit_policy_versions (
    seq   INTEGER PRIMARY KEY,
    id    TEXT NOT NULL UNIQUE CHECK (id <> ''),
    files TEXT NOT NULL
);

-- One row per activation. activated_at is audit.PolicyTimeFormat text (UTC,
-- fixed width); previous is '' for the first activation.
CREATE TABLE audit_policy_activations (
    seq          INTEGER PRIMARY KEY,
    version      TEXT    NOT NULL,
    previous     TEXT    NOT NULL,
    activated_by TEXT    NOT NULL,
    activated_at TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    is_rollback  BOOLEAN NOT NULL CHECK (is_rollback IN (0, 1))
);

-- +goose StatementBegin
CREATE TRIGGER audit_policy_versions_no_update BEFORE UPDATE ON audit_policy_versions
BEGIN
    SELECT RAISE(ABORT, 'audit_policy_versions is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_policy_versions_no_delete BEFORE DELETE ON audit_policy_versions
BEGIN
    SELECT RAISE(ABORT, 'audit_policy_versions is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_policy_versions_next_seq BEFORE INSERT ON audit_policy_versions
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_policy_versions)
BEGIN
    SELECT RAISE(ABORT, 'audit_policy_versions is append-only: an insert must take the next sequence number');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_policy_activations_no_update BEFORE UPDATE ON audit_policy_activations
BEGIN
    SELECT RAISE(ABORT, 'audit_policy_activations is append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_policy_activations_no_delete BEFORE DELETE ON audit_policy_activations
BEGIN
    SELECT RAISE(ABORT, 'audit_policy_activations is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_policy_activations_next_seq BEFORE INSERT ON audit_policy_activations
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_policy_activations)
    OR NOT EXISTS (SELECT 1 FROM audit_policy_versions WHERE id = NEW.version)
    OR NEW.previous IS NOT COALESCE((SELECT version FROM audit_policy_activations ORDER BY seq DESC LIMIT 1), '')
BEGIN
    SELECT RAISE(ABORT, 'audit_policy_activations is append-only: an insert must take the next sequence number, name a stored version and as previous the version of the last activation');
END;
-- +goose StatementEnd

-- +goose Down
-- An audit log is never migrated down: going back would drop its history.
SELECT RAISE(ABORT, 'the audit log cannot be migrated down');
