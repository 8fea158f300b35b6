package policies

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on an uploaded bundle. A bundle is a few Rego files and one data
// document: these leave room for growth and none for a decompression bomb.
const (
	// MaxBundleFiles is the most files a bundle may have.
	MaxBundleFiles = 64
	// MaxBundleFileBytes is the most one file may hold.
	MaxBundleFileBytes = 1 << 20
	// MaxBundleBytes is the most all files together may hold, uncompressed.
	MaxBundleBytes = 4 << 20
)

// ParseFiles reads a bundle sent as one JSON object of file names to
// contents: {"decision.rego": "package klantbeeld …", "data.json": "{…}"}.
// File names have no directories; only *.rego and data.json are allowed.
func ParseFiles(raw []byte) (Bundle, error) {
	if len(raw) > MaxBundleBytes*2 { // JSON escaping can double the text
		return Bundle{}, fmt.Errorf("%w: more than %d bytes", ErrBundle, MaxBundleBytes*2)
	}
	var files map[string]string
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&files); err != nil {
		return Bundle{}, fmt.Errorf("%w: not a JSON object of file names to contents: %v", ErrBundle, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Bundle{}, fmt.Errorf("%w: more after the JSON object", ErrBundle)
	}
	b := Bundle{Files: make(map[string][]byte, len(files))}
	total := 0
	for name, content := range files {
		if err := checkUploadName(name); err != nil {
			return Bundle{}, err
		}
		total += len(content)
		if err := checkUploadSize(name, len(content), total, len(b.Files)+1); err != nil {
			return Bundle{}, err
		}
		b.Files[name] = []byte(content)
	}
	return b, b.check()
}

// ReadTarball reads an OPA bundle (.tar.gz) as `opa build -b DIR` makes
// it: data.json at the top, Rego modules at the top or in folders (`opa
// build -b policies/` run from the repository keeps them under
// /policies/), and an optional .manifest, which is checked to be JSON and
// otherwise ignored. A module is kept under its base name: in Rego the
// package, not the file's folder, says where its rules live. Refused:
// a data document in a folder (OPA would mount it elsewhere in the data
// tree, which a flat bundle cannot say), two modules of one base name,
// symbolic or hard links, devices, signatures (they would not be
// verified), names that climb out (".."), other kinds of file, and
// archives over the limits above.
//
// It reads the archive itself rather than with OPA's bundle reader, which
// skips links silently, nests data by folder and has no limit on the
// total size.
func ReadTarball(r io.Reader) (Bundle, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return Bundle{}, fmt.Errorf("%w: not a gzip archive: %v", ErrBundle, err)
	}
	defer gz.Close()
	// The reader is limited beyond the total so that an archive which is
	// only padding or headers cannot run on either.
	tr := tar.NewReader(io.LimitReader(gz, MaxBundleBytes+MaxBundleFiles*4096+1<<16))
	b := Bundle{Files: map[string][]byte{}}
	total, entries := 0, 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Bundle{}, fmt.Errorf("%w: archive: %v", ErrBundle, err)
		}
		if entries++; entries > MaxBundleFiles*2 {
			return Bundle{}, fmt.Errorf("%w: more than %d entries", ErrBundle, MaxBundleFiles*2)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		if climbs(name) {
			return Bundle{}, fmt.Errorf("%w: %q climbs out of the bundle", ErrBundle, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		case tar.TypeXGlobalHeader:
			continue
		default:
			return Bundle{}, fmt.Errorf("%w: %q is not a regular file", ErrBundle, h.Name)
		}
		if name == ".manifest" {
			raw, err := readEntry(tr, h, MaxBundleFileBytes)
			if err != nil {
				return Bundle{}, err
			}
			if !json.Valid(raw) {
				return Bundle{}, fmt.Errorf("%w: .manifest is not JSON", ErrBundle)
			}
			continue
		}
		if dir, base := path.Split(name); dir != "" && strings.HasSuffix(base, ".rego") && !strings.HasPrefix(base, ".") {
			name = base
		}
		if err := checkUploadName(name); err != nil {
			return Bundle{}, fmt.Errorf("%w (in the archive: %q)", err, h.Name)
		}
		if _, dup := b.Files[name]; dup {
			return Bundle{}, fmt.Errorf("%w: %q is in the archive twice", ErrBundle, name)
		}
		if err := checkUploadSize(name, int(min(h.Size, MaxBundleBytes+1)), total+int(min(h.Size, MaxBundleBytes+1)), len(b.Files)+1); err != nil {
			return Bundle{}, err
		}
		raw, err := readEntry(tr, h, MaxBundleFileBytes)
		if err != nil {
			return Bundle{}, err
		}
		total += len(raw)
		b.Files[name] = raw
	}
	return b, b.check()
}

// climbs reports whether a path in an archive has a ".." element.
func climbs(name string) bool {
	return slices.Contains(strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }), "..")
}

// readEntry reads one file, never more than max bytes whatever its header says.
func readEntry(tr *tar.Reader, h *tar.Header, max int64) ([]byte, error) {
	if h.Size > max {
		return nil, fmt.Errorf("%w: %q has more than %d bytes", ErrBundle, h.Name, max)
	}
	raw, err := io.ReadAll(io.LimitReader(tr, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBundle, h.Name, err)
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("%w: %q has more than %d bytes", ErrBundle, h.Name, max)
	}
	return raw, nil
}

// checkUploadName allows top-level *.rego files and data.json only.
func checkUploadName(name string) error {
	switch {
	case name == "" || strings.ContainsAny(name, `/\`) || name != path.Clean(name) || strings.HasPrefix(name, "."):
		return fmt.Errorf("%w: file name %q: only top-level *.rego files and %s", ErrBundle, name, DataFile)
	case name != DataFile && !strings.HasSuffix(name, ".rego"):
		return fmt.Errorf("%w: file %q: only *.rego files and %s", ErrBundle, name, DataFile)
	}
	return nil
}

func checkUploadSize(name string, size, total, files int) error {
	switch {
	case files > MaxBundleFiles:
		return fmt.Errorf("%w: more than %d files", ErrBundle, MaxBundleFiles)
	case size > MaxBundleFileBytes:
		return fmt.Errorf("%w: %q has more than %d bytes", ErrBundle, name, MaxBundleFileBytes)
	case total > MaxBundleBytes:
		return fmt.Errorf("%w: the files hold more than %d bytes", ErrBundle, MaxBundleBytes)
	}
	return nil
}

// WriteTarball writes b as an OPA bundle of the layout ReadTarball reads,
// which `opa` can load (opa eval -b FILE). Entries are sorted and dated at
// the Unix epoch, so the same bundle always gives the same bytes.
func WriteTarball(w io.Writer, b Bundle) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, name := range sortedKeys(b.Files) {
		content := b.Files[name]
		h := &tar.Header{Name: "/" + name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(content); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// validText: every bundle file is UTF-8 text, so a store can keep it as text.
func validText(name string, content []byte) error {
	if !utf8.Valid(content) {
		return fmt.Errorf("%w: %s is not UTF-8 text", ErrBundle, name)
	}
	return nil
}
