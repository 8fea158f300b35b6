-- The audit store's queries (sqlc). There is no UPDATE and no DELETE: the
-- log is append-only, and the triggers of the migrations refuse both.

-- name: LastSeq :one
SELECT CAST(COALESCE(MAX(seq), 0) AS INTEGER) AS last_seq FROM audit_events;

-- name: InsertEvent :exec
INSERT INTO audit_events (seq, record) VALUES (?, ?);

-- name: InsertHash :exec
INSERT INTO audit_tree_hashes (idx, hash) VALUES (?, ?);

-- name: GetEvent :one
SELECT seq, record FROM audit_events WHERE seq = ?;

-- name: ListEvents :many
SELECT seq, record FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: Hashes :many
SELECT idx, hash FROM audit_tree_hashes WHERE idx IN (sqlc.slice(indexes));

-- name: SearchBySubject :many
SELECT seq, record FROM audit_events
WHERE subject = sqlc.arg(subject)
  AND (sqlc.arg(actor) = '' OR actor_sub = sqlc.arg(actor))
  AND (sqlc.arg(department) = '' OR department = sqlc.arg(department))
  AND (sqlc.arg(purpose) = '' OR purpose = sqlc.arg(purpose))
  AND (sqlc.arg(decision) = '' OR decision = sqlc.arg(decision))
  AND (sqlc.arg(context_key) = '' OR context_key = sqlc.arg(context_key))
  AND flagged >= sqlc.arg(min_flagged)
  AND time >= sqlc.arg(time_from) AND time < sqlc.arg(time_to)
  AND seq < sqlc.arg(before)
ORDER BY seq DESC
LIMIT sqlc.arg(page_size);

-- name: SearchByActor :many
SELECT seq, record FROM audit_events
WHERE actor_sub = sqlc.arg(actor)
  AND (sqlc.arg(department) = '' OR department = sqlc.arg(department))
  AND (sqlc.arg(purpose) = '' OR purpose = sqlc.arg(purpose))
  AND (sqlc.arg(decision) = '' OR decision = sqlc.arg(decision))
  AND (sqlc.arg(context_key) = '' OR context_key = sqlc.arg(context_key))
  AND flagged >= sqlc.arg(min_flagged)
  AND time >= sqlc.arg(time_from) AND time < sqlc.arg(time_to)
  AND seq < sqlc.arg(before)
ORDER BY seq DESC
LIMIT sqlc.arg(page_size);

-- name: Search :many
SELECT seq, record FROM audit_events
WHERE (sqlc.arg(department) = '' OR department = sqlc.arg(department))
  AND (sqlc.arg(purpose) = '' OR purpose = sqlc.arg(purpose))
  AND (sqlc.arg(decision) = '' OR decision = sqlc.arg(decision))
  AND (sqlc.arg(context_key) = '' OR context_key = sqlc.arg(context_key))
  AND flagged >= sqlc.arg(min_flagged)
  AND time >= sqlc.arg(time_from) AND time < sqlc.arg(time_to)
  AND seq < sqlc.arg(before)
ORDER BY seq DESC
LIMIT sqlc.arg(page_size);

-- name: SearchByContext :many
SELECT seq, record FROM audit_events
WHERE context_key = sqlc.arg(context_key)
  AND (sqlc.arg(department) = '' OR department = sqlc.arg(department))
  AND (sqlc.arg(purpose) = '' OR purpose = sqlc.arg(purpose))
  AND (sqlc.arg(decision) = '' OR decision = sqlc.arg(decision))
  AND flagged >= sqlc.arg(min_flagged)
  AND time >= sqlc.arg(time_from) AND time < sqlc.arg(time_to)
  AND seq < sqlc.arg(before)
ORDER BY seq DESC
LIMIT sqlc.arg(page_size);

-- name: SearchFlagged :many
SELECT seq, record FROM audit_events
WHERE flagged = 1
  AND (sqlc.arg(department) = '' OR department = sqlc.arg(department))
  AND (sqlc.arg(purpose) = '' OR purpose = sqlc.arg(purpose))
  AND (sqlc.arg(decision) = '' OR decision = sqlc.arg(decision))
  AND time >= sqlc.arg(time_from) AND time < sqlc.arg(time_to)
  AND seq < sqlc.arg(before)
