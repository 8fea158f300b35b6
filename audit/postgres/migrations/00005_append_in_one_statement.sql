-- An append built on the frontier the store kept from its last append
-- (Store.appendKept) needs nothing read from the log but its size: it can
-- be one statement, sent and committed in one round trip, rather than
-- BEGIN, audit_append_start, the inserts and COMMIT. audit_append_at takes
-- the write lock, compares the log's size with the one the batch was built
-- on and only when they agree inserts the events and tree hashes, in the
-- statement's own transaction. It returns the size it found, so that the
-- store learns that another process appended and reads the log first next
-- time. The triggers check the inserts as for any other.

-- +goose Up

-- +goose StatementBegin
CREATE FUNCTION audit_append_at(lock_id bigint, size bigint,
    seqs bigint[], records bytea[], indexes bigint[], hashes bytea[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $$
DECLARE
    found bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_id);
    SELECT coalesce(max(seq), 0) INTO found FROM audit_events;
    IF found <> size THEN
        RETURN found;
    END IF;
    INSERT INTO audit_events (seq, record) SELECT unnest(seqs), unnest(records);
    INSERT INTO audit_tree_hashes (idx, hash) SELECT unnest(indexes), unnest(hashes);
    RETURN found;
END
$$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION audit_append_at(bigint, bigint, bigint[], bytea[], bigint[], bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append_at(bigint, bigint, bigint[], bytea[], bigint[], bytea[]) TO klantbeeld_app;

-- +goose Down
-- An audit log is never migrated down: going back would drop its history.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: it is never migrated down';
END
$$;
-- +goose StatementEnd
