// Package postgres is the audit store on PostgreSQL: pgx v5 with
// sqlc-generated queries, its schema made by embedded goose migrations. It
// keeps each event's exact record bytes, the RFC 6962 tree's stored hashes
// beside them and the signed checkpoints, the policy bundle versions and
// their activations (audit.PolicyStore) and the contact sessions
// (audit.ContactSessionStore), all append-only (triggers that fire ALWAYS,
// an application role with INSERT and SELECT only).
//
// Several gateway processes may share one database: an append takes a
// transaction-scoped advisory lock before it reads the last sequence
// number, so the events stay one gap-free sequence and one tree.
package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgdb"
)

// AppRole is the role the migrations make (NOLOGIN, cluster-wide) and
// grant USAGE on the schema and INSERT and SELECT on the log's tables, and
// nothing more. The migrating login role becomes a member of it.
const AppRole = "klantbeeld_app"

// NoRole as Options.Role keeps the login role of the DSN.
const NoRole = "NONE"

// Options tune Open. Zero values mean the defaults.
type Options struct {
	// Schema holds the log's tables; it is made if missing. Empty: the
	// first schema of the search path the DSN or the server sets (normally
	// public), which must exist.
	Schema string
	// Role is taken (SET ROLE) by every connection of the store after the
	// migrations ran, so that the gateway can only insert and select.
	// Empty: AppRole; NoRole: the login role as it is.
	Role string
	// MaxConns bounds the connection pool; 0: 4. The pool keeps that many
	// open (pgxpool's MinConns), so that a burst of requests after a
	// quiet spell does not wait for connections to be made first.
	MaxConns int32
	// LockWait is how long Ping waits for the write lock; 0: 1 s.
	LockWait time.Duration
	// IdleTimeout is how long the server lets a transaction of the store
	// sit idle before it ends it (idle_in_transaction_session_timeout), so
	// that a process that stalls while it holds the write lock does not
	// hold up every other; 0: 10 s.
	IdleTimeout time.Duration
}

// Store is an audit.Store on one PostgreSQL schema.
type Store struct {
	pool     *pgxpool.Pool
	q        *pgdb.Queries
	schema   string
	lockWait time.Duration
	// Advisory lock keys of this schema's appends, checkpoint writes and
	// policy writes.
	appendLock, checkpointLock, policyLock int64
	// frontier is the tree's right edge after this store's last append.
	frontier audit.Frontier
	// shared is set while appends find the log grown by another process
	// since this one's last: they read its state first (appendRead).
	shared atomic.Bool
	// keptAppends counts the appends appendKept committed.
	keptAppends atomic.Int64
}

var (
	_ audit.Store               = (*Store)(nil)
	_ audit.PolicyStore         = (*Store)(nil)
	_ audit.ContactSessionStore = (*Store)(nil)
)

