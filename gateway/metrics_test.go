package gateway_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/gateway"
)

// scrape is the metrics text the gateway serves on GET /metrics.
func scrape(t *testing.T, h *harness) string {
	t.Helper()
	a := h.do(http.MethodGet, "/metrics", "", "", "")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	return string(a.body)
}

func TestMetricsCountRequestsByRouteAndStatusAndDecisionsByOutcome(t *testing.T) {
	m := gateway.NewMetrics()
	h := newHarness(t, withConfig(func(c *gateway.Config) { c.Metrics, c.ServeMetrics = m, true }))
	tok := h.signer.token(t, employee("burgerzaken"))
	require.Equal(t, http.StatusOK, h.view(tok, `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`).status)
	require.Equal(t, http.StatusOK, h.view(tok, `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`).status)
	require.Equal(t, http.StatusForbidden, h.view(tok, `{"bsn":"999993653","purpose":"bijstand",`+zaakContext+`}`).status)
	require.Equal(t, http.StatusNotFound, h.do(http.MethodGet, "/v1/999993653", tok, "", "").status)
	// Sources and the audit log report through the hooks cmd wires.
	m.Call("brp", "ok", 200, 20*time.Millisecond)
	m.Circuit("zaken", true)
	m.AuditBatch(3, 4*time.Millisecond, nil)
	m.AuditBatch(1, time.Millisecond, audit.ErrUnavailable)

	text := scrape(t, h)
	for _, want := range []string{
		`klantbeeld_http_request_duration_seconds_count{code="200",route="POST /v1/resident-views"} 2`,
		`klantbeeld_http_request_duration_seconds_count{code="403",route="POST /v1/resident-views"} 1`,
		`klantbeeld_http_request_duration_seconds_count{code="404",route="/"} 1`,
		`klantbeeld_policy_decision_duration_seconds_count{outcome="allow"}`,
		`klantbeeld_policy_decision_duration_seconds_count{outcome="deny"} 1`,
		`klantbeeld_source_request_duration_seconds_count{code="200",outcome="ok",source="brp"} 1`,
		`klantbeeld_source_circuit_open{source="zaken"} 1`,
		`klantbeeld_audit_batch_events_sum 4`,
		`klantbeeld_audit_commit_duration_seconds_count{outcome="error"} 1`,
		`process_resident_memory_bytes`,
		// The two views answered went through every stage; the refused
		// one was stopped by the policy before its context was checked.
		`klantbeeld_view_stage_duration_seconds_count{stage="context"} 2`,
		`klantbeeld_view_stage_duration_seconds_count{stage="sources"} 2`,
		`klantbeeld_view_stage_duration_seconds_count{stage="compose"} 2`,
		`klantbeeld_view_stage_duration_seconds_count{stage="audit"} 2`,
	} {
		assert.Contains(t, text, want)
	}
	// Nothing of the requests: no BSN, no pseudonym, no path.
	assert.NotContains(t, text, "999993653")
	for _, ev := range h.store.Events() {
		if ev.Subject != "" {
			assert.NotContains(t, text, ev.Subject)
		}
	}
	assert.NotContains(t, text, "/v1/999993653")
}

func TestMetricsAreNotServedWhenServedElsewhere(t *testing.T) {
	h := newHarness(t, withConfig(func(c *gateway.Config) { c.Metrics = gateway.NewMetrics() }))
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodGet, "/metrics", "", "", "").status)
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *gateway.Metrics
	m.Call("brp", "ok", 200, time.Millisecond)
	m.Circuit("brp", true)
	m.AuditBatch(1, time.Millisecond, nil)
	h := newHarness(t)
	require.Equal(t, http.StatusOK, h.view(h.signer.token(t, employee("burgerzaken")), `{"bsn":"999993653","purpose":"reisdocumenten",`+zaakContext+`}`).status)
	assert.False(t, bytes.Contains(h.logs.Bytes(), []byte("panic")))
}
