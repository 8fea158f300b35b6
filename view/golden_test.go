package view_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
	"github.com/klantbeeld/klantbeeld/view/viewtest"
)

var update = flag.Bool("update", false, "rewrite the decisions and golden views in testdata from what the embedded policy and the code produce")

// now is the clock of every view in these tests.
var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// goldenCase is testdata/<name>/case.json: who asks what.
type goldenCase struct {
	About  string         `json:"about"`
	Actor  policies.Actor `json:"actor"`
	Action string         `json:"action"`
	// Context is the (verified) context of the look-up its purpose requires.
	Context *policies.Context `json:"context,omitempty"`
	Request view.Request      `json:"request"`
	// MustNotContain are strings the view may never hold, whatever the
	// golden file says: -update cannot bless a leak.
	MustNotContain []string `json:"mustNotContain"`
}

// golden is testdata/<name>/want.json: what comes out.
type golden struct {
	// Subject are the facts the answers told, which led to redecision.json.
	Subject *policies.Subject `json:"subject"`
	// View is null when the second decision refused the view.
	View   *view.View           `json:"view"`
	Access []audit.SourceAccess `json:"access"`
}

// TestGoldenViews composes, for every folder in testdata, the view of the
// decision in decision.json (and, when the answers tell subject facts, of
// redecision.json) over the connector answers in answers.json, and compares
// the view and the audit record with want.json. Run with -update to rewrite
// want.json and the decisions; review the diff.
func TestGoldenViews(t *testing.T) {
	engine, err := policies.NewEngine(context.Background(), policies.Embedded())
	require.NoError(t, err)
	dirs, err := filepath.Glob(filepath.Join("testdata", "*", "case.json"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, file := range dirs {
		dir := filepath.Dir(file)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var c goldenCase
			readJSON(t, file, &c)
			ans, err := viewtest.Read(filepath.Join(dir, "answers.json"))
			require.NoError(t, err)
			in := policies.Input{Actor: c.Actor, Action: c.Action, Purpose: c.Request.Purpose, Sources: c.Request.Sources, Context: c.Context}
			dec := decision(t, engine, filepath.Join(dir, "decision.json"), in)
			require.True(t, dec.Allow, "the first decision allows the view: %v", dec.Reasons)

			f := view.Fetch(context.Background(), ans.Sources(2), c.Request, dec, nil)
			got := golden{Subject: f.Subject()}
			redecision := filepath.Join(dir, "redecision.json")
			if got.Subject != nil {
				in.Subject = got.Subject
				dec = decision(t, engine, redecision, in)
			} else if !*update {
				assert.NoFileExists(t, redecision, "no subject facts, so no second decision")
			}
			if dec.Allow {
				v, access := f.Compose(dec, now)
				for name, s := range v.Sources {
					if s.MS != nil {
						s.MS = new(int64) // how long a fake took is not part of the view's meaning
						v.Sources[name] = s
					}
				}
				got.View, got.Access = &v, access
			} else {
				got.Access = f.Refused()
			}
			raw, err := json.MarshalIndent(got, "", "  ")
			require.NoError(t, err)
			for _, m := range c.MustNotContain {
				assert.NotContains(t, string(raw), m, "a %s view never holds this", c.Request.Purpose)
			}
			compareGolden(t, filepath.Join(dir, "want.json"), raw)
		})
	}
}

// TestGoldenCasesCoverThePurposeMatrix keeps the golden cases honest:
// every purpose of the baseline matrix has one.
func TestGoldenCasesCoverThePurposeMatrix(t *testing.T) {
	purposes := map[string]bool{}
	files, err := filepath.Glob(filepath.Join("testdata", "*", "case.json"))
	require.NoError(t, err)
	for _, file := range files {
		var c goldenCase
		readJSON(t, file, &c)
		purposes[c.Request.Purpose] = true
	}
	for _, p := range []string{"reisdocumenten", "bijstand", "klantcontact", "inzage"} {
		assert.True(t, purposes[p], "no golden case for purpose %s", p)
	}
}

// decision is the decision in file, which must be what the embedded
// bundle decides for in; -update rewrites it from the bundle.
func decision(t *testing.T, engine *policies.Engine, file string, in policies.Input) policies.Decision {
	t.Helper()
	fresh, err := engine.Decide(context.Background(), in)
	require.NoError(t, err)
	fresh.BundleVersion = ""
	if *update {
		raw, err := json.MarshalIndent(fresh, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file, append(raw, '\n'), 0o644))
		return fresh
	}
	var dec policies.Decision
	readJSON(t, file, &dec)
	stored, err := json.Marshal(dec)
	require.NoError(t, err)
	decided, err := json.Marshal(fresh)
	require.NoError(t, err)
	require.JSONEq(t, string(decided), string(stored), "%s is not what the embedded policy decides: run go test ./view -run Golden -update and review the diff", file)
	return dec
}

func compareGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	got = append(got, '\n')
	if *update {
		require.NoError(t, os.WriteFile(file, got, 0o644))
		return
	}
	want, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s is missing: run go test ./view -run Golden -update", file)
	}
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got), "%s differs: run with -update if the change is meant", file)
}

// readJSON decodes file strictly: a field the types do not have (a renamed
// connector field) fails the test instead of being dropped.
func readJSON(t *testing.T, file string, out any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(out), "%s", file)
}
