// Package audit owns the access log: what an audit event holds, the Store
// interface that engines (sqlite, and later postgres) implement, the Log that
// appends events in batches (group commit) before any data leaves, and the
// keyed pseudonym under which a resident's BSN is stored.
//
// The log is append-only at every layer: Store has no update or delete, the
// SQL has none, and the databases refuse them with triggers.
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
}

// Context names the contact or case that justified the look-up.
type Context struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// SourceAccess is what one source contributed to an answer.
type SourceAccess struct {
	Source string `json:"source"`
	// Status as in the view: ok, partial, unavailable or denied.
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
	// ErrNotFound: no event with that sequence number.
	ErrNotFound = errors.New("audit: event not found")
	// ErrUnavailable: the store could not take or give events (database
	// down, disk full, closed). Callers must not release data.
	ErrUnavailable = errors.New("audit: store unavailable")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("audit: log closed")
)

// Store keeps events. Implementations are safe for concurrent use.
type Store interface {
	// Append stores events in one transaction, in order, and returns the
	// sequence number given to each. It is all or nothing, and durable when
	// it returns. Errors wrap ErrUnavailable.
	Append(ctx context.Context, events []Event) ([]int64, error)
	// Get returns the event with sequence number seq, or ErrNotFound.
	Get(ctx context.Context, seq int64) (Event, error)
	// List returns up to limit events with sequence numbers above after, in order.
	List(ctx context.Context, after int64, limit int) ([]Event, error)
	// Ping reports whether the store can take events; errors wrap ErrUnavailable.
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
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Another process made it first: use theirs.
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}
