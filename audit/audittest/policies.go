package audittest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
)

// ExercisePolicies runs the conformance suite of audit.PolicyStore. open
// makes a store on a new, empty database and returns it with reopen, which
// closes that store and opens the same database again, as a restart of the
// gateway would; reopen is nil for a store that keeps nothing (Memory), and
// the restart checks are skipped then. A store that is an io.Closer must be
// unavailable once closed.
func ExercisePolicies(t *testing.T, open func(t *testing.T) (s audit.PolicyStore, reopen func() audit.PolicyStore)) {
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 10, 15, 30, 123456789, time.FixedZone("CET", 3600))

	t.Run("VersionRoundTripsItsFiles", func(t *testing.T) {
		s, _ := open(t)
		v := SamplePolicyVersion(1)
		require.NoError(t, s.PutPolicyVersion(ctx, v))
		got, err := s.PolicyVersion(ctx, v.ID)
		require.NoError(t, err)
		assert.Equal(t, v, got)
	})

	t.Run("UnknownVersionIsNotFound", func(t *testing.T) {
		s, _ := open(t)
		_, err := s.PolicyVersion(ctx, SamplePolicyVersion(1).ID)
		require.ErrorIs(t, err, audit.ErrNotFound)
		require.NoError(t, s.PutPolicyVersion(ctx, SamplePolicyVersion(1)))
		_, err = s.PolicyVersion(ctx, SamplePolicyVersion(2).ID)
		require.ErrorIs(t, err, audit.ErrNotFound)
	})

	t.Run("PuttingAVersionAgainStoresNothingNew", func(t *testing.T) {
		s, _ := open(t)
		v := SamplePolicyVersion(1)
		require.NoError(t, s.PutPolicyVersion(ctx, v))
		again := audit.PolicyVersion{ID: v.ID, Files: maps.Clone(v.Files)} // the same files, another map
		require.NoError(t, s.PutPolicyVersion(ctx, again))
		ids, err := s.PolicyVersions(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{v.ID}, ids)
	})

	t.Run("PuttingAStoredIdWithOtherFilesIsAConflict", func(t *testing.T) {
		s, _ := open(t)
		v := SamplePolicyVersion(1)
		require.NoError(t, s.PutPolicyVersion(ctx, v))
		tests := []struct {
			name  string
			files map[string]string
		}{
			{"AContentChanged", withFile(v.Files, "decision.rego", "package klantbeeld\n\nallow := true\n")},
			{"AFileAdded", withFile(v.Files, "extra.rego", "package extra\n")},
			{"AFileLeftOut", map[string]string{"decision.rego": v.Files["decision.rego"]}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.PutPolicyVersion(ctx, audit.PolicyVersion{ID: v.ID, Files: tt.files})
				require.ErrorIs(t, err, audit.ErrConflict)
				assert.NotErrorIs(t, err, audit.ErrUnavailable)
				got, err := s.PolicyVersion(ctx, v.ID)
				require.NoError(t, err)
				assert.Equal(t, v, got, "the version first stored is kept")
			})
		}
	})

	t.Run("VersionThatCannotBeStoredIsRefused", func(t *testing.T) {
		s, _ := open(t)
		tests := []struct {
			name string
			v    audit.PolicyVersion
		}{
			{"WithoutID", audit.PolicyVersion{Files: SamplePolicyVersion(1).Files}},
			{"WithoutFiles", audit.PolicyVersion{ID: "sha256:00"}},
			{"WithAnEmptyFileName", audit.PolicyVersion{ID: "sha256:01", Files: map[string]string{"": "package x\n"}}},
			{"WithContentThatIsNotUTF8", audit.PolicyVersion{ID: "sha256:02", Files: map[string]string{"a.rego": "package a\n\xff\n"}}},
			{"WithANameThatIsNotUTF8", audit.PolicyVersion{ID: "sha256:03", Files: map[string]string{"\xfe.rego": "package a\n"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.PutPolicyVersion(ctx, tt.v)
				require.Error(t, err)
				assert.NotErrorIs(t, err, audit.ErrUnavailable, "the caller's mistake, not the store's")
			})
		}
		ids, err := s.PolicyVersions(ctx)
		require.NoError(t, err)
		assert.Empty(t, ids, "nothing was stored")
	})

	t.Run("VersionsAreListedInTheOrderFirstStored", func(t *testing.T) {
		s, _ := open(t)
		ids, err := s.PolicyVersions(ctx)
		require.NoError(t, err)
		assert.Empty(t, ids)
		for _, n := range []int{3, 1, 2, 1, 3} {
			require.NoError(t, s.PutPolicyVersion(ctx, SamplePolicyVersion(n)))
		}
		ids, err = s.PolicyVersions(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{SamplePolicyVersion(3).ID, SamplePolicyVersion(1).ID, SamplePolicyVersion(2).ID}, ids)
	})

	t.Run("ActivationsAreNumberedWithoutGapsAndKeptAsGiven", func(t *testing.T) {
		s, _ := open(t)
		_, err := s.LatestPolicyActivation(ctx)
		require.ErrorIs(t, err, audit.ErrNotFound, "nothing activated yet")
		v1, v2 := SamplePolicyVersion(1), SamplePolicyVersion(2)
		require.NoError(t, s.PutPolicyVersion(ctx, v1))
		require.NoError(t, s.PutPolicyVersion(ctx, v2))
		given := []audit.PolicyActivation{
			{Seq: 99, Version: v1.ID, By: "klantbeeld", At: at, Reason: "the embedded bundle"},
			{Version: v2.ID, Previous: v1.ID, By: "po-1", At: at.Add(time.Hour), Reason: "kcc may see SOCZA existence only"},
			{Version: v1.ID, Previous: v2.ID, By: "po-2", At: at.Add(2 * time.Hour), Reason: "rolled back: complaints", Rollback: true},
		}
		var want []audit.PolicyActivation
		for i, a := range given {
			seq, err := s.AddPolicyActivation(ctx, a)
			require.NoError(t, err)
			assert.Equal(t, int64(i+1), seq, "the store numbers them; the caller's Seq is ignored")
			a.Seq, a.At = seq, a.At.UTC().Truncate(time.Microsecond)
			want = append(want, a)
		}
		got, err := s.PolicyActivations(ctx, 0, 10)
		require.NoError(t, err)
		assert.Equal(t, want, got, "every field as given; the time in UTC to the microsecond")
		for _, a := range got {
			assert.Equal(t, time.UTC, a.At.Location())
		}
		latest, err := s.LatestPolicyActivation(ctx)
		require.NoError(t, err)
		assert.Equal(t, want[2], latest)
	})

	t.Run("ActivationsPageInAscendingOrder", func(t *testing.T) {
		s, _ := open(t)
		activateInTurn(t, s, 5)
		tests := []struct {
			after int64
			limit int
			want  []int64
		}{
			{0, 2, []int64{1, 2}},
			{2, 10, []int64{3, 4, 5}},
			{4, 1, []int64{5}},
			{5, 10, nil},
			{0, 0, nil},
		}
		for _, tt := range tests {
			got, err := s.PolicyActivations(ctx, tt.after, tt.limit)
			require.NoError(t, err)
			assert.Equal(t, tt.want, activationSeqs(got), "after %d, limit %d", tt.after, tt.limit)
			assert.NotNil(t, got, "an empty slice, not nil")
		}
	})

	t.Run("ActivatingAnUnknownVersionIsRefused", func(t *testing.T) {
		s, _ := open(t)
		_, err := s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: SamplePolicyVersion(1).ID, By: "po-1", At: at, Reason: "r"})
		require.ErrorIs(t, err, audit.ErrNotFound)
		_, err = s.LatestPolicyActivation(ctx)
		require.ErrorIs(t, err, audit.ErrNotFound, "nothing was activated")
	})

	t.Run("ActivationNamingAnotherPreviousVersionIsAConflict", func(t *testing.T) {
		s, _ := open(t)
		v1, v2, v3 := SamplePolicyVersion(1), SamplePolicyVersion(2), SamplePolicyVersion(3)
		for _, v := range []audit.PolicyVersion{v1, v2, v3} {
			require.NoError(t, s.PutPolicyVersion(ctx, v))
		}
		_, err := s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v2.ID, Previous: v1.ID, By: "po-1", At: at})
		require.ErrorIs(t, err, audit.ErrConflict, "the first activation replaces nothing")
		_, err = s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v1.ID, By: "klantbeeld", At: at})
		require.NoError(t, err)
		_, err = s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v2.ID, Previous: v1.ID, By: "po-1", At: at})
		require.NoError(t, err)
		tests := []struct{ name, previous string }{
			{"AnOlderVersion", v1.ID},
			{"NoVersion", ""},
			{"AVersionNeverActive", v3.ID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: v3.ID, Previous: tt.previous, By: "po-2", At: at})
				require.ErrorIs(t, err, audit.ErrConflict)
				assert.NotErrorIs(t, err, audit.ErrUnavailable)
			})
		}
		latest, err := s.LatestPolicyActivation(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(2), latest.Seq)
		assert.Equal(t, v2.ID, latest.Version, "the refused activations changed nothing")
	})

	t.Run("ActivationThatCannotBeStoredIsRefused", func(t *testing.T) {
		s, _ := open(t)
		require.NoError(t, s.PutPolicyVersion(ctx, SamplePolicyVersion(1)))
		tests := []struct {
			name string
			a    audit.PolicyActivation
		}{
			{"WithoutVersion", audit.PolicyActivation{By: "po-1", At: at}},
			{"WithoutTime", audit.PolicyActivation{Version: SamplePolicyVersion(1).ID, By: "po-1"}},
			{"AfterTheYear9999", audit.PolicyActivation{Version: SamplePolicyVersion(1).ID, By: "po-1", At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.AddPolicyActivation(ctx, tt.a)
				require.Error(t, err)
				assert.NotErrorIs(t, err, audit.ErrUnavailable)
			})
		}
		_, err := s.LatestPolicyActivation(ctx)
		require.ErrorIs(t, err, audit.ErrNotFound, "nothing was activated")
	})

	t.Run("OfConcurrentActivationsAfterOneVersionOnlyOneSucceeds", func(t *testing.T) {
		s, _ := open(t)
		activateInTurn(t, s, 1)
		active := SamplePolicyVersion(1).ID
		const n = 8
		for i := range n {
			require.NoError(t, s.PutPolicyVersion(ctx, SamplePolicyVersion(100+i)))
		}
		var mu sync.Mutex
		var won []int64
		conflicts := 0
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				seq, err := s.AddPolicyActivation(ctx, audit.PolicyActivation{
					Version: SamplePolicyVersion(100 + i).ID, Previous: active, By: fmt.Sprintf("po-%d", i), At: at,
				})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, seq)
				case assert.ErrorIs(t, err, audit.ErrConflict):
					conflicts++
				}
			})
		}
		wg.Wait()
		assert.Equal(t, []int64{2}, won, "one activation replaced the active version")
		assert.Equal(t, n-1, conflicts, "the others learnt it was replaced already")
	})

	t.Run("ConcurrentPutsOfOneVersionStoreItOnce", func(t *testing.T) {
		s, _ := open(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { assert.NoError(t, s.PutPolicyVersion(ctx, SamplePolicyVersion(1))) })
		}
		wg.Wait()
		ids, err := s.PolicyVersions(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{SamplePolicyVersion(1).ID}, ids)
	})

	t.Run("VersionsAndActivationsSurviveARestart", func(t *testing.T) {
		s, reopen := open(t)
		if reopen == nil {
			t.Skip("this store keeps nothing across a restart")
		}
		want := activateInTurn(t, s, 3)
		s = reopen()
		ids, err := s.PolicyVersions(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{SamplePolicyVersion(1).ID, SamplePolicyVersion(2).ID, SamplePolicyVersion(3).ID}, ids)
		for i := range 3 {
			v, err := s.PolicyVersion(ctx, SamplePolicyVersion(i+1).ID)
			require.NoError(t, err)
			assert.Equal(t, SamplePolicyVersion(i+1), v)
		}
		got, err := s.PolicyActivations(ctx, 0, 10)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		latest, err := s.LatestPolicyActivation(ctx)
		require.NoError(t, err)
		assert.Equal(t, want[2], latest, "the latest activation names the version to run")
		seq, err := s.AddPolicyActivation(ctx, audit.PolicyActivation{
			Version: SamplePolicyVersion(1).ID, Previous: SamplePolicyVersion(3).ID, By: "po-1", At: at, Rollback: true,
		})
		require.NoError(t, err)
		assert.Equal(t, int64(4), seq, "the numbering goes on")
	})

	t.Run("ClosedStoreIsUnavailable", func(t *testing.T) {
		s, _ := open(t)
		c, ok := s.(io.Closer)
		if !ok {
			t.Skip("the store cannot be closed")
		}
		require.NoError(t, s.PutPolicyVersion(ctx, SamplePolicyVersion(1)))
		require.NoError(t, c.Close())
		require.ErrorIs(t, s.PutPolicyVersion(ctx, SamplePolicyVersion(2)), audit.ErrUnavailable)
		_, err := s.PolicyVersion(ctx, SamplePolicyVersion(1).ID)
		require.ErrorIs(t, err, audit.ErrUnavailable)
		_, err = s.PolicyVersions(ctx)
		require.ErrorIs(t, err, audit.ErrUnavailable)
		_, err = s.AddPolicyActivation(ctx, audit.PolicyActivation{Version: SamplePolicyVersion(1).ID, At: at})
		require.ErrorIs(t, err, audit.ErrUnavailable)
		_, err = s.PolicyActivations(ctx, 0, 10)
		require.ErrorIs(t, err, audit.ErrUnavailable)
		_, err = s.LatestPolicyActivation(ctx)
		require.ErrorIs(t, err, audit.ErrUnavailable)
	})
}