// IsDSN reports whether dsn names a PostgreSQL database (postgres:// or
// postgresql://), the audit.dsn schemes this store serves.
func IsDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database of dsn (a postgres:// URL), brings the
// schema up to date (the migrations are serialized across processes) and
// returns the store, its connections in opts.Role. It refuses a log whose
// append-only guards are not in place (CheckAppendOnly: an error wrapping
// audit.ErrTampered); the rest of the log is checked by
// audit.CheckIntegrity. Errors never show the DSN's password; an
// unreachable server wraps audit.ErrUnavailable.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	s, err := open(ctx, dsn, opts, true)
	if err != nil {
		return nil, err
	}
	if err := s.CheckAppendOnly(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenExisting opens the log in an existing schema for examination
// (`klantbeeld audit verify|export`): no migration is applied and nothing
// is refused, so that a tampered log can still be verified and its
// CheckAppendOnly report what is missing. Do not append through it.
func OpenExisting(ctx context.Context, dsn string, opts Options) (*Store, error) {
	return open(ctx, dsn, opts, false)
}

func open(ctx context.Context, dsn string, opts Options, migrating bool) (*Store, error) {
	if !IsDSN(dsn) {
		return nil, errors.New("audit postgres: the DSN must be a postgres:// or postgresql:// URL")
	}
	if opts.Role == "" {
		opts.Role = AppRole
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 4
	}
	if opts.LockWait <= 0 {
		opts.LockWait = time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 10 * time.Second
	}
	scrub := passwordScrubber(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx hides the password only on a best-effort basis: never pass
		// its error on as it is.
		return nil, fmt.Errorf("audit postgres: invalid DSN: %s", scrub(err.Error()))
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	schema, err := prepareSchema(ctx, cfg.ConnConfig, opts.Schema, migrating)
	if err != nil {
		return nil, openError(scrub, err)
	}
	// Pin the schema the migrations ran in: with the role changed, a
	// search path such as "$user", public could name another one.
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(opts.IdleTimeout.Milliseconds())
	cfg.MaxConns, cfg.MinConns = opts.MaxConns, opts.MaxConns
	setup := durableCommits
	if !strings.EqualFold(opts.Role, NoRole) {
		setup = "SET ROLE " + pgx.Identifier{opts.Role}.Sanitize() + "; " + setup
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, setup)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, openError(scrub, err)
	}
	s := &Store{
		pool:           pool,
		q:              pgdb.New(pool),
		schema:         schema,
		lockWait:       opts.LockWait,
		appendLock:     lockKey("append", schema),
		checkpointLock: lockKey("checkpoint", schema),
		policyLock:     lockKey("policy", schema),
	}
	// The role must see the schema: current_schema() skips one it may not use.
	got, err := s.q.CurrentSchema(ctx)
	if err != nil {
		pool.Close()
		return nil, openError(scrub, err)
	}
	if got != schema {
		pool.Close()
		return nil, fmt.Errorf("audit postgres: role %s cannot use schema %s", opts.Role, schema)
	}
	return s, nil
}

// durableCommits makes sure a commit is on disk before it returns, even on
// a server whose default is synchronous_commit = off; a stronger setting
// (remote_apply, …) is kept.
const durableCommits = `SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'`

// Schema is the schema the store's tables are in.
func (s *Store) Schema() string { return s.schema }

// Append implements audit.Store. A commit whose answer is lost (the
// connection broke while committing) is settled with txid_status until ctx
// is done: the events are reported stored only when the transaction
// committed, and failed only when it did not or ctx ran out first.
//
// The store keeps the tree's frontier after its last append. While no
// other process appends, the next append is built on it and sent with the
// write lock in one round trip before the COMMIT (appendKept); the
// sequence number the lock returns, and the inserts' checks, hold that
// build to the log as it is. When another process appended meanwhile the
// transaction is rolled back and the append reads the log's state first,
// as every append does until one finds the log as this process left it.
func (s *Store) Append(ctx context.Context, events []audit.Event) ([]int64, error) {
	if len(events) == 0 {
		return []int64{}, nil
	}
	if size, ok := s.frontier.Size(); ok && !s.shared.Load() {
		seqs, final, err := s.appendKept(ctx, size, events)
		if final {
			return seqs, err
		}
	}
	return s.appendRead(ctx, events)
}

// appendKept appends events on the frontier the store kept, of a log that
// held size events after this store's last append, in one statement that
// is its own transaction (audit_append_at): one round trip, with the
// commit. final is false when nothing was committed and the append may be
// made again with the log's state read first, on another connection: the
// log had grown meanwhile, the server refused the statement, or the
// connection broke and the statement is known not to have committed
// (settleKept).
func (s *Store) appendKept(ctx context.Context, size int64, events []audit.Event) (seqs []int64, final bool, err error) {
	b, kept, err := s.frontier.NewBatch(size, events, tlog.HashReaderFunc(func([]int64) ([]tlog.Hash, error) {
		return nil, errors.New("the kept frontier changed") // another append of this store meanwhile
	}))
	if err != nil {
		return nil, false, nil
	}
	arg := insertParams(b)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		// No connection to be had: reading the log first would need one too.
		return nil, true, unavailable("connect", err)
	}
	defer conn.Release()
	pid := conn.Conn().PgConn().PID()
	found, err := pgdb.New(conn).AppendAt(ctx, pgdb.AppendAtParams{
		LockID: s.appendLock, Size: size,
		Seqs: arg.Seqs, Records: arg.Records, Indexes: arg.Indexes, Hashes: arg.Hashes,
	})
	if _, refused := errors.AsType[*pgconn.PgError](err); refused {
		return nil, false, nil // rolled back
	}
	if err != nil {
		// Sent, perhaps, and perhaps committed: find out which.
		committed, err := s.settleKept(ctx, pid, arg.Seqs[0], arg.Records[0], err)
		if err != nil {
			return nil, true, err
		}
		if !committed {
			return nil, false, nil
		}
	} else if found != size {
		// The log is not the size the batch was built on: another process
		// appended (a log that shrank is CheckIntegrity's to report).
		s.shared.Store(true)
		return nil, false, nil
	}
	kept()
	s.keptAppends.Add(1)
	return arg.Seqs, true, nil
}

// settleKept finds out what became of an appendKept on the connection to
// server process pid whose answer was lost (sendErr): whether it
// committed, or an error in doubt (ErrUnavailable) when that cannot be
// learnt before the deadline. Once that process has ended, so has its
// transaction, and the log holds the batch's first record at seq exactly
// when it committed. An append in doubt that did commit is found by the
// next one, whose size check then fails: it reads the log first.
func (s *Store) settleKept(ctx context.Context, pid uint32, seq int64, record []byte, sendErr error) (committed bool, err error) {
	if pgconn.SafeToRetry(sendErr) {
		return false, nil // never sent
	}
	answered := untilSettled(ctx, func(ctx context.Context) bool {
		// The old server process aborts as soon as it sees its client gone.
		gone, err := s.q.BackendGone(ctx, int32(pid))
		if err != nil || !gone {
			return false
		}
		r, err := s.q.GetEvent(ctx, seq)
		switch {
		case err == nil && bytes.Equal(r.Record, record):
			committed = true
			return true
		case err == nil || errors.Is(err, pgx.ErrNoRows):
			return true
		}
		return false
	})
	if !answered {
		return false, fmt.Errorf("%w: postgres: append on server process %d in doubt: %w", audit.ErrUnavailable, pid, sendErr)
	}
	return committed, nil
}

// untilSettled asks settled again, at growing intervals, until it says
// yes (true) or ctx is done (false). A deadline of ctx is moved on by
// settleGrace.
func untilSettled(ctx context.Context, settled func(context.Context) bool) bool {
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), deadline.Add(settleGrace))
		defer cancel()
	}
	for wait := 20 * time.Millisecond; !settled(ctx); wait = min(2*wait, 500*time.Millisecond) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
	return true
}

