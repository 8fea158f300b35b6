package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// step is what one rate of one setup measured.
type step struct {
	Setup string // "baseline", "postgres", "sqlite"
	Rate  int    // offered views per second
	// Sent and OK count the views asked and those answered 200 with
	// every source ok (a degraded view, with a source unavailable or
	// partial, counts as an error).
	Sent, OK int
	// ViewsPerSecond is OK per second of the step, until the last answer.
	ViewsPerSecond     float64
	P50, P90, P99, Max time.Duration
	CPU                float64 // cores the process used on average
	BenchCPU           float64 // cores the fakes and the load generator used
	// DatabaseCPU is the cores the PostgreSQL server on this machine used
	// (whichever setup ran), -1 when none runs here.
	DatabaseCPU float64
	PeakRSS     int64 // bytes
	Codes       map[string]int
	FirstError  string
	// Gateway is what the gateway's metrics counted during the step (zero
	// for the baseline).
	Gateway gatewayCounts
	// Slowest counts the slowest 1% of the views, Bunched how many of them
	// were sent within one burstWindow (see bunching).
	Slowest, Bunched int
}

// burstWindow is the span in which bunching counts slow views.
const burstWindow = 250 * time.Millisecond

// sample is one view: when it was sent and how long it took.
type sample struct {
	sent    time.Time
	latency time.Duration
}

// bunching returns how many views are the slowest 1% of samples (those at
// least as slow as the hundredth slowest part) and the most of them sent
// within any one window. Most of them in one window is a pause that held
// every view in flight at once, of the machine or of a process; few is a
// tail spread over the step.
func bunching(samples []sample, window time.Duration) (slowest, bunched int) {
	if len(samples) == 0 {
		return 0, 0
	}
	lat := make([]time.Duration, len(samples))
	for i, s := range samples {
		lat[i] = s.latency
	}
	slices.Sort(lat)
	threshold := lat[len(lat)-max(1, len(lat)/100)]
	var sent []time.Time
	for _, s := range samples {
		if s.latency >= threshold {
			sent = append(sent, s.sent)
		}
	}
	slices.SortFunc(sent, time.Time.Compare)
	first := 0
	for i := range sent {
		for sent[i].Sub(sent[first]) > window {
			first++
		}
		bunched = max(bunched, i-first+1)
	}
	return len(sent), bunched
}

// errorRate is the share of the views sent that were not answered in full.
func (s step) errorRate() float64 {
	if s.Sent == 0 {
		return 0
	}
	return float64(s.Sent-s.OK) / float64(s.Sent)
}

// degraded marks a view in which a source did not answer in full.
var degraded = [][]byte{[]byte(`"status":"unavailable"`), []byte(`"status":"partial"`)}

// openSession opens the contact session the step's views are made in;
// the baseline verifies nothing and gets a fixed id.
func openSession(ctx context.Context, p *process, w *world) (string, error) {
	if p.operator == "" {
		return "6f1a8f4e-2b7c-4d0a-9a35-0c6a1b2e3d4f", nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/v1/contact-sessions", strings.NewReader(`{"kanaal":"balie"}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var s struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusCreated || s.ID == "" {
		return "", fmt.Errorf("%s: opening a contact session: %d %v", p.name, resp.StatusCode, err)
	}
	return s.ID, nil
}

