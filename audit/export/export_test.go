package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/export"
)

// memLog is a Reader over records made with audit.EncodeRecord.
type memLog struct {
	records []audit.Record
	calls   int
	fail    error
}

func (m *memLog) Records(_ context.Context, after int64, limit int) ([]audit.Record, error) {
	m.calls++
	if m.fail != nil {
		return nil, m.fail
	}
	var out []audit.Record
	for _, r := range m.records {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func sampleLog(t *testing.T) *memLog {
	t.Helper()
	events := []audit.Event{
		{
			Time: t0, TraceID: strings.Repeat("a", 32), SpanID: strings.Repeat("1", 16), Operation: "POST /v1/resident-views",
			Actor:   audit.Actor{Sub: "mjansen", Department: "burgerzaken", Roles: []string{"medewerker"}},
			Purpose: "reisdocumenten", ProcessingActivity: "https://register.example/burza-reisdocumenten",
			Subject: "5f0c" + strings.Repeat("0", 60), Decision: audit.DecisionAllow, Status: 200,
		},
		{
			Time: t0.Add(time.Hour), TraceID: strings.Repeat("b", 32), SpanID: strings.Repeat("2", 16), Operation: "POST /v1/resident-views",
			ForeignOperation: &audit.ForeignOperation{Traceparent: "00-" + strings.Repeat("b", 32) + "-" + strings.Repeat("9", 16) + "-01"},
			Actor:            audit.Actor{Sub: "client-1", Organisation: "00000001234567890000"},
			Purpose:          "bijstand", Decision: audit.DecisionDeny, Status: 403,
		},
		{
			Time: t0.Add(2 * time.Hour), TraceID: strings.Repeat("c", 32), SpanID: strings.Repeat("3", 16), Operation: "POST /v1/resident-views",
			Actor: audit.Actor{Sub: "sdevries", Department: "kcc"}, Decision: audit.DecisionError, Status: 503,
		},
	}
	m := &memLog{}
	for i, ev := range events {
		ev.Seq = int64(i + 1)
		data, err := audit.EncodeRecord(ev)
		require.NoError(t, err)
		m.records = append(m.records, audit.Record{Seq: ev.Seq, Data: data})
	}
	return m
}

func TestNDJSONIsTheStoredBytes(t *testing.T) {
	m := sampleLog(t)
	var out bytes.Buffer
	n, err := export.Write(context.Background(), m, &out, export.Options{PageSize: 2})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	var want bytes.Buffer
	for _, r := range m.records {
		want.Write(r.Data)
		want.WriteByte('\n')
	}
	assert.Equal(t, want.String(), out.String(), "the lines are the exact bytes the Merkle leaves hash")
	assert.Equal(t, 2, m.calls, "two pages of two, the second short")
}

func TestLDVRecordsHoldNoEmployeeIdentity(t *testing.T) {
	m := sampleLog(t)
	var out bytes.Buffer
	var progress []int64
	n, err := export.Write(context.Background(), m, &out, export.Options{Format: export.FormatLDV, PageSize: 1, Progress: func(seq int64, _ int) { progress = append(progress, seq) }})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	assert.Equal(t, []int64{1, 2, 3}, progress)
	for _, banned := range []string{"mjansen", "sdevries", "client-1", "burgerzaken", "medewerker", "kcc"} {
		assert.NotContains(t, out.String(), banned, "employee identity stays in the audit log")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)

	var first export.Record
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Equal(t, strings.Repeat("a", 32), first.TraceID)
	assert.Equal(t, strings.Repeat("1", 16), first.SpanID)
	assert.Equal(t, export.StatusOK, first.StatusCode)
	assert.Equal(t, t0.UnixMilli(), first.StartTime)
	assert.Equal(t, map[string]string{
		export.AttrProcessingActivity: "https://register.example/burza-reisdocumenten",
		export.AttrDataSubjectID:      "5f0c" + strings.Repeat("0", 60),
		export.AttrDataSubjectIDType:  export.DataSubjectIDType,
		export.AttrAuditSeq:           "1",
	}, attrs(first.Attributes))

	var second export.Record
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	assert.Equal(t, export.StatusUnset, second.StatusCode, "a refusal was handled correctly")
	assert.Equal(t, strings.Repeat("9", 16), second.ParentSpanID, "the caller's span is the parent")
	require.NotNil(t, second.ForeignOperation)
	assert.Equal(t, "urn:oin:00000001234567890000", second.ForeignOperation.Entity)
	assert.NotContains(t, attrs(second.Attributes), export.AttrDataSubjectID, "no subject, no subject attribute")

	var third export.Record
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &third))
	assert.Equal(t, export.StatusError, third.StatusCode)
	assert.Nil(t, third.ForeignOperation)
}

func TestTimeWindow(t *testing.T) {
	var out bytes.Buffer
	n, err := export.Write(context.Background(), sampleLog(t), &out, export.Options{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "from is inclusive, to exclusive")
	assert.Contains(t, out.String(), `"seq":2`)
}

func TestErrors(t *testing.T) {
	_, err := export.Write(context.Background(), sampleLog(t), &bytes.Buffer{}, export.Options{Format: "csv"})
	assert.ErrorIs(t, err, export.ErrFormat)

	_, err = export.Write(context.Background(), &memLog{fail: audit.ErrUnavailable}, &bytes.Buffer{}, export.Options{})
	assert.ErrorIs(t, err, audit.ErrUnavailable)

	broken := &memLog{records: []audit.Record{{Seq: 1, Data: []byte("{not json")}}}
	_, err = export.Write(context.Background(), broken, &bytes.Buffer{}, export.Options{})
	assert.ErrorContains(t, err, "event 1")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = export.Write(ctx, sampleLog(t), &bytes.Buffer{}, export.Options{})
	assert.True(t, errors.Is(err, context.Canceled))
}

func attrs(list []export.Attribute) map[string]string {
	out := map[string]string{}
	for _, a := range list {
		switch {
		case a.Value.String != nil:
			out[a.Key] = *a.Value.String
		case a.Value.Int != nil:
			out[a.Key] = *a.Value.Int
		}
	}
	return out
}
