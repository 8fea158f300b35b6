// Package policies owns purpose binding: the Rego v1 policy bundle (embedded
// as the default) and the engine that asks it one question per request and
// returns a structured Decision with stable reason codes. A bundle is
// compiled and its query prepared once; decisions are cached per claim set
// (never per person) for as long as the version is active.
//
// Policy administration: ParseFiles and ReadTarball read a proposed bundle;
// Check compiles it, runs its own Rego tests and the guard invariants in Go
// (which no bundle can change); Engine.Activate swaps it in atomically only
// if all pass; Diff and Explain are the dry runs; StoredVersion and
// Activation are what a store keeps.
package policies

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed *.rego data.json
var embedded embed.FS

// DataFile is the name of a bundle's data document.
const DataFile = "data.json"

// Bundle is a policy bundle: Rego modules (tests included) and data.json.
type Bundle struct {
	// Files maps a file name (no directories) to its content.
	Files map[string][]byte
}

// Embedded is the bundle compiled into the binary.
func Embedded() Bundle {
	b, err := FromFS(embedded)
	if err != nil {
		// The embedded files are fixed at build time; a test reads them.
		panic("policies: embedded bundle: " + err.Error())
	}
	return b
}

// LoadDir reads a bundle from the *.rego files and data.json in dir.
func LoadDir(dir string) (Bundle, error) {
	if st, err := os.Stat(dir); err != nil {
		return Bundle{}, fmt.Errorf("policies: %w", err)
	} else if !st.IsDir() {
		return Bundle{}, fmt.Errorf("policies: %s is not a directory", dir)
	}
	return FromFS(os.DirFS(filepath.Clean(dir)))
}

// FromFS reads a bundle from the top level of fsys.
func FromFS(fsys fs.FS) (Bundle, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return Bundle{}, fmt.Errorf("policies: %w", err)
	}
	b := Bundle{Files: map[string][]byte{}}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".rego") || name == DataFile) {
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return Bundle{}, fmt.Errorf("policies: %w", err)
		}
		b.Files[name] = data
	}
	return b, b.check()
}

// ErrBundle is wrapped by every error about a bundle's content.
var ErrBundle = errors.New("invalid policy bundle")

func (b Bundle) check() error {
	if _, ok := b.Files[DataFile]; !ok {
		return fmt.Errorf("%w: no %s", ErrBundle, DataFile)
	}
	n := 0
	for name := range b.Files {
		if name != path.Base(name) || strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("%w: file name %q has a directory", ErrBundle, name)
		}
		if err := validText(name, b.Files[name]); err != nil {
			return err
		}
		if strings.HasSuffix(name, ".rego") && !IsTestFile(name) {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: no policy module", ErrBundle)
	}
	return nil
}

// IsTestFile reports whether a bundle file holds Rego tests.
func IsTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// Version identifies a bundle by content: "sha256:" and the hash of its
// sorted file names and contents.
func (b Bundle) Version() string {
	names := make([]string, 0, len(b.Files))
	for n := range b.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%d:%s\n%d:", len(n), n, len(b.Files[n]))
		h.Write(b.Files[n])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
