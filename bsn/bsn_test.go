package bsn_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/klantbeeld/klantbeeld/bsn"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"999993653", true},  // Suzanne Moulin, an official test person
		{"999990007", true},  // valid, unknown to every source
		{"111222333", true},  // 9+8+7+12+10+8+9+6-3 = 66
		{"999993654", false}, // last digit off by one
		{"000000000", false}, // passes the sum, is no BSN
		{"99999365", false},  // eight digits
		{"9999936530", false},
		{"99999365a", false},
		{" 99999365", false},
		{"٩٩٩٩٩٣٦٥٣", false}, // Arabic-Indic digits are not digits here
		{"", false},
	} {
		assert.Equal(t, tc.want, bsn.Valid(tc.in), tc.in)
		assert.Equal(t, !tc.want, errors.Is(bsn.Check(tc.in), bsn.ErrInvalid), tc.in)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"no digits":                       "no digits",
		"bsn 999993653 not found":         "bsn [BSN] not found",
		"?inpBsn=999993653&page=2":        "?inpBsn=[BSN]&page=2",
		"999993653":                       "[BSN]",
		"two 999993653,999990007":         "two [BSN],[BSN]",
		"date 20240101 and id 1234567890": "date 20240101 and id 1234567890",
		"uuid 12345678-1234-1234-1234-12": "uuid 12345678-1234-1234-1234-12",
	} {
		assert.Equal(t, want, bsn.Redact(in), in)
	}
}

func TestRedactErrorKeepsClassification(t *testing.T) {
	cause := fmt.Errorf("zaken: GET /zaken?inpBsn=999993653: %w", fs.ErrNotExist)
	err := bsn.RedactError(cause)
	assert.Equal(t, "zaken: GET /zaken?inpBsn=[BSN]: file does not exist", err.Error())
	assert.ErrorIs(t, err, fs.ErrNotExist)

	clean := errors.New("no number here")
	assert.Same(t, clean, bsn.RedactError(clean))
	assert.NoError(t, bsn.RedactError(nil))
}

func FuzzRedact(f *testing.F) {
	f.Add("bsn 999993653 x")
	f.Add("1234567890")
	f.Fuzz(func(t *testing.T, s string) {
		out := bsn.Redact(s)
		if bsn.Contains([]byte(out)) {
			t.Fatalf("Redact(%q) = %q still holds nine digits", s, out)
		}
	})
}

func ExampleValid() {
	fmt.Println(bsn.Valid("999993653"), bsn.Valid("999993654"))
	// Output: true false
}
