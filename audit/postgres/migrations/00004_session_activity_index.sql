-- A contact session's last activity is the time of its latest allowed
-- event about a resident (GetContactSession), asked before every look-up
-- made in the session. The context index of 00003 holds every event of the
-- session, refused ones too: the planner, estimating that few of them pass
-- the filter, read them all and sorted them, so each look-up cost more than
-- the one before (measured: 1.5 ms after 700 look-ups in one session, and
-- the gateway's latency grew with it). This index holds exactly the events
-- that count, so the latest is the first one read backwards.

-- +goose Up

CREATE INDEX audit_events_session_activity ON audit_events (audit_context_key(record), seq)
    WHERE (search).decision = 'allow' AND COALESCE((search).subject, '') <> '';

-- +goose Down
-- An audit log is never migrated down: going back would drop its history.
-- +goose StatementBegin
DO $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: it is never migrated down';
END
$$;
-- +goose StatementEnd
