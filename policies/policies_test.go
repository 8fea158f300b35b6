package policies_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
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

func TestGuardAcceptsEmbeddedBundle(t *testing.T) {
	require.NoError(t, policies.Guard(context.Background(), policies.Embedded()))
}

func TestGuardRejectsBrokenBundles(t *testing.T) {
	tests := []struct {
		name    string
		replace map[string]string // old → new, applied to decision.rego
		data    func(map[string]any)
		want    string
	}{
		{
			name:    "separation rule removed lets burgerzaken see SOCZA",
			replace: map[string]string{`never := {"burgerzaken": {"SOCZA"}}`: `never := {}`},
			data: func(d map[string]any) {
				z := purpose(d, "reisdocumenten")["sources"].(map[string]any)["zaken"].(map[string]any)
				z["domains"] = []any{"BURZA", "SOCZA"}
			},
			want: "burgerzaken would receive SOCZA from zaken",
		},
		{
			name:    "existence-only SOCZA for burgerzaken",
			replace: map[string]string{`never := {"burgerzaken": {"SOCZA"}}`: `never := {}`},
			data: func(d map[string]any) {
				z := purpose(d, "reisdocumenten")["sources"].(map[string]any)["zaken"].(map[string]any)
				z["existence_only"] = []any{"SOCZA"}
			},
			want: "burgerzaken would receive SOCZA from zaken",
		},
		{
			name:    "auditor rule removed",
			replace: map[string]string{`r in data.no_data_roles`: `r in []`, `not data.employee_role in roles`: `false`},
			want:    "roles [auditor] would receive resident data",
		},
		{
			name:    "department check removed",
			replace: map[string]string{"department_granted if department in purpose.departments": "department_granted := true"},
			want:    "allowed although the purpose is unknown or not granted",
		},
		{
			name:    "secrecy rule removed",
			replace: map[string]string{`input.subject.geheimhoudingPersoonsgegevens == true`: `false`},
			data: func(d map[string]any) {
				purpose(d, "reisdocumenten")["organisations"] = []any{"00000001234567890000"}
			},
			want: "geheimhoudingPersoonsgegevens would be disclosed to an organisation",
		},
		{
			name:    "decision without processing activity",
			replace: map[string]string{`"processing_activity": purpose.processing_activity,`: `"processing_activity": "",`},
			want:    "names no processing activity",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := policies.Embedded()
			src := string(b.Files["decision.rego"])
			for old, repl := range tt.replace {
				require.Contains(t, src, old)
				src = strings.ReplaceAll(src, old, repl)
			}
			b.Files["decision.rego"] = []byte(src)
			if tt.data != nil {
				var d map[string]any
				require.NoError(t, json.Unmarshal(b.Files["data.json"], &d))
				tt.data(d)
				out, err := json.Marshal(d)
				require.NoError(t, err)
				b.Files["data.json"] = out
			}
			err := policies.Guard(context.Background(), b)
			require.ErrorIs(t, err, policies.ErrGuard)
			assert.Contains(t, err.Error(), tt.want)
		})
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
	}{
		{"burgerzaken reisdocumenten allowed with four sources",
			policies.Input{Actor: emp("burgerzaken"), Action: policies.ActionResidentView, Purpose: "reisdocumenten"},
			true, []string{"brp", "klantinteracties", "salesforce", "zaken"}, "granted"},
		{"burgerzaken claiming bijstand denied",
			policies.Input{Actor: emp("burgerzaken"), Action: policies.ActionResidentView, Purpose: "bijstand"},
			false, nil, `not granted to department "burgerzaken"`},
		{"auditor denied",
			policies.Input{Actor: policies.Actor{Sub: "a", Department: "audit", Roles: []string{"auditor"}}, Action: policies.ActionResidentView, Purpose: "reisdocumenten"},
			false, nil, `role "auditor"`},
		{"unknown purpose denied",
			policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "roddel"},
			false, nil, `unknown purpose "roddel"`},
		{"sources narrowed by request",
			policies.Input{Actor: emp("kcc"), Action: policies.ActionResidentView, Purpose: "klantcontact", Sources: []string{"brp"}},
			true, []string{"brp"}, "granted"},
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

func TestSwapIsAtomicAndKeepsOldBundleOnError(t *testing.T) {
	ctx := context.Background()
	e, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)
	_, before := e.Bundle()

	bad := policies.Bundle{Files: map[string][]byte{"decision.rego": []byte("package klantbeeld\ndecision := {"), "data.json": []byte("{}")}}
	require.ErrorIs(t, e.Swap(ctx, bad), policies.ErrBundle)
	_, after := e.Bundle()
	assert.Equal(t, before, after, "a failed swap must leave the active bundle in place")

	// A bundle that denies everything, swapped in while decisions run.
	deny := policies.Bundle{Files: map[string][]byte{
		"decision.rego": []byte(`package klantbeeld
decision := {"allow": false, "reasons": ["closed"], "processing_activity": "pa", "sources": {}}`),
		"data.json": []byte("{}"),
	}}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				d, err := e.Decide(ctx, policies.Input{Actor: emp("burgerzaken"), Action: policies.ActionResidentView, Purpose: "reisdocumenten"})
				assert.NoError(t, err)
				if d.Allow {
					assert.NotEmpty(t, d.Sources, "goroutine %d: an allow must come with its sources", i)
				}
			}
		}()
	}
	require.NoError(t, e.Swap(ctx, deny))
	wg.Wait()
	d, err := e.Decide(ctx, policies.Input{Actor: emp("burgerzaken"), Action: policies.ActionResidentView, Purpose: "reisdocumenten"})
	require.NoError(t, err)
	assert.False(t, d.Allow)
	assert.NotEqual(t, before, d.BundleVersion)
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
		Purpose: "klantcontact",
	})
	fmt.Println(d.Allow, d.Sources["brp"].Fields, d.Sources["zaken"].ExistenceOnly)
	// Output: true [naam adressering] [SOCZA]
}
