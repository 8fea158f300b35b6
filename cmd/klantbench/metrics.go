package main

import (
	"context"
	"fmt"
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

type stageCount struct{ n, seconds float64 }

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
		d.stages[name] = stageCount{sa.n - sb.n, sa.seconds - sb.seconds}
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
		if n, secs := histogram(fams["klantbeeld_view_stage_duration_seconds"], "stage", name); n > 0 {
			if c.stages == nil {
				c.stages = map[string]stageCount{}
			}
			c.stages[name] = stageCount{n, secs}
		}
	}
	return c, nil
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
