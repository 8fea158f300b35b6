package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
)

// openCheckpoint checks a signed checkpoint with the log's verifier key and
// reads the tree it commits to, with nothing but sumdb/note, sumdb/tlog and
// the C2SP checkpoint format (origin, size, base64 hash, one a line): what
// a witness's or a resident's own tool would do, outside the gateway.
func openCheckpoint(t *testing.T, verifierKey, signed string) tlog.Tree {
	t.Helper()
	v, err := note.NewVerifier(verifierKey)
	require.NoError(t, err)
	n, err := note.Open([]byte(signed), note.VerifierList(v))
	require.NoError(t, err, "the checkpoint is signed by the log's key")
	lines := strings.Split(n.Text, "\n")
	require.GreaterOrEqual(t, len(lines), 4, "origin, size and hash lines: %q", n.Text)
	require.Equal(t, v.Name(), lines[0], "the checkpoint is of this log")
	size, err := strconv.ParseInt(lines[1], 10, 64)
	require.NoError(t, err)
	hash, err := tlog.ParseHash(lines[2])
	require.NoError(t, err)
	return tlog.Tree{N: size, Hash: hash}
}

func TestInclusionProofFromTheAPIVerifiesWithTlogAndNoteAlone(t *testing.T) {
	h := newAuditHarness(t)
	for _, dept := range []string{"burgerzaken", "kcc", "sociale-zaken", "kcc", "burgerzaken"} {
		h.seed(viewEvent(h.pseudonym(bsnA), dept, "klantcontact", audit.DecisionAllow, 200))
	}
	h.checkpoint()

	for seq := range int64(5) {
		seq++
		t.Run(fmt.Sprint("event ", seq), func(t *testing.T) {
			r := h.call(http.MethodGet, fmt.Sprintf("/v1/audit/events/%d", seq), h.auditor(), "")
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			var got struct {
				Event      map[string]any `json:"event"`
				Record     []byte         `json:"record"` // base64
				Proof      []tlog.Hash    `json:"proof"`
				Checkpoint string         `json:"checkpoint"`
			}
			require.NoError(t, json.Unmarshal(r.body, &got))
			assert.Equal(t, float64(seq), got.Event["seq"])
			require.NotEmpty(t, got.Checkpoint)

			tree := openCheckpoint(t, h.verifierKey, got.Checkpoint)
			require.GreaterOrEqual(t, tree.N, seq)
			leaf := tlog.RecordHash(got.Record)
			require.NoError(t, tlog.CheckRecord(got.Proof, tree.N, tree.Hash, seq-1, leaf), "the stored bytes are leaf seq-1 of the signed tree")

			// The decoded event is what the bytes say.
			var fromBytes map[string]any
			require.NoError(t, json.Unmarshal(got.Record, &fromBytes))
			assert.Equal(t, fromBytes["subject"], got.Event["subject"])
			assert.Equal(t, fromBytes["actor"], got.Event["actor"])

			// A changed byte no longer verifies: the check can fail.
			changed := []byte(strings.Replace(string(got.Record), `"department":"`, `"department":"x`, 1))
			require.NotEqual(t, got.Record, changed)
			assert.Error(t, tlog.CheckRecord(got.Proof, tree.N, tree.Hash, seq-1, tlog.RecordHash(changed)))
			assert.Error(t, tlog.CheckRecord(got.Proof, tree.N, tree.Hash, seq%5, leaf), "nor at another index")
		})
	}
}

