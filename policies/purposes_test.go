package policies_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/policies"
)

// withData is the embedded bundle with data.json changed by edit.
func withData(t *testing.T, edit func(d map[string]any)) policies.Bundle {
	t.Helper()
	b := policies.Embedded()
	b.Files = maps.Clone(b.Files)
	var d map[string]any
	require.NoError(t, json.Unmarshal(b.Files[policies.DataFile], &d))
	edit(d)
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	b.Files[policies.DataFile] = raw
	return b
}

func TestPurposesNameEveryPurposeOfTheEmbeddedBundle(t *testing.T) {
	got, err := policies.Purposes(policies.Embedded())
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"reisdocumenten", "bijstand", "klantcontact", "inzage", "uwv-werk-en-inkomen"}, slices.Collect(maps.Keys(got)))
	assert.Equal(t, policies.PurposeInfo{
		Description:        "Inzage van een inwoner in wie zijn gegevens heeft bekeken (AVG art. 15)",
		ProcessingActivity: "https://register.gemeente.example/verwerkingsactiviteiten/avg-inzage",
	}, got["inzage"])
	for name, p := range got {
		assert.NotEmpty(t, p.Description, "%s has a description residents can read", name)
		assert.NotEmpty(t, p.ProcessingActivity, name)
	}
}

func TestEnginePurposesFollowTheActiveBundle(t *testing.T) {
	ctx := context.Background()
	e, err := policies.NewEngine(ctx, policies.Embedded())
	require.NoError(t, err)
	before, err := e.Purposes()
	require.NoError(t, err)
	assert.Equal(t, "Aanvraag en uitgifte van reisdocumenten (paspoort, identiteitskaart)", before["reisdocumenten"].Description)

	require.NoError(t, e.Swap(ctx, withData(t, func(d map[string]any) {
		d["purposes"].(map[string]any)["reisdocumenten"].(map[string]any)["description"] = "Paspoort en identiteitskaart"
	})))
	after, err := e.Purposes()
	require.NoError(t, err)
	assert.Equal(t, "Paspoort en identiteitskaart", after["reisdocumenten"].Description)

	after["reisdocumenten"] = policies.PurposeInfo{}
	again, err := e.Purposes()
	require.NoError(t, err)
	assert.Equal(t, "Paspoort en identiteitskaart", again["reisdocumenten"].Description, "the caller's map is its own")
}

func TestPurposesOfMalformedDataIsABundleError(t *testing.T) {
	tests := []struct {
		name string
		edit func(d map[string]any)
	}{
		{"description is a number", func(d map[string]any) {
			d["purposes"].(map[string]any)["inzage"].(map[string]any)["description"] = 15
		}},
		{"purposes is a list", func(d map[string]any) { d["purposes"] = []any{"inzage"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policies.Purposes(withData(t, tt.edit))
			require.ErrorIs(t, err, policies.ErrBundle)
		})
	}
}
