package main

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseGoBenchKeepsPackagesAndEveryUnit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "go.txt")
	require.NoError(t, os.WriteFile(file, []byte(`goos: linux
pkg: github.com/klantbeeld/klantbeeld/audit/sqlite
BenchmarkAppend/GroupCommit-2   	   14582	     81663 ns/op	     12245 events/s	        15.39 events/txn	    6293 B/op	      67 allocs/op
BenchmarkAppendLogLine is a log line that looks alike
PASS
pkg: github.com/klantbeeld/klantbeeld/gateway
BenchmarkResidentView-2        	    7338	    329942 ns/op	   57163 B/op	     716 allocs/op
`), 0o600))
	got, err := parseGoBench(file)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "audit/sqlite", got[0].pkg)
	assert.Equal(t, "BenchmarkAppend/GroupCommit", got[0].name)
	assert.Equal(t, []benchValue{{81663, "ns/op"}, {12245, "events/s"}, {15.39, "events/txn"}, {6293, "B/op"}, {67, "allocs/op"}}, got[0].values)
	assert.Equal(t, "gateway", got[1].pkg)
	assert.Equal(t, "BenchmarkResidentView", got[1].name)
}

func TestReportComparesWithTheBaselineAndJudgesTheTargets(t *testing.T) {
	ms := time.Millisecond
	r := &report{
		opts: options{rates: []int{100, 250}, duration: 20 * time.Second, delay: 20 * ms, stores: []string{"postgres"}},
		steps: []step{
			{Setup: "baseline", Rate: 100, Sent: 2000, OK: 2000, ViewsPerSecond: 100, P50: 21 * ms, P90: 22 * ms, P99: 25 * ms, Max: 30 * ms, CPU: 0.2, PeakRSS: 30 << 20, DatabaseCPU: -1},
			{Setup: "baseline", Rate: 250, Sent: 5000, OK: 5000, ViewsPerSecond: 250, P50: 21 * ms, P90: 23 * ms, P99: 26 * ms, Max: 31 * ms, CPU: 0.4, PeakRSS: 32 << 20},
			{Setup: "postgres", Rate: 100, Sent: 2000, OK: 2000, ViewsPerSecond: 100, P50: 22 * ms, P90: 24 * ms, P99: 28 * ms, Max: 35 * ms, CPU: 0.3, PeakRSS: 60 << 20},
			// Keeps the rate, but p99 is past 1.5× the baseline's unloaded p50.
			{Setup: "postgres", Rate: 250, Sent: 5000, OK: 4990, ViewsPerSecond: 249, P50: 24 * ms, P90: 30 * ms, P99: 40 * ms, Max: 50 * ms, CPU: 0.6, PeakRSS: 160 << 20,
				BenchCPU: 0.35, DatabaseCPU: 0.21, Slowest: 50, Bunched: 40},
		},
	}
	text := r.markdown()
	assert.Contains(t, text, "| 250 | postgres | 249.0 (1.00×) | 24.0 ms (1.14×) |")
	assert.Contains(t, text, "| 1.20× | 2.00× | 0.20% (10 of 5000) | 0.60 (1.50×) | 160 MB (5.00×) | 0.35 | 0.21 |")
	assert.Contains(t, text, "p50 at 250 views/s, audit on postgres, at most 1.15× the delay: 1.20× (24.0 ms; the baseline, making the same source calls: 1.05×, the gateway on top of it: 1.14×) — **missed**")
	assert.Contains(t, text, "p99 at 250 views/s, audit on postgres, at most 1.50× the delay: 2.00× (40.0 ms; the baseline, making the same source calls: 1.30×, the gateway on top of it: 1.54×) — **missed**")
	assert.Contains(t, text, "highest rate kept up 100 views/s (100.0 achieved) against the baseline's 250 (250.0): 0.40× — **missed**")
	assert.Contains(t, text, "errors below 0.1% at the rates the baseline kept up (up to 250 views/s): worst 0.20% (postgres at 250 views/s) — **missed**")
	assert.Contains(t, text, "peak RSS of the gateway at most 150 MB at those rates: 160 MB — **missed**")
	assert.Contains(t, text, "| 250 | postgres | 50 | 40 (80%) |")
	assert.Contains(t, text, "| 30 MB | 0.00 | – |", "no PostgreSQL on the machine: no figure")
	assert.NotContains(t, text, "beyond that", "every rate was one the baseline kept up")
	assert.False(t, strings.Contains(text, "## Go benchmarks"), "no Go benchmark section without their output")
	assert.False(t, strings.Contains(text, "audit transactions/s"), "no metrics table without the gateway's metrics")
}

