package policies_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/policies"
)

// withRego is b with decision.rego changed: each old string, which must be
// there, replaced by its new one.
func withRego(t *testing.T, b policies.Bundle, file string, replace ...string) policies.Bundle {
	t.Helper()
	require.Zero(t, len(replace)%2)
	b.Files = maps.Clone(b.Files)
	src := string(b.Files[file])
	for i := 0; i < len(replace); i += 2 {
		require.Contains(t, src, replace[i])
		src = strings.ReplaceAll(src, replace[i], replace[i+1])
	}
	b.Files[file] = []byte(src)
	return b
}

// withGeboorte is the embedded bundle with geboorte added to klantcontact's
// BRP fields, its own test updated to match: a bundle that passes Check.
func withGeboorte(t *testing.T) policies.Bundle {
	t.Helper()
	b := withData(t, func(d map[string]any) {
		brp := purpose(d, "klantcontact")["sources"].(map[string]any)["brp"].(map[string]any)
		brp["fields"] = []any{"naam", "adressering", "geboorte"}
	})
	return withRego(t, b, "decision_test.rego",
		`{f | some f in d.sources.brp.fields} == {"naam", "adressering"}`,
		`{f | some f in d.sources.brp.fields} == {"naam", "adressering", "geboorte"}`)
}

func TestCheckPassesTheEmbeddedBundle(t *testing.T) {
	rep, err := policies.Check(context.Background(), policies.Embedded())
	require.NoError(t, err)
	assert.Equal(t, policies.Embedded().Version(), rep.Version)
	assert.Equal(t, policies.Invariants(), rep.Invariants)
	assert.Empty(t, rep.Violations)
	assert.GreaterOrEqual(t, len(rep.Tests), 25)
	assert.Greater(t, rep.Cases, 1000, "the guard asks about every department, role, purpose and subject fact")
	require.NoError(t, policies.Guard(context.Background(), policies.Embedded()))
}

