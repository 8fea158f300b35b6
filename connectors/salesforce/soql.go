package salesforce

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/klantbeeld/klantbeeld/bsn"
)

// Every value that goes into a SOQL statement is one of the types below,
// made only by a function that validates it, and is then written as a
// string literal by quote. Nothing else is ever concatenated into a query.

// burgerservicenummer is a BSN: nine digits passing the 11-proef.
type burgerservicenummer string

func newBSN(s string) (burgerservicenummer, error) {
	if err := bsn.Check(s); err != nil {
		// Never echo the value: it is (meant to be) a BSN.
		return "", fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	return burgerservicenummer(s), nil
}

// domain is a Domein__c code: an upper-case letter, then up to 19
// upper-case letters, digits or underscores.
type domain string

func newDomain(s string) (domain, error) {
	ok := len(s) >= 1 && len(s) <= 20 && s[0] >= 'A' && s[0] <= 'Z' &&
		allBytes(s, func(c byte) bool { return c >= 'A' && c <= 'Z' || isDigit(c) || c == '_' })
	if !ok {
		return "", fmt.Errorf("%w: domain must match ^[A-Z][A-Z0-9_]{0,19}$", ErrInvalidQuery)
	}
	return domain(s), nil
}

// id is a Salesforce record id: 15 or 18 ASCII letters and digits. Ids
// come from the source's own answers and are checked before they are
// used in a following query.
type id string

func newID(s string) (id, error) {
	if len(s) != 15 && len(s) != 18 || !allBytes(s, func(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }) {
		return "", errors.New("not a Salesforce id")
	}
	return id(s), nil
}

// subtype is a TaskSubtype picklist value.
type subtype string

const (
	subtypeCallback subtype = "Task"
	subtypeCall     subtype = "Call"
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allBytes(s string, ok func(byte) bool) bool {
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// escape writes s as the inside of a SOQL string literal: backslash,
// quotes and the control characters SOQL has escapes for are escaped;
// other control characters and invalid UTF-8 are refused, as SOQL offers
// no way to write them.
func escape(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("string is not valid UTF-8")
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
				return "", fmt.Errorf("control character U+%04X has no SOQL escape", r)
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// reference is a Composite API reference to a value of an earlier
// subrequest's answer, such as @{contact.records[0].Id}. Salesforce puts
// the value in its place before it runs the query; only the constants of
// this package are references.
type reference string

// contactID is the Id of the resident's Contact in the composite request
// of Profile: the first record of the subrequest "contact".
const contactID reference = "@{" + refContact + ".records[0].Id}"

// soqlValue is a validated value that may appear in a query.
type soqlValue interface {
	burgerservicenummer | domain | id | subtype | reference
}

// quote is v as a SOQL string literal.
func quote[T soqlValue](v T) (string, error) {
	s, err := escape(string(v))
	if err != nil {
		return "", err
	}
	return "'" + s + "'", nil
}

// list is vs as the parenthesised list of an IN operator.
func list[T soqlValue](vs []T) (string, error) {
	parts := make([]string, len(vs))
	for i, v := range vs {
		q, err := quote(v)
		if err != nil {
			return "", err
		}
		parts[i] = q
	}
	return "(" + strings.Join(parts, ",") + ")", nil
}

// contactSOQL finds the Contact of a resident. LIMIT 2 is enough to tell
// one from more than one.
func contactSOQL(b burgerservicenummer) (string, error) {
	v, err := quote(b)
	if err != nil {
		return "", err
	}
	return "SELECT Id FROM Contact WHERE BSN__c = " + v + " LIMIT 2", nil
}

const caseFields = "Id, CaseNumber, Subject, Status, Origin, CreatedDate, Domein__c, IsClosed"

// casesSOQL selects the contact's cases of the given domains only: the
// filter runs at the source, so cases of other domains never leave it.
func casesSOQL(contact reference, domains []domain) (string, error) {
	c, err := quote(contact)
	if err != nil {
		return "", err
	}
	in, err := list(domains)
	if err != nil {
		return "", err
	}
	return "SELECT " + caseFields + " FROM Case WHERE ContactId = " + c +
		" AND Domein__c IN " + in + " ORDER BY CreatedDate DESC", nil
}

const taskFields = "Id, TaskSubtype, Subject, Status, ActivityDate, Owner.Name, ReminderDateTime, IsReminderSet, Reminders__c, WhatId, CreatedDate, IsClosed"

// tasksSOQL selects the contact's tasks of the given subtypes about one of
// the contact's cases of domains, by a semi-join: the cases are not listed
// in the query, Salesforce picks them with the same filter as casesSOQL.
func tasksSOQL(contact reference, subtypes []subtype, domains []domain) (string, error) {
	if len(subtypes) == 0 || len(domains) == 0 {
		return "", errors.New("task query that cannot match")
	}
	c, err := quote(contact)
	if err != nil {
		return "", err
	}
	st, err := list(subtypes)
	if err != nil {
		return "", err
	}
	in, err := list(domains)
	if err != nil {
		return "", err
	}
	return "SELECT " + taskFields + " FROM Task WHERE WhoId = " + c +
		" AND TaskSubtype IN " + st +
		" AND WhatId IN (SELECT Id FROM Case WHERE ContactId = " + c + " AND Domein__c IN " + in + ")" +
		" ORDER BY CreatedDate DESC", nil
}

// undomainedTasksSOQL selects the contact's tasks of the given subtypes
// that are about no case. It is a query of its own: SOQL does not allow a
// semi-join in an OR.
func undomainedTasksSOQL(contact reference, subtypes []subtype) (string, error) {
	if len(subtypes) == 0 {
		return "", errors.New("task query that cannot match")
	}
	c, err := quote(contact)
	if err != nil {
		return "", err
	}
	st, err := list(subtypes)
	if err != nil {
		return "", err
	}
	return "SELECT " + taskFields + " FROM Task WHERE WhoId = " + c +
		" AND TaskSubtype IN " + st + " AND WhatId = null ORDER BY CreatedDate DESC", nil
}
