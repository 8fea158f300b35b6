package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// RecordTimeFormat is how an event's time is written in its record: UTC with
// all nine fraction digits, so that records' times sort as text (the stores
// filter on it) and the bytes do not depend on the zone the caller used.
const RecordTimeFormat = "2006-01-02T15:04:05.000000000Z"

// record is the stored form of an Event: Seq and Time first and in fixed
// form; the embedded Event's own seq and time are shadowed by these.
type record struct {
	Seq  int64  `json:"seq"`
	Time string `json:"time"`
	Event
}

// recordPrefix starts every record; Verify reads the sequence number right
// after it without decoding the rest.
var recordPrefix = []byte(`{"seq":`)

// EncodeRecord returns the bytes stored for ev, ev.Seq included, so that a
// row moved to another sequence number no longer matches its bytes. The
// encoding is deterministic: JSON with the fields in declaration order,
// "seq" first, the time as RecordTimeFormat. Both stores store exactly
// these bytes and return them unchanged.
func EncodeRecord(ev Event) ([]byte, error) {
	r := record{Seq: ev.Seq, Time: ev.Time.UTC().Format(RecordTimeFormat), Event: ev}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode event %d: %w", ev.Seq, err)
	}
	return data, nil
}

// DecodeRecord is the inverse of EncodeRecord. The event's Time is in UTC.
func DecodeRecord(data []byte) (Event, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return Event{}, fmt.Errorf("audit: decode record: %w", err)
	}
	t, err := time.Parse(RecordTimeFormat, r.Time)
	if err != nil {
		return Event{}, fmt.Errorf("audit: decode record %d: time: %w", r.Seq, err)
	}
	ev := r.Event
	ev.Seq, ev.Time = r.Seq, t
	return ev, nil
}

// RecordSeq reads the sequence number a record names, without decoding the
// rest; ok is false when data does not start like a record.
func RecordSeq(data []byte) (seq int64, ok bool) {
	rest, found := bytes.CutPrefix(data, recordPrefix)
	if !found {
		return 0, false
	}
	end := bytes.IndexByte(rest, ',')
	if end <= 0 {
		return 0, false
	}
	seq, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return seq, err == nil
}

// recordTime is t as it appears in records, for time filters on the stored text.
func recordTime(t time.Time) string { return t.UTC().Format(RecordTimeFormat) }

// FilterTimes returns f.From and f.To as record text for a store's range
// condition time >= from AND time < to; a zero bound becomes a value every
// record time is above ("") or below ("9999-…").
func (f Filter) FilterTimes() (from, to string) {
	from, to = "", "9999-12-31T23:59:59.999999999Z~"
	if !f.From.IsZero() {
		from = recordTime(f.From)
	}
	if !f.To.IsZero() {
		to = recordTime(f.To)
	}
	return from, to
}

// Events reads up to limit events with Seq > after, decoded, in order (as
// Store.Records): for tests and tools that want events, not bytes.
func Events(ctx context.Context, s Store, after int64, limit int) ([]Event, error) {
	recs, err := s.Records(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(recs))
	for i, r := range recs {
		if out[i], err = r.Event(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