func TestOptionsNameTheFlagAtFault(t *testing.T) {
	_, err := parseOptions([]string{"-rates", "100,x", "-stores", "mysql", "-duration", "soon"}, &strings.Builder{})
	require.Error(t, err)
	for _, want := range []string{`-rates: "x"`, `-stores: "mysql"`, `-duration: "soon"`, "-klantbeeld"} {
		assert.Contains(t, err.Error(), want)
	}
	o, err := parseOptions([]string{"-klantbeeld", "bin", "-rates", "100, 250", "-stores", "sqlite"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, []int{100, 250}, o.rates)
	assert.Equal(t, []string{"sqlite"}, o.stores)
	assert.Equal(t, 20*time.Second, o.duration)
}

func TestScrapeReadsTheGatewaysOwnFigures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/metrics", r.URL.Path)
		_, _ = io.WriteString(w, `# TYPE klantbeeld_http_request_duration_seconds histogram
klantbeeld_http_request_duration_seconds_bucket{code="200",route="POST /v1/resident-views",le="+Inf"} 4
klantbeeld_http_request_duration_seconds_sum{code="200",route="POST /v1/resident-views"} 0.1
klantbeeld_http_request_duration_seconds_count{code="200",route="POST /v1/resident-views"} 4
klantbeeld_http_request_duration_seconds_bucket{code="403",route="POST /v1/resident-views",le="+Inf"} 1
klantbeeld_http_request_duration_seconds_sum{code="403",route="POST /v1/resident-views"} 0.002
klantbeeld_http_request_duration_seconds_count{code="403",route="POST /v1/resident-views"} 1
klantbeeld_http_request_duration_seconds_bucket{code="200",route="POST /v1/contact-sessions",le="+Inf"} 1
klantbeeld_http_request_duration_seconds_sum{code="200",route="POST /v1/contact-sessions"} 0.5
klantbeeld_http_request_duration_seconds_count{code="200",route="POST /v1/contact-sessions"} 1
# TYPE klantbeeld_source_request_duration_seconds histogram
klantbeeld_source_request_duration_seconds_bucket{code="200",outcome="ok",source="brp",le="+Inf"} 2
klantbeeld_source_request_duration_seconds_sum{code="200",outcome="ok",source="brp"} 0.042
klantbeeld_source_request_duration_seconds_count{code="200",outcome="ok",source="brp"} 2
klantbeeld_source_request_duration_seconds_bucket{code="200",outcome="ok",source="zaken",le="+Inf"} 2
klantbeeld_source_request_duration_seconds_sum{code="200",outcome="ok",source="zaken"} 0.046
klantbeeld_source_request_duration_seconds_count{code="200",outcome="ok",source="zaken"} 2
# TYPE klantbeeld_view_stage_duration_seconds histogram
klantbeeld_view_stage_duration_seconds_bucket{stage="context",le="0.0001"} 0
klantbeeld_view_stage_duration_seconds_bucket{stage="context",le="0.00025"} 3
klantbeeld_view_stage_duration_seconds_bucket{stage="context",le="0.0005"} 4
klantbeeld_view_stage_duration_seconds_bucket{stage="context",le="+Inf"} 4
klantbeeld_view_stage_duration_seconds_sum{stage="context"} 0.001
klantbeeld_view_stage_duration_seconds_count{stage="context"} 4
klantbeeld_view_stage_duration_seconds_bucket{stage="sources",le="0.02"} 0
klantbeeld_view_stage_duration_seconds_bucket{stage="sources",le="0.025"} 4
klantbeeld_view_stage_duration_seconds_bucket{stage="sources",le="+Inf"} 4
klantbeeld_view_stage_duration_seconds_sum{stage="sources"} 0.088
klantbeeld_view_stage_duration_seconds_count{stage="sources"} 4
klantbeeld_view_stage_duration_seconds_bucket{stage="compose",le="0.0001"} 4
klantbeeld_view_stage_duration_seconds_bucket{stage="compose",le="+Inf"} 4
klantbeeld_view_stage_duration_seconds_sum{stage="compose"} 0.0004
klantbeeld_view_stage_duration_seconds_count{stage="compose"} 4
klantbeeld_view_stage_duration_seconds_bucket{stage="audit",le="0.001"} 1
klantbeeld_view_stage_duration_seconds_bucket{stage="audit",le="0.0025"} 3
klantbeeld_view_stage_duration_seconds_bucket{stage="audit",le="+Inf"} 4
klantbeeld_view_stage_duration_seconds_sum{stage="audit"} 0.008
klantbeeld_view_stage_duration_seconds_count{stage="audit"} 4
# TYPE klantbeeld_audit_batch_events histogram
klantbeeld_audit_batch_events_bucket{le="+Inf"} 2
klantbeeld_audit_batch_events_sum 5
klantbeeld_audit_batch_events_count 2
`)
	}))
	defer srv.Close()
	c, err := scrape(t.Context(), srv.URL)
	require.NoError(t, err)
	inf := math.Inf(1)
	assert.Equal(t, gatewayCounts{batches: 2, events: 5, views: 4, viewsS: 0.1, calls: 4, callsS: 0.088,
		stages: map[string]stageCount{
			"context": {4, 0.001, []float64{0.0001, 0.00025, 0.0005, inf}, []float64{0, 3, 4, 4}},
			"sources": {4, 0.088, []float64{0.02, 0.025, inf}, []float64{0, 4, 4}},
			"compose": {4, 0.0004, []float64{0.0001, inf}, []float64{4, 4}},
			"audit":   {4, 0.008, []float64{0.001, 0.0025, inf}, []float64{1, 3, 4}},
		}},
		c, "only the views answered 200 count as views")
	before := gatewayCounts{stages: map[string]stageCount{"audit": {1, 0.0005, []float64{0.001, 0.0025, inf}, []float64{1, 1, 1}}}}
	added := c.minus(before).stages["audit"]
	assert.InDelta(t, 3, added.n, 1e-9, "a step counts what its stages added")
	assert.InDelta(t, 0.0075, added.seconds, 1e-9)
	assert.Equal(t, []float64{0, 2, 3}, added.cum, "and what its buckets added")

	r := &report{
		opts:  options{rates: []int{250}, duration: 20 * time.Second, delay: 20 * time.Millisecond, stores: []string{"postgres"}},
		steps: []step{{Setup: "postgres", Rate: 250, Sent: 5000, OK: 5000, Gateway: c}},
	}
	text := r.markdown()
	assert.Contains(t, text, "| 250 | postgres | 0.1 | 2.50 | 0.00 ms | 0.0 | – | 25.00 ms | 22.00 ms |")
	// 25 ms in the handler: 0.25 context, 22 sources, 0.10 compose, 2 audit, 0.65 the rest;
	// the p99s from the buckets, the audit's past its last finite bound.
	assert.Contains(t, text, "| 250 | postgres | 25.00 ms | 0.25 ms (p99 0.49 ms) | 22.00 ms (p99 24.95 ms) | 0.10 ms (p99 0.10 ms) | 2.00 ms (p99 > 2.50 ms) | 0.65 ms |")

	// A gateway without the stage histogram (an older binary): no table.
	c.stages = nil
	r.steps[0].Gateway = c
	assert.NotContains(t, r.markdown(), "| in the handler |")
}

