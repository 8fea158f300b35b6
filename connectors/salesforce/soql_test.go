package salesforce

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/bsn"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text is unchanged", "Jan de Vries", "Jan de Vries"},
		{"empty stays empty", "", ""},
		{"quote is escaped", "d'Ancona", `d\'Ancona`},
		{"backslash is escaped", `a\b`, `a\\b`},
		{"backslash before quote cannot unescape it", `\'`, `\\\'`},
		{"double quote is escaped", `"x"`, `\"x\"`},
		{"newline, return and tab are escaped", "a\nb\rc\td", `a\nb\rc\td`},
		{"backspace and form feed are escaped", "\b\f", `\b\f`},
		{"injection stays inside the literal", `' OR Id != null OR Name = '`, `\' OR Id != null OR Name = \'`},
		{"non-ASCII letters pass", "Zoë Ørsted", "Zoë Ørsted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := escape(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEscapeRefuses(t *testing.T) {
	tests := []struct{ name, in string }{
		{"NUL", "a\x00b"},
		{"escape character", "\x1b[31m"},
		{"DEL", "\x7f"},
		{"C1 control", "\u0085"},
		{"invalid UTF-8", "\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := escape(tt.in)
			assert.Error(t, err)
		})
	}
}

func TestValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		fn   func() error
		ok   bool
	}{
		{"nine digits are a BSN", func() error { _, err := newBSN("999993653"); return err }, true},
		{"eight digits are not", func() error { _, err := newBSN("99999365"); return err }, false},
		{"ten digits are not", func() error { _, err := newBSN("9999936530"); return err }, false},
		{"a quote is not", func() error { _, err := newBSN("99999365'"); return err }, false},
		{"wide digits are not", func() error { _, err := newBSN("９９９９９３６５３"); return err }, false},
		{"BURZA is a domain", func() error { _, err := newDomain("BURZA"); return err }, true},
		{"one letter is a domain", func() error { _, err := newDomain("K"); return err }, true},
		{"underscores and digits after a letter", func() error { _, err := newDomain("W_2_INKOMEN"); return err }, true},
		{"twenty characters is a domain", func() error { _, err := newDomain("A1234567890123456789"); return err }, true},
		{"twenty-one characters is not", func() error { _, err := newDomain("A12345678901234567890"); return err }, false},
		{"leading digit is not", func() error { _, err := newDomain("1BURZA"); return err }, false},
		{"lower case is not", func() error { _, err := newDomain("Burza"); return err }, false},
		{"a quote is not", func() error { _, err := newDomain("BURZA'"); return err }, false},
		{"empty is not", func() error { _, err := newDomain(""); return err }, false},
		{"18-character id", func() error { _, err := newID("0030900000SuZaNAAV"); return err }, true},
		{"15-character id", func() error { _, err := newID("0030900000SuZaN"); return err }, true},
		{"16 characters are no id", func() error { _, err := newID("0030900000SuZaNA"); return err }, false},
		{"id with a quote", func() error { _, err := newID("0030900000SuZa'AAV"); return err }, false},
		{"id with a space", func() error { _, err := newID("0030900000SuZa AAV"); return err }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ok {
				assert.NoError(t, tt.fn())
			} else {
				assert.Error(t, tt.fn())
			}
		})
	}
}

func TestBSNErrorDoesNotEchoTheValue(t *testing.T) {
	_, err := newBSN("99999365' OR 1")
	require.ErrorIs(t, err, ErrInvalidQuery)
	require.ErrorIs(t, err, bsn.ErrInvalid)
	assert.NotContains(t, err.Error(), "99999365")
}