func TestCheckRejectsABundleThatBreaksAnInvariant(t *testing.T) {
	tests := []struct {
		name      string
		bundle    func(t *testing.T) policies.Bundle
		invariant string
		detail    string
	}{
		{"data.json granting reisdocumenten SOCZA in salesforce", func(t *testing.T) policies.Bundle {
			return withData(t, func(d map[string]any) {
				sf := purpose(d, "reisdocumenten")["sources"].(map[string]any)["salesforce"].(map[string]any)
				sf["domains"] = []any{"BURZA", "SOCZA"}
			})
		}, policies.InvariantBurgerzakenNoSOCZA, `purpose "reisdocumenten", which burgerzaken holds, SOCZA in salesforce.domains`},
		{"data.json granting reisdocumenten SOCZA existence in zaken", func(t *testing.T) policies.Bundle {
			return withData(t, func(d map[string]any) {
				purpose(d, "reisdocumenten")["sources"].(map[string]any)["zaken"].(map[string]any)["existence_only"] = []any{"SOCZA"}
			})
		}, policies.InvariantBurgerzakenNoSOCZA, "SOCZA in zaken.existence_only"},
		{"separation rule broken in the Rego", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego",
				`"domains": [d | some d in object.get(spec, "domains", []); not d in never_domains],`,
				`"domains": array.concat(object.get(spec, "domains", []), ["SOCZA"]),`)
		}, policies.InvariantBurgerzakenNoSOCZA, "burgerzaken would receive SOCZA from"},
		{"auditors listed as employees in data.json", func(t *testing.T) policies.Bundle {
			return withData(t, func(d map[string]any) { d["no_data_roles"] = []any{} })
		}, policies.InvariantNoDataRoles, "roles [auditor medewerker] would receive resident data"},
		{"role rules removed lets an auditor alone see resident data", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego",
				`r in data.no_data_roles`, `r in []`,
				`not data.employee_role in object.get(input, ["actor", "roles"], [])`, `false`)
		}, policies.InvariantNoDataRoles, "[auditor]"},
		{"department check removed", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego", `not department in purpose.departments`, `false`)
		}, policies.InvariantPurposeNotGranted, "not granted to the department"},
		{"unknown purposes treated as inzage", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego",
				`purpose := data.purposes[input.purpose]`, `purpose := object.get(data.purposes, input.purpose, data.purposes.inzage)`)
		}, policies.InvariantUnknownPurpose, `data.json defines no purpose "ongeregistreerd-doel"`},
		{"missing sub accepted", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego",
				`object.get(input, ["actor", "sub"], "") == ""`, `false`,
				`not is_string(object.get(input, ["actor", "sub"], ""))`, `false`)
		}, policies.InvariantMissingClaim, "without sub"},
		{"organisation sees a resident with geheimhouding", func(t *testing.T) policies.Bundle {
			b := withData(t, func(d map[string]any) {
				purpose(d, "reisdocumenten")["organisations"] = []any{"00000001234567890000"}
			})
			return withRego(t, b, "decision.rego", `input.subject.geheimhoudingPersoonsgegevens == true`, `false`)
		}, policies.InvariantGeheimhouding, "organisation 00000001234567890000 reisdocumenten resident-view, subject: geheimhouding"},
		{"decision without processing activity", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego",
				`"processing_activity": purpose.processing_activity,`, `"processing_activity": "",`)
		}, policies.InvariantProcessingActivity, "names no processing activity"},
		{"denial without reason codes", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego", `"codes": sort({d.code | some d in deny}),`, `"codes": [d.code | some d in deny; false],`)
		}, policies.InvariantReasonCodes, "a denial without a reason code"},
		{"a reason code that is not one", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego", `"code": "purpose_unknown"`, `"code": "Purpose Unknown!"`)
		}, policies.InvariantReasonCodes, `"Purpose Unknown!" is not a valid reason code`},
		{"break-glass let through for an organisation", func(t *testing.T) policies.Bundle {
			b := withData(t, func(d map[string]any) {
				purpose(d, "klantcontact")["organisations"] = []any{"00000001234567890000"}
			})
			return withRego(t, b, "decision.rego", "\tbreak_glass\n\tis_organisation\n", "\tbreak_glass\n\tis_organisation\n\tfalse\n")
		}, policies.InvariantBreakGlassOrganisations, "organisation 00000001234567890000 klantcontact resident-view"},
		{"a required context the gateway cannot verify", func(t *testing.T) policies.Bundle {
			return withData(t, func(d map[string]any) {
				purpose(d, "klantcontact")["requires_context"] = []any{"contact-session", "klantcontact"}
			})
		}, policies.InvariantVerifiableContext, `purpose "klantcontact" requires a context of type "klantcontact"`},
		{"a decision that errs for organisations", func(t *testing.T) policies.Bundle {
			return withRego(t, policies.Embedded(), "decision.rego", "is_organisation if {\n",
				"is_organisation if {\n\tto_number(input.actor.organisation) / 0 > 0\n")
		}, policies.InvariantDecides, "organisation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e, err := policies.NewEngine(ctx, policies.Embedded())
			require.NoError(t, err)
			before := e.Version()

			rep, err := e.Activate(ctx, tt.bundle(t))
			require.ErrorIs(t, err, policies.ErrGuard)
			ie, ok := findInvariant(err, tt.invariant)
			require.Truef(t, ok, "no %s in %v", tt.invariant, err)
			assert.Contains(t, ie.Detail, tt.detail)
			assert.Contains(t, err.Error(), tt.invariant, "the error names the invariant")
			assert.Contains(t, rep.Violations, ie)
			assert.Equal(t, before, e.Version(), "a rejected bundle leaves the active version in place")
			assert.Equal(t, before, rep.Previous)
		})
	}
}

// findInvariant finds the violation of one invariant among joined errors.
func findInvariant(err error, invariant string) (*policies.InvariantError, bool) {
	type multi interface{ Unwrap() []error }
	errs := []error{err}
	if m, ok := err.(multi); ok {
		errs = m.Unwrap()
	}
	for _, e := range errs {
		if ie, ok := e.(*policies.InvariantError); ok && ie.Invariant == invariant {
			return ie, true
		}
	}
	return nil, false
}

func TestCheckRejectsABundleWhoseOwnTestsFail(t *testing.T) {
	// geboorte for klantcontact, but the bundle's own test still says
	// klantcontact sees naam and adressering only.
	b := withData(t, func(d map[string]any) {
		brp := purpose(d, "klantcontact")["sources"].(map[string]any)["brp"].(map[string]any)
		brp["fields"] = []any{"naam", "adressering", "geboorte"}
	})
	ctx := context.Background()
	e, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)

	rep, err := e.Activate(ctx, b)
	tf, ok := errors.AsType[*policies.TestFailure](err)
	require.True(t, ok, "want a *TestFailure, got %v", err)
	assert.Equal(t, []string{"data.klantbeeld_test.test_klantcontact_row"}, tf.Names)
	assert.Contains(t, err.Error(), "test_klantcontact_row")
	assert.Empty(t, rep.Violations, "the bundle keeps every invariant: only its tests fail")
	assert.Equal(t, policies.Embedded().Version(), e.Version())
}