// appendRead appends events in a transaction that takes the write lock
// and reads the log's last sequence number and frontier first.
func (s *Store) appendRead(ctx context.Context, events []audit.Event) ([]int64, error) {
	size, kept := s.frontier.Size()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, unavailable("begin", err)
	}
	ended := false
	defer func() {
		if !ended {
			rollback(ctx, tx)
		}
	}()
	q := s.q.WithTx(tx)
	start, err := q.AppendStart(ctx, s.appendLock)
	if err != nil {
		return nil, unavailable("write lock", err)
	}
	b, keep, err := s.frontier.NewBatch(start.LastSeq, events, frontierReader(ctx, q, start))
	if err != nil {
		return nil, unavailable("tree", err)
	}
	arg := insertParams(b)
	if err := q.InsertBatch(ctx, arg); err != nil {
		return nil, unavailable("insert", err)
	}
	ended = true // by the commit, whether it succeeds or not
	if err := tx.Commit(ctx); err != nil {
		if err := s.settle(ctx, start.Txid, err); err != nil {
			return nil, err
		}
	}
	keep()
	// Whether another process appended since this one's last append.
	s.shared.Store(kept && start.LastSeq != size)
	return arg.Seqs, nil
}

// insertParams are InsertBatch's arguments for b.
func insertParams(b audit.Batch) pgdb.InsertBatchParams {
	arg := pgdb.InsertBatchParams{
		Seqs:    make([]int64, len(b.Records)),
		Records: make([][]byte, len(b.Records)),
		Indexes: make([]int64, len(b.Hashes)),
		Hashes:  make([][]byte, len(b.Hashes)),
	}
	for i, r := range b.Records {
		arg.Seqs[i], arg.Records[i] = r.Seq, r.Data
	}
	for i, h := range b.Hashes {
		arg.Indexes[i], arg.Hashes[i] = h.Index, h.Hash[:]
	}
	return arg
}

