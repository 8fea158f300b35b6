package audittest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
)

// Tamperer changes a store's database behind its back, as a database
// superuser would: each method drops or disables the append-only triggers
// it has to, makes its change, and puts the triggers back as the migrations
// made them, so that only the data gives the tampering away. Each store's
// tests provide one for the Tamper suite. Methods fail t on error.
type Tamperer interface {
	// ChangeEvent overwrites the stored record of event seq with data,
	// leaving the tree hashes as they are (UPDATE).
	ChangeEvent(t testing.TB, seq int64, data []byte)
	// DeleteEvent deletes the row of event seq.
	DeleteEvent(t testing.TB, seq int64)
	// SwapEvents exchanges the stored records of events a and b: each row
	// keeps its sequence number and gets the other's bytes.
	SwapEvents(t testing.TB, a, b int64)
	// CutTail deletes the events from seq on and their tree hashes (stored
	// hash indexes from tlog.StoredHashIndex(0, seq-1) on); checkpoints stay.
	CutTail(t testing.TB, seq int64)
	// ReplaceEvent puts data in place of event seq with the engine's
	// replacing insert (SQLite: INSERT OR REPLACE; PostgreSQL: INSERT ... ON
	// CONFLICT (seq) DO UPDATE), tree hashes untouched.
	ReplaceEvent(t testing.TB, seq int64, data []byte)
	// RebuildWithout drops the events table and rebuilds it (as the
	// migrations made it, with its triggers and any sequence reset) holding
	// only the events before seq; hashes and checkpoints stay.
	RebuildWithout(t testing.TB, seq int64)
	// RewriteTail replaces the events from seq on with records and the tree
	// hashes from tlog.StoredHashIndex(0, seq-1) on with hashes, and deletes
	// every checkpoint of a tree larger than seq-1: a consistent rewrite that
	// only a checkpoint kept outside the database reveals.
	RewriteTail(t testing.TB, seq int64, records []audit.Record, hashes []audit.StoredHash)
	// DropTrigger drops one append-only trigger and returns its name, as
	// CheckAppendOnly must name it.
	DropTrigger(t testing.TB) string
}