ORDER BY seq DESC
LIMIT sqlc.arg(page_size);

-- name: InsertCheckpoint :one
INSERT INTO audit_checkpoints (id, size, note)
VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM audit_checkpoints), ?, ?)
RETURNING id;

-- name: ListCheckpoints :many
SELECT id, size, note FROM audit_checkpoints WHERE id > ? ORDER BY id LIMIT ?;

-- name: LatestCheckpoint :one
SELECT id, size, note FROM audit_checkpoints ORDER BY size DESC, id DESC LIMIT 1;

-- name: Stats :one
SELECT
    CAST((SELECT COALESCE(MAX(seq), 0) FROM audit_events) AS INTEGER) AS last_seq,
    CAST((SELECT COUNT(*) FROM audit_events) AS INTEGER) AS events,
    CAST((SELECT COUNT(*) FROM audit_tree_hashes) AS INTEGER) AS hashes;

-- name: HashRangeHex :one
-- One row for a whole run of hashes, hex-encoded in index order: Verify
-- reads twice as many hashes as events, and a row each costs more than the
-- hash.
SELECT CAST(COUNT(*) AS INTEGER) AS n, CAST(COALESCE(group_concat(hex(hash), ''), '') AS TEXT) AS hashes
FROM (SELECT hash FROM audit_tree_hashes WHERE idx BETWEEN sqlc.arg(lo) AND sqlc.arg(hi) ORDER BY idx);

-- Policy bundle versions and their activations (issue 7), append-only too.

-- name: GetPolicyVersion :one
SELECT id, files FROM audit_policy_versions WHERE id = ?;

-- name: InsertPolicyVersion :exec
INSERT INTO audit_policy_versions (seq, id, files)
VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_policy_versions), sqlc.arg(id), sqlc.arg(files));

-- name: ListPolicyVersions :many
SELECT id FROM audit_policy_versions ORDER BY seq;

-- name: InsertPolicyActivation :one
INSERT INTO audit_policy_activations (seq, version, previous, activated_by, activated_at, reason, is_rollback)
VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_policy_activations),
        sqlc.arg(version), sqlc.arg(previous), sqlc.arg(activated_by), sqlc.arg(activated_at),
        sqlc.arg(reason), sqlc.arg(is_rollback))
RETURNING seq;

-- name: ListPolicyActivations :many
SELECT seq, version, previous, activated_by, activated_at, reason, is_rollback
FROM audit_policy_activations WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: LatestPolicyActivation :one
SELECT seq, version, previous, activated_by, activated_at, reason, is_rollback
FROM audit_policy_activations ORDER BY seq DESC LIMIT 1;

-- Contact sessions, append-only too. A session's last activity is the time
-- of the latest allowed event about a resident that names it: the newest by
-- seq, read backwards on the context index, so that a busy session costs no
-- more than a new one (events are numbered in the order they commit, within
-- milliseconds of their time).

-- name: InsertContactSession :exec
INSERT INTO audit_contact_sessions (id, owner, department, kanaal, opened_at)
VALUES (sqlc.arg(id), sqlc.arg(owner), sqlc.arg(department), sqlc.arg(kanaal), sqlc.arg(opened_at));

-- name: GetContactSession :one
SELECT s.id, s.owner, s.department, s.kanaal, s.opened_at,
       CAST(COALESCE(c.klantcontact, '') AS TEXT) AS klantcontact,
       CAST(COALESCE(c.closed_at, '') AS TEXT) AS closed_at,
       CAST(COALESCE((SELECT e.time FROM audit_events e
                      WHERE e.context_key = 'contact-session/' || s.id
                        AND e.decision = 'allow' AND e.subject <> ''
                      ORDER BY e.seq DESC LIMIT 1), '') AS TEXT) AS last_event
FROM audit_contact_sessions s
LEFT JOIN audit_contact_session_closures c ON c.session_id = s.id
WHERE s.id = sqlc.arg(id);

-- name: InsertContactSessionClosure :exec
INSERT INTO audit_contact_session_closures (session_id, klantcontact, closed_at)
VALUES (sqlc.arg(session_id), sqlc.arg(klantcontact), sqlc.arg(closed_at));
