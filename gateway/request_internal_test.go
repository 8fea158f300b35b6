package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDuplicateKeyNamesThePathOfTheRepeatedKey(t *testing.T) {
	tests := []struct {
		name string
		json string
		want string // "" for none
	}{
		{"no duplicate", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{"at the top", `{"a":1,"b":2,"a":3}`, "a"},
		{"in a nested object", `{"a":{"b":1,"c":{"d":1,"d":2}}}`, "a.c.d"},
		{"in an object in an array", `{"list":[{"x":1},{"x":1,"x":2}]}`, "list.1.x"},
		{"in an array at the top", `[1,[2],{"k":1,"k":2}]`, "2.k"},
		{"after nested containers close", `{"a":[[],{}],"b":{"c":[1,2]},"a":0}`, "a"},
		{"spelt with an escape", `{"bsn":"1","b\u0073n":"2"}`, "bsn"},
		{"keys differing in case are not the same key", `{"bsn":"1","BSN":"2"}`, ""},
		{"a number too large for float64", `{"n":1e999,"n":1}`, "n"},
		{"two values are not JSON", `{"a":1} {"a":1,"a":2}`, ""},
		{"not JSON, though a key repeats before it goes wrong", `{"a":1,"a"`, ""},
		{"a scalar", `"a"`, ""},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := duplicateKey([]byte(tt.json))
			assert.Equal(t, tt.want != "", ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDuplicateKeyCopesWithDeepNesting(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	_, ok := duplicateKey([]byte(deep))
	assert.False(t, ok)
	_, ok = duplicateKey([]byte(strings.Repeat("[", 16<<10)))
	assert.False(t, ok, "unterminated")
}

func TestParseTraceparent(t *testing.T) {
	const v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tt := range []struct {
		in   string
		want string
	}{
		{v, v},
		{"cc" + v[2:] + "-x", "cc" + v[2:]},
		{"cc" + v[2:], "cc" + v[2:]},
		{"cc" + v[2:] + "x", ""},
		{v + "-x", ""},
		{"ff" + v[2:], ""},
		{"0g" + v[2:], ""},
		{strings.ToUpper(v), ""},
		{v[:54], ""},
		{strings.Replace(v, "-", "_", 1), ""},
		{"", ""},
	} {
		got, ok := parseTraceparent(tt.in)
		assert.Equal(t, tt.want != "", ok, "%q", tt.in)
		assert.Equal(t, tt.want, got, "%q", tt.in)
	}
}

func TestTruncateRunesNeverCutsACharacter(t *testing.T) {
	assert.Equal(t, "éé", truncateRunes("ééé", 2))
	assert.Equal(t, "ééé", truncateRunes("ééé", 3))
	assert.Equal(t, "", truncateRunes("é", 0))
}

func TestClientKeyIsThePeerAndAnIPv6AddressCountsByItsSlash64(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"192.0.2.1", "192.0.2.1"},
		{"@", "@"},
		{"", ""},
	} {
		assert.Equal(t, tt.want, clientKey(tt.remote), tt.remote)
	}
}

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func TestLimiterRegainsOneRefusalPerIntervalAndForgetsIdleAddresses(t *testing.T) {
	c := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	l := newLimiter(RateLimit{Burst: 3, Every: time.Second}, c.Now)
	for range 3 {
		ok, _ := l.take("a")
		assert.True(t, ok)
	}
	ok, wait := l.take("a")
	assert.False(t, ok, "the burst is spent")
	assert.Equal(t, time.Second, wait)

	c.now = c.now.Add(500 * time.Millisecond)
	ok, wait = l.take("a")
	assert.False(t, ok)
	assert.Equal(t, 500*time.Millisecond, wait)

	c.now = c.now.Add(500 * time.Millisecond)
	ok, _ = l.take("a")
	assert.True(t, ok, "one regained after Every")
	ok, _ = l.take("a")
	assert.False(t, ok, "and only one")

	ok, _ = l.take("b")
	assert.True(t, ok, "another address has its own budget")
	assert.Equal(t, 2, l.size())

	// Once every budget is whole again the addresses are forgotten.
	c.now = c.now.Add(3*time.Second + time.Nanosecond)
	ok, _ = l.take("c")
	assert.True(t, ok)
	assert.Equal(t, 1, l.size(), "a and b are forgotten, c is new")
	for range 3 {
		ok, _ = l.take("a")
		assert.True(t, ok, "a forgotten address has its whole burst")
	}
}

func TestLimiterRemembersAtMostClientsAddresses(t *testing.T) {
	c := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	l := newLimiter(RateLimit{Burst: 2, Every: time.Second, Clients: 2}, c.Now)
	for _, a := range []string{"a", "b"} {
		ok, _ := l.take(a)
		assert.True(t, ok)
	}
	ok, wait := l.take("c")
	assert.False(t, ok, "a third address while two are remembered")
	assert.Positive(t, wait)
	ok, _ = l.take("a")
	assert.True(t, ok, "remembered addresses keep their budget")
	assert.Equal(t, 2, l.size())

	c.now = c.now.Add(3 * time.Second)
	ok, _ = l.take("c")
	assert.True(t, ok, "room again once the others' budgets are whole")
	assert.Equal(t, 1, l.size())
}

func TestLimiterDefaults(t *testing.T) {
	c := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	l := newLimiter(RateLimit{}, c.Now)
	for i := range DefaultRateLimitBurst {
		ok, _ := l.take("a")
		assert.True(t, ok, "refusal %d", i+1)
	}
	ok, wait := l.take("a")
	assert.False(t, ok)
	assert.Equal(t, DefaultRateLimitEvery, wait)
	assert.Equal(t, DefaultRateLimitClients, l.clients)
}