// frontierReader reads the tree hashes NewBatch asks for: the frontier
// AppendStart fetched when it is the one asked for, else from the
// transaction.
func frontierReader(ctx context.Context, q *pgdb.Queries, start pgdb.AppendStartRow) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		if slices.Equal(idx, start.FrontierIdx) && len(start.FrontierHash) == len(idx) {
			out := make([]tlog.Hash, len(idx))
			for i, h := range start.FrontierHash {
				if len(h) != len(out[i]) {
					return nil, fmt.Errorf("%w: tree hash %d has %d bytes", audit.ErrTampered, idx[i], len(h))
				}
				copy(out[i][:], h)
			}
			return out, nil
		}
		return readHashes(ctx, q, idx)
	})
}

// rollback ends tx, also when ctx is done, but never waits long for a
// connection that does not answer (pgx closes it then).
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// settleGrace is how long past the caller's deadline a commit in doubt is
// still settled: a commit that merely ran out of time is better reported
// stored than failed while it is stored.
const settleGrace = time.Second

// settle finds out whether transaction txid committed after its COMMIT
// failed with commitErr: nil if it did, else an error wrapping
// audit.ErrUnavailable.
func (s *Store) settle(ctx context.Context, txid int64, commitErr error) error {
	if _, ok := errors.AsType[*pgconn.PgError](commitErr); ok || pgconn.SafeToRetry(commitErr) {
		// The server refused, or the COMMIT was never sent: rolled back.
		return unavailable("commit", commitErr)
	}
	committed := false
	answered := untilSettled(ctx, func(ctx context.Context) bool {
		// Until the old server process ends the transaction (it aborts as
		// soon as it sees its client gone) it is "in progress".
		status, err := s.q.TxStatus(ctx, txid)
		committed = err == nil && status == "committed"
		return committed || (err == nil && status == "aborted")
	})
	switch {
	case !answered:
		return fmt.Errorf("%w: postgres: commit of transaction %d in doubt: %w", audit.ErrUnavailable, txid, commitErr)
	case !committed:
		return unavailable("commit", commitErr)
	}
	return nil
}

// Record implements audit.Store.
func (s *Store) Record(ctx context.Context, seq int64) (audit.Record, error) {
	row, err := s.q.GetEvent(ctx, seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Record{}, fmt.Errorf("audit postgres: event %d: %w", seq, audit.ErrNotFound)
	}
	if err != nil {
		return audit.Record{}, unavailable("event", err)
	}
	return audit.Record{Seq: row.Seq, Data: row.Record}, nil
}

// Records implements audit.Store.
func (s *Store) Records(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	rows, err := s.q.ListEvents(ctx, pgdb.ListEventsParams{Seq: after, Limit: clampLimit(limit)})
	if err != nil {
		return nil, unavailable("events", err)
	}
	out := make([]audit.Record, len(rows))
	for i, r := range rows {
		out[i] = audit.Record{Seq: r.Seq, Data: r.Record}
	}
	return out, nil
}

