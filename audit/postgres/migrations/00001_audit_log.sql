-- The tamper-evident audit log (DESIGN.md §7) in the connection's current
-- schema: the events, the stored hashes of the RFC 6962 tree over them and
-- the signed checkpoints. Every table is append-only: triggers refuse
-- UPDATE, DELETE and TRUNCATE and an insert that does not take the next
-- number, and they fire ALWAYS, also under session_replication_role =
-- replica. The application role may only INSERT and SELECT.
--
-- A migration runs once per schema: a trigger dropped from an existing log
-- is never made again here, and the gateway refuses to start without it
-- (Store.CheckAppendOnly).

-- +goose Up

-- Roles are cluster-wide: another schema, or a migration running at the
-- same time in another database, may have made it already.
-- +goose StatementBegin
DO $$
BEGIN
    CREATE ROLE klantbeeld_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- +goose StatementEnd

-- The fields the auditor's search filters on, read from the record itself
-- so that they cannot disagree with what verification checks. event_time
-- is audit.RecordTimeFormat text, compared bytewise ("C") so that it sorts
-- as time.
CREATE TYPE audit_search AS (
    event_time text COLLATE "C",
    subject    text,
    actor_sub  text,
    department text,
    purpose    text,
    decision   text
);

-- audit_search_fields parses the record once (a generated column per field
-- would parse it once per field, and an SQL function is not cached: both
-- measured several times slower). convert_from is only STABLE (it looks
-- the encoding up by name), but with the encoding fixed it gives the same
-- answer for the same bytes, which a generated column needs. \u0000, which
-- jsonb refuses, becomes U+FFFD, so that an event holding one is still
-- stored; only its search fields differ.
-- +goose StatementBegin
CREATE FUNCTION audit_search_fields(record bytea) RETURNS audit_search
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    j jsonb := replace(convert_from(record, 'UTF8'), '\u0000', '\ufffd')::jsonb;
BEGIN
    RETURN ROW(j ->> 'time', j ->> 'subject', j -> 'actor' ->> 'sub', j -> 'actor' ->> 'department',
               j ->> 'purpose', j ->> 'decision')::audit_search;
END
$$;
-- +goose StatementEnd

-- One row per request to a protected endpoint. record holds the exact bytes
-- of audit.EncodeRecord, whose tlog.RecordHash is leaf seq-1 of the tree.
-- seq is given by the store (last + 1 inside the appending transaction,
-- under an advisory lock), not by a sequence, whose numbers a rolled-back
-- transaction would leave as gaps.
CREATE TABLE audit_events (
    seq    bigint       PRIMARY KEY CHECK (seq > 0),
    record bytea        NOT NULL,
    search audit_search GENERATED ALWAYS AS (audit_search_fields(record)) STORED
);

CREATE INDEX audit_events_subject ON audit_events (((search).subject), seq);
CREATE INDEX audit_events_actor ON audit_events (((search).actor_sub), seq);

-- The Merkle tree's hashes, by tlog stored hash index.
CREATE TABLE audit_tree_hashes (
    idx  bigint PRIMARY KEY CHECK (idx >= 0),
    hash bytea  NOT NULL CHECK (octet_length(hash) = 32)
);

-- Signed checkpoints (C2SP signed notes) of the tree, numbered 1, 2, 3, ...
CREATE TABLE audit_checkpoints (
    id   bigint PRIMARY KEY CHECK (id > 0),
    size bigint NOT NULL CHECK (size > 0),
    note bytea  NOT NULL
);

CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size, id);

-- +goose StatementBegin
CREATE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

-- The insert checks run once per statement over the rows it inserted (a
-- transition table), so a batch of events costs one check, not one per row.
-- They, and audit_append_start, only look rows up by their key: with
-- enable_seqscan off, the plans PL/pgSQL caches while a table is still
-- small do not scan it whole once it has grown (measured: the appends
-- slowed down with every thousand events).
-- +goose StatementBegin
CREATE FUNCTION audit_events_check_next() RETURNS trigger
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
        OR lo - 1 <> (SELECT coalesce(max(seq), 0) FROM audit_events WHERE seq < lo)
        OR EXISTS (SELECT 1 FROM audit_events WHERE seq > hi) THEN
        RAISE EXCEPTION 'audit_events is append-only: an insert must take the next sequence numbers'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit_tree_hashes_check_next() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    lo bigint;
    hi bigint;
    n  bigint;
BEGIN
    SELECT min(idx), max(idx), count(*) INTO lo, hi, n FROM inserted;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF hi - lo + 1 <> n
        OR lo - 1 <> (SELECT coalesce(max(idx), -1) FROM audit_tree_hashes WHERE idx < lo)
        OR EXISTS (SELECT 1 FROM audit_tree_hashes WHERE idx > hi) THEN
        RAISE EXCEPTION 'audit_tree_hashes is append-only: an insert must take the next indexes'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit_checkpoints_check_next() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    lo bigint;
    hi bigint;
    n  bigint;
