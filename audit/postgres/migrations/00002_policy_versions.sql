-- The policy bundle versions and their activations (issue 7), kept beside
-- the log in the same schema and append-only like it: triggers refuse
-- UPDATE, DELETE and TRUNCATE and an insert that does not take the next
-- number, and they fire ALWAYS, also under session_replication_role =
-- replica. An activation must name a stored version, and as its previous
-- version the one the activation before it named, so the history is one
-- chain. The application role may only INSERT and SELECT.
--
-- A log made by 00001 gets these tables and triggers here, once; a trigger
-- dropped later is never made again, and the gateway refuses to start
-- without it (Store.CheckAppendOnly).

-- +goose Up

-- One row per bundle version, numbered in the order first stored. files is
-- audit.EncodePolicyVersion's JSON text: equal files are equal text.
CREATE TABLE audit_policy_versions (
    seq   bigint PRIMARY KEY CHECK (seq > 0),
    id    text   NOT NULL UNIQUE CHECK (id <> ''),
    files text   NOT NULL
);

-- One row per activation; previous is '' for the first.
CREATE TABLE audit_policy_activations (
    seq          bigint      PRIMARY KEY CHECK (seq > 0),
    version      text        NOT NULL,
    previous     text        NOT NULL,
    activated_by text        NOT NULL,
    activated_at timestamptz NOT NULL,
    reason       text        NOT NULL,
    is_rollback  boolean     NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION audit_policy_versions_check_next() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    lo bigint;
    hi bigint;
    n  bigint;
BEGIN
    SELECT min(seq), max(seq), count(*) INTO lo, hi, n FROM inserted;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF hi - lo + 1 <> n
        OR lo - 1 <> (SELECT coalesce(max(seq), 0) FROM audit_policy_versions WHERE seq < lo)
        OR EXISTS (SELECT 1 FROM audit_policy_versions WHERE seq > hi) THEN
        RAISE EXCEPTION 'audit_policy_versions is append-only: an insert must take the next sequence numbers'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- The chain is checked here rather than by a foreign key: the checks of a
-- foreign key are triggers that session_replication_role = replica skips.
-- The statement's rows are in the table by now, so the activation before
-- each is found there, whether it came earlier or in the same statement.
-- +goose StatementBegin
CREATE FUNCTION audit_policy_activations_check_next() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    lo bigint;
    hi bigint;
    n  bigint;
BEGIN
    SELECT min(seq), max(seq), count(*) INTO lo, hi, n FROM inserted;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF hi - lo + 1 <> n
        OR lo - 1 <> (SELECT coalesce(max(seq), 0) FROM audit_policy_activations WHERE seq < lo)
        OR EXISTS (SELECT 1 FROM audit_policy_activations WHERE seq > hi)
        OR EXISTS (SELECT 1 FROM inserted i
                   WHERE NOT EXISTS (SELECT 1 FROM audit_policy_versions v WHERE v.id = i.version)
                      OR i.previous IS DISTINCT FROM coalesce(
                             (SELECT a.version FROM audit_policy_activations a WHERE a.seq = i.seq - 1), '')) THEN
        RAISE EXCEPTION 'audit_policy_activations is append-only: an insert must take the next sequence numbers, name a stored version and as previous the version of the activation before it'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_policy_versions_no_update BEFORE UPDATE ON audit_policy_versions
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_policy_versions_no_delete BEFORE DELETE ON audit_policy_versions
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_policy_versions_no_truncate BEFORE TRUNCATE ON audit_policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_policy_versions_next_seq AFTER INSERT ON audit_policy_versions
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION audit_policy_versions_check_next();
ALTER TABLE audit_policy_versions
    ENABLE ALWAYS TRIGGER audit_policy_versions_no_update,
    ENABLE ALWAYS TRIGGER audit_policy_versions_no_delete,
    ENABLE ALWAYS TRIGGER audit_policy_versions_no_truncate,
    ENABLE ALWAYS TRIGGER audit_policy_versions_next_seq;

CREATE TRIGGER audit_policy_activations_no_update BEFORE UPDATE ON audit_policy_activations
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_policy_activations_no_delete BEFORE DELETE ON audit_policy_activations
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_policy_activations_no_truncate BEFORE TRUNCATE ON audit_policy_activations
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_policy_activations_next_seq AFTER INSERT ON audit_policy_activations
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION audit_policy_activations_check_next();
ALTER TABLE audit_policy_activations
    ENABLE ALWAYS TRIGGER audit_policy_activations_no_update,
    ENABLE ALWAYS TRIGGER audit_policy_activations_no_delete,
    ENABLE ALWAYS TRIGGER audit_policy_activations_no_truncate,
    ENABLE ALWAYS TRIGGER audit_policy_activations_next_seq;

-- The application role reads and appends, nothing else (00001 made it and
-- gave it USAGE on the schema).
REVOKE ALL ON audit_policy_versions, audit_policy_activations FROM PUBLIC;
GRANT SELECT, INSERT ON audit_policy_versions, audit_policy_activations TO klantbeeld_app;

-- +goose Down
-- An audit log is never migrated down: going back would drop its history.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: it is never migrated down';
END
$$;
-- +goose StatementEnd