// Search implements audit.Store.
func (s *Store) Search(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	from, to := f.FilterTimes()
	before := f.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	page := int32(f.PageSize())
	ctxKey := ""
	if f.Context != nil {
		ctxKey = f.Context.Key()
	}
	var out []audit.Record
	var err error
	switch {
	case f.Subject != "":
		var rows []pgdb.SearchBySubjectRow
		rows, err = s.q.SearchBySubject(ctx, pgdb.SearchBySubjectParams{
			Subject: f.Subject, Actor: f.Actor, Department: f.Department, Purpose: f.Purpose, Decision: f.Decision,
			ContextKey: ctxKey, Flagged: f.Flagged, TimeFrom: from, TimeTo: to, Before: before, PageSize: page,
		})
		for _, r := range rows {
			out = append(out, audit.Record{Seq: r.Seq, Data: r.Record})
		}
	case f.Actor != "":
		var rows []pgdb.SearchByActorRow
		rows, err = s.q.SearchByActor(ctx, pgdb.SearchByActorParams{
			Actor: f.Actor, Department: f.Department, Purpose: f.Purpose, Decision: f.Decision,
			ContextKey: ctxKey, Flagged: f.Flagged, TimeFrom: from, TimeTo: to, Before: before, PageSize: page,
		})
		for _, r := range rows {
			out = append(out, audit.Record{Seq: r.Seq, Data: r.Record})
		}
	case f.Context != nil:
		var rows []pgdb.SearchByContextRow
		rows, err = s.q.SearchByContext(ctx, pgdb.SearchByContextParams{
			ContextKey: ctxKey, Department: f.Department, Purpose: f.Purpose, Decision: f.Decision,
			Flagged: f.Flagged, TimeFrom: from, TimeTo: to, Before: before, PageSize: page,
		})
		for _, r := range rows {
			out = append(out, audit.Record{Seq: r.Seq, Data: r.Record})
		}
	case f.Flagged:
		var rows []pgdb.SearchFlaggedRow
		rows, err = s.q.SearchFlagged(ctx, pgdb.SearchFlaggedParams{
			Department: f.Department, Purpose: f.Purpose, Decision: f.Decision,
			TimeFrom: from, TimeTo: to, Before: before, PageSize: page,
		})
		for _, r := range rows {
			out = append(out, audit.Record{Seq: r.Seq, Data: r.Record})
		}
	default:
		var rows []pgdb.SearchRow
		rows, err = s.q.Search(ctx, pgdb.SearchParams{
			Department: f.Department, Purpose: f.Purpose, Decision: f.Decision,
			ContextKey: ctxKey, Flagged: f.Flagged, TimeFrom: from, TimeTo: to, Before: before, PageSize: page,
		})
		for _, r := range rows {
			out = append(out, audit.Record{Seq: r.Seq, Data: r.Record})
		}
	}
	if err != nil {
		return nil, unavailable("search", err)
	}
	if out == nil {
		out = []audit.Record{}
	}
	return out, nil
}

// ReadHashes implements audit.Store.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return readHashes(ctx, s.q, indexes)
}

// readHashes reads stored tree hashes through q (the pool, or the append
// transaction), a contiguous ascending run as one range scan.
func readHashes(ctx context.Context, q *pgdb.Queries, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return []tlog.Hash{}, nil
	}
	var rows []pgdb.AuditTreeHash
	var err error
	if lo, hi := indexes[0], indexes[len(indexes)-1]; hi-lo == int64(len(indexes)-1) && audit.Contiguous(indexes) {
		rows, err = q.HashRange(ctx, pgdb.HashRangeParams{Lo: lo, Hi: hi})
	} else {
		rows, err = q.Hashes(ctx, indexes)
	}
	if err != nil {
		return nil, unavailable("tree hashes", err)
	}
	found := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		found[r.Idx] = r.Hash
	}
	return audit.OrderHashes(indexes, found)
}

