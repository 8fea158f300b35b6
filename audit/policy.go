package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ErrConflict: a policy write that contradicts what is stored: a version id
// stored before with other files, or an activation whose Previous is not
// the version active now (another activation came first).
var ErrConflict = errors.New("audit: conflict")

// PolicyVersion is a policy bundle as stored: ID is its content hash as the
// policies package computes it (e.g. "sha256:…"), Files its file names and
// contents. The audit store does not compute or check the hash: it keeps
// each id once, with the files it was first stored with.
type PolicyVersion struct {
	ID    string
	Files map[string]string
}

// PolicyActivation is one activation of a stored policy version: the
// version active from then on, what it replaced, who did it, when and why.
// A rollback is an activation of an earlier version.
type PolicyActivation struct {
	// Seq is given by the store: 1, 2, 3, ... without gaps, in the order of
	// activation (the field is ignored on add).
	Seq int64
	// Version is the PolicyVersion.ID activated.
	Version string
	// Previous is the version active until then: the Version of the
	// latest activation, "" for the first.
	Previous string
	// By is who activated it (the privacy officer's sub).
	By string
	// At is when; stores keep it in UTC to the microsecond.
	At time.Time
	// Reason is why, in the activator's words.
	Reason string
	// Rollback: Version was active before.
	Rollback bool
}

// PolicyStore keeps the policy bundle versions and their activations in
// the audit database, append-only like the log: there is no update or
// delete, and the databases refuse both with triggers (which the store's
// CheckAppendOnly requires, as it does the log's). The latest activation
// names the version in force, also after a restart.
//
// Every method's I/O errors wrap ErrUnavailable; a closed store returns
// ErrUnavailable.
type PolicyStore interface {
	// PutPolicyVersion stores v unless its id is stored already. It
	// returns nil when v is stored now or was stored before with the same
	// files (nothing new is written); an error wrapping ErrConflict when
	// the id is stored with other files (the stored version is kept); a
	// plain error when v has no id, no files, or a name or content that
	// is not UTF-8 (EncodePolicyVersion); or ErrUnavailable.
	PutPolicyVersion(ctx context.Context, v PolicyVersion) error
	// PolicyVersion returns the stored version with that id, its files as
	// stored, or an error wrapping ErrNotFound.
	PolicyVersion(ctx context.Context, id string) (PolicyVersion, error)
	// PolicyVersions returns the ids of every stored version in the order
	// they were first stored; an empty slice when none is.
	PolicyVersions(ctx context.Context) ([]string, error)

	// AddPolicyActivation stores an activation (a.Seq is ignored) and
	// returns its Seq: the last one + 1, taken inside the transaction, so
	// that activations from several processes stay one gap-free sequence.
	// a.At is stored in UTC, truncated to the microsecond. It returns an
	// error wrapping ErrNotFound when a.Version is not stored; wrapping
	// ErrConflict when a.Previous is not the Version of the latest
	// activation ("" when there is none), which is how a caller learns
	// that another activation came first (read LatestPolicyActivation and
	// decide again); a plain error when CheckPolicyActivation refuses a;
	// or ErrUnavailable. Nothing is stored unless it returns nil.
	AddPolicyActivation(ctx context.Context, a PolicyActivation) (int64, error)
	// PolicyActivations returns up to limit activations with Seq > after,
	// by ascending Seq; an empty slice past the end.
	PolicyActivations(ctx context.Context, after int64, limit int) ([]PolicyActivation, error)
	// LatestPolicyActivation returns the activation with the highest Seq
	// (its Version is the one in force), or an error wrapping ErrNotFound
	// when no version was ever activated.
	LatestPolicyActivation(ctx context.Context) (PolicyActivation, error)
}

// EncodePolicyVersion is the stored form of v's files, or why v cannot be
// stored. The files are a JSON object of name → content, the names sorted
// and nothing escaped that JSON does not require, so that equal files are
// equal bytes. It refuses a version without id or files, and a name or
// content that is not UTF-8 (JSON would replace the invalid bytes, and the
// stored files would no longer be the bundle).
func EncodePolicyVersion(v PolicyVersion) ([]byte, error) {
	switch {
	case v.ID == "" || !utf8.ValidString(v.ID):
		return nil, fmt.Errorf("audit: policy version id %q is empty or not UTF-8", v.ID)
	case len(v.Files) == 0:
		return nil, fmt.Errorf("audit: policy version %s has no files", v.ID)
	}
	for name, content := range v.Files {
		if name == "" || !utf8.ValidString(name) {
			return nil, fmt.Errorf("audit: policy version %s: file name %q is empty or not UTF-8", v.ID, name)
		}
		if !utf8.ValidString(content) {
			return nil, fmt.Errorf("audit: policy version %s: file %s is not UTF-8", v.ID, name)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v.Files); err != nil { // a map encodes with its keys sorted
		return nil, fmt.Errorf("audit: policy version %s: %w", v.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodePolicyFiles reads files stored by EncodePolicyVersion. Stored files
// that do not decode were changed around the store: the error wraps
// ErrTampered.
func DecodePolicyFiles(data []byte) (map[string]string, error) {
	var files map[string]string
	if err := json.Unmarshal(data, &files); err != nil {
		return nil, fmt.Errorf("%w: stored policy files: %w", ErrTampered, err)
	}
	return files, nil
}

// CheckPolicyActivation reports why a cannot be stored whatever is stored,
// or nil: a store calls it before it writes.
func CheckPolicyActivation(a PolicyActivation) error {
	switch {
	case a.Version == "":
		return errors.New("audit: a policy activation without version")
	case a.At.IsZero():
		return errors.New("audit: a policy activation without time")
	case a.At.UTC().Year() < 1 || a.At.UTC().Year() > 9999:
		return fmt.Errorf("audit: policy activation time %v is outside the years 1 to 9999", a.At)
	}
	return nil
}

// PolicyTimeFormat is how SQLite stores PolicyActivation.At: fixed-width UTC
// text to the microsecond, which sorts as time.
const PolicyTimeFormat = "2006-01-02T15:04:05.000000Z"

// PolicyTime is t as the stores keep it: UTC, to the microsecond.
func PolicyTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
