package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/fixtures/sources"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestMetricsCoverSourcesAuditAndBreakersWithoutPersonalData(t *testing.T) {
	e := newEnv(t)
	v := e.view(e.token("kcc"), "999990184", "klantcontact")
	require.Equal(t, http.StatusOK, v.status, "%s", v.body)

	// The audit log reports a batch just after it has released its
	// waiters, so the answer may come first.
	var text string
	require.Eventually(t, func() bool {
		var status int
		status, text = get(t, e.app.URL()+"/metrics")
		return status == http.StatusOK && regexp.MustCompile(`klantbeeld_audit_commit_duration_seconds_count\{outcome="ok"\} [1-9]`).MatchString(text)
	}, 5*time.Second, 20*time.Millisecond)
	for _, source := range []string{"brp", "zaken", "salesforce", "klantinteracties"} {
		assert.Contains(t, text, `klantbeeld_source_circuit_open{source="`+source+`"} 0`)
		assert.Regexp(t, `klantbeeld_source_request_duration_seconds_count\{code="200",outcome="ok",source="`+source+`"\} [1-9]`, text)
	}
	assert.Contains(t, text, `klantbeeld_http_request_duration_seconds_count{code="200",route="POST /v1/resident-views"} 1`)
	assert.Regexp(t, `klantbeeld_audit_batch_events_sum [1-9]`, text)
	assert.Regexp(t, `klantbeeld_audit_commit_duration_seconds_count\{outcome="ok"\} [1-9]`, text)
	assert.Regexp(t, `klantbeeld_policy_decision_duration_seconds_count\{outcome="allow"\} [1-9]`, text)
	assert.NotContains(t, text, "999990184")
	for _, ev := range e.events() {
		if ev.Subject != "" {
			assert.NotContains(t, text, ev.Subject)
		}
	}
}

func TestMetricsOnTheirOwnListenerWithTheProfiler(t *testing.T) {
	setup, err := newDemoSetup(t.TempDir(), "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	cfg := setup.Config
	cfg.Metrics = MetricsConfig{Listen: "127.0.0.1:0", Pprof: true}
	app, err := NewApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, app.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		app.Close(ctx)
	})
	require.NotNil(t, app.MetricsAddr())
	op := "http://" + app.MetricsAddr().String()

	status, text := get(t, op+"/metrics")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, text, "klantbeeld_source_circuit_open")
	status, text = get(t, op+"/debug/pprof/")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, text, "goroutine")
	status, _ = get(t, app.URL()+"/metrics")
	assert.Equal(t, http.StatusNotFound, status, "not on the API's listener")
	status, _ = get(t, app.URL()+"/debug/pprof/")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestMetricsOffAndPprofNeedsItsListener(t *testing.T) {
	setup, err := newDemoSetup(t.TempDir(), "127.0.0.1:0", sources.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { setup.Sources.Close() })
	cfg := setup.Config
	cfg.Metrics = MetricsConfig{Pprof: true}
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "metrics.pprof (KLANTBEELD_METRICS_PPROF)")

	cfg.Metrics = MetricsConfig{Listen: "off"}
	app, err := NewApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, app.Start())
	t.Cleanup(func() { app.Close(context.Background()) })
	assert.Nil(t, app.Metrics)
	status, _ := get(t, app.URL()+"/metrics")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestMetricsPprofFromTheEnvironment(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, applyEnv(&cfg, []string{"KLANTBEELD_METRICS_PPROF=true", "KLANTBEELD_METRICS_LISTEN=127.0.0.1:9090"}))
	assert.Equal(t, MetricsConfig{Listen: "127.0.0.1:9090", Pprof: true}, cfg.Metrics)
	err := applyEnv(&cfg, []string{"KLANTBEELD_METRICS_PPROF=yes please"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "metrics.pprof (KLANTBEELD_METRICS_PPROF)")
}