// AddCheckpoint implements audit.Store. Writers are serialized (across
// processes too) so that the ids stay gap-free.
func (s *Store) AddCheckpoint(ctx context.Context, c audit.Checkpoint) (id int64, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, unavailable("begin", err)
	}
	defer func() {
		if err != nil {
			rollback(ctx, tx)
		}
	}()
	q := s.q.WithTx(tx)
	if err := q.LockCheckpoints(ctx, s.checkpointLock); err != nil {
		return 0, unavailable("checkpoint lock", err)
	}
	id, err = q.InsertCheckpoint(ctx, pgdb.InsertCheckpointParams{Size: c.Size, Note: c.Note})
	if err != nil {
		return 0, unavailable("insert checkpoint", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, unavailable("commit checkpoint", err)
	}
	return id, nil
}

// Checkpoints implements audit.Store.
func (s *Store) Checkpoints(ctx context.Context, after int64, limit int) ([]audit.Checkpoint, error) {
	rows, err := s.q.ListCheckpoints(ctx, pgdb.ListCheckpointsParams{ID: after, Limit: clampLimit(limit)})
	if err != nil {
		return nil, unavailable("checkpoints", err)
	}
	out := make([]audit.Checkpoint, len(rows))
	for i, r := range rows {
		out[i] = audit.Checkpoint{ID: r.ID, Size: r.Size, Note: r.Note}
	}
	return out, nil
}

// LatestCheckpoint implements audit.Store.
func (s *Store) LatestCheckpoint(ctx context.Context) (audit.Checkpoint, error) {
	r, err := s.q.LatestCheckpoint(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Checkpoint{}, fmt.Errorf("audit postgres: no checkpoint: %w", audit.ErrNotFound)
	}
	if err != nil {
		return audit.Checkpoint{}, unavailable("latest checkpoint", err)
	}
	return audit.Checkpoint{ID: r.ID, Size: r.Size, Note: r.Note}, nil
}

// Stats implements audit.Store. It counts every row: a full scan of both
// tables, meant for start-up and verification, not for every request.
func (s *Store) Stats(ctx context.Context) (audit.Stats, error) {
	r, err := s.q.Stats(ctx)
	if err != nil {
		return audit.Stats{}, unavailable("stats", err)
	}
	return audit.Stats{LastSeq: r.LastSeq, Events: r.Events, Hashes: r.Hashes}, nil
}

// Ping implements audit.Store: in a transaction it rolls back, it checks
// that the server takes writes (not a standby, not read-only) and takes the
// write lock and the tables' insert locks, waiting at most Options.LockWait.
func (s *Store) Ping(ctx context.Context) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return unavailable("ping", err)
	}
	defer rollback(ctx, tx)
	q := s.q.WithTx(tx)
	st, err := q.WriteState(ctx)
	if err != nil {
		return unavailable("ping", err)
	}
	if st.InRecovery || st.ReadOnly {
		return fmt.Errorf("%w: postgres: the server takes no writes (standby or read-only)", audit.ErrUnavailable)
	}
	if err := q.SetLockTimeout(ctx, fmt.Sprintf("%dms", max(s.lockWait.Milliseconds(), 1))); err != nil {
		return unavailable("ping", err)
	}
	if err := q.LockAppend(ctx, s.appendLock); err != nil {
		return unavailable("ping: write lock", err)
	}
	if err := q.ProbeWriteLocks(ctx); err != nil {
		return unavailable("ping: table locks", err)
	}
	return nil
}

// Close implements audit.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func clampLimit(limit int) int32 {
	return int32(min(max(limit, 0), math.MaxInt32))
}

// lockKey is the advisory lock key of one kind of write in one schema, so
// that logs in different schemas of a database do not wait for each other.
func lockKey(kind, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("klantbeeld audit " + kind + " " + schema))
	return int64(h.Sum64())
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: postgres: %s: %w", audit.ErrUnavailable, what, err)
}
