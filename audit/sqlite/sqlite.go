// Package sqlite is the embedded audit store: SQLite through the pure-Go
// modernc driver and sqlc-generated queries, in WAL mode with
// synchronous=FULL so that an appended event survives a crash. It keeps the
// policy bundle versions and their activations (audit.PolicyStore) and the
// contact sessions (audit.ContactSessionStore) beside the log. Its schema
// and append-only triggers are made by goose migrations (migrations/), and
// only by them: Open refuses a log whose triggers are not all in place.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/sqlite/sqlitedb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// pingWait is how long Ping waits for the write lock before it reports the
// store unavailable: readiness must not hang on a lock held elsewhere.
const pingWait = 250

// Store is an audit.Store on one SQLite file.
type Store struct {
	db *sql.DB
	// pingDB is one connection with a short busy timeout, for Ping.
	pingDB *sql.DB
	q      *sqlitedb.Queries
	// triggers are the append-only triggers as the migrations make them,
	// by name.
	triggers map[string]trigger
	// frontier is the tree's right edge after this store's last append.
	frontier audit.Frontier
}

// trigger is one append-only trigger as the migrations make it.
type trigger struct {
	// table is the table it guards, sql its CREATE TRIGGER text.
	table, sql string
	// version is the migration that makes it.
	version int64
}

var (
	_ audit.Store               = (*Store)(nil)
	_ audit.PolicyStore         = (*Store)(nil)
	_ audit.ContactSessionStore = (*Store)(nil)
)

// PathFromDSN turns "sqlite://data/audit.db" (relative) or
// "sqlite:///var/lib/klantbeeld/audit.db" (absolute) into a file path.
func PathFromDSN(dsn string) (string, error) {
	rest, ok := strings.CutPrefix(dsn, "sqlite://")
	if !ok || rest == "" || strings.ContainsAny(rest, "?#") {
		return "", fmt.Errorf("sqlite DSN %q: want sqlite://relative/path.db or sqlite:///absolute/path.db", dsn)
	}
	return filepath.FromSlash(rest), nil
}

func dsn(path string, busyMS int) string {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "mmap_size(268435456)", fmt.Sprintf("busy_timeout(%d)", busyMS)} {
		q.Add("_pragma", p)
	}
	// Every transaction takes the write lock at BEGIN: an append reads the
	// last number and writes after it, with no other writer in between.
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Open opens (and creates, with its folder) the log at path: it applies the
// migrations not yet applied, then checks that every append-only trigger is
// in place, and refuses the log, naming the trigger, when one is missing or
// altered. It never makes a trigger again.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	want, err := expectedTriggers(ctx)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path, 5000))
	if err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	s := &Store{db: db, triggers: want}
	if err := s.open(ctx, path); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenExisting opens the log at path for examination (`klantbeeld audit
// verify|export`): the file must exist; no migration is applied and nothing
// is refused, so that a tampered log can still be verified and its
// CheckAppendOnly report what is missing. Do not append through it.
func OpenExisting(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	want, err := expectedTriggers(ctx)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path, 5000))
	if err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	s := &Store{db: db, triggers: want}
	if err := s.prepare(ctx, path); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, path string) error {
	if err := refuseOldSchema(ctx, s.db); err != nil {
		return err
	}
	if err := migrate(ctx, s.db); err != nil {
		return err
	}
	if err := s.prepare(ctx, path); err != nil {
		return err
	}
	if err := s.CheckAppendOnly(ctx); err != nil {
		return fmt.Errorf("audit sqlite %s: %w", path, err)
	}
	// The log is for its owner (and auditors through the API) only; SQLite
	// creates files with the process umask.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit sqlite: %w", err)
		}
	}
	return nil
}

// prepare prepares the queries and opens the Ping connection.
func (s *Store) prepare(ctx context.Context, path string) error {
	st, err := readSchema(ctx, s.db)
	if err != nil {
		return fmt.Errorf("audit sqlite %s: %w", path, err)
	}
	if st.version < s.latestVersion() {
		// A log an older gateway left (OpenExisting only): the queries of
		// tables it lacks would not prepare. Unprepared, the log's own
		// queries work, and those of the missing tables fail when called.
		s.q = sqlitedb.New(s.db)
	} else {
		// Prepared once (per connection): parsing an insert and planning
		// its triggers costs more than running it.
		q, err := sqlitedb.Prepare(ctx, s.db)
		if err != nil {
			return fmt.Errorf("audit sqlite %s: %w", path, unavailable(err))
		}
		s.q = q
	}
	ping, err := sql.Open("sqlite", dsn(path, pingWait))
	if err != nil {
		return fmt.Errorf("audit sqlite: %w", err)
	}
	ping.SetMaxOpenConns(1)
	s.pingDB = ping
	return nil
}

