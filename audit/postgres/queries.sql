-- The PostgreSQL audit store's queries (sqlc). There is no UPDATE and no
-- DELETE: the log is append-only, and the triggers of the migrations refuse
-- both.

-- name: LockAppend :exec
-- Takes the write lock of the log (Ping), until the transaction ends.
SELECT pg_advisory_xact_lock(sqlc.arg(lock_id)::bigint);

-- name: AppendStart :one
-- Takes the write lock and returns the transaction's id (to settle a
-- commit whose answer was lost), the last sequence number and the tree's
-- frontier, all read after the lock was granted.
SELECT txid::bigint AS txid, last_seq::bigint AS last_seq,
       frontier_idx::bigint[] AS frontier_idx, frontier_hash::bytea[] AS frontier_hash
FROM audit_append_start(sqlc.arg(lock_id)::bigint);

-- name: AppendAt :one
-- The append on a kept frontier in one statement (and transaction): the
-- events and hashes go in only when the log holds size events; the size
-- found is returned either way.
SELECT audit_append_at(sqlc.arg(lock_id)::bigint, sqlc.arg(size)::bigint,
    sqlc.arg(seqs)::bigint[], sqlc.arg(records)::bytea[],
    sqlc.arg(indexes)::bigint[], sqlc.arg(hashes)::bytea[])::bigint AS found;

-- name: BackendGone :one
-- Whether the server process pid has ended, and with it its transaction.
SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid = sqlc.arg(pid)::integer) AS gone;

-- name: TxStatus :one
SELECT COALESCE(txid_status(sqlc.arg(txid)::bigint), '')::text AS status;

-- name: InsertBatch :exec
-- The events and the tree hashes they add, in one statement.
WITH events AS (
    INSERT INTO audit_events (seq, record)
    SELECT unnest(sqlc.arg(seqs)::bigint[]), unnest(sqlc.arg(records)::bytea[])
)
INSERT INTO audit_tree_hashes (idx, hash)
SELECT unnest(sqlc.arg(indexes)::bigint[]), unnest(sqlc.arg(hashes)::bytea[]);

-- name: GetEvent :one
SELECT seq, record FROM audit_events WHERE seq = $1;

-- name: ListEvents :many
SELECT seq, record FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2;

-- name: HashRange :many
SELECT idx, hash FROM audit_tree_hashes
WHERE idx BETWEEN sqlc.arg(lo)::bigint AND sqlc.arg(hi)::bigint
ORDER BY idx;

-- name: Hashes :many
SELECT idx, hash FROM audit_tree_hashes WHERE idx = ANY(sqlc.arg(indexes)::bigint[]);

-- The searches are three queries rather than one with optional conditions,
-- so that the planner can use the subject and actor indexes.

-- name: SearchBySubject :many
SELECT seq, record FROM audit_events
WHERE (search).subject = sqlc.arg(subject)::text
  AND (sqlc.arg(actor)::text = '' OR (search).actor_sub = sqlc.arg(actor)::text)
  AND (sqlc.arg(department)::text = '' OR (search).department = sqlc.arg(department)::text)
  AND (sqlc.arg(purpose)::text = '' OR (search).purpose = sqlc.arg(purpose)::text)
  AND (sqlc.arg(decision)::text = '' OR (search).decision = sqlc.arg(decision)::text)
  AND (sqlc.arg(context_key)::text = '' OR audit_context_key(record) = sqlc.arg(context_key)::text)
  AND (NOT sqlc.arg(flagged)::boolean OR audit_flagged(record))
  AND (search).event_time >= sqlc.arg(time_from)::text AND (search).event_time < sqlc.arg(time_to)::text
  AND seq < sqlc.arg(before)::bigint
ORDER BY seq DESC
LIMIT sqlc.arg(page_size)::integer;

-- name: SearchByActor :many
SELECT seq, record FROM audit_events
WHERE (search).actor_sub = sqlc.arg(actor)::text
  AND (sqlc.arg(department)::text = '' OR (search).department = sqlc.arg(department)::text)
  AND (sqlc.arg(purpose)::text = '' OR (search).purpose = sqlc.arg(purpose)::text)
  AND (sqlc.arg(decision)::text = '' OR (search).decision = sqlc.arg(decision)::text)
  AND (sqlc.arg(context_key)::text = '' OR audit_context_key(record) = sqlc.arg(context_key)::text)
  AND (NOT sqlc.arg(flagged)::boolean OR audit_flagged(record))
  AND (search).event_time >= sqlc.arg(time_from)::text AND (search).event_time < sqlc.arg(time_to)::text
  AND seq < sqlc.arg(before)::bigint
