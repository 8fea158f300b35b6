package audit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
)

func TestEncodePolicyVersionIsCanonical(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"NamesSorted", map[string]string{"b.rego": "b", "a.rego": "a", "data.json": "{}"},
			`{"a.rego":"a","b.rego":"b","data.json":"{}"}`},
		{"HTMLCharactersKept", map[string]string{"a.rego": `x := "<b>&"`},
			`{"a.rego":"x := \"<b>&\""}`},
		{"NewlinesAndNonASCII", map[string]string{"leesmij.md": "één\ncafé\t"},
			`{"leesmij.md":"één\ncafé\t"}`},
		{"EmptyFile", map[string]string{"empty.rego": ""}, `{"empty.rego":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.EncodePolicyVersion(audit.PolicyVersion{ID: "sha256:1", Files: tt.files})
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			back, err := audit.DecodePolicyFiles(got)
			require.NoError(t, err)
			assert.Equal(t, tt.files, back)
		})
	}
}

func TestEncodePolicyVersionRefusesWhatItCannotKeep(t *testing.T) {
	tests := []struct {
		name string
		v    audit.PolicyVersion
	}{
		{"NoID", audit.PolicyVersion{Files: map[string]string{"a.rego": "a"}}},
		{"NoFiles", audit.PolicyVersion{ID: "sha256:1"}},
		{"EmptyName", audit.PolicyVersion{ID: "sha256:1", Files: map[string]string{"": "a"}}},
		{"ContentNotUTF8", audit.PolicyVersion{ID: "sha256:1", Files: map[string]string{"a.rego": "\xff"}}},
		{"IDNotUTF8", audit.PolicyVersion{ID: "sha256:\xff", Files: map[string]string{"a.rego": "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.EncodePolicyVersion(tt.v)
			assert.Error(t, err)
		})
	}
}

func TestDecodePolicyFilesOfAlteredTextIsTampered(t *testing.T) {
	_, err := audit.DecodePolicyFiles([]byte(`{"a.rego":`))
	require.ErrorIs(t, err, audit.ErrTampered)
}

func TestPolicyTimeIsUTCToTheMicrosecond(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	got := audit.PolicyTime(at)
	assert.Equal(t, time.Date(2026, 11, 23, 9, 0, 0, 123456000, time.UTC), got)
	assert.Equal(t, "2026-11-23T09:00:00.123456Z", got.Format(audit.PolicyTimeFormat))
}
