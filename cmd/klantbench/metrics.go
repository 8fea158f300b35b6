package main

import (
	"context"
	"fmt"
	"math"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// gatewayCounts are what the gateway's own metrics (GET /metrics) say of
// its audit log and its policy decisions; a step takes the difference.
type gatewayCounts struct {
	batches, events       float64 // audit transactions and the events in them
	commitSeconds         float64 // their commit time, summed
	decisions, decisionsS float64 // policy decisions and their time, summed
	views, viewsS         float64 // resident views answered 200 and their time in the handler, summed
	calls, callsS         float64 // calls to the sources and their time, summed
	// The views' stages (klantbeeld_view_stage_duration_seconds): how many
	// and their time, summed, by stage name.
	stages map[string]stageCount
}

// stageCount is one stage's histogram: how many, their time summed, and
// the cumulative count at each bucket's upper bound (seconds, ascending).
type stageCount struct {
	n, seconds float64
	le, cum    []float64
}

func (a stageCount) minus(b stageCount) stageCount {
	d := stageCount{n: a.n - b.n, seconds: a.seconds - b.seconds, le: a.le, cum: make([]float64, len(a.cum))}
	for i := range a.cum {
		d.cum[i] = a.cum[i]
		if len(b.cum) == len(a.cum) {
			d.cum[i] -= b.cum[i]
		}
	}
	return d
}

// quantile estimates the q-quantile from the buckets as Prometheus's
// histogram_quantile does: linearly within the bucket the rank falls in.
// above is set when the rank lies past the last finite bound, which is
// then all that can be said (the value is more than it).
func (s stageCount) quantile(q float64) (v float64, above, ok bool) {
	if s.n <= 0 || len(s.le) == 0 {
		return 0, false, false
	}
	rank := q * s.n
	lower, below := 0.0, 0.0
	for i, bound := range s.le {
		if math.IsInf(bound, 1) {
			break
		}
		if s.cum[i] >= rank { // and below < rank, so the bucket is not empty
			return lower + (bound-lower)*(rank-below)/(s.cum[i]-below), false, true
		}
		lower, below = bound, s.cum[i]
	}
	return lower, true, true
}

// viewStages are the stages the gateway times, in the order a view goes
// through them.
var viewStages = []string{"context", "sources", "compose", "audit"}

func (a gatewayCounts) minus(b gatewayCounts) gatewayCounts {
	d := gatewayCounts{
		batches: a.batches - b.batches, events: a.events - b.events, commitSeconds: a.commitSeconds - b.commitSeconds,
		decisions: a.decisions - b.decisions, decisionsS: a.decisionsS - b.decisionsS,
		views: a.views - b.views, viewsS: a.viewsS - b.viewsS, calls: a.calls - b.calls, callsS: a.callsS - b.callsS,
	}
	for name, sa := range a.stages {
		sb := b.stages[name]
		if d.stages == nil {
			d.stages = map[string]stageCount{}
		}
		d.stages[name] = sa.minus(sb)
	}
	return d
}

// viewRoute and viewCode label the views of the load in the gateway's
// request histogram.
const viewRoute, viewCode = "POST /v1/resident-views", "200"

// scrape reads the gateway's metrics from its operator listener.
func scrape(ctx context.Context, operator string) (gatewayCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, operator+"/metrics", nil)
	if err != nil {
		return gatewayCounts{}, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return gatewayCounts{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return gatewayCounts{}, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return gatewayCounts{}, fmt.Errorf("metrics: %w", err)
	}
	var c gatewayCounts
	c.batches, c.events = histogram(fams["klantbeeld_audit_batch_events"])
	_, c.commitSeconds = histogram(fams["klantbeeld_audit_commit_duration_seconds"])
	c.decisions, c.decisionsS = histogram(fams["klantbeeld_policy_decision_duration_seconds"])
	c.views, c.viewsS = histogram(fams["klantbeeld_http_request_duration_seconds"], "route", viewRoute, "code", viewCode)
	c.calls, c.callsS = histogram(fams["klantbeeld_source_request_duration_seconds"])
	for _, name := range viewStages {
		if st, ok := stage(fams["klantbeeld_view_stage_duration_seconds"], name); ok {
			if c.stages == nil {
				c.stages = map[string]stageCount{}
			}
			c.stages[name] = st
		}
	}
	return c, nil
}

// stage is the series of the stage histogram for one stage, with its buckets.
func stage(f *dto.MetricFamily, name string) (stageCount, bool) {
	if f == nil {
		return stageCount{}, false
	}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		if h == nil || !hasLabels(m, []string{"stage", name}) || h.GetSampleCount() == 0 {
			continue
		}
		st := stageCount{n: float64(h.GetSampleCount()), seconds: h.GetSampleSum()}
		for _, b := range h.GetBucket() {
			st.le = append(st.le, b.GetUpperBound())
			st.cum = append(st.cum, float64(b.GetCumulativeCount()))
		}
		return st, true
	}
	return stageCount{}, false
}

// histogram is the count and sum of the series of a histogram family
// that have the given label name and value pairs (every series without).
func histogram(f *dto.MetricFamily, labels ...string) (count, sum float64) {
	if f == nil {
		return 0, 0
	}
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		if h := m.GetHistogram(); h != nil {
			count += float64(h.GetSampleCount())
			sum += h.GetSampleSum()
		}
	}
	return count, sum
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
