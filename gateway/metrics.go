package gateway

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/klantbeeld/klantbeeld/policies"
)

// Metrics are the gateway's Prometheus metrics, served as GET /metrics
// (Handler). Besides what the gateway itself measures (requests by route
// pattern and status, policy decisions) it takes what cmd wires to it: the
// source calls and circuit breakers of connectors/upstream (Call and
// Circuit, its Observer) and the audit log's group commits (AuditBatch,
// audit.LogOptions.Observe). No label holds anything a request carries:
// routes are patterns, sources are names, outcomes are fixed words. A nil
// *Metrics records nothing.
type Metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.HistogramVec
	decisions *prometheus.HistogramVec
	sources   *prometheus.HistogramVec
	circuits  *prometheus.GaugeVec
	batches   prometheus.Histogram
	commits   *prometheus.HistogramVec
	// stages holds the stage histogram's series, one per stage name,
	// made at start and only read after.
	stages map[string]prometheus.Observer
	// calls keeps the source histogram of each label set (callKey), so
	// that a call is not the hashing of three labels under a lock.
	calls sync.Map
}

type callKey struct {
	source, outcome string
	status          int
}

// latencyBuckets (seconds) are fine around the tens of milliseconds a
// source takes, and reach the timeouts.
var latencyBuckets = []float64{.001, .0025, .005, .01, .015, .02, .025, .03, .04, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10}

// stageBuckets (seconds) reach down to the tens of microseconds a
// composition or a cached check takes, and up to the timeouts.
var stageBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .015, .02, .025, .03, .04, .05, .075, .1, .25, .5, 1, 2.5, 5, 10}

// The stages of a resident view that the gateway times (Metrics.stage):
// where its time goes between the request and the answer.
const (
	// stageContext verifies the context the purpose requires (the
	// contact session, zaak or interne taak), before any source is asked.
	stageContext = "context"
	// stageSources asks the permitted sources, in parallel.
	stageSources = "sources"
	// stageCompose filters and composes what they answered.
	stageCompose = "compose"
	// stageAudit waits until the view's audit record is durable (views
	// answered with data).
	stageAudit = "audit"
)

// NewMetrics makes the metrics in a registry of their own, with the Go
// runtime's and the process's (CPU, memory, file descriptors) beside them.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "klantbeeld", Name: "http_request_duration_seconds",
			Help:    "Requests to the gateway by route pattern and response status, until the handler returned.",
			Buckets: latencyBuckets,
		}, []string{"route", "code"}),
		decisions: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "klantbeeld", Name: "policy_decision_duration_seconds",
			Help:    "Purpose policy decisions by outcome (allow, deny, error).",
			Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, .001, .0025, .005, .01, .025, .1},
		}, []string{"outcome"}),
		sources: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "klantbeeld", Name: "source_request_duration_seconds",
			Help:    "Calls to source systems, retries included, by source, outcome word and the last HTTP status (0: none came).",
			Buckets: latencyBuckets,
		}, []string{"source", "outcome", "code"}),
		circuits: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "klantbeeld", Name: "source_circuit_open",
			Help: "1 while a source's circuit breaker is open (calls refused without being sent), else 0.",
		}, []string{"source"}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "klantbeeld", Name: "audit_batch_events",
			Help:    "Events per audit log transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		commits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "klantbeeld", Name: "audit_commit_duration_seconds",
			Help:    "Audit log transactions until durably committed, by outcome (ok, error).",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
	}
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "klantbeeld", Name: "view_stage_duration_seconds",
		Help:    "Stages of resident views: context (verifying the context the purpose requires), sources (asking the permitted sources, in parallel), compose (filtering and composing their answers), audit (until the view's audit record is durable, views answered with data).",
		Buckets: stageBuckets,
	}, []string{"stage"})
	m.stages = map[string]prometheus.Observer{}
	for _, st := range []string{stageContext, stageSources, stageCompose, stageAudit} {
		m.stages[st] = stages.WithLabelValues(st)
	}
	m.registry.MustRegister(m.requests, m.decisions, m.sources, m.circuits, m.batches, m.commits, stages,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text (or protobuf) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Call records one call to a source (upstream.Observer).
func (m *Metrics) Call(source, outcome string, status int, d time.Duration) {
	if m == nil {
		return
	}
	k := callKey{source, outcome, status}
	o, ok := m.calls.Load(k)
	if !ok {
		o, _ = m.calls.LoadOrStore(k, m.sources.WithLabelValues(source, outcome, strconv.Itoa(status)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// Circuit records a source's breaker state (upstream.Observer); cmd
// reports every configured source closed at start, so that each has a value.
func (m *Metrics) Circuit(source string, open bool) {
	if m == nil {
		return
	}
	v := 0.0
	if open {
		v = 1
	}
	m.circuits.WithLabelValues(source).Set(v)
}

// AuditBatch records one group commit of the audit log
// (audit.LogOptions.Observe).
func (m *Metrics) AuditBatch(events int, commit time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.batches.Observe(float64(events))
	m.commits.WithLabelValues(outcome).Observe(commit.Seconds())
}

// stage records that a view spent the time since start in the named stage.
func (m *Metrics) stage(name string, start time.Time) {
	if m == nil {
		return
	}
	m.stages[name].Observe(time.Since(start).Seconds())
}

func (m *Metrics) request(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

func (m *Metrics) decision(d time.Duration, dec policies.Decision, err error) {
	if m == nil {
		return
	}
	outcome := "deny"
	switch {
	case err != nil:
		outcome = "error"
	case dec.Allow:
		outcome = "allow"
	}
	m.decisions.WithLabelValues(outcome).Observe(d.Seconds())
}

// decide asks p and times the decision.
func (g *Gateway) decide(ctx context.Context, p Decider, in policies.Input) (policies.Decision, error) {
	if g.cfg.Metrics == nil {
		return p.Decide(ctx, in)
	}
	start := time.Now()
	dec, err := p.Decide(ctx, in)
	g.cfg.Metrics.decision(time.Since(start), dec, err)
	return dec, err
}
