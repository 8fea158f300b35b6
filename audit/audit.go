// Package audit owns the access log: what an audit event holds and its
// stored bytes, the Store interface that engines (sqlite, postgres)
// implement, the Log that appends events in batches (group commit) before any
// data leaves, the keyed pseudonym under which a resident's BSN is stored,
// and the tamper evidence: every event is a leaf of an RFC 6962 Merkle tree
// (sumdb/tlog), signed checkpoints (sumdb/note), proofs, Verify and the
// start-up CheckIntegrity. Beside the log the stores keep the policy bundle
// versions and their activations (PolicyStore) and the contact sessions
// (ContactSessionStore).
//
// The log and the policy history are append-only at every layer: Store and
// PolicyStore have no update or delete, the SQL has none, and the databases
// refuse them with triggers.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Decisions recorded in an event.
const (
	DecisionAllow = "allow" // data was disclosed
	DecisionDeny  = "deny"  // refused: authentication, validation or policy
	DecisionError = "error" // failed on our side: no data was disclosed
)

// Event is one request to a protected endpoint.
type Event struct {
	// Seq is assigned by the store: 1, 2, 3, ... without gaps.
	Seq  int64     `json:"seq,omitempty"`
	Time time.Time `json:"time"`
	// TraceID and SpanID identify this processing (W3C trace context).
	TraceID string `json:"traceId"`
	SpanID  string `json:"spanId"`
	// ForeignOperation links the caller's own trace, when it sent one.
	ForeignOperation *ForeignOperation `json:"foreignOperation,omitempty"`
	// Operation is the endpoint, e.g. "POST /v1/resident-views".
	Operation string `json:"operation"`
	Actor     Actor  `json:"actor"`
	Purpose   string `json:"purpose,omitempty"`
	// ProcessingActivity is the register id of the processing (verwerkingsactiviteit).
	ProcessingActivity string `json:"processingActivity,omitempty"`
	// Subject is the keyed pseudonym of the resident's BSN; empty when the
	// request named no valid BSN.
	Subject string   `json:"subject,omitempty"`
	Context *Context `json:"context,omitempty"`
	// BreakGlass is the reason given for a look-up without a context
	// ("break-glass"); such an event is Flagged.
	BreakGlass *BreakGlass `json:"breakGlass,omitempty"`
	// Flagged marks an event for review by an auditor (Filter.Flagged).
	Flagged bool `json:"flagged,omitempty"`
	// Decision is DecisionAllow, DecisionDeny or DecisionError.
	Decision      string   `json:"decision"`
	Reasons       []string `json:"reasons,omitempty"`
	PolicyVersion string   `json:"policyVersion,omitempty"`
	// Sources lists, per source called or considered, what was disclosed.
	Sources []SourceAccess `json:"sources,omitempty"`
	// Status is the HTTP status of the answer.
	Status int `json:"status"`
}

// ForeignOperation is the caller's trace context.
type ForeignOperation struct {
	Traceparent      string `json:"traceparent,omitempty"`
	FSCTransactionID string `json:"fscTransactionId,omitempty"`
}

// Actor is who asked.
type Actor struct {
	Sub          string   `json:"sub,omitempty"`
	Department   string   `json:"department,omitempty"`
	Roles        []string `json:"roles,omitempty"`
	Organisation string   `json:"organisation,omitempty"`
	// Delegate is who acted on the organisation's behalf (the token's
	// act claim), when it names one.
	Delegate string `json:"delegate,omitempty"`
}

// Context names the contact or case that justified the look-up.
type Context struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// BreakGlass is a look-up let through without a context, and why.
type BreakGlass struct {
	Reason string `json:"reason"`
}

// SourceAccess is what one source contributed to an answer.
type SourceAccess struct {
	Source string `json:"source"`
	// Status as in the view: ok, partial, unavailable, denied (the policy
	// refused the source) or not_requested (the request left it out).
	Status string `json:"status"`
	// Called is whether a request was sent to the source.
	Called bool `json:"called"`
	// Fields that were disclosed.
	Fields []string `json:"fields,omitempty"`
	// Records disclosed; Withheld counted as existence only or held back.
	Records  int `json:"records"`
	Withheld int `json:"withheld,omitempty"`
}

