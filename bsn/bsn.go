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
// digit runs (dates, counts, ids) are left alone.
func Redact(s string) string {
	if !hasNineDigits(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
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
	run := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			run++
			continue
		}
		if run == 9 {
			return true
		}
		run = 0
	}
	return run == 9
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
