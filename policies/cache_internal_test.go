package policies

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecisionCacheNeverHoldsMoreThanItsSize(t *testing.T) {
	c := newDecisionCache(3)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		c.put(k, Decision{Reasons: []string{k}})
		assert.LessOrEqual(t, c.stats().Entries, 3)
	}
	d, ok := c.get("e")
	assert.True(t, ok, "the latest decision is kept")
	assert.Equal(t, []string{"e"}, d.Reasons)
}

func TestCacheKeyTellsApartWhatTheInputTellsApart(t *testing.T) {
	inputs := []Input{
		{},
		{Action: ActionResidentView},
		{Actor: Actor{Department: "kcc"}},
		{Actor: Actor{Organisation: "kcc"}},
		{Actor: Actor{Roles: []string{"kcc"}}},
		{Actor: Actor{Roles: []string{"a", "b"}}},
		{Actor: Actor{Roles: []string{"a,b"}}},
		{Actor: Actor{Sub: "x"}},
		{Purpose: "kcc"},
		{Context: &Context{}},
		{Context: &Context{Type: "zaak"}},
		{Context: &Context{Type: "zaak", ID: "1"}},
		{Sources: []string{"brp"}},
		{Subject: &Subject{}},
		{Subject: &Subject{Geheimhouding: true}},
		{Subject: &Subject{Opschorting: "O"}},
	}
	seen := map[string]int{}
	for i, in := range inputs {
		k := cacheKey(normalize(in))
		if j, dup := seen[k]; dup {
			t.Errorf("inputs %d and %d share the key %q", j, i, k)
		}
		seen[k] = i
	}
	assert.Equal(t,
		cacheKey(normalize(Input{Actor: Actor{Sub: "a", Roles: []string{"b", "a"}}, Sources: []string{"zaken", "brp"}})),
		cacheKey(normalize(Input{Actor: Actor{Sub: "b", Roles: []string{"a", "b", "a"}}, Sources: []string{"brp", "zaken"}})),
		"order and repetition of roles and sources, and who the sub is, do not matter")
}

// TestInputValueIsTheJSONDocument: the policy sees the same input as `opa
// eval -i` would with the input as JSON.
func TestInputValueIsTheJSONDocument(t *testing.T) {
	inputs := []Input{
		{},
		benchInput(),
		{Actor: Actor{Organisation: "00000001234567890000"}, Purpose: "x", Sources: []string{"zaken", "brp"}, Subject: &Subject{Geheimhouding: true}},
		{Actor: Actor{Roles: []string{"b", "a"}}, Context: &Context{Type: "zaak"}},
	}
	k := newInputKeys()
	for _, in := range inputs {
		n := normalize(in)
		raw, err := json.Marshal(n)
		require.NoError(t, err)
		want, err := ast.ValueFromReader(bytes.NewReader(raw))
		require.NoError(t, err)
		assert.Equal(t, want.String(), k.value(n).String(), string(raw))
	}
}