func TestEventNotYetInACheckpointHasNoProof(t *testing.T) {
	h := newAuditHarness(t)
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	h.checkpoint() // a tree of one

	r := h.call(http.MethodGet, "/v1/audit/events/1", h.auditor(), "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, []any{}, r.json["proof"], "a tree of one has an empty proof, but one")
	tree := openCheckpoint(t, h.verifierKey, r.json["checkpoint"].(string))
	require.Equal(t, int64(1), tree.N)
	var got struct{ Record []byte }
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.NoError(t, tlog.CheckRecord(nil, tree.N, tree.Hash, 0, tlog.RecordHash(got.Record)))

	seqs := h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	r = h.call(http.MethodGet, fmt.Sprintf("/v1/audit/events/%d", seqs[0]), h.auditor(), "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Contains(t, r.json, "record")
	assert.NotContains(t, r.json, "proof", "not in a checkpoint yet")
	assert.NotContains(t, r.json, "checkpoint")
}

func TestCheckpointIsTheLatestSignedNote(t *testing.T) {
	h := newAuditHarness(t)
	r := h.call(http.MethodGet, "/v1/audit/checkpoint", h.staff("kcc"), "")
	assert.Equal(t, http.StatusNotFound, r.status, "none signed yet: %s", r.body)

	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	h.checkpoint()
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	want := h.checkpoint()
	for _, who := range []struct{ name, token string }{{"an employee", h.staff("kcc")}, {"a resident", h.resident(bsnA)}, {"an auditor", h.auditor()}} {
		t.Run(who.name, func(t *testing.T) {
			r := h.call(http.MethodGet, "/v1/audit/checkpoint", who.token, "")
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			assert.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
			assert.Equal(t, string(want.Note), string(r.body))
			assert.Equal(t, want.Size, openCheckpoint(t, h.verifierKey, string(r.body)).N)
		})
	}
	r = h.call(http.MethodGet, "/v1/audit/checkpoint", "", "")
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.NotContains(t, string(r.body), "klantbeeld/audit")
}

func TestConsistencyProofFromTheAPIVerifiesWithTlogAlone(t *testing.T) {
	h := newAuditHarness(t)
	tok := h.staff("kcc")
	checkpoint := func() tlog.Tree {
		h.checkpoint()
		r := h.call(http.MethodGet, "/v1/audit/checkpoint", tok, "")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		return openCheckpoint(t, h.verifierKey, string(r.body))
	}
	var trees []tlog.Tree
	for range 4 {
		for range 3 {
			h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
		}
		trees = append(trees, checkpoint())
	}
	for i, older := range trees {
		for _, newer := range trees[i:] {
			t.Run(fmt.Sprintf("%d to %d", older.N, newer.N), func(t *testing.T) {
				r := h.call(http.MethodGet, fmt.Sprintf("/v1/audit/consistency?from=%d&to=%d", older.N, newer.N), tok, "")
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				var got struct {
					From, To int64
					Proof    tlog.TreeProof
				}
				require.NoError(t, json.Unmarshal(r.body, &got))
				assert.Equal(t, older.N, got.From)
				assert.Equal(t, newer.N, got.To)
				require.NoError(t, tlog.CheckTree(got.Proof, newer.N, newer.Hash, older.N, older.Hash))
				if older.N != newer.N {
					assert.Error(t, tlog.CheckTree(got.Proof, newer.N, older.Hash, older.N, newer.Hash), "wrong hashes fail: the check can fail")
				}
			})
		}
	}
}

func TestConsistencyRefusesBadSizes(t *testing.T) {
	h := newAuditHarness(t)
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	latest := h.checkpoint()
	tests := []struct {
		name, query, param string
	}{
		{"to below 1", "?from=1&to=0", "to"},
		{"to beyond the latest checkpoint", fmt.Sprintf("?from=1&to=%d", latest.Size+1), "to"},
		{"from larger than to", "?from=2&to=1", "from"},
		{"from missing", "?to=1", "from"},
		{"not a number", "?from=one&to=1", "from"},
		{"from below 1", "?from=0&to=1", "from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.events())
			r := h.call(http.MethodGet, "/v1/audit/consistency"+tt.query, h.staff("kcc"), "")
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			params, _ := r.json["invalidParams"].([]any)
			require.NotEmpty(t, params)
			names := []string{}
			for _, p := range params {
				names = append(names, p.(map[string]any)["name"].(string))
			}
			assert.Contains(t, names, tt.param)
			assert.Len(t, h.events(), before+1, "the refusal is an event")
		})
	}
}
