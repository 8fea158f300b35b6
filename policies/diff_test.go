package policies_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/policies"
)

func TestDiffOfAddingGeboorteToKlantcontactIsExactlyThatGain(t *testing.T) {
	d, err := policies.Diff(context.Background(), policies.Embedded(), withGeboorte(t))
	require.NoError(t, err)
	geboorte := []policies.Grant{{Source: "brp", Aspect: policies.AspectField, Value: "geboorte"}}
	var want []policies.Change
	for _, facts := range []string{policies.FactsNone, policies.FactsGeheimhouding, policies.FactsOpschorting} {
		want = append(want, policies.Change{
			Case:       policies.Case{Department: "kcc", Roles: []string{"medewerker"}, Action: policies.ActionResidentView, Purpose: "klantcontact", Context: "contact-session", Subject: facts},
			WasAllowed: true, Allowed: true, Gained: geboorte,
		})
	}
	assert.ElementsMatch(t, want, d.Changes)
	assert.Greater(t, d.Cases, 900)
	assert.Equal(t, policies.Embedded().Version(), d.From)

	table := d.Table()
	assert.Contains(t, table, "3 of")
	assert.Regexp(t, `kcc \[medewerker\]\s+klantcontact\s+resident-view\s+none\s+\+ gains brp field geboorte`, table)

	raw, err := json.Marshal(d)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"gained":[{"source":"brp","aspect":"field","value":"geboorte"}]`)
}

func TestDiffOfTheSameBundleIsEmpty(t *testing.T) {
	d, err := policies.Diff(context.Background(), policies.Embedded(), policies.Embedded())
	require.NoError(t, err)
	assert.Empty(t, d.Changes)
	assert.Contains(t, d.Table(), "0 of")
}

func TestDiffNamesEveryKindOfChange(t *testing.T) {
	proposed := withData(t, func(d map[string]any) {
		kc := purpose(d, "klantcontact")
		src := kc["sources"].(map[string]any)
		zaken := src["zaken"].(map[string]any)
		zaken["max_vertrouwelijkheid"] = "geheim" // a higher level: gained
		zaken["existence_only"] = []any{}         // SOCZA no longer counted: lost
		zaken["domains"] = []any{"BURZA"}         // KCC lost
		delete(src, "salesforce")                 // a source lost
		ki := src["klantinteracties"].(map[string]any)
		ki["vertrouwelijk"] = true                      // gained
		ki["max_age_days"] = 30                         // a shorter window: lost
		purpose(d, "bijstand")["departments"] = []any{} // sociale-zaken loses bijstand
	})
	d, err := policies.Diff(context.Background(), policies.Embedded(), proposed)
	require.NoError(t, err)
	kcc := find(t, d, policies.Case{Department: "kcc", Roles: []string{"medewerker"}, Action: policies.ActionResidentView, Purpose: "klantcontact", Context: "contact-session", Subject: policies.FactsNone})
	assert.ElementsMatch(t, []policies.Grant{
		{Source: "zaken", Aspect: policies.AspectMaxVertrouwelijkheid, From: "zaakvertrouwelijk", Value: "geheim"},
		{Source: "klantinteracties", Aspect: policies.AspectVertrouwelijk, From: "false", Value: "true"},
	}, kcc.Gained)
	assert.ElementsMatch(t, []policies.Grant{
		{Source: "salesforce", Aspect: policies.AspectSource},
		{Source: "zaken", Aspect: policies.AspectDomain, Value: "KCC"},
		{Source: "zaken", Aspect: policies.AspectExistenceOnly, Value: "SOCZA"},
		{Source: "klantinteracties", Aspect: policies.AspectMaxAgeDays, From: "90", Value: "30"},
	}, kcc.Lost)

	socza := find(t, d, policies.Case{Department: "sociale-zaken", Roles: []string{"medewerker"}, Action: policies.ActionResidentView, Purpose: "bijstand", Context: "zaak", Subject: policies.FactsNone})
	assert.False(t, socza.Allowed)
	assert.True(t, socza.WasAllowed)
	assert.Contains(t, socza.Lost, policies.Grant{Aspect: policies.AspectAllow})
	assert.Contains(t, socza.Lost, policies.Grant{Source: "zaken", Aspect: policies.AspectSource})
	assert.Contains(t, d.Table(), "- loses allow")
}

func find(t *testing.T, d policies.Difference, k policies.Case) policies.Change {
	t.Helper()
	for _, c := range d.Changes {
		if c.Case.String() == k.String() {
			return c
		}
	}
	t.Fatalf("no change for %s", k)
	return policies.Change{}
}

func TestExplainSaysWhichRulesDenied(t *testing.T) {
	ex, err := policies.Explain(context.Background(), policies.Embedded(), policies.Input{
		Actor: emp("burgerzaken"), Action: policies.ActionResidentView, Purpose: "bijstand", Context: &policies.Context{Type: "zaak", ID: "c-1"},
	})
	require.NoError(t, err)
	assert.False(t, ex.Decision.Allow)
	assert.Equal(t, []string{policies.CodePurposeNotGranted}, ex.Decision.Codes)
	var denials []policies.FiredRule
	for _, r := range ex.Rules {
		if r.Rule == "data.klantbeeld.deny" {
			denials = append(denials, r)
		}
	}
	require.Len(t, denials, 1, "one denial decided: %+v", ex.Rules)
	assert.Regexp(t, `^decision\.rego:\d+$`, denials[0].Location)
	assert.Equal(t, map[string]any{"code": "purpose_not_granted", "reason": `purpose "bijstand" is not granted to department "burgerzaken"`}, denials[0].Element)
	assert.Contains(t, ex.Data, "data.purposes.bijstand")
	assert.Equal(t, policies.Embedded().Version(), ex.Version)
}

func TestExplainSaysWhichSourcesWereGranted(t *testing.T) {
	ex, err := policies.Explain(context.Background(), policies.Embedded(), policies.Input{
		Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "klantcontact", Context: &policies.Context{Type: "contact-session", ID: "c-1"}, Sources: []string{"brp", "zaken"},
	})
	require.NoError(t, err)
	assert.True(t, ex.Decision.Allow)
	var granted []any
	for _, r := range ex.Rules {
		if r.Rule == "data.klantbeeld.granted" {
			granted = append(granted, r.Element)
		}
		assert.NotEqual(t, "data.klantbeeld.deny", r.Rule)
	}
	assert.ElementsMatch(t, []any{"brp", "zaken"}, granted)
	assert.Contains(t, ex.Data, "data.purposes.klantcontact")
}