// Errors of stores and the log.
var (
	// ErrNotFound: no event, hash or checkpoint with that number.
	ErrNotFound = errors.New("audit: not found")
	// ErrUnavailable: the store could not take or give events (database
	// down, disk full, write lock held elsewhere, closed). Callers must not
	// release data.
	ErrUnavailable = errors.New("audit: store unavailable")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("audit: log closed")
	// ErrTampered: the stored log is not what was appended: an event,
	// tree hash or checkpoint was altered, removed, reordered or added
	// around the store, or an append-only trigger is missing. Verify and
	// CheckIntegrity return it (mostly as a *VerifyError naming the first
	// sequence number that does not match).
	ErrTampered = errors.New("audit: log tampered with")
)

// Record is one stored event: the row's sequence number and the exact bytes
// stored for it, EncodeRecord of the event with that Seq. The Merkle leaf of
// event Seq (leaf index Seq-1) is tlog.RecordHash(Data).
type Record struct {
	Seq  int64
	Data []byte
}

// Event decodes the record (DecodeRecord).
func (r Record) Event() (Event, error) { return DecodeRecord(r.Data) }

// StoredHash is one node of the Merkle tree as the store keeps it: Index is
// the tlog stored hash index (tlog.StoredHashIndex).
type StoredHash struct {
	Index int64
	Hash  tlog.Hash
}

// Checkpoint is a signed checkpoint as stored: ID is given by the store (1,
// 2, 3, ... without gaps, in the order they were added), Size is the tree
// size it commits to, Note the C2SP signed-note text (OpenCheckpoint
// verifies and parses it).
type Checkpoint struct {
	ID   int64
	Size int64
	Note []byte
}

// Stats are the counts CheckIntegrity compares: in an intact log Events ==
// LastSeq and Hashes == tlog.StoredHashCount(LastSeq).
type Stats struct {
	// LastSeq is the highest sequence number stored, 0 when empty.
	LastSeq int64
	// Events is the number of event rows.
	Events int64
	// Hashes is the number of stored tree hash rows.
	Hashes int64
}

// Search limits.
const (
	DefaultSearchLimit = 100
	MaxSearchLimit     = 1000
)

// Filter selects events for the auditor search and for subject access. Every
// set field must match; zero fields match everything. Results come newest
// first (descending Seq).
type Filter struct {
	// Subject is the keyed pseudonym of the resident's BSN (Pseudonym), never the BSN.
	Subject string
	// Actor matches Event.Actor.Sub.
	Actor string
	// Department matches Event.Actor.Department.
	Department string
	Purpose    string
	// Decision is DecisionAllow, DecisionDeny or DecisionError.
	Decision string
	// Context, when set, matches Event.Context (type and id): the events
	// made in one contact session, say.
	Context *Context
	// Flagged: only events flagged for review (Event.Flagged).
	Flagged bool
	// From (inclusive) and To (exclusive) bound Event.Time; zero: unbounded.
	From, To time.Time
	// Before is the cursor: only events with Seq < Before; 0: from the newest.
	// The next page's cursor is the Seq of the last record of this page.
	Before int64
	// Limit is the page size: 0 means DefaultSearchLimit, more than
	// MaxSearchLimit means MaxSearchLimit.
	Limit int
}

// PageSize is f.Limit with the defaults applied.
func (f Filter) PageSize() int {
	switch {
	case f.Limit <= 0:
		return DefaultSearchLimit
	case f.Limit > MaxSearchLimit:
		return MaxSearchLimit
	}
	return f.Limit
}

