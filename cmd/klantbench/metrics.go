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
}

func (a gatewayCounts) minus(b gatewayCounts) gatewayCounts {
	return gatewayCounts{a.batches - b.batches, a.events - b.events, a.commitSeconds - b.commitSeconds, a.decisions - b.decisions, a.decisionsS - b.decisionsS}
}

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
	return c, nil
}

// histogram is the count and sum of every series of a histogram family.
func histogram(f *dto.MetricFamily) (count, sum float64) {
	if f == nil {
		return 0, 0
	}
	for _, m := range f.GetMetric() {
		if h := m.GetHistogram(); h != nil {
			count += float64(h.GetSampleCount())
			sum += h.GetSampleSum()
		}
	}
	return count, sum
}