// SamplePolicyVersion is a policy version, distinct per n, whose files hold
// what JSON must carry exactly: newlines, quotes, HTML characters, non-ASCII
// text and an empty file.
func SamplePolicyVersion(n int) audit.PolicyVersion {
	return audit.PolicyVersion{
		ID: fmt.Sprintf("sha256:%064x", n),
		Files: map[string]string{
			"decision.rego": fmt.Sprintf("package klantbeeld\n\n# version %d\ndefault allow := false\n", n),
			"data.json":     `{"purposes": {"reisdocumenten": {"activity": "Reisdocumenten <aanvragen> & \"verlengen\""}}}`,
			"leesmij.md":    "Beëindigd: één café — \u00a0\t\u2028",
			"empty.rego":    "",
		},
	}
}

// activateInTurn stores SamplePolicyVersion 1..n and activates each in
// turn, returning the activations as the store keeps them.
func activateInTurn(t *testing.T, s audit.PolicyStore, n int) []audit.PolicyActivation {
	t.Helper()
	ctx := context.Background()
	var out []audit.PolicyActivation
	previous := ""
	for i := range n {
		v := SamplePolicyVersion(i + 1)
		require.NoError(t, s.PutPolicyVersion(ctx, v))
		a := audit.PolicyActivation{
			Version: v.ID, Previous: previous, By: fmt.Sprintf("po-%d", i),
			At: time.Date(2026, 11, 23, 9, i, 0, 987654000, time.UTC), Reason: fmt.Sprintf("change %d", i),
		}
		seq, err := s.AddPolicyActivation(ctx, a)
		require.NoError(t, err)
		a.Seq = seq
		out = append(out, a)
		previous = v.ID
	}
	return out
}

func withFile(files map[string]string, name, content string) map[string]string {
	out := maps.Clone(files)
	out[name] = content
	return out
}

func activationSeqs(as []audit.PolicyActivation) []int64 {
	var out []int64
	for _, a := range as {
		out = append(out, a.Seq)
	}
	return out
}
