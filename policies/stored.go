package policies

import (
	"fmt"
	"time"
)

// StoredVersion is a bundle version as a store keeps it: its id (the
// content hash, Bundle.Version) and its files as text. Versions are
// immutable: a store keeps each id once and never changes it.
type StoredVersion struct {
	ID    string            `json:"id"`
	Files map[string]string `json:"files"`
}

// NewStoredVersion is b ready to store.
func NewStoredVersion(b Bundle) StoredVersion {
	files := make(map[string]string, len(b.Files))
	for name, content := range b.Files {
		files[name] = string(content)
	}
	return StoredVersion{ID: b.Version(), Files: files}
}

// Bundle is the stored bundle, after checking that its files still hash to
// its id: a version altered in the store is refused (ErrBundle), not
// activated.
func (v StoredVersion) Bundle() (Bundle, error) {
	b := Bundle{Files: make(map[string][]byte, len(v.Files))}
	for name, content := range v.Files {
		b.Files[name] = []byte(content)
	}
	if got := b.Version(); got != v.ID {
		return Bundle{}, fmt.Errorf("%w: stored version %s hashes to %s", ErrBundle, v.ID, got)
	}
	return b, b.check()
}

// Activation records one activation of a version: who, when, why, and
// what it replaced. A rollback is an activation of an earlier version.
// Stores keep activations append-only; the latest is the active version.
type Activation struct {
	// Version is the StoredVersion.ID activated.
	Version string `json:"version"`
	// Previous is the version it replaced ("" for the first).
	Previous string `json:"previous,omitempty"`
	// By is the privacy officer's sub.
	By string `json:"by"`
	// At is when the swap happened.
	At time.Time `json:"at"`
	// Reason is why, in the privacy officer's words.
	Reason string `json:"reason"`
	// Rollback: Version was active before.
	Rollback bool `json:"rollback,omitempty"`
}
