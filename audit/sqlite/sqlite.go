// Package sqlite is the embedded audit store: SQLite through the pure-Go
// modernc driver and sqlc-generated queries, in WAL mode with
// synchronous=FULL so that an appended event survives a crash.
package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/sqlite/sqlitedb"
)

var (
	//go:embed schema.sql
	schema string
	//go:embed triggers.sql
	triggers string
)

// Store is an audit.Store on one SQLite file.
type Store struct {
	db *sql.DB
	q  *sqlitedb.Queries
}

var _ audit.Store = (*Store)(nil)

// PathFromDSN turns "sqlite://data/audit.db" (relative) or
// "sqlite:///var/lib/klantbeeld/audit.db" (absolute) into a file path.
func PathFromDSN(dsn string) (string, error) {
	rest, ok := strings.CutPrefix(dsn, "sqlite://")
	if !ok || rest == "" || strings.ContainsAny(rest, "?#") {
		return "", fmt.Errorf("sqlite DSN %q: want sqlite://relative/path.db or sqlite:///absolute/path.db", dsn)
	}
	return filepath.FromSlash(rest), nil
}

// Open opens (and creates, with its folder) the database at path.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(5000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit sqlite: schema: %w", err)
	}
	if _, err := db.ExecContext(ctx, triggers); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit sqlite: triggers: %w", err)
	}
	// The log is for its owner (and auditors through the API) only; SQLite
	// creates files with the process umask.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("audit sqlite: %w", err)
		}
	}
	return &Store{db: db, q: sqlitedb.New(db)}, nil
}

// Append implements audit.Store.
func (s *Store) Append(ctx context.Context, events []audit.Event) (seqs []int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, unavailable(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	q := s.q.WithTx(tx)
	seqs = make([]int64, 0, len(events))
	for _, ev := range events {
		ev.Seq = 0
		record, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("%w: encode event: %v", audit.ErrUnavailable, err)
		}
		seq, err := q.InsertEvent(ctx, sqlitedb.InsertEventParams{
			RecordedAt:        ev.Time.UTC().Format(time.RFC3339Nano),
			TraceID:           ev.TraceID,
			Operation:         ev.Operation,
			ActorSub:          ev.Actor.Sub,
			ActorDepartment:   ev.Actor.Department,
			ActorOrganisation: ev.Actor.Organisation,
			Purpose:           ev.Purpose,
			Subject:           ev.Subject,
			Decision:          ev.Decision,
			Status:            int64(ev.Status),
			Record:            record,
		})
		if err != nil {
			return nil, unavailable(err)
		}
		seqs = append(seqs, seq)
	}
	if err := tx.Commit(); err != nil {
		return nil, unavailable(err)
	}
	return seqs, nil
}

// Get implements audit.Store.
func (s *Store) Get(ctx context.Context, seq int64) (audit.Event, error) {
	row, err := s.q.GetEvent(ctx, seq)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Event{}, audit.ErrNotFound
	}
	if err != nil {
		return audit.Event{}, unavailable(err)
	}
	return decode(row.Seq, row.Record)
}

// List implements audit.Store.
func (s *Store) List(ctx context.Context, after int64, limit int) ([]audit.Event, error) {
	rows, err := s.q.ListEvents(ctx, sqlitedb.ListEventsParams{Seq: after, Limit: int64(limit)})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]audit.Event, 0, len(rows))
	for _, r := range rows {
		ev, err := decode(r.Seq, r.Record)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// Ping implements audit.Store.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.q.LastSeq(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

// Close implements audit.Store.
func (s *Store) Close() error { return s.db.Close() }

func decode(seq int64, record []byte) (audit.Event, error) {
	var ev audit.Event
	if err := json.Unmarshal(record, &ev); err != nil {
		return audit.Event{}, fmt.Errorf("%w: event %d: %v", audit.ErrUnavailable, seq, err)
	}
	ev.Seq = seq
	return ev, nil
}

func unavailable(err error) error {
	return fmt.Errorf("%w: sqlite: %w", audit.ErrUnavailable, err)
}
