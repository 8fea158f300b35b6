package audit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/audittest"
)

func TestEncodeRecordIsFixedAndNamesItsSeq(t *testing.T) {
	ev := audit.Event{Seq: 42, Time: time.Date(2026, 11, 23, 10, 0, 0, 100_000_000, time.FixedZone("CET", 3600)), Operation: "POST /v1/resident-views", Decision: audit.DecisionAllow, Status: 200}
	data, err := audit.EncodeRecord(ev)
	require.NoError(t, err)
	assert.Equal(t, `{"seq":42,"time":"2026-11-23T09:00:00.100000000Z","traceId":"","spanId":"","operation":"POST /v1/resident-views","actor":{},"decision":"allow","status":200}`, string(data))

	utc := ev
	utc.Time = ev.Time.UTC()
	again, err := audit.EncodeRecord(utc)
	require.NoError(t, err)
	assert.Equal(t, data, again, "the same instant in another zone gives the same bytes")

	seq, ok := audit.RecordSeq(data)
	assert.True(t, ok)
	assert.Equal(t, int64(42), seq)
}

func TestDecodeRecordGivesBackTheEvent(t *testing.T) {
	ev := audittest.Sample(3)
	ev.Seq = 9
	data, err := audit.EncodeRecord(ev)
	require.NoError(t, err)
	got, err := audit.DecodeRecord(data)
	require.NoError(t, err)
	assert.Equal(t, ev, got)

	_, err = audit.DecodeRecord([]byte(`{"seq":1,"time":"yesterday"}`))
	require.Error(t, err)
	_, err = audit.DecodeRecord([]byte(`not json`))
	require.Error(t, err)
}

func TestRecordSeqRefusesWhatIsNotARecord(t *testing.T) {
	for _, data := range []string{``, `{}`, `{"seq":}`, `{"seq":12`, `{"seq":x1,`, ` {"seq":1,`, `{"time":"","seq":1,`} {
		_, ok := audit.RecordSeq([]byte(data))
		assert.False(t, ok, data)
	}
}
