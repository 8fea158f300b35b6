// Package export streams the audit log out of a store for auditors and for
// a Logboek Dataverwerkingen: as NDJSON of the stored records (the exact
// bytes the Merkle tree commits to), or as Logboek Dataverwerkingen log
// records — trace id, span id, status, the processing activity and the
// pseudonymised data subject, without any employee identity — linked by
// trace and span id to the full events.
package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
)

// Formats of an export.
const (
	// FormatNDJSON is one stored record per line, byte for byte.
	FormatNDJSON = "ndjson"
	// FormatLDV is one Logboek Dataverwerkingen record per line.
	FormatLDV = "ldv"
)

// ErrFormat: the format is neither FormatNDJSON nor FormatLDV.
var ErrFormat = errors.New("export: unknown format")

// Reader is the part of an audit.Store an export reads.
type Reader interface {
	// Records returns up to limit records with Seq above after, ascending.
	Records(ctx context.Context, after int64, limit int) ([]audit.Record, error)
}

// Options choose what is exported. The zero value exports every event as NDJSON.
type Options struct {
	// Format is FormatNDJSON or FormatLDV; empty: FormatNDJSON.
	Format string
	// From (inclusive) and To (exclusive) bound the event time; zero: unbounded.
	From, To time.Time
	// Service names this system in an LDV record's resource; empty: "klantbeeld".
	Service string
	// Progress, when set, is called after every page with the last sequence
	// number read and the number of events written so far.
	Progress func(lastSeq int64, written int)
	// PageSize is how many records are read at once; 0: 1000.
	PageSize int
}

// Write streams the records chosen by opts to w, oldest first, and returns
// how many it wrote. Errors are the reader's (wrapping audit.ErrUnavailable),
// a record that cannot be decoded, w's, or ErrFormat.
func Write(ctx context.Context, r Reader, w io.Writer, opts Options) (int, error) {
	if opts.Format == "" {
		opts.Format = FormatNDJSON
	}
	if opts.Format != FormatNDJSON && opts.Format != FormatLDV {
		return 0, fmt.Errorf("%w %q: want %s or %s", ErrFormat, opts.Format, FormatNDJSON, FormatLDV)
	}
	if opts.Service == "" {
		opts.Service = "klantbeeld"
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	written := 0
	var after int64
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		page, err := r.Records(ctx, after, opts.PageSize)
		if err != nil {
			return written, err
		}
		for _, rec := range page {
			after = rec.Seq
			ev, err := rec.Event()
			if err != nil {
				return written, fmt.Errorf("export: event %d: %w", rec.Seq, err)
			}
			if !opts.From.IsZero() && ev.Time.Before(opts.From) || !opts.To.IsZero() && !ev.Time.Before(opts.To) {
				continue
			}
			line := rec.Data
			if opts.Format == FormatLDV {
				if line, err = json.Marshal(LogRecord(ev, opts.Service)); err != nil {
					return written, err
				}
			}
			if _, err := bw.Write(line); err != nil {
				return written, err
			}
			if err := bw.WriteByte('\n'); err != nil {
				return written, err
			}
			written++
		}
		if opts.Progress != nil && len(page) > 0 {
			opts.Progress(after, written)
		}
		if len(page) < opts.PageSize {
			return written, bw.Flush()
		}
	}
}

// Status codes of a log record (Logboek Dataverwerkingen, after OpenTelemetry).
const (
	StatusUnset = "STATUS_CODE_UNSET" // done correctly, also when refused or empty
	StatusOK    = "STATUS_CODE_OK"    // data was disclosed
	StatusError = "STATUS_CODE_ERROR" // failed within this system
)

// Attribute keys in the dpl namespace.
const (
	AttrProcessingActivity = "dpl.core.processing_activity_id"
	AttrDataSubjectID      = "dpl.core.data_subject_id"
	AttrDataSubjectIDType  = "dpl.core.data_subject_id_type"
	// AttrAuditSeq links a log record to the full event in the audit log.
	AttrAuditSeq = "dpl.klantbeeld.audit_seq"
)

// DataSubjectIDType says what dpl.core.data_subject_id holds: the keyed
// pseudonym (HMAC-SHA256) of a BSN, as the standard recommends.
const DataSubjectIDType = "BSN"

// Record is one Logboek Dataverwerkingen log record (logregel).
type Record struct {
	TraceID          string            `json:"trace_id"`
	SpanID           string            `json:"span_id"`
	ParentSpanID     string            `json:"parent_span_id,omitempty"`
	StatusCode       string            `json:"status_code"`
	Name             string            `json:"name"`
	StartTime        int64             `json:"start_time"` // ms since the epoch
	EndTime          int64             `json:"end_time"`
	ForeignOperation *ForeignOperation `json:"foreign_operation,omitempty"`
	Resource         Resource          `json:"resource"`
	Attributes       []Attribute       `json:"attributes"`
}

// ForeignOperation is the calling action at another party.
type ForeignOperation struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
	// Entity is the URI of the other party: urn:oin:<OIN>.
	Entity string `json:"entity"`
}

// Resource names the system that processed.
type Resource struct {
	Attributes []Attribute `json:"attributes"`
}

// Attribute is a key-value pair (OTLP JSON form).
type Attribute struct {
	Key   string `json:"key"`
	Value Value  `json:"value"`
}

// Value is an attribute value; exactly one field is set.
type Value struct {
	String *string `json:"stringValue,omitempty"`
	Int    *string `json:"intValue,omitempty"` // OTLP JSON carries int64 as a string
}

var traceparentPattern = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$`)

// LogRecord is the Logboek Dataverwerkingen form of ev. It holds no
// employee identity (no sub, name, department or roles): that stays in the
// audit event, found by the same trace and span id.
func LogRecord(ev audit.Event, service string) Record {
	ms := ev.Time.UnixMilli()
	r := Record{
		TraceID:    ev.TraceID,
		SpanID:     ev.SpanID,
		StatusCode: statusCode(ev),
		Name:       ev.Operation,
		StartTime:  ms,
		EndTime:    ms,
		Resource:   Resource{Attributes: []Attribute{str("service.name", service)}},
	}
	if fo := ev.ForeignOperation; fo != nil {
		// The gateway continues the caller's trace: its span is our parent.
		if m := traceparentPattern.FindStringSubmatch(fo.Traceparent); m != nil && m[1] == ev.TraceID {
			r.ParentSpanID = m[2]
			if ev.Actor.Organisation != "" {
				r.ForeignOperation = &ForeignOperation{TraceID: m[1], SpanID: m[2], Entity: "urn:oin:" + ev.Actor.Organisation}
			}
		}
	}
	if ev.ProcessingActivity != "" {
		r.Attributes = append(r.Attributes, str(AttrProcessingActivity, ev.ProcessingActivity))
	}
	if ev.Subject != "" {
		r.Attributes = append(r.Attributes, str(AttrDataSubjectID, ev.Subject), str(AttrDataSubjectIDType, DataSubjectIDType))
	}
	seq := strconv.FormatInt(ev.Seq, 10)
	r.Attributes = append(r.Attributes, Attribute{Key: AttrAuditSeq, Value: Value{Int: &seq}})
	return r
}

func statusCode(ev audit.Event) string {
	switch {
	case ev.Decision == audit.DecisionError || ev.Status >= 500:
		return StatusError
	case ev.Decision == audit.DecisionAllow:
		return StatusOK
	default:
		return StatusUnset
	}
}

func str(k, v string) Attribute { return Attribute{Key: k, Value: Value{String: &v}} }
