package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgtest"
)

// Environment of a gateway process the test starts (this test binary again).
const (
	childSchemaEnv = "KLANTBEELD_TEST_AUDIT_CHILD_SCHEMA"
	childKeyEnv    = "KLANTBEELD_TEST_AUDIT_CHILD_KEY"
)

const (
	gatewayProcesses = 3
	writersPerProc   = 16
	appendsPerWriter = 100
)

// Three processes, each opening the store itself (and migrating a schema
// that does not exist yet, all at once), each appending through its own Log
// and signing checkpoints with its own Checkpointer, make one gap-free
// sequence and one tree that verifies.
func TestThreeGatewayProcessesMakeOneLog(t *testing.T) {
	u := pgtest.URL(t)
	if schema := os.Getenv(childSchemaEnv); schema != "" {
		gatewayProcess(t, u, schema, os.Getenv(childKeyEnv))
		return
	}
	t.Parallel()
	schema := pgtest.Schema(t, u)
	pgtest.Exec(t, u, "", "DROP SCHEMA "+schema)
	skey, vkey, err := note.GenerateKey(rand.Reader, audit.DefaultOrigin)
	require.NoError(t, err)

	outs := make([]bytes.Buffer, gatewayProcesses)
	errs := make([]error, gatewayProcesses)
	var wg sync.WaitGroup
	for i := range gatewayProcesses {
		cmd := exec.Command(os.Args[0], "-test.run=^TestThreeGatewayProcessesMakeOneLog$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childSchemaEnv+"="+schema, childKeyEnv+"="+skey)
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		require.NoError(t, cmd.Start())
		wg.Go(func() { errs[i] = cmd.Wait() })
	}
	wg.Wait()
	var all []int64
	for i := range gatewayProcesses {
		require.NoError(t, errs[i], "gateway process %d:\n%s", i, outs[i].String())
		seqs := childSeqs(t, outs[i].String())
		require.Len(t, seqs, writersPerProc*appendsPerWriter, "process %d", i)
		all = append(all, seqs...)
	}
	total := gatewayProcesses * writersPerProc * appendsPerWriter
	slices.Sort(all)
	require.Len(t, all, total)
	for i, seq := range all {
		require.Equal(t, int64(i+1), seq, "one sequence without gaps or doubles")
	}

	s, err := postgres.Open(context.Background(), u, postgres.Options{Schema: schema})
	require.NoError(t, err)
	defer s.Close()
	verifier, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	rep, err := audit.Verify(context.Background(), s, verifier, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(total), rep.Tree.N)
	assert.Equal(t, int64(total), rep.Latest, "the process that stopped last checkpointed the whole tree")
	assert.Positive(t, rep.Checkpoints)
	require.NoError(t, audit.CheckIntegrity(context.Background(), s, verifier, audit.IntegrityOptions{}))
}

// gatewayProcess is one process of TestThreeGatewayProcessesMakeOneLog: it
// prints the sequence numbers its appends got.
func gatewayProcess(t *testing.T, u, schema, skey string) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, u, postgres.Options{Schema: schema})
	require.NoError(t, err)
	defer s.Close()
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	cp := audit.NewCheckpointer(s, signer, audit.CheckpointerOptions{Interval: 10 * time.Millisecond})
	l := audit.NewLog(s, audit.LogOptions{})
	var mu sync.Mutex
	var seqs []int64
	var wg sync.WaitGroup
	for w := range writersPerProc {
		wg.Go(func() {
			for i := range appendsPerWriter {
				seq, err := l.Append(ctx, audittest.Sample(w*1000+i))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				seqs = append(seqs, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(t, l.Close())
	require.NoError(t, cp.Close())
	out, err := json.Marshal(seqs)
	require.NoError(t, err)
	t.Logf("SEQS %s", out)
}

func childSeqs(t *testing.T, out string) []int64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), "SEQS ")
		if !ok {
			continue
		}
		var seqs []int64
		require.NoError(t, json.Unmarshal([]byte(rest), &seqs))
		return seqs
	}
	t.Fatalf("no sequence numbers in the output of a gateway process:\n%s", out)
	return nil
}
