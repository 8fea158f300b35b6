package policies_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/policies"
)

// TestRegoSuite runs the bundle's own _test.rego files, so `go test` fails
// when a Rego test does.
func TestRegoSuite(t *testing.T) {
	results, err := policies.RunTests(context.Background(), policies.Embedded())
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(results), 15, "the Rego suite should cover every row and invariant")
	for _, r := range results {
		assert.Truef(t, r.Pass, "%s %s (%s) failed: %s", r.Package, r.Name, r.Location, r.Err)
	}
}

func purpose(d map[string]any, name string) map[string]any {
	return d["purposes"].(map[string]any)[name].(map[string]any)
}

func TestDecide(t *testing.T) {
	e, err := policies.NewEngine(context.Background(), policies.Embedded())
	require.NoError(t, err)
	tests := []struct {
		name       string
		in         policies.Input
		allow      bool
		sources    []string
		reasonPart string
		code       string
	}{
		{"burgerzaken reisdocumenten allowed with four sources",
			policies.Input{Actor: emp("burgerzaken"), Action: policies.ActionResidentView, Purpose: "reisdocumenten", Context: &policies.Context{Type: "contact-session", ID: "c-1"}},
			true, []string{"brp", "klantinteracties", "salesforce", "zaken"}, "granted", ""},
		{"burgerzaken claiming bijstand denied",
			policies.Input{Actor: emp("burgerzaken"), Action: policies.ActionResidentView, Purpose: "bijstand", Context: &policies.Context{Type: "zaak", ID: "c-1"}},
			false, nil, `not granted to department "burgerzaken"`, policies.CodePurposeNotGranted},
		{"auditor denied",
			policies.Input{Actor: policies.Actor{Sub: "a", Department: "audit", Roles: []string{"auditor"}}, Action: policies.ActionResidentView, Purpose: "reisdocumenten", Context: &policies.Context{Type: "contact-session", ID: "c-1"}},
			false, nil, `role "auditor"`, policies.CodeNoDataRole},
		{"organisation with a resident under geheimhouding denied",
			policies.Input{Actor: policies.Actor{Sub: "c", Organisation: "00000001234567890000"}, Action: policies.ActionResidentView, Purpose: "reisdocumenten", Context: &policies.Context{Type: "contact-session", ID: "c-1"}, Subject: &policies.Subject{Geheimhouding: true}},
			false, nil, "geheimhoudingPersoonsgegevens", policies.CodePurposeNotGranted},
		{"purpose for another action denied",
			policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "inzage"},
			false, nil, "not for resident-view", policies.CodeActionNotGranted},
		{"unknown purpose denied",
			policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "roddel"},
			false, nil, `unknown purpose "roddel"`, policies.CodePurposeUnknown},
		{"sources narrowed by request",
			policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "klantcontact", Context: &policies.Context{Type: "contact-session", ID: "c-1"}, Sources: []string{"brp"}},
			true, []string{"brp"}, "granted", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Decide(context.Background(), tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.allow, d.Allow)
			var got []string
			for s := range d.Sources {
				got = append(got, s)
			}
			assert.ElementsMatch(t, tt.sources, got)
			assert.Contains(t, strings.Join(d.Reasons, "; "), tt.reasonPart)
			assert.Equal(t, tt.code, d.Code(), "the code the problem type names")
			if !tt.allow {
				assert.Contains(t, d.Codes, tt.code)
			}
			assert.NotEmpty(t, d.ProcessingActivity)
			_, version := e.Bundle()
			assert.Equal(t, version, d.BundleVersion)
		})
	}
}

func emp(dept string) policies.Actor {
	return policies.Actor{Sub: "e1", Department: dept, Roles: []string{"medewerker"}}
}

func TestBrokenBundlesFailClosed(t *testing.T) {
	tests := []struct {
		name   string
		rego   string
		errIs  error
		atLoad bool
	}{
		{"syntax error rejected at load", "package klantbeeld\ndecision := {", policies.ErrBundle, true},
		{"undefined decision fails closed", "package klantbeeld\nother := 1", policies.ErrEvaluation, false},
		{"decision of the wrong shape fails closed", "package klantbeeld\ndecision := {\"allow\": \"yes\", \"processing_activity\": \"x\"}", policies.ErrEvaluation, false},
		{"conflicting decisions fail closed", "package klantbeeld\ndecision := 1 if input.purpose\ndecision := 2 if input.purpose", policies.ErrEvaluation, false},
		{"allow without processing activity fails closed", "package klantbeeld\ndecision := {\"allow\": true, \"reasons\": [], \"processing_activity\": \"\", \"sources\": {}}", policies.ErrEvaluation, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := policies.Bundle{Files: map[string][]byte{"decision.rego": []byte(tt.rego), "data.json": []byte(`{}`)}}
			e, err := policies.NewEngine(context.Background(), b)
			if tt.atLoad {
				require.ErrorIs(t, err, tt.errIs)
				return
			}
			require.NoError(t, err)
			d, err := e.Decide(context.Background(), policies.Input{Purpose: "x", Actor: emp("kcc")})
			if err == nil {
				t.Fatalf("want %v, got decision %+v", tt.errIs, d)
			}
			require.ErrorIs(t, err, tt.errIs)
			assert.False(t, d.Allow)
		})
	}
}

func TestVersionDependsOnContent(t *testing.T) {
	a := policies.Embedded()
	b := policies.Embedded()
	assert.Equal(t, a.Version(), b.Version())
	b.Files["data.json"] = append([]byte(nil), b.Files["data.json"]...)
	b.Files["data.json"][0] = ' '
	assert.NotEqual(t, a.Version(), b.Version())
	assert.True(t, strings.HasPrefix(a.Version(), "sha256:"))
}

func TestLoadDirMatchesEmbedded(t *testing.T) {
	b, err := policies.LoadDir(".")
	require.NoError(t, err)
	assert.Equal(t, policies.Embedded().Version(), b.Version())
	_, err = policies.LoadDir("does-not-exist")
	require.Error(t, err)
}

func ExampleEngine_Decide() {
	e, _ := policies.NewEngine(context.Background(), policies.Embedded())
	d, _ := e.Decide(context.Background(), policies.Input{
		Actor:   policies.Actor{Sub: "u123", Department: "kcc", Roles: []string{"medewerker"}},
		Action:  policies.ActionResidentView,
		Purpose: "klantcontact", Context: &policies.Context{Type: "contact-session", ID: "c-1"},
	})
	fmt.Println(d.Allow, d.Sources["brp"].Fields, d.Sources["zaken"].ExistenceOnly)
	// Output: true [naam adressering] [SOCZA]
}