func TestCheckRejectsABundleWithoutTests(t *testing.T) {
	b := policies.Embedded()
	b.Files = maps.Clone(b.Files)
	delete(b.Files, "decision_test.rego")
	_, err := policies.Check(context.Background(), b)
	tf, ok := errors.AsType[*policies.TestFailure](err)
	require.True(t, ok, "want a *TestFailure, got %v", err)
	assert.Empty(t, tf.Names)
	assert.EqualError(t, tf, "the policy bundle has no Rego tests")
}

func TestCheckRejectsABundleThatDoesNotCompile(t *testing.T) {
	b := withRego(t, policies.Embedded(), "decision.rego", "allow if count(deny) == 0", "allow if count(deny) ==")
	_, err := policies.Check(context.Background(), b)
	require.ErrorIs(t, err, policies.ErrBundle)
}

func TestActivateSwapsAndReportsThePreviousVersion(t *testing.T) {
	ctx := context.Background()
	e, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)
	embedded := e.Version()
	in := policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "klantcontact", Context: &policies.Context{Type: "contact-session", ID: "c-1"}}
	_, err = e.Decide(ctx, in)
	require.NoError(t, err)
	require.Equal(t, policies.CacheStats{Misses: 1, Entries: 1}, e.CacheStats())

	proposed := withGeboorte(t)
	rep, err := e.Activate(ctx, proposed)
	require.NoError(t, err)
	assert.Equal(t, embedded, rep.Previous)
	assert.Equal(t, proposed.Version(), rep.Version)
	assert.Equal(t, proposed.Version(), e.Version())
	assert.Equal(t, policies.CacheStats{}, e.CacheStats(), "the new version starts with an empty cache")

	d, err := e.Decide(ctx, in)
	require.NoError(t, err)
	assert.Contains(t, d.Sources["brp"].Fields, "geboorte", "not an answer cached from the old version")
	assert.Equal(t, proposed.Version(), d.BundleVersion)

	// Rollback: the earlier version again, through the same checks.
	stored := policies.NewStoredVersion(policies.Embedded())
	back, err := stored.Bundle()
	require.NoError(t, err)
	rep, err = e.Activate(ctx, back)
	require.NoError(t, err)
	assert.Equal(t, proposed.Version(), rep.Previous)
	assert.Equal(t, embedded, e.Version())
}

func TestSnapshotKeepsDecidingWithItsVersionAfterAnActivation(t *testing.T) {
	ctx := context.Background()
	e, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)
	inFlight := e.Snapshot()
	_, err = e.Activate(ctx, withGeboorte(t))
	require.NoError(t, err)

	in := policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "klantcontact", Context: &policies.Context{Type: "contact-session", ID: "c-1"}}
	d, err := inFlight.Decide(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, policies.Embedded().Version(), d.BundleVersion)
	assert.NotContains(t, d.Sources["brp"].Fields, "geboorte")
	assert.Equal(t, policies.Embedded().Version(), inFlight.Version())
}

// TestEveryDecisionDuringActivationsIsOneVersions decides from several
// goroutines while two versions are activated in turn: every decision is
// exactly what one of the versions decides, and says which.
func TestEveryDecisionDuringActivationsIsOneVersions(t *testing.T) {
	ctx := context.Background()
	a, b := policies.Embedded(), withGeboorte(t)
	in := policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "klantcontact", Context: &policies.Context{Type: "contact-session", ID: "c-1"}}
	want := map[string]policies.Decision{}
	for _, bundle := range []policies.Bundle{a, b} {
		s, err := policies.Compile(ctx, bundle)
		require.NoError(t, err)
		d, err := s.Decide(ctx, in)
		require.NoError(t, err)
		want[bundle.Version()] = d
	}
	require.NotEqual(t, want[a.Version()].Sources, want[b.Version()].Sources)

	e, err := policies.NewEngine(ctx, a)
	require.NoError(t, err)
	done := make(chan struct{})
	var wg sync.WaitGroup
	seen := make([]map[string]int, 2)
	for i := range seen {
		seen[i] = map[string]int{}
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				d, err := e.Decide(ctx, in)
				if !assert.NoError(t, err) {
					return
				}
				w, known := want[d.BundleVersion]
				if !assert.True(t, known, "a decision of an unknown version") || !assert.Equal(t, w, d) {
					return
				}
				seen[i][d.BundleVersion]++
			}
		})
	}
	for i := range 2 {
		next := b
		if i%2 == 1 {
			next = a
		}
		_, err := e.Activate(ctx, next)
		require.NoError(t, err)
	}
	close(done)
	wg.Wait()
	total := map[string]int{}
	for _, s := range seen {
		for v, n := range s {
			total[v] += n
		}
	}
	assert.NotZero(t, total[a.Version()]+total[b.Version()])
}