// Store keeps the log: events, the Merkle tree's hashes and signed
// checkpoints, all append-only. It has no update or delete. Implementations
// are safe for concurrent use, also by several processes on one database
// (PostgreSQL): the sequence stays one gap-free run and one tree.
//
// Every method's I/O errors wrap ErrUnavailable; a closed store returns
// ErrUnavailable.
type Store interface {
	// Append stores events in one transaction, in order, and returns the
	// sequence number given to each: last stored + 1, + 2, ... (the events'
	// own Seq is ignored). Inside the transaction, after taking the write
	// lock, it reads the last sequence number and calls NewBatch (with a
	// tlog.HashReader reading the stored hashes in the same transaction),
	// then inserts exactly the batch's records and hashes. It is all or
	// nothing, and durable when it returns (PostgreSQL commit; SQLite WAL
	// with synchronous=FULL). Errors wrap ErrUnavailable.
	Append(ctx context.Context, events []Event) ([]int64, error)

	// Record returns the event with sequence number seq as stored, or
	// ErrNotFound.
	Record(ctx context.Context, seq int64) (Record, error)
	// Records returns up to limit records with Seq > after in ascending
	// order (export and Verify page through the log with it); an empty
	// slice past the end.
	Records(ctx context.Context, after int64, limit int) ([]Record, error)
	// Search returns up to f.PageSize() records matching f, newest first;
	// an empty slice when none match. The fields it filters on are read
	// from the stored record itself (SQLite: generated columns), so they
	// cannot disagree with what Verify checks.
	Search(ctx context.Context, f Filter) ([]Record, error)

	// ReadHashes returns the stored tree hashes with the given stored hash
	// indexes, in the order asked (it is the tlog.HashReader of the store;
	// see HashReader). An index that is not stored is an error wrapping
	// ErrNotFound. Verify asks for contiguous ascending runs: make that one
	// range scan.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)

	// AddCheckpoint stores a signed checkpoint (c.ID is ignored) and
	// returns its ID. Errors wrap ErrUnavailable.
	AddCheckpoint(ctx context.Context, c Checkpoint) (int64, error)
	// Checkpoints returns up to limit checkpoints with ID > after, by
	// ascending ID; an empty slice past the end.
	Checkpoints(ctx context.Context, after int64, limit int) ([]Checkpoint, error)
	// LatestCheckpoint returns the checkpoint of the largest tree (the
	// highest ID among equals), or ErrNotFound when there is none.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)

	// Stats counts what is stored.
	Stats(ctx context.Context) (Stats, error)
	// CheckAppendOnly reports whether every append-only trigger is in place
	// (and, on PostgreSQL, enabled ALWAYS): nil if so; else an error
	// wrapping ErrTampered that names each missing or disabled trigger; or
	// ErrUnavailable. It never creates a trigger.
	CheckAppendOnly(ctx context.Context) error
	// Ping reports whether the store can take a write right now: nil, or
	// an error wrapping ErrUnavailable when it cannot be reached, another
	// process holds the write lock for longer than a short wait, or the
	// disk fails. It writes nothing.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// Pseudonymizer turns a BSN into a keyed pseudonym (HMAC-SHA256, hex). The
// key lives outside the database, so the log alone does not reveal whom an
// event is about, while a search for a BSN hashes it the same way.
type Pseudonymizer struct {
	key []byte
}

// MinKeySize is the smallest pseudonym key accepted.
const MinKeySize = 32

// NewPseudonymizer checks the key's length.
func NewPseudonymizer(key []byte) (*Pseudonymizer, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("audit: pseudonym key of %d bytes, want at least %d", len(key), MinKeySize)
	}
	return &Pseudonymizer{key: append([]byte(nil), key...)}, nil
}

// Pseudonym of bsn.
func (p *Pseudonymizer) Pseudonym(bsn string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(bsn))
	return hex.EncodeToString(m.Sum(nil))
}

// LoadKey reads a key file. With create set, a missing file is created with
// MinKeySize random bytes (mode 0600) and its folder made if needed.
func LoadKey(path string, create bool) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		return key, nil
	}
	if !create || !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key = make([]byte, MinKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return CreateKeyFile(path, key)
}

// CreateKeyFile writes content to a new file at path, mode 0600, making its
// folder (0700) if needed, and returns content. If another process made the
// file first, its content is returned instead, so that concurrent first
// starts agree on one key.
func CreateKeyFile(path string, content []byte) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return nil, err
	}
	return content, f.Close()
}