// attack drives p open-loop at rate views per second for d: every view
// is sent on its schedule whether or not earlier ones were answered.
func attack(ctx context.Context, p *process, w *world, setup string, rate int, d time.Duration, profileDir string) (step, error) {
	session, err := openSession(ctx, p, w)
	if err != nil {
		return step{}, err
	}
	body := fmt.Appendf(nil, `{"bsn":%q,"purpose":%q,"context":{"type":"contact-session","id":%q}}`, benchBSN, benchPurpose, session)
	target := vegeta.Target{
		Method: http.MethodPost, URL: p.url + "/v1/resident-views", Body: body,
		Header: http.Header{"Authorization": {"Bearer " + w.token}, "Content-Type": {"application/json"}},
	}
	atk := vegeta.NewAttacker(vegeta.Timeout(5*time.Second), vegeta.KeepAlive(true), vegeta.Connections(2000))
	cpu0, err := p.cpu()
	if err != nil {
		return step{}, err
	}
	self0, err := procCPU(os.Getpid())
	if err != nil {
		return step{}, err
	}
	db0, dbHere := databaseCPU()
	if err := p.resetPeak(); err != nil {
		return step{}, err
	}
	var counts0 gatewayCounts
	if p.operator != "" {
		if counts0, err = scrape(ctx, p.operator); err != nil {
			return step{}, err
		}
	}
	var profiles sync.WaitGroup
	var mu sync.Mutex
	var profileErr error
	if profileDir != "" && p.operator != "" && d > 2*time.Second {
		secs := int((d - time.Second) / time.Second)
		for _, kind := range []string{"profile", "allocs"} {
			profiles.Go(func() {
				file := filepath.Join(profileDir, fmt.Sprintf("%s-%s-%d.pprof", map[string]string{"profile": "cpu", "allocs": "allocs"}[kind], setup, rate))
				if err := fetchTo(ctx, fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", p.operator, kind, secs), file); err != nil {
					mu.Lock()
					profileErr = err
					mu.Unlock()
				}
			})
		}
	}
	start := time.Now()
	var m vegeta.Metrics
	s := step{Setup: setup, Rate: rate}
	results := atk.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{Freq: rate, Per: time.Second}, d, setup)
	samples := make([]sample, 0, rate*int(d/time.Second+1))
	for r := range results {
		m.Add(r)
		samples = append(samples, sample{r.Timestamp, r.Latency})
		s.Sent++
		ok := r.Code == http.StatusOK && r.Error == ""
		if ok {
			for _, d := range degraded {
				if bytes.Contains(r.Body, d) {
					ok = false
				}
			}
		}
		if ok {
			s.OK++
		} else if s.FirstError == "" {
			s.FirstError = fmt.Sprintf("status %d %s", r.Code, r.Error)
			if i := bytes.Index(r.Body, []byte(`"sources":`)); i >= 0 {
				s.FirstError += fmt.Sprintf(" %.300s", r.Body[i:])
			}
		}
	}
	took := time.Since(start)
	m.Close()
	profiles.Wait()
	cpu1, err := p.cpu()
	if err != nil {
		return step{}, err
	}
	if s.PeakRSS, err = p.peakRSS(); err != nil {
		return step{}, err
	}
	s.CPU = (cpu1 - cpu0).Seconds() / took.Seconds()
	if self1, err := procCPU(os.Getpid()); err == nil {
		s.BenchCPU = (self1 - self0).Seconds() / took.Seconds()
	}
	s.DatabaseCPU = -1
	if db1, ok := databaseCPU(); ok && dbHere {
		s.DatabaseCPU = max(0, (db1-db0).Seconds()/took.Seconds())
	}
	if p.operator != "" {
		counts1, err := scrape(ctx, p.operator)
		if err != nil {
			return step{}, err
		}
		s.Gateway = counts1.minus(counts0)
	}
	s.P50, s.P90, s.P99, s.Max = m.Latencies.P50, m.Latencies.P90, m.Latencies.P99, m.Latencies.Max
	s.Slowest, s.Bunched = bunching(samples, burstWindow)
	s.Codes = m.StatusCodes
	if span := m.Duration + m.Wait; span > 0 {
		s.ViewsPerSecond = float64(s.OK) / span.Seconds()
	}
	return s, profileErr
}

// settle waits, after a step, until p and the fakes (this process) are
// idle (under a tenth of a core each for half a second) or 15 s have
// passed, so that work an overloaded step left behind does not count
// against the next.
func settle(p *process) {
	const every = 500 * time.Millisecond
	pids := []int{p.cmd.Process.Pid, os.Getpid()}
	prev := make([]time.Duration, len(pids))
	for i, pid := range pids {
		prev[i], _ = procCPU(pid)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(every)
		idle := true
		for i, pid := range pids {
			cur, err := procCPU(pid)
			if err != nil {
				return
			}
			if cur-prev[i] >= every/10 {
				idle = false
			}
			prev[i] = cur
		}
		if idle {
			return
		}
	}
}

// warm sends a few views, slowly, so that what is fetched once (the
// Salesforce session, Catalogi look-ups, connections) is in place.
func warm(ctx context.Context, p *process, w *world, d time.Duration) error {
	s, err := attack(ctx, p, w, "warm-up", 20, d, "")
	if err != nil {
		return err
	}
	if s.OK == 0 {
		return fmt.Errorf("%s: no view succeeded during the warm-up: %s", p.name, s.FirstError)
	}
	return nil
}

func fetchTo(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