ORDER BY seq DESC
LIMIT sqlc.arg(page_size)::integer;

-- name: Search :many
SELECT seq, record FROM audit_events
WHERE (sqlc.arg(department)::text = '' OR (search).department = sqlc.arg(department)::text)
  AND (sqlc.arg(purpose)::text = '' OR (search).purpose = sqlc.arg(purpose)::text)
  AND (sqlc.arg(decision)::text = '' OR (search).decision = sqlc.arg(decision)::text)
  AND (sqlc.arg(context_key)::text = '' OR audit_context_key(record) = sqlc.arg(context_key)::text)
  AND (NOT sqlc.arg(flagged)::boolean OR audit_flagged(record))
  AND (search).event_time >= sqlc.arg(time_from)::text AND (search).event_time < sqlc.arg(time_to)::text
  AND seq < sqlc.arg(before)::bigint
ORDER BY seq DESC
LIMIT sqlc.arg(page_size)::integer;

-- name: SearchByContext :many
SELECT seq, record FROM audit_events
WHERE audit_context_key(record) = sqlc.arg(context_key)::text
  AND (sqlc.arg(department)::text = '' OR (search).department = sqlc.arg(department)::text)
  AND (sqlc.arg(purpose)::text = '' OR (search).purpose = sqlc.arg(purpose)::text)
  AND (sqlc.arg(decision)::text = '' OR (search).decision = sqlc.arg(decision)::text)
  AND (NOT sqlc.arg(flagged)::boolean OR audit_flagged(record))
  AND (search).event_time >= sqlc.arg(time_from)::text AND (search).event_time < sqlc.arg(time_to)::text
  AND seq < sqlc.arg(before)::bigint
ORDER BY seq DESC
LIMIT sqlc.arg(page_size)::integer;

-- name: SearchFlagged :many
SELECT seq, record FROM audit_events
WHERE audit_flagged(record)
  AND (sqlc.arg(department)::text = '' OR (search).department = sqlc.arg(department)::text)
  AND (sqlc.arg(purpose)::text = '' OR (search).purpose = sqlc.arg(purpose)::text)
  AND (sqlc.arg(decision)::text = '' OR (search).decision = sqlc.arg(decision)::text)
  AND (search).event_time >= sqlc.arg(time_from)::text AND (search).event_time < sqlc.arg(time_to)::text
  AND seq < sqlc.arg(before)::bigint
ORDER BY seq DESC
LIMIT sqlc.arg(page_size)::integer;

-- name: LockCheckpoints :exec
-- Serializes checkpoint writers, so that ids stay gap-free.
SELECT pg_advisory_xact_lock(sqlc.arg(lock_id)::bigint);

-- name: InsertCheckpoint :one
INSERT INTO audit_checkpoints (id, size, note)
VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM audit_checkpoints), sqlc.arg(size)::bigint, sqlc.arg(note)::bytea)
RETURNING id;

-- name: ListCheckpoints :many
SELECT id, size, note FROM audit_checkpoints WHERE id > $1 ORDER BY id LIMIT $2;

-- name: LatestCheckpoint :one
SELECT id, size, note FROM audit_checkpoints ORDER BY size DESC, id DESC LIMIT 1;

-- name: Stats :one
SELECT
    (SELECT COALESCE(MAX(seq), 0) FROM audit_events)::bigint AS last_seq,
    (SELECT COUNT(*) FROM audit_events)::bigint AS events,
    (SELECT COUNT(*) FROM audit_tree_hashes)::bigint AS hashes;

-- name: WriteState :one
-- Whether this server takes writes: not a standby, not read-only.
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('transaction_read_only') = 'on' AS read_only;

-- name: SetLockTimeout :exec
SELECT set_config('lock_timeout', sqlc.arg(timeout)::text, true);

-- name: ProbeWriteLocks :exec
-- Takes the table locks an append takes, to learn that nothing blocks them.
LOCK TABLE audit_events, audit_tree_hashes IN ROW EXCLUSIVE MODE;

-- name: CurrentSchema :one
SELECT COALESCE(current_schema(), '')::text AS schema;