func TestQueries(t *testing.T) {
	tests := []struct {
		name string
		got  func() (string, error)
		want string
	}{
		{"contact", func() (string, error) { return contactSOQL("999993653") },
			"SELECT Id FROM Contact WHERE BSN__c = '999993653' LIMIT 2"},
		{"cases", func() (string, error) { return casesSOQL(contactID, []domain{"BURZA", "KCC"}) },
			"SELECT Id, CaseNumber, Subject, Status, Origin, CreatedDate, Domein__c, IsClosed FROM Case WHERE ContactId = '@{contact.records[0].Id}' AND Domein__c IN ('BURZA','KCC') ORDER BY CreatedDate DESC"},
		{"tasks about the cases of the domains", func() (string, error) {
			return tasksSOQL(contactID, []subtype{subtypeCallback, subtypeCall}, []domain{"BURZA", "KCC"})
		}, "SELECT " + taskFields + " FROM Task WHERE WhoId = '@{contact.records[0].Id}' AND TaskSubtype IN ('Task','Call') AND WhatId IN (SELECT Id FROM Case WHERE ContactId = '@{contact.records[0].Id}' AND Domein__c IN ('BURZA','KCC')) ORDER BY CreatedDate DESC"},
		{"tasks about no case", func() (string, error) { return undomainedTasksSOQL(contactID, []subtype{subtypeCallback}) },
			"SELECT " + taskFields + " FROM Task WHERE WhoId = '@{contact.records[0].Id}' AND TaskSubtype IN ('Task') AND WhatId = null ORDER BY CreatedDate DESC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := tasksSOQL(contactID, []subtype{subtypeCall}, nil)
	assert.Error(t, err, "a task query that cannot match is never built")
	_, err = tasksSOQL(contactID, nil, []domain{"BURZA"})
	assert.Error(t, err)
	_, err = undomainedTasksSOQL(contactID, nil)
	assert.Error(t, err)
}

func TestCleanMessage(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"query echo is dropped", "\nSELECT Id FROM Contact WHERE BSN__c = '999993653'\n     ^\nERROR at Row:1:Column:6\nunexpected token: 'x'", "unexpected token: 'x'"},
		{"the BSN is replaced", "no Contact with BSN__c 999993653", "no Contact with BSN__c [BSN]"},
		{"any nine-digit number is replaced", "also 999990020 and x123456789y", "also [BSN] and x[BSN]y"},
		{"ids and other numbers stay", "record 0030900000SuZaNAAV has 12 tasks, 1234567890 bytes", "record 0030900000SuZaNAAV has 12 tasks, 1234567890 bytes"},
		{"whitespace is folded", "a\n\tb  c", "a b c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, cleanMessage(tt.in))
		})
	}
	long := cleanMessage(string(make([]byte, 1000)) + "x")
	assert.LessOrEqual(t, len(long), maxMessage)
}

func TestTokenSourceSharesOneFetch(t *testing.T) {
	var fetches atomic.Int32
	release := make(chan struct{})
	s := &tokenSource{
		fetch: func(context.Context) (string, error) {
			n := fetches.Add(1)
			<-release
			return "token-" + string(rune('0'+n)), nil
		},
		bound: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, time.Second)
		},
	}
	var wg sync.WaitGroup
	tokens := make([]string, 10)
	for i := range tokens {
		wg.Go(func() {
			tok, _, err := s.get(context.Background())
			assert.NoError(t, err)
			tokens[i] = tok
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), fetches.Load())
	for _, tok := range tokens {
		assert.Equal(t, "token-1", tok)
	}

	// A stale generation cannot throw away a newer token.
	_, gen, err := s.get(context.Background())
	require.NoError(t, err)
	s.invalidate(gen)
	tok, gen2, err := s.get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "token-2", tok)
	s.invalidate(gen)
	tok, gen3, err := s.get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "token-2", tok)
	assert.Equal(t, gen2, gen3)
	assert.Equal(t, int32(2), fetches.Load())
}

func TestTokenSourceDoesNotCacheFailures(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	s := &tokenSource{
		fetch: func(context.Context) (string, error) {
			if fail.Load() {
				return "", errors.New("refused")
			}
			return "token", nil
		},
		bound: func(ctx context.Context) (context.Context, context.CancelFunc) { return context.WithCancel(ctx) },
	}
	_, _, err := s.get(context.Background())
	require.Error(t, err)
	fail.Store(false)
	tok, _, err := s.get(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "token", tok)
}
