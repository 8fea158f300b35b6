package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
)

func TestCheckpointBodyIsC2SP(t *testing.T) {
	tree := tlog.Tree{N: 1042, Hash: tlog.RecordHash([]byte("x"))}
	body := audit.FormatCheckpoint("gemeente.example/klantbeeld", tree)
	lines := strings.Split(string(body), "\n")
	require.Len(t, lines, 4)
	assert.Equal(t, []string{"gemeente.example/klantbeeld", "1042"}, lines[:2])
	assert.Equal(t, tree.Hash.String(), lines[2], "the root hash in standard base64")
	assert.Empty(t, lines[3], "every line ends in a newline")

	origin, got, err := audit.ParseCheckpoint(append(body, "extension line\n"...))
	require.NoError(t, err)
	assert.Equal(t, "gemeente.example/klantbeeld", origin)
	assert.Equal(t, tree, got)
}

func TestParseCheckpointRefusesMalformedText(t *testing.T) {
	hash := tlog.Hash{}.String()
	for name, text := range map[string]string{
		"empty":          "",
		"no origin":      "\n1\n" + hash + "\n",
		"negative size":  "o\n-1\n" + hash + "\n",
		"padded size":    "o\n01\n" + hash + "\n",
		"short hash":     "o\n1\nAAAA\n",
		"no final line":  "o\n1\n" + hash,
		"hash not b64":   "o\n1\n!!\n",
		"size not digit": "o\nten\n" + hash + "\n",
	} {
		_, _, err := audit.ParseCheckpoint([]byte(text))
		assert.Error(t, err, name)
	}
}

func TestLoadSignerCreatesAPrivateKeyOnceAndKeepsIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "checkpoint.key")
	_, err := audit.LoadSigner(path, false, "")
	require.Error(t, err, "without create a missing key is an error")

	s1, err := audit.LoadSigner(path, true, "gemeente.example/klantbeeld")
	require.NoError(t, err)
	assert.Equal(t, "gemeente.example/klantbeeld", s1.Name())
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	st, err = os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())

	s2, err := audit.LoadSigner(path, true, "another name")
	require.NoError(t, err)
	assert.Equal(t, s1.KeyHash(), s2.KeyHash(), "an existing key is kept, with its own name")
	assert.Equal(t, s1.Name(), s2.Name())

	vkey, err := audit.VerifierKey(path)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(vkey, "gemeente.example/klantbeeld+"), vkey)
	assert.NotContains(t, vkey, "PRIVATE")
	v, err := audit.NewVerifier(vkey)
	require.NoError(t, err)
	signed, err := audit.SignCheckpoint(s1, tlog.Tree{N: 1})
	require.NoError(t, err)
	tree, err := audit.OpenCheckpoint(signed, v)
	require.NoError(t, err, "the verifier key printed verifies what the key signs")
	assert.Equal(t, int64(1), tree.N)
}

func TestLoadSignerRefusesAFileThatIsNoKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.key")
	require.NoError(t, os.WriteFile(path, []byte("not a key\n"), 0o600))
	_, err := audit.LoadSigner(path, true, "")
	require.Error(t, err)
	_, err = audit.VerifierKey(path)
	require.Error(t, err)
}

func TestOpenCheckpointRefusesWhatOurKeyDidNotSign(t *testing.T) {
	signer, verifier := audittest.NewSigner(t)
	other, _ := audittest.NewSigner(t)
	tree := tlog.Tree{N: 3, Hash: tlog.RecordHash([]byte("r"))}
	good, err := audit.SignCheckpoint(signer, tree)
	require.NoError(t, err)
	got, err := audit.OpenCheckpoint(good, verifier)
	require.NoError(t, err)
	assert.Equal(t, tree, got)

	byOther, err := audit.SignCheckpoint(other, tree)
	require.NoError(t, err)
	changed := []byte(strings.Replace(string(good), "\n3\n", "\n4\n", 1))
	otherOrigin, err := note.Sign(&note.Note{Text: string(audit.FormatCheckpoint("elsewhere", tree))}, signer)
	require.NoError(t, err)
	for name, signed := range map[string][]byte{
		"signed by another key": byOther,
		"text changed":          changed,
		"another origin":        otherOrigin,
		"garbage":               []byte("hello\n"),
	} {
		_, err := audit.OpenCheckpoint(signed, verifier)
		assert.ErrorIs(t, err, audit.ErrTampered, name)
	}
}

func appendEvents(t *testing.T, s audit.Store, n int) {
	t.Helper()
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = audittest.Sample(i)
	}
	_, err := s.Append(context.Background(), evs)
	require.NoError(t, err)
}