-- name: Triggers :many
-- The triggers on the log's tables (the policy tables included) in the current schema: whether each
-- fires ALWAYS (enabled 'A'), when (kind, pg_trigger.tgtype) and what, and
-- whether that function is in the same schema.
SELECT c.relname::text AS table_name,
       t.tgname::text AS trigger_name,
       t.tgenabled::text AS enabled,
       t.tgtype::integer AS kind,
       p.proname::text AS function_name,
       (p.pronamespace = n.oid)::boolean AS function_here
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
WHERE n.nspname = current_schema()
  AND c.relname IN ('audit_events', 'audit_tree_hashes', 'audit_checkpoints',
                    'audit_policy_versions', 'audit_policy_activations',
                    'audit_contact_sessions', 'audit_contact_session_closures')
  AND NOT t.tgisinternal
ORDER BY t.tgname;

-- name: Tables :many
-- Which of the log's tables (and goose's) the current schema has.
SELECT c.relname::text AS name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
  AND c.relname IN ('audit_events', 'audit_tree_hashes', 'audit_checkpoints',
                    'audit_policy_versions', 'audit_policy_activations',
                    'audit_contact_sessions', 'audit_contact_session_closures', 'audit_schema_version');

-- name: Functions :many
-- The log's functions in the current schema and their source.
SELECT p.proname::text AS name, p.prosrc::text AS body
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema() AND p.proname LIKE 'audit\_%';

-- name: SearchColumn :many
-- How audit_events.search is made: generated ('s') from an expression.
SELECT a.attgenerated::text AS generated,
       COALESCE(pg_get_expr(d.adbin, d.adrelid), '')::text AS expression
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = current_schema() AND c.relname = 'audit_events'
  AND a.attname = 'search' AND NOT a.attisdropped;

-- Policy bundle versions and their activations (issue 7), append-only too.

-- name: LockPolicies :exec
-- Serializes the writers of versions and activations, so that their
-- numbers stay gap-free and an activation's check of the active version
-- holds until it commits.
SELECT pg_advisory_xact_lock(sqlc.arg(lock_id)::bigint);

-- name: GetPolicyVersion :one
SELECT id, files FROM audit_policy_versions WHERE id = $1;

-- name: InsertPolicyVersion :exec
INSERT INTO audit_policy_versions (seq, id, files)
VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_policy_versions), sqlc.arg(id)::text, sqlc.arg(files)::text);

-- name: ListPolicyVersions :many
SELECT id FROM audit_policy_versions ORDER BY seq;

-- name: InsertPolicyActivation :one
INSERT INTO audit_policy_activations (seq, version, previous, activated_by, activated_at, reason, is_rollback)
VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_policy_activations),
        sqlc.arg(version)::text, sqlc.arg(previous)::text, sqlc.arg(activated_by)::text,
        sqlc.arg(activated_at)::timestamptz, sqlc.arg(reason)::text, sqlc.arg(is_rollback)::boolean)
RETURNING seq;

-- name: ListPolicyActivations :many
SELECT seq, version, previous, activated_by, activated_at, reason, is_rollback
FROM audit_policy_activations WHERE seq > $1 ORDER BY seq LIMIT $2;

-- name: LatestPolicyActivation :one
SELECT seq, version, previous, activated_by, activated_at, reason, is_rollback
FROM audit_policy_activations ORDER BY seq DESC LIMIT 1;

-- Contact sessions, append-only too. A session's last activity is the time
-- of the latest allowed event about a resident that names it.

-- name: InsertContactSession :one
INSERT INTO audit_contact_sessions (id, owner, department, kanaal, opened_at)
VALUES (sqlc.arg(id)::text, sqlc.arg(owner)::text, sqlc.arg(department)::text, sqlc.arg(kanaal)::text,
        sqlc.arg(opened_at)::timestamptz)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: GetContactSession :one
SELECT s.id, s.owner, s.department, s.kanaal, s.opened_at,
       COALESCE(c.klantcontact, '')::text AS klantcontact,
       c.closed_at::timestamptz AS closed_at,
       COALESCE((SELECT (e.search).event_time FROM audit_events e
                 WHERE audit_context_key(e.record) = 'contact-session/' || s.id
                   AND (e.search).decision = 'allow' AND COALESCE((e.search).subject, '') <> ''
                 ORDER BY e.seq DESC LIMIT 1), '')::text AS last_event
FROM audit_contact_sessions s
LEFT JOIN audit_contact_session_closures c ON c.session_id = s.id
WHERE s.id = sqlc.arg(id)::text;

-- name: InsertContactSessionClosure :execrows
INSERT INTO audit_contact_session_closures (session_id, klantcontact, closed_at)
VALUES (sqlc.arg(session_id)::text, sqlc.arg(klantcontact)::text, sqlc.arg(closed_at)::timestamptz)
ON CONFLICT (session_id) DO NOTHING;
