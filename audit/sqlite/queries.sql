-- name: InsertEvent :one
INSERT INTO audit_events (
    recorded_at, trace_id, operation, actor_sub, actor_department,
    actor_organisation, purpose, subject, decision, status, record
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING seq;

-- name: GetEvent :one
SELECT seq, record FROM audit_events WHERE seq = ?;

-- name: ListEvents :many
SELECT seq, record FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: LastSeq :one
SELECT CAST(COALESCE(MAX(seq), 0) AS INTEGER) AS last_seq FROM audit_events;