// Tamper runs one test per kind of tampering against stores made by open,
// each with its engine's Tamperer: Verify must name the first affected
// sequence number and CheckIntegrity must refuse the log. Each subtest gets
// a new, empty store; it appends 20 events in batches of 5, 6, 4 and 5 with a
// checkpoint after each (sizes 5, 11, 15, 20), the one of 15 also kept
// outside the database as a witness would.
func Tamper(t *testing.T, open func(t *testing.T) (audit.Store, Tamperer)) {
	ctx := context.Background()
	changed := func(t *testing.T, seq int64) []byte {
		ev := Sample(int(seq))
		ev.Seq = seq
		ev.Decision = audit.DecisionDeny // a refusal where data was disclosed
		data, err := audit.EncodeRecord(ev)
		require.NoError(t, err)
		return data
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, s audit.Store, tt Tamperer)
		want   int64 // first affected sequence number
		// onlyWitness: only the checkpoint kept outside reveals it.
		onlyWitness bool
	}{
		{"ChangeAFieldOfOneRow", func(t *testing.T, _ audit.Store, tt Tamperer) { tt.ChangeEvent(t, 7, changed(t, 7)) }, 7, false},
		{"DeleteARow", func(t *testing.T, _ audit.Store, tt Tamperer) { tt.DeleteEvent(t, 7) }, 7, false},
		{"SwapTwoRows", func(t *testing.T, _ audit.Store, tt Tamperer) { tt.SwapEvents(t, 7, 9) }, 7, false},
		{"CutTheTail", func(t *testing.T, _ audit.Store, tt Tamperer) { tt.CutTail(t, 17) }, 17, false},
		{"ReplaceARow", func(t *testing.T, _ audit.Store, tt Tamperer) { tt.ReplaceEvent(t, 7, changed(t, 7)) }, 7, false},
		{"DropTheTableAndRebuildItWithoutItsLastEvents", func(t *testing.T, _ audit.Store, tt Tamperer) { tt.RebuildWithout(t, 17) }, 17, false},
		{"RewriteTheTailConsistently", func(t *testing.T, s audit.Store, tt Tamperer) {
			// Events 12 to 20 again, each now a denial, with every hash
			// recomputed: the tree is whole, only a checkpoint kept outside
			// it can tell.
			var evs []audit.Event
			for seq := int64(12); seq <= 20; seq++ {
				ev := Sample(int(seq))
				ev.Decision = audit.DecisionDeny
				evs = append(evs, ev)
			}
			b, err := audit.NewBatch(11, evs, audit.HashReader(ctx, s))
			require.NoError(t, err)
			tt.RewriteTail(t, 12, b.Records, b.Hashes)
		}, 12, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, tt := open(t)
			signer, verifier := NewSigner(t)
			witness := fill(t, s, signer)
			_, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{Witness: witness})
			require.NoError(t, err, "the log verifies before")

			tc.tamper(t, s, tt)

			require.NoError(t, s.CheckAppendOnly(ctx), "the tamperer put the triggers back")
			_, err = audit.Verify(ctx, s, verifier, audit.VerifyOptions{Witness: witness, BatchSize: 4})
			ve, ok := errors.AsType[*audit.VerifyError](err)
			require.True(t, ok, "Verify with the witness: want a *VerifyError, got %v", err)
			assert.Equal(t, tc.want, ve.Seq, "the first affected event: %v", err)
			assert.ErrorIs(t, err, audit.ErrTampered)
			assert.Contains(t, err.Error(), fmt.Sprintf("event %d", tc.want))

			_, err = audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
			if tc.onlyWitness {
				require.NoError(t, err, "without a checkpoint kept outside a consistent rewrite passes")
			} else {
				ve, ok := errors.AsType[*audit.VerifyError](err)
				require.True(t, ok, "Verify: want a *VerifyError, got %v", err)
				assert.Equal(t, tc.want, ve.Seq, "the first affected event: %v", err)
			}

			err = audit.CheckIntegrity(ctx, s, verifier, audit.IntegrityOptions{Witness: witness})
			require.ErrorIs(t, err, audit.ErrTampered, "the gateway refuses to start")
		})
	}

	t.Run("UntouchedLogVerifies", func(t *testing.T) {
		s, _ := open(t)
		signer, verifier := NewSigner(t)
		witness := fill(t, s, signer)
		rep, err := audit.Verify(ctx, s, verifier, audit.VerifyOptions{Witness: witness, BatchSize: 4})
		require.NoError(t, err)
		assert.Equal(t, int64(20), rep.Tree.N)
		require.NoError(t, audit.CheckIntegrity(ctx, s, verifier, audit.IntegrityOptions{Witness: witness}))
	})

	t.Run("DroppedTriggerIsNamed", func(t *testing.T) {
		s, tt := open(t)
		signer, verifier := NewSigner(t)
		fill(t, s, signer)
		name := tt.DropTrigger(t)
		err := s.CheckAppendOnly(ctx)
		require.ErrorIs(t, err, audit.ErrTampered)
		assert.Contains(t, err.Error(), name)
		err = audit.CheckIntegrity(ctx, s, verifier, audit.IntegrityOptions{})
		require.ErrorIs(t, err, audit.ErrTampered)
		assert.Contains(t, err.Error(), name)
	})

	t.Run("CheckpointSignedByAnotherKeyIsRefused", func(t *testing.T) {
		s, _ := open(t)
		signer, verifier := NewSigner(t)
		fill(t, s, signer)
		other, _ := NewSigner(t)
		appendN(t, s, 1)
		root, err := audit.TreeHash(ctx, s, 21)
		require.NoError(t, err)
		forged, err := audit.SignCheckpoint(other, tlog.Tree{N: 21, Hash: root})
		require.NoError(t, err)
		id, err := s.AddCheckpoint(ctx, audit.Checkpoint{Size: 21, Note: forged})
		require.NoError(t, err)
		_, err = audit.Verify(ctx, s, verifier, audit.VerifyOptions{})
		ve, ok := errors.AsType[*audit.VerifyError](err)
		require.True(t, ok, "want a *VerifyError, got %v", err)
		assert.Equal(t, id, ve.Checkpoint)
		require.ErrorIs(t, audit.CheckIntegrity(ctx, s, verifier, audit.IntegrityOptions{Quick: true}), audit.ErrTampered)
	})
}

// fill appends 20 events with checkpoints at 5, 11, 15 and 20 and returns
// the one of 15, as a witness would keep it.
func fill(t *testing.T, s audit.Store, signer note.Signer) (witness []byte) {
	t.Helper()
	cp := audit.NewCheckpointer(s, signer, audit.CheckpointerOptions{Interval: -1})
	defer cp.Close()
	var n int
	for _, k := range []int{5, 6, 4, 5} {
		evs := make([]audit.Event, k)
		for i := range evs {
			n++
			evs[i] = Sample(n)
		}
		_, err := s.Append(context.Background(), evs)
		require.NoError(t, err)
		c, err := cp.Checkpoint(context.Background())
		require.NoError(t, err)
		if c.Size == 15 {
			witness = c.Note
		}
	}
	require.NotNil(t, witness)
	return witness
}