func TestCheckpointerMakesCheckpointsOnItsTimer(t *testing.T) {
	store := &audittest.Memory{}
	signer, _ := audittest.NewSigner(t)
	cp := audit.NewCheckpointer(store, signer, audit.CheckpointerOptions{Interval: 5 * time.Millisecond})
	defer cp.Close()
	appendEvents(t, store, 3)
	require.Eventually(t, func() bool {
		c, err := store.LatestCheckpoint(context.Background())
		return err == nil && c.Size == 3
	}, 2*time.Second, 5*time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	cps, err := store.Checkpoints(context.Background(), 0, 10)
	require.NoError(t, err)
	assert.Len(t, cps, 1, "no new checkpoint while the tree did not grow")
}

func TestCheckpointerKeepsACopyOutsideTheDatabase(t *testing.T) {
	ctx := context.Background()
	store := &audittest.Memory{}
	signer, verifier := audittest.NewSigner(t)
	path := filepath.Join(t.TempDir(), "witness", "checkpoint")
	w, err := audit.ReadWitness(path)
	require.NoError(t, err)
	assert.Nil(t, w, "no witness yet")

	cp := audit.NewCheckpointer(store, signer, audit.CheckpointerOptions{Interval: -1, WitnessFile: path})
	appendEvents(t, store, 4)
	_, err = cp.Checkpoint(ctx)
	require.NoError(t, err)
	appendEvents(t, store, 2)
	require.NoError(t, cp.Close())

	w, err = audit.ReadWitness(path)
	require.NoError(t, err)
	tree, err := audit.OpenCheckpoint(w, verifier)
	require.NoError(t, err)
	assert.Equal(t, int64(6), tree.N, "the witness is the last checkpoint")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// Someone rewrites the whole log inside the database and signs it with
	// a stolen key: the copy outside still gives it away.
	store.RewriteTail(t, 1, nil, nil)
	appendEvents(t, store, 7)
	_, err = audit.NewCheckpointer(store, signer, audit.CheckpointerOptions{Interval: -1}).Checkpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, audit.CheckIntegrity(ctx, store, verifier, audit.IntegrityOptions{}), "without the copy nothing shows")
	err = audit.CheckIntegrity(ctx, store, verifier, audit.IntegrityOptions{Witness: w})
	ve, ok := errors.AsType[*audit.VerifyError](err)
	require.True(t, ok, "want a *VerifyError, got %v", err)
	assert.Equal(t, int64(1), ve.Seq)
	assert.Equal(t, int64(audit.WitnessID), ve.Checkpoint)
}

func TestCheckpointerRefusesToSignATreeThatDoesNotExtendTheLatest(t *testing.T) {
	ctx := context.Background()
	store := &audittest.Memory{}
	signer, _ := audittest.NewSigner(t)
	cp := audit.NewCheckpointer(store, signer, audit.CheckpointerOptions{Interval: -1})
	defer cp.Close()
	appendEvents(t, store, 5)
	_, err := cp.Checkpoint(ctx)
	require.NoError(t, err)
	// The tail is cut and filled up again with other events.
	store.CutTail(t, 4)
	appendEvents(t, store, 4)
	_, err = cp.Checkpoint(ctx)
	require.ErrorIs(t, err, audit.ErrTampered)
	cps, err := store.Checkpoints(ctx, 0, 10)
	require.NoError(t, err)
	assert.Len(t, cps, 1, "nothing signed")
}

func TestQuickIntegrityChecksTheCountsAndTheLatestCheckpoint(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(t *testing.T, m *audittest.Memory)
		// quick: whether the quick check sees it; the full one always does.
		quick bool
	}{
		{"a deleted row", func(t *testing.T, m *audittest.Memory) { m.DeleteEvent(t, 3) }, true},
		{"a cut tail", func(t *testing.T, m *audittest.Memory) { m.CutTail(t, 5) }, true},
		{"a table rebuilt without its last events", func(t *testing.T, m *audittest.Memory) { m.RebuildWithout(t, 5) }, true},
		{"a changed record, hashes left alone", func(t *testing.T, m *audittest.Memory) { m.SwapEvents(t, 2, 3) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &audittest.Memory{}
			signer, verifier := audittest.NewSigner(t)
			appendEvents(t, store, 6)
			require.NoError(t, audit.NewCheckpointer(store, signer, audit.CheckpointerOptions{Interval: -1}).Close())
			tt.tamper(t, store)
			err := audit.CheckIntegrity(ctx, store, verifier, audit.IntegrityOptions{Quick: true})
			if tt.quick {
				require.ErrorIs(t, err, audit.ErrTampered)
			} else {
				require.NoError(t, err, "the quick check reads no records")
			}
			require.ErrorIs(t, audit.CheckIntegrity(ctx, store, verifier, audit.IntegrityOptions{}), audit.ErrTampered)
		})
	}
}

func TestVerifyReportsTheStoreFailing(t *testing.T) {
	store := &audittest.Memory{}
	_, verifier := audittest.NewSigner(t)
	appendEvents(t, store, 3)
	store.Fail(errors.New("disk gone"))
	_, err := audit.Verify(context.Background(), store, verifier, audit.VerifyOptions{})
	require.ErrorIs(t, err, audit.ErrUnavailable)
	assert.NotErrorIs(t, err, audit.ErrTampered, "an outage is not tampering")
}
