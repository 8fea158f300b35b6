// Package bsn owns the burgerservicenummer: the 11-proef, the one error for
// a number that fails it, and the redaction that keeps BSNs out of error
// messages and logs. The gateway and every connector use it.
package bsn

import (
	"errors"
	"strings"
)

// ErrInvalid: the value is not nine digits passing the 11-proef. Whoever
// returns it sent no request anywhere.
var ErrInvalid = errors.New("bsn: not nine digits passing the 11-proef")

// Mask is what a BSN is replaced with by Redact.
const Mask = "[BSN]"

// Valid reports whether s is a burgerservicenummer: nine digits whose
// weighted sum (9·d1 + 8·d2 + … + 2·d8 − 1·d9) is a multiple of 11, and not
// all zeros.
func Valid(s string) bool {
	if len(s) != 9 || s == "000000000" {
		return false
	}
	sum := 0
	for i := range 9 {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		weight := 9 - i
		if i == 8 {
			weight = -1
		}
		sum += weight * int(c-'0')
	}
	return sum%11 == 0
}

// Check returns ErrInvalid when s is not Valid.
func Check(s string) error {
	if !Valid(s) {
		return ErrInvalid
	}
	return nil
}

// Redact replaces every run of exactly nine digits in s with Mask: the BSN a
// request was about, and any other one a source echoed. Longer and shorter
// digit runs (dates, counts, ids) are left alone. Text that may hold
// escapes is read both ways: plainly, and with a percent-escape (%27) or a
// JSON escape (\u0027) ending a run, so that an echoed query such as
// inpBsn=%27999993653%27 is masked and so is 100%999993653.
func Redact(s string) string {
	return redact(redact(s, false), true)
}

func redact(s string, escapes bool) string {
	if !nineDigits(s, escapes) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if n := escapeLen(s[i:], escapes); n > 0 {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		if !isDigit(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := digitRun(s, i)
		if j-i == 9 {
			b.WriteString(Mask)
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

// Contains reports whether b holds a run of exactly nine digits.
func Contains(b []byte) bool {
	return hasNineDigits(string(b))
}

// RedactError returns err unchanged when its message holds no nine-digit
// run; otherwise an error with the redacted message that still matches
// (errors.Is, errors.As) everything err matched.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !hasNineDigits(msg) {
		return err
	}
	return &redactedError{msg: Redact(msg), cause: err}
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }

// Unwrap keeps the classification of the cause. The cause's own message is
// never printed by Error; callers that log an error use Error.
func (e *redactedError) Unwrap() error { return e.cause }

func hasNineDigits(s string) bool {
	return nineDigits(s, false) || nineDigits(s, true)
}

// nineDigits reports whether s holds a run of exactly nine digits, with
// escapes ending a run when escapes is set.
func nineDigits(s string, escapes bool) bool {
	for i := 0; i < len(s); {
		if n := escapeLen(s[i:], escapes); n > 0 {
			i += n
			continue
		}
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := digitRun(s, i)
		if j-i == 9 {
			return true
		}
		i = j
	}
	return false
}

// digitRun is the end of the run of digits starting at i; an escape ends it.
func digitRun(s string, i int) int {
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return j
}

// escapeLen is the length of the percent-escape (%XX) or JSON escape
// (\uXXXX) that s starts with, or 0; always 0 unless escapes is set.
func escapeLen(s string, escapes bool) int {
	switch {
	case !escapes:
		return 0
	case len(s) >= 3 && s[0] == '%' && isHex(s[1]) && isHex(s[2]):
		return 3
	case len(s) >= 6 && s[0] == '\\' && s[1] == 'u' && isHex(s[2]) && isHex(s[3]) && isHex(s[4]) && isHex(s[5]):
		return 6
	}
	return 0
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