func migrate(ctx context.Context, db *sql.DB) error { return migrateTo(ctx, db, goose.MaxVersion) }

// migrateTo applies the migrations up to and including version.
func migrateTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("audit sqlite: migrations: %w", err)
	}
	return nil
}

// provider is goose with the embedded migrations, on db.
func provider(db *sql.DB) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("audit sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return nil, fmt.Errorf("audit sqlite: migrations: %w", err)
	}
	return p, nil
}

// refuseOldSchema stops at a log made before the Merkle tree (issue 6),
// which had the events table but no migrations: migrating it would fail
// half-way, and its events have no tree to verify them with.
func refuseOldSchema(ctx context.Context, db *sql.DB) error {
	var events, goose int
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'),
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version')`).Scan(&events, &goose)
	if err != nil {
		return unavailable(err)
	}
	if events == 1 && goose == 0 {
		return errors.New("audit sqlite: this log predates the tamper-evident format (no migrations table): archive the file and start a new one")
	}
	return nil
}

// expectedTriggers runs the migrations on an empty in-memory database, one
// at a time, and reads the triggers each makes: the set CheckAppendOnly
// compares with.
func expectedTriggers(ctx context.Context) (map[string]trigger, error) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: one in-memory database
	p, err := provider(db)
	if err != nil {
		return nil, err
	}
	out := map[string]trigger{}
	for _, src := range p.ListSources() {
		if _, err := p.UpTo(ctx, src.Version); err != nil {
			return nil, fmt.Errorf("audit sqlite: migrations: %w", err)
		}
		st, err := readSchema(ctx, db)
		if err != nil {
			return nil, err
		}
		for name, t := range st.triggers {
			if _, ok := out[name]; !ok {
				t.version = src.Version
				out[name] = t
			}
		}
	}
	return out, nil
}

// latestVersion is the version of the last migration.
func (s *Store) latestVersion() int64 {
	var v int64
	for _, t := range s.triggers {
		v = max(v, t.version)
	}
	return v
}

// schemaState is what a log's schema holds: its triggers, its tables and
// the last migration applied to it (0 for none).
type schemaState struct {
	triggers map[string]trigger
	tables   map[string]bool
	version  int64
}

// readSchema reads the triggers, tables and migration version of db.
// sqlite_master and goose's table are not part of the schema sqlc knows,
// so these queries are written by hand.
func readSchema(ctx context.Context, db *sql.DB) (schemaState, error) {
	st := schemaState{triggers: map[string]trigger{}, tables: map[string]bool{}}
	rows, err := db.QueryContext(ctx, `SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('trigger', 'table')`)
	if err != nil {
		return st, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, name, table string
		var text sql.NullString
		if err := rows.Scan(&kind, &name, &table, &text); err != nil {
			return st, unavailable(err)
		}
		if kind == "trigger" {
			st.triggers[name] = trigger{table: table, sql: text.String}
		} else {
			st.tables[name] = true
		}
	}
	if err := rows.Err(); err != nil {
		return st, unavailable(err)
	}
	if st.tables["goose_db_version"] {
		err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&st.version)
		if err != nil {
			return st, unavailable(err)
		}
	}
	return st, nil
}

// CheckAppendOnly implements audit.Store: every trigger of the migrations
// must be there with the text the migrations gave it. A log an older
// gateway left (OpenExisting), which a later migration has not reached
// yet, needs only the triggers of the migrations it had, and those of any
// table it has.
func (s *Store) CheckAppendOnly(ctx context.Context) error {
	st, err := readSchema(ctx, s.db)
	if err != nil {
		return err
	}
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(s.triggers)) {
		want := s.triggers[name]
		if want.version > st.version && !st.tables[want.table] {
			continue // a migration this log has not had yet makes it
		}
		switch have, ok := st.triggers[name]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("append-only trigger %s is missing", name))
		case have.sql != want.sql:
			problems = append(problems, fmt.Sprintf("append-only trigger %s was altered", name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s (it was dropped from this log; the log is not repaired by making it again: verify it with `klantbeeld audit verify`)", audit.ErrTampered, strings.Join(problems, "; "))
	}
	return nil
}

