package policies_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/policies"
)

func TestCachedDecisionCannotBeChangedByItsCaller(t *testing.T) {
	ctx := context.Background()
	e, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)
	in := policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "klantcontact", Context: &policies.Context{Type: "contact-session", ID: "c-1"}}
	first, err := e.Decide(ctx, in)
	require.NoError(t, err)
	pristine, err := e.Decide(ctx, in)
	require.NoError(t, err)

	// Everything a careless caller could scribble on.
	first.Reasons[0] = "changed"
	first.Notes = append(first.Notes, "changed")
	zaken := first.Sources["zaken"]
	zaken.Fields[0] = "omschrijving"
	zaken.Domains[0] = "SOCZA"
	zaken.ExistenceOnly[0] = "BURZA"
	zaken.ExistenceNotes["SOCZA"] = "changed"
	zaken.ExistenceCodes["SOCZA"] = "changed"
	first.Sources["salesforce"].Records[0] = "changed"
	first.Sources["extra"] = policies.SourceRule{}

	again, err := e.Decide(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, pristine, again)
	assert.Equal(t, policies.CacheStats{Hits: 2, Misses: 1, Entries: 1}, e.CacheStats())
}

func TestCachedDenialCannotBeChangedByItsCaller(t *testing.T) {
	ctx := context.Background()
	e, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)
	in := policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "bijstand", Context: &policies.Context{Type: "zaak", ID: "c-1"}}
	first, err := e.Decide(ctx, in)
	require.NoError(t, err)
	first.Codes[0] = "changed"
	again, err := e.Decide(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, []string{policies.CodePurposeNotGranted}, again.Codes)
}

// TestDecisionsAreCachedPerClaimSetNeverPerPerson: the employee and the
// case that justifies a look-up do not change the decision, so the cache
// does not key on them; what the policy does depend on does.
func TestDecisionsAreCachedPerClaimSetNeverPerPerson(t *testing.T) {
	ctx := context.Background()
	// bijstand needs a zaak as context, so a context's presence matters.
	b := withData(t, func(d map[string]any) { purpose(d, "bijstand")["requires_context"] = []any{"zaak"} })
	e, err := policies.NewEngine(ctx, b)
	require.NoError(t, err)
	base := policies.Input{
		Actor:   policies.Actor{Sub: "jjansen", Department: "sociale-zaken", Roles: []string{"medewerker"}},
		Action:  policies.ActionResidentView,
		Purpose: "bijstand",
		Context: &policies.Context{Type: "zaak", ID: "ZAAK-2026-0000103"},
	}
	first, err := e.Decide(ctx, base)
	require.NoError(t, err)
	require.True(t, first.Allow, first.Reasons)

	same := []func(in *policies.Input){
		func(in *policies.Input) { in.Actor.Sub = "pdevries" },
		func(in *policies.Input) { in.Context = &policies.Context{Type: "zaak", ID: "ZAAK-2026-0000999"} },
		func(in *policies.Input) { in.Actor.Roles = []string{"medewerker", "medewerker"} },
	}
	for _, change := range same {
		in := base
		change(&in)
		d, err := e.Decide(ctx, in)
		require.NoError(t, err)
		assert.Equal(t, first, d)
	}
	assert.Equal(t, uint64(len(same)), e.CacheStats().Hits, "another employee or case of the same claim set is a cache hit")

	different := []struct {
		name   string
		change func(in *policies.Input)
		allow  bool
	}{
		{"no sub", func(in *policies.Input) { in.Actor.Sub = "" }, false},
		{"no context id", func(in *policies.Input) { in.Context = &policies.Context{Type: "zaak"} }, false},
		{"another context type", func(in *policies.Input) { in.Context = &policies.Context{Type: "klantcontact", ID: "k-1"} }, false},
		{"another department", func(in *policies.Input) { in.Actor.Department = "kcc" }, false},
		{"an auditor too", func(in *policies.Input) { in.Actor.Roles = []string{"auditor", "medewerker"} }, false},
		{"fewer sources", func(in *policies.Input) { in.Sources = []string{"brp"} }, true},
		{"deceased", func(in *policies.Input) { in.Subject = &policies.Subject{Opschorting: "O"} }, true},
	}
	for _, tt := range different {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.change(&in)
			d, err := e.Decide(ctx, in)
			require.NoError(t, err)
			assert.Equal(t, tt.allow, d.Allow, d.Reasons)
			assert.NotEqual(t, first, d)
		})
	}
}

func TestPolicySeesSubAndContextIDOnlyAsRedacted(t *testing.T) {
	ctx := context.Background()
	ex, err := policies.Explain(ctx, policies.Embedded(), policies.Input{
		Actor:   policies.Actor{Sub: "jjansen", Department: "kcc", Roles: []string{"medewerker"}},
		Action:  policies.ActionResidentView,
		Purpose: "klantcontact",
		Context: &policies.Context{Type: "klantcontact", ID: "6f1a8f4e"},
	})
	require.NoError(t, err)
	assert.Equal(t, policies.Redacted, ex.Input.Actor.Sub)
	assert.Equal(t, policies.Redacted, ex.Input.Context.ID)
	assert.Equal(t, "klantcontact", ex.Input.Context.Type)
}