func TestBunchingTellsAPauseFromASpreadTail(t *testing.T) {
	start := time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)
	// 2,000 views 10 ms apart, 20 ms each, with 20 slow ones among them.
	views := func(slow func(i int) bool) []sample {
		out := make([]sample, 2000)
		for i := range out {
			out[i] = sample{start.Add(time.Duration(i) * 10 * time.Millisecond), 20 * time.Millisecond}
			if slow(i) {
				out[i].latency = 90 * time.Millisecond
			}
		}
		return out
	}
	slowest, bunched := bunching(views(func(i int) bool { return i >= 700 && i < 720 }), burstWindow)
	assert.Equal(t, 20, slowest)
	assert.Equal(t, 20, bunched, "20 slow views sent within 200 ms: one pause")

	slowest, bunched = bunching(views(func(i int) bool { return i%100 == 0 }), burstWindow)
	assert.Equal(t, 20, slowest)
	assert.Equal(t, 1, bunched, "one slow view a second: a spread tail")

	slowest, bunched = bunching(nil, burstWindow)
	assert.Zero(t, slowest)
	assert.Zero(t, bunched)
}

// TestMain lets this test binary be the child process of
// TestProcessesCPUCountsAChildThatEnded: with burnCPU set it spends CPU
// time and exits.
func TestMain(m *testing.M) {
	if os.Getenv(burnCPU) != "" {
		for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); {
			_ = strconv.Itoa(time.Now().Nanosecond())
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const burnCPU = "KLANTBENCH_TEST_BURN_CPU"

// A PostgreSQL backend that ended during a step still counts: its time is
// in the children's time of the process that waited for it.
func TestProcessesCPUCountsAChildThatEnded(t *testing.T) {
	_, _, name, err := procStat(os.Getpid())
	require.NoError(t, err)
	before, ok := processesCPU(name)
	require.True(t, ok, "this process is named %q", name)

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), burnCPU+"=1")
	require.NoError(t, child.Run())
	spent := child.ProcessState.UserTime() + child.ProcessState.SystemTime()
	require.GreaterOrEqual(t, spent, 100*time.Millisecond, "the child spent CPU")

	after, ok := processesCPU(name)
	require.True(t, ok)
	// Clock ticks are 10 ms: allow one each for user and system time.
	assert.GreaterOrEqual(t, after-before, spent-20*time.Millisecond, "the ended child's CPU is counted")

	_, ok = processesCPU("no-such-process-name")
	assert.False(t, ok)
}