// Append implements audit.Store.
func (s *Store) Append(ctx context.Context, events []audit.Event) (seqs []int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		return nil, unavailable(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	q := s.q.WithTx(tx)
	last, err := q.LastSeq(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	b, kept, err := s.frontier.NewBatch(last, events, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return readHashes(ctx, q, idx)
	}))
	if err != nil {
		return nil, unavailable(err)
	}
	seqs = make([]int64, len(b.Records))
	for i, r := range b.Records {
		if err := q.InsertEvent(ctx, sqlitedb.InsertEventParams{Seq: r.Seq, Record: string(r.Data)}); err != nil {
			return nil, unavailable(err)
		}
		seqs[i] = r.Seq
	}
	for _, h := range b.Hashes {
		if err := q.InsertHash(ctx, sqlitedb.InsertHashParams{Idx: h.Index, Hash: h.Hash[:]}); err != nil {
			return nil, unavailable(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, unavailable(err)
	}
	kept()
	return seqs, nil
}

// Record implements audit.Store.
func (s *Store) Record(ctx context.Context, seq int64) (audit.Record, error) {
	row, err := s.q.GetEvent(ctx, seq)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Record{}, fmt.Errorf("event %d: %w", seq, audit.ErrNotFound)
	}
	if err != nil {
		return audit.Record{}, unavailable(err)
	}
	return audit.Record{Seq: row.Seq, Data: []byte(row.Record)}, nil
}

// Records implements audit.Store.
func (s *Store) Records(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	rows, err := s.q.ListEvents(ctx, sqlitedb.ListEventsParams{Seq: after, Limit: int64(limit)})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]audit.Record, len(rows))
	for i, r := range rows {
		out[i] = audit.Record{Seq: r.Seq, Data: []byte(r.Record)}
	}
	return out, nil
}

// Search implements audit.Store. A subject, actor, context or the flag
// picks the query that walks that column's index; otherwise the log is
// walked from the newest.
func (s *Store) Search(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	from, to := f.FilterTimes()
	before := f.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	tFrom, tTo := sql.NullString{String: from, Valid: true}, sql.NullString{String: to, Valid: true}
	size := int64(f.PageSize())
	ctxKey, minFlagged := "", sql.NullInt64{Valid: true}
	if f.Context != nil {
		ctxKey = f.Context.Key()
	}
	if f.Flagged {
		minFlagged.Int64 = 1
	}
	var rows []sqlitedb.SearchRow
	var err error
	switch {
	case f.Subject != "":
		var rs []sqlitedb.SearchBySubjectRow
		rs, err = s.q.SearchBySubject(ctx, sqlitedb.SearchBySubjectParams{
			Subject: sql.NullString{String: f.Subject, Valid: true}, Actor: f.Actor, Department: f.Department,
			Purpose: f.Purpose, Decision: f.Decision, ContextKey: ctxKey, MinFlagged: minFlagged,
			TimeFrom: tFrom, TimeTo: tTo, Before: before, PageSize: size,
		})
		for _, r := range rs {
			rows = append(rows, sqlitedb.SearchRow(r))
		}
	case f.Actor != "":
		var rs []sqlitedb.SearchByActorRow
		rs, err = s.q.SearchByActor(ctx, sqlitedb.SearchByActorParams{
			Actor: sql.NullString{String: f.Actor, Valid: true}, Department: f.Department,
			Purpose: f.Purpose, Decision: f.Decision, ContextKey: ctxKey, MinFlagged: minFlagged,
			TimeFrom: tFrom, TimeTo: tTo, Before: before, PageSize: size,
		})
		for _, r := range rs {
			rows = append(rows, sqlitedb.SearchRow(r))
		}
	case f.Context != nil:
		var rs []sqlitedb.SearchByContextRow
		rs, err = s.q.SearchByContext(ctx, sqlitedb.SearchByContextParams{
			ContextKey: sql.NullString{String: ctxKey, Valid: true}, Department: f.Department,
			Purpose: f.Purpose, Decision: f.Decision, MinFlagged: minFlagged,
			TimeFrom: tFrom, TimeTo: tTo, Before: before, PageSize: size,
		})
		for _, r := range rs {
			rows = append(rows, sqlitedb.SearchRow(r))
		}
	case f.Flagged:
		var rs []sqlitedb.SearchFlaggedRow
		rs, err = s.q.SearchFlagged(ctx, sqlitedb.SearchFlaggedParams{
			Department: f.Department, Purpose: f.Purpose, Decision: f.Decision,
			TimeFrom: tFrom, TimeTo: tTo, Before: before, PageSize: size,
		})
		for _, r := range rs {
			rows = append(rows, sqlitedb.SearchRow(r))
		}
	default:
		rows, err = s.q.Search(ctx, sqlitedb.SearchParams{
			Department: f.Department, Purpose: f.Purpose, Decision: f.Decision, ContextKey: ctxKey, MinFlagged: minFlagged,
			TimeFrom: tFrom, TimeTo: tTo, Before: before, PageSize: size,
		})
	}
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]audit.Record, len(rows))
	for i, r := range rows {
		out[i] = audit.Record{Seq: r.Seq, Data: []byte(r.Record)}
	}
	return out, nil
}

