package policies_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/policies"
)

func TestParseFilesReadsAJSONMapOfFiles(t *testing.T) {
	b := policies.Embedded()
	files := map[string]string{}
	for name, content := range b.Files {
		files[name] = string(content)
	}
	raw, err := json.Marshal(files)
	require.NoError(t, err)
	got, err := policies.ParseFiles(raw)
	require.NoError(t, err)
	assert.Equal(t, b.Version(), got.Version(), "the same files are the same version, however they came")
}

func TestParseFilesRefusesWhatIsNoBundle(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"not JSON", `decision.rego`, "not a JSON object"},
		{"contents not strings", `{"data.json": {}}`, "not a JSON object"},
		{"two objects", `{"data.json": "{}", "a.rego": "package a"} {}`, "more after"},
		{"a directory", `{"data.json": "{}", "lib/a.rego": "package a"}`, `"lib/a.rego"`},
		{"a parent directory", `{"data.json": "{}", "../a.rego": "package a"}`, `"../a.rego"`},
		{"another kind of file", `{"data.json": "{}", "a.rego": "package a", "run.sh": "rm -rf /"}`, `"run.sh"`},
		{"a hidden file", `{"data.json": "{}", ".a.rego": "package a"}`, `".a.rego"`},
		{"no data", `{"a.rego": "package a"}`, "no data.json"},
		{"no module", `{"data.json": "{}", "a_test.rego": "package a"}`, "no policy module"},
		{"a file too large", `{"data.json": "{}", "a.rego": "` + strings.Repeat("x", policies.MaxBundleFileBytes+1) + `"}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policies.ParseFiles([]byte(tt.body))
			require.ErrorIs(t, err, policies.ErrBundle)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestTarballRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, policies.WriteTarball(&buf, policies.Embedded()))
	got, err := policies.ReadTarball(&buf)
	require.NoError(t, err)
	assert.Equal(t, policies.Embedded().Version(), got.Version())
}

// entry is one member of a hand-made archive.
type entry struct {
	hdr     tar.Header
	content string
}

func file(name, content string) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}, content}
}

func tarball(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		require.NoError(t, tw.WriteHeader(&h))
		if e.content != "" {
			_, err := tw.Write([]byte(e.content))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return &buf
}

// TestReadTarballReadsTheLayoutOfOpaBuild: `opa build -b policies/` run
// from the repository puts the modules under /policies/ and data.json at
// the top, with a manifest.
func TestReadTarballReadsTheLayoutOfOpaBuild(t *testing.T) {
	b := policies.Embedded()
	entries := []entry{
		{tar.Header{Name: "/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "/policies/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		file("/.manifest", `{"revision":"","roots":[""],"rego_version":1}`),
	}
	for name, content := range b.Files {
		if name == policies.DataFile {
			entries = append(entries, file("/"+name, string(content)))
		} else {
			entries = append(entries, file("/policies/"+name, string(content)))
		}
	}
	got, err := policies.ReadTarball(tarball(t, entries...))
	require.NoError(t, err)
	assert.Equal(t, b.Version(), got.Version(), "modules by base name; the manifest is not part of the bundle")
}

func TestReadTarballRefusesHostileArchives(t *testing.T) {
	data, rego := file("data.json", "{}"), file("decision.rego", "package klantbeeld\n")
	huge := strings.Repeat("x", policies.MaxBundleFileBytes+1)
	many := []entry{data}
	for i := range policies.MaxBundleFiles {
		many = append(many, file(strings.Repeat("a", i+1)+".rego", "package a\n"))
	}
	// Files each under the per-file limit that together exceed the total.
	var bulky []entry
	for i := range 5 {
		bulky = append(bulky, file(strings.Repeat("b", i+1)+".rego", strings.Repeat("#", policies.MaxBundleFileBytes-1)))
	}
	tests := []struct {
		name    string
		archive func() *bytes.Buffer
		want    string
	}{
		{"not gzip", func() *bytes.Buffer { return bytes.NewBufferString("PK\x03\x04") }, "not a gzip archive"},
		{"path traversal", func() *bytes.Buffer { return tarball(t, data, rego, file("../../etc/cron.d/x.rego", "package x")) }, "climbs out"},
		{"path traversal inside", func() *bytes.Buffer { return tarball(t, data, rego, file("policies/../../x.rego", "package x")) }, "climbs out"},
		{"a nested data document", func() *bytes.Buffer { return tarball(t, data, rego, file("purposes/data.json", "{}")) }, `"purposes/data.json"`},
		{"two modules of one name", func() *bytes.Buffer { return tarball(t, data, rego, file("lib/decision.rego", "package lib")) }, "twice"},
		{"another kind of file in a folder", func() *bytes.Buffer { return tarball(t, data, rego, file("lib/run.sh", "rm -rf /")) }, `"lib/run.sh"`},
		{"a symbolic link", func() *bytes.Buffer {
			return tarball(t, data, entry{tar.Header{Name: "decision.rego", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, ""})
		}, "not a regular file"},
		{"a hard link", func() *bytes.Buffer {
			return tarball(t, data, rego, entry{tar.Header{Name: "other.rego", Typeflag: tar.TypeLink, Linkname: "decision.rego"}, ""})
		}, "not a regular file"},
		{"signatures", func() *bytes.Buffer { return tarball(t, data, rego, file(".signatures.json", "{}")) }, `".signatures.json"`},
		{"a huge file", func() *bytes.Buffer { return tarball(t, data, rego, file("big.rego", huge)) }, "more than"},
		{"too many files", func() *bytes.Buffer { return tarball(t, many...) }, "more than"},
		{"too much in all", func() *bytes.Buffer { return tarball(t, append([]entry{data}, bulky...)...) }, "more than"},
		{"twice the same file", func() *bytes.Buffer { return tarball(t, data, rego, rego) }, "twice"},
		{"a manifest that is not JSON", func() *bytes.Buffer { return tarball(t, data, rego, file(".manifest", "roots: x")) }, ".manifest is not JSON"},
		{"no data", func() *bytes.Buffer { return tarball(t, rego) }, "no data.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policies.ReadTarball(tt.archive())
			require.ErrorIs(t, err, policies.ErrBundle)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestReadTarballStopsAGzipBomb(t *testing.T) {
	// Many megabytes of zeros compress to a few kilobytes; the reader must
	// give up at its limit, not inflate them all.
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "data.json", Typeflag: tar.TypeReg, Size: 64 << 20}))
	zeros := make([]byte, 1<<20)
	for range 64 {
		_, err := tw.Write(zeros)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	require.Less(t, buf.Len(), 1<<20, "the bomb is small")
	_, err := policies.ReadTarball(&buf)
	require.ErrorIs(t, err, policies.ErrBundle)
	assert.Contains(t, err.Error(), "more than")
}

func TestStoredVersionRoundTrip(t *testing.T) {
	stored := policies.NewStoredVersion(policies.Embedded())
	assert.Equal(t, policies.Embedded().Version(), stored.ID)
	raw, err := json.Marshal(stored)
	require.NoError(t, err)
	var back policies.StoredVersion
	require.NoError(t, json.Unmarshal(raw, &back))
	b, err := back.Bundle()
	require.NoError(t, err)
	assert.Equal(t, stored.ID, b.Version())
}

func TestStoredVersionAlteredInTheStoreIsRefused(t *testing.T) {
	stored := policies.NewStoredVersion(policies.Embedded())
	stored.Files["data.json"] = strings.Replace(stored.Files["data.json"], `"kcc"]`, `"kcc", "burgerzaken"]`, 1)
	_, err := stored.Bundle()
	require.ErrorIs(t, err, policies.ErrBundle)
	assert.Contains(t, err.Error(), "hashes to")
}

func TestBundleFilesMustBeText(t *testing.T) {
	b := policies.Bundle{Files: map[string][]byte{"data.json": []byte("{}"), "a.rego": {0xff, 0xfe}}}
	_, err := policies.Compile(t.Context(), b)
	require.ErrorIs(t, err, policies.ErrBundle)
	assert.Contains(t, err.Error(), "not UTF-8")
}