BEGIN
    SELECT min(id), max(id), count(*) INTO lo, hi, n FROM inserted;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF hi - lo + 1 <> n
        OR lo - 1 <> (SELECT coalesce(max(id), 0) FROM audit_checkpoints WHERE id < lo)
        OR EXISTS (SELECT 1 FROM audit_checkpoints WHERE id > hi)
        OR (SELECT max(size) FROM inserted) > (SELECT coalesce(max(seq), 0) FROM audit_events) THEN
        RAISE EXCEPTION 'audit_checkpoints is append-only: an insert must take the next id and cover no more than the log'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- audit_frontier_indexes are the stored hash indexes of the complete
-- subtrees that make up a tree of n leaves, largest first, numbered as
-- golang.org/x/mod/sumdb/tlog numbers them (StoredHashIndex): what adding
-- leaf n needs. audit.FrontierIndexes is the same in Go; a test holds the
-- two together.
-- +goose StatementBegin
CREATE FUNCTION audit_frontier_indexes(n bigint) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    out bigint[] := '{}';
    k   bigint;
    idx bigint;
BEGIN
    FOR level IN REVERSE 62..0 LOOP
        IF (n >> level) & 1 = 1 THEN
            -- StoredHashIndex(level, (n >> level) - 1)
            k := (n >> level) - 1;
            FOR l IN 1..level LOOP
                k := 2 * k + 1;
            END LOOP;
            idx := 0;
            WHILE k > 0 LOOP
                idx := idx + k;
                k := k >> 1;
            END LOOP;
            out := out || (idx + level);
        END IF;
    END LOOP;
    RETURN out;
END
$$;
-- +goose StatementEnd

-- audit_append_start begins an append in one round trip: it takes the
-- schema's write lock (held until the transaction ends, so appenders in
-- every process take turns) and then, each statement with a snapshot taken
-- after the lock, returns the transaction's id, the last sequence number
-- and the stored hashes of the tree's frontier at that size. The store
-- checks the indexes against its own and reads the hashes itself when they
-- differ.
-- +goose StatementBegin
CREATE FUNCTION audit_append_start(lock_id bigint,
    OUT txid bigint, OUT last_seq bigint, OUT frontier_idx bigint[], OUT frontier_hash bytea[])
LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id);
    txid := txid_current();
    SELECT coalesce(max(seq), 0) INTO last_seq FROM audit_events;
    frontier_idx := audit_frontier_indexes(last_seq);
    SELECT coalesce(array_agg(h.hash ORDER BY f.ord), '{}') INTO frontier_hash
    FROM unnest(frontier_idx) WITH ORDINALITY AS f(idx, ord)
    JOIN audit_tree_hashes h ON h.idx = f.idx;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_next_seq AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_check_next();
ALTER TABLE audit_events
    ENABLE ALWAYS TRIGGER audit_events_no_update,
    ENABLE ALWAYS TRIGGER audit_events_no_delete,
    ENABLE ALWAYS TRIGGER audit_events_no_truncate,
    ENABLE ALWAYS TRIGGER audit_events_next_seq;

CREATE TRIGGER audit_tree_hashes_no_update BEFORE UPDATE ON audit_tree_hashes
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_tree_hashes_no_delete BEFORE DELETE ON audit_tree_hashes
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_tree_hashes_no_truncate BEFORE TRUNCATE ON audit_tree_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_tree_hashes_next_idx AFTER INSERT ON audit_tree_hashes
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION audit_tree_hashes_check_next();
ALTER TABLE audit_tree_hashes
    ENABLE ALWAYS TRIGGER audit_tree_hashes_no_update,
    ENABLE ALWAYS TRIGGER audit_tree_hashes_no_delete,
    ENABLE ALWAYS TRIGGER audit_tree_hashes_no_truncate,
    ENABLE ALWAYS TRIGGER audit_tree_hashes_next_idx;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_next_id AFTER INSERT ON audit_checkpoints
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_check_next();
ALTER TABLE audit_checkpoints
    ENABLE ALWAYS TRIGGER audit_checkpoints_no_update,
    ENABLE ALWAYS TRIGGER audit_checkpoints_no_delete,
    ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate,
    ENABLE ALWAYS TRIGGER audit_checkpoints_next_id;

-- The application role reads and appends, nothing else. The migrating role
-- becomes a member, so that the store can SET ROLE to it.
REVOKE ALL ON audit_events, audit_tree_hashes, audit_checkpoints, audit_schema_version FROM PUBLIC;
GRANT SELECT, INSERT ON audit_events, audit_tree_hashes, audit_checkpoints TO klantbeeld_app;
GRANT SELECT ON audit_schema_version TO klantbeeld_app;
REVOKE ALL ON FUNCTION audit_append_start(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append_start(bigint) TO klantbeeld_app;
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO klantbeeld_app', current_schema());
    IF NOT pg_has_role(current_user, 'klantbeeld_app', 'USAGE') THEN
        EXECUTE format('GRANT klantbeeld_app TO %I', current_user);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- An audit log is never migrated down: going back would drop its history.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: it is never migrated down';
END
$$;
-- +goose StatementEnd