// ReadHashes implements audit.Store.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return readHashes(ctx, s.q, indexes)
}

// readHashes reads a contiguous ascending run in one row (HashRangeHex)
// and anything else, or a run with a hash missing, row by row.
func readHashes(ctx context.Context, q *sqlitedb.Queries, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	lo, hi := indexes[0], indexes[len(indexes)-1]
	if hi-lo+1 == int64(len(indexes)) && audit.Contiguous(indexes) {
		run, err := q.HashRangeHex(ctx, sqlitedb.HashRangeHexParams{Lo: lo, Hi: hi})
		if err != nil {
			return nil, unavailable(err)
		}
		if run.N == int64(len(indexes)) && len(run.Hashes) == len(indexes)*2*tlog.HashSize {
			out := make([]tlog.Hash, len(indexes))
			for i := range out {
				if _, err := hex.Decode(out[i][:], []byte(run.Hashes[i*2*tlog.HashSize:(i+1)*2*tlog.HashSize])); err != nil {
					return nil, unavailable(err)
				}
			}
			return out, nil
		}
	}
	rows, err := q.Hashes(ctx, slices.Compact(slices.Sorted(slices.Values(indexes))))
	if err != nil {
		return nil, unavailable(err)
	}
	byIdx := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		byIdx[r.Idx] = r.Hash
	}
	return audit.OrderHashes(indexes, byIdx)
}

// AddCheckpoint implements audit.Store.
func (s *Store) AddCheckpoint(ctx context.Context, c audit.Checkpoint) (int64, error) {
	id, err := s.q.InsertCheckpoint(ctx, sqlitedb.InsertCheckpointParams{Size: c.Size, Note: string(c.Note)})
	if err != nil {
		return 0, unavailable(err)
	}
	return id, nil
}

// Checkpoints implements audit.Store.
func (s *Store) Checkpoints(ctx context.Context, after int64, limit int) ([]audit.Checkpoint, error) {
	rows, err := s.q.ListCheckpoints(ctx, sqlitedb.ListCheckpointsParams{ID: after, Limit: int64(limit)})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]audit.Checkpoint, len(rows))
	for i, r := range rows {
		out[i] = checkpoint(r)
	}
	return out, nil
}

// LatestCheckpoint implements audit.Store.
func (s *Store) LatestCheckpoint(ctx context.Context) (audit.Checkpoint, error) {
	r, err := s.q.LatestCheckpoint(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Checkpoint{}, fmt.Errorf("checkpoint: %w", audit.ErrNotFound)
	}
	if err != nil {
		return audit.Checkpoint{}, unavailable(err)
	}
	return checkpoint(r), nil
}

func checkpoint(r sqlitedb.AuditCheckpoint) audit.Checkpoint {
	return audit.Checkpoint{ID: r.ID, Size: r.Size, Note: []byte(r.Note)}
}

// Stats implements audit.Store.
func (s *Store) Stats(ctx context.Context) (audit.Stats, error) {
	r, err := s.q.Stats(ctx)
	if err != nil {
		return audit.Stats{}, unavailable(err)
	}
	return audit.Stats{LastSeq: r.LastSeq, Events: r.Events, Hashes: r.Hashes}, nil
}

// Ping implements audit.Store: it takes the write lock (BEGIN IMMEDIATE,
// waiting at most pingWait ms), reads, and rolls back.
func (s *Store) Ping(ctx context.Context) error {
	if s.pingDB == nil {
		return unavailable(errors.New("not open"))
	}
	tx, err := s.pingDB.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // a probe: nothing to keep
	if _, err := sqlitedb.New(tx).LastSeq(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

// Close implements audit.Store.
func (s *Store) Close() error {
	var errs []error
	if s.q != nil {
		errs = append(errs, s.q.Close())
	}
	if s.pingDB != nil {
		errs = append(errs, s.pingDB.Close())
	}
	return errors.Join(append(errs, s.db.Close())...)
}

// PutPolicyVersion implements audit.PolicyStore. It looks the id up and
// inserts inside one transaction, holding the write lock, so that two
// processes storing one version store it once.
func (s *Store) PutPolicyVersion(ctx context.Context, v audit.PolicyVersion) error {
	files, err := audit.EncodePolicyVersion(v)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		return unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit: a no-op
	q := s.q.WithTx(tx)
	switch stored, err := q.GetPolicyVersion(ctx, v.ID); {
	case err == nil && stored.Files == string(files):
		return nil // stored before: nothing to write
	case err == nil:
		return fmt.Errorf("policy version %s is stored with other files: %w", v.ID, audit.ErrConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return unavailable(err)
	}
	if err := q.InsertPolicyVersion(ctx, sqlitedb.InsertPolicyVersionParams{ID: v.ID, Files: string(files)}); err != nil {
		return unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// PolicyVersion implements audit.PolicyStore.
func (s *Store) PolicyVersion(ctx context.Context, id string) (audit.PolicyVersion, error) {
	row, err := s.q.GetPolicyVersion(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.PolicyVersion{}, fmt.Errorf("policy version %s: %w", id, audit.ErrNotFound)
	}
	if err != nil {
		return audit.PolicyVersion{}, unavailable(err)
	}
	files, err := audit.DecodePolicyFiles([]byte(row.Files))
	if err != nil {
		return audit.PolicyVersion{}, fmt.Errorf("policy version %s: %w", id, err)
	}
	return audit.PolicyVersion{ID: row.ID, Files: files}, nil
}

// PolicyVersions implements audit.PolicyStore.
func (s *Store) PolicyVersions(ctx context.Context) ([]string, error) {
	ids, err := s.q.ListPolicyVersions(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// AddPolicyActivation implements audit.PolicyStore. The checks read what
// is stored inside the transaction that inserts, under the write lock; the
// insert trigger checks the same again.
func (s *Store) AddPolicyActivation(ctx context.Context, a audit.PolicyActivation) (int64, error) {
	if err := audit.CheckPolicyActivation(a); err != nil {
		return 0, err
	}
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		return 0, unavailable(err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit: a no-op
	q := s.q.WithTx(tx)
	if _, err := q.GetPolicyVersion(ctx, a.Version); errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("activate policy version %s: %w", a.Version, audit.ErrNotFound)
	} else if err != nil {
		return 0, unavailable(err)
	}
	active := ""
	switch latest, err := q.LatestPolicyActivation(ctx); {
	case err == nil:
		active = latest.Version
	case !errors.Is(err, sql.ErrNoRows):
		return 0, unavailable(err)
	}
	if a.Previous != active {
		return 0, fmt.Errorf("activate policy version %s after %q: the active version is %q: %w", a.Version, a.Previous, active, audit.ErrConflict)
	}
	seq, err := q.InsertPolicyActivation(ctx, sqlitedb.InsertPolicyActivationParams{
		Version: a.Version, Previous: a.Previous, ActivatedBy: a.By,
		ActivatedAt: audit.PolicyTime(a.At).Format(audit.PolicyTimeFormat), Reason: a.Reason, IsRollback: a.Rollback,
	})
	if err != nil {
		return 0, unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return seq, nil
}

// PolicyActivations implements audit.PolicyStore.
func (s *Store) PolicyActivations(ctx context.Context, after int64, limit int) ([]audit.PolicyActivation, error) {
	rows, err := s.q.ListPolicyActivations(ctx, sqlitedb.ListPolicyActivationsParams{Seq: after, Limit: int64(max(limit, 0))})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]audit.PolicyActivation, len(rows))
	for i, r := range rows {
		if out[i], err = activation(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LatestPolicyActivation implements audit.PolicyStore.
func (s *Store) LatestPolicyActivation(ctx context.Context) (audit.PolicyActivation, error) {
	r, err := s.q.LatestPolicyActivation(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.PolicyActivation{}, fmt.Errorf("policy activation: %w", audit.ErrNotFound)
	}
	if err != nil {
		return audit.PolicyActivation{}, unavailable(err)
	}
	return activation(r)
}

func activation(r sqlitedb.AuditPolicyActivation) (audit.PolicyActivation, error) {
	at, err := time.Parse(audit.PolicyTimeFormat, r.ActivatedAt)
	if err != nil {
		return audit.PolicyActivation{}, fmt.Errorf("%w: policy activation %d: time %q", audit.ErrTampered, r.Seq, r.ActivatedAt)
	}
	return audit.PolicyActivation{
		Seq: r.Seq, Version: r.Version, Previous: r.Previous, By: r.ActivatedBy,
		At: at, Reason: r.Reason, Rollback: r.IsRollback,
	}, nil
}

func unavailable(err error) error {
	return fmt.Errorf("%w: sqlite: %w", audit.ErrUnavailable, err)
}
