package salesforce_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/fixtures"
	sffake "github.com/klantbeeld/klantbeeld/fixtures/salesforce"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)

const (
	consumerKey = "3MVG9testconsumerkey"
	username    = "integratie@gemeente.example"
	tokenPath   = "/services/oauth2/token"
)

func day(d int, hour int) time.Time { return time.Date(2026, 11, d, hour, 0, 0, 0, time.UTC) }

var (
	keyOnce sync.Once
	appKey  *rsa.PrivateKey
)

func key(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		appKey = k
	})
	return appKey
}

// exchange is one request the fake got and what it answered. A composite
// request is logged as itself and then as one exchange per subrequest
// (sub), which a rewrite can change as if it had been a request of its own.
type exchange struct {
	method, path, soql string
	status             int
	body               string
	sub                bool
}

const compositePath = "/services/data/v60.0/composite"

func isComposite(ex exchange) bool { return ex.path == compositePath && !ex.sub }

// isDataRequest is a request to the REST API itself, not for a token and
// not a subrequest: what costs a round trip and an API request.
func isDataRequest(ex exchange) bool { return !ex.sub && ex.path != tokenPath }

// recorder sits between the test server and the fake: it keeps every
// exchange, so tests can check what left the source, and lets a test
// change an answer.
type recorder struct {
	next http.Handler

	mu       sync.Mutex
	log      []exchange
	rewrite  func(*exchange)
	beforeFn func(*http.Request)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rewrite, before := rec.rewrite, rec.beforeFn
	rec.mu.Unlock()
	if before != nil {
		before(r)
	}
	var reqBody []byte
	if r.Body != nil {
		reqBody, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	rw := httptest.NewRecorder()
	rec.next.ServeHTTP(rw, r)
	ex := exchange{method: r.Method, path: r.URL.Path, soql: r.URL.Query().Get("q"), status: rw.Code, body: rw.Body.String()}
	var subs []exchange
	if ex.path == compositePath && ex.status == http.StatusOK {
		subs = rec.splitComposite(reqBody, &ex, rewrite)
	}
	if rewrite != nil {
		rewrite(&ex)
	}
	for k, vs := range rw.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(ex.status)
	_, _ = w.Write([]byte(ex.body))
	rec.mu.Lock()
	rec.log = append(rec.log, ex)
	rec.log = append(rec.log, subs...)
	rec.mu.Unlock()
}

// splitComposite gives every subrequest of a composite exchange to rewrite
// and puts what it made of their answers back into ex.body.
func (rec *recorder) splitComposite(reqBody []byte, ex *exchange, rewrite func(*exchange)) []exchange {
	var req struct {
		CompositeRequest []struct{ Method, URL, ReferenceID string }
	}
	var res struct {
		CompositeResponse []map[string]json.RawMessage `json:"compositeResponse"`
	}
	if json.Unmarshal(reqBody, &req) != nil || json.Unmarshal([]byte(ex.body), &res) != nil ||
		len(req.CompositeRequest) != len(res.CompositeResponse) {
		return nil
	}
	var subs []exchange
	for i, sr := range req.CompositeRequest {
		u, err := url.Parse(sr.URL)
		if err != nil {
			return nil
		}
		var status int
		_ = json.Unmarshal(res.CompositeResponse[i]["httpStatusCode"], &status)
		sub := exchange{method: sr.Method, path: u.Path, soql: u.Query().Get("q"), status: status,
			body: string(res.CompositeResponse[i]["body"]), sub: true}
		if rewrite != nil {
			rewrite(&sub)
		}
		res.CompositeResponse[i]["httpStatusCode"] = json.RawMessage(strconv.Itoa(sub.status))
		res.CompositeResponse[i]["body"] = json.RawMessage(sub.body)
		subs = append(subs, sub)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil
	}
	ex.body = string(b)
	return subs
}

func (rec *recorder) setRewrite(f func(*exchange)) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.rewrite = f
}

func (rec *recorder) setBefore(f func(*http.Request)) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.beforeFn = f
}

func (rec *recorder) exchanges() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]exchange(nil), rec.log...)
}

func (rec *recorder) count(match func(exchange) bool) int {
	n := 0
	for _, ex := range rec.exchanges() {
		if match(ex) {
			n++
		}
	}
	return n
}

func isToken(ex exchange) bool { return ex.path == tokenPath }

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	fake   *sffake.Fake
	srv    *fixtures.Server
	rec    *recorder
	client *salesforce.Client
	logs   *syncBuffer
}

type option func(*sffake.Options, *salesforce.Config)

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	fo := sffake.Options{
		ConsumerKey: consumerKey,
		Username:    username,
		PublicKey:   key(t).Public(),
		Now:         func() time.Time { return testNow },
		BatchSize:   2,
	}
	logs := &syncBuffer{}
	cfg := salesforce.Config{
		ConsumerKey: consumerKey,
		Username:    username,
		PrivateKey:  key(t),
		Now:         func() time.Time { return testNow },
		HTTP: upstream.Config{
			Timeout:      time.Second,
			RetryWaitMin: time.Millisecond,
			RetryWaitMax: 5 * time.Millisecond,
			Logger:       slog.New(slog.NewJSONHandler(logs, nil)),
		},
	}
	for _, o := range opts {
		o(&fo, &cfg)
	}
	e := &env{fake: sffake.New(fo), logs: logs}
	e.rec = &recorder{next: e.fake}
	srv, err := fixtures.Start("salesforce", e.rec, "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	e.srv = srv
	if cfg.URL == "" {
		cfg.URL = srv.URL()
	}
	if cfg.LoginURL == "" {
		cfg.LoginURL = srv.URL()
	}
	e.client, err = salesforce.New(cfg)
	require.NoError(t, err)
	return e
}

func caseIDs(p *salesforce.Profile) []string {
	out := []string{}
	for _, c := range p.Cases {
		out = append(out, c.ID)
	}
	return out
}

func taskIDs(p *salesforce.Profile) []string {
	out := []string{}
	for _, t := range p.Tasks {
		out = append(out, t.ID)
	}
	return out
}

func TestProfileOfScenarioResidents(t *testing.T) {
	tests := []struct {
		name      string
		q         salesforce.Query
		wantCases []string
		wantTasks []string
	}{
		{"Burgerzaken sees only BURZA cases and tasks about them",
			salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, Callbacks: true, Calls: true},
			[]string{"5000900000SuZa1AAB"}, []string{"00T0900000SuZa1AAB", "00T0900000SuZa3AAB"}},
		{"both domains give every case and task",
			salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA, fixtures.SOCZA}, UndomainedTasks: true, Callbacks: true, Calls: true},
			[]string{"5000900000SuZa1AAB", "5000900000SuZa2AAB"}, []string{"00T0900000SuZa1AAB", "00T0900000SuZa3AAB", "00T0900000SuZa2AAB", "00T0900000SuZa4AAB"}},
		{"Sociale Zaken sees only SOCZA",
			salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.SOCZA}, Callbacks: true},
			[]string{"5000900000SuZa2AAB"}, []string{"00T0900000SuZa2AAB"}},
		{"callbacks with undomained ones, newest first",
			salesforce.Query{BSN: fixtures.BSNOverdue, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true},
			[]string{"5000900000OvEr1AAB"}, []string{"00T0900000OvEr3AAB", "00T0900000OvEr1AAB"}},
		{"callbacks without undomained ones",
			salesforce.Query{BSN: fixtures.BSNOverdue, CaseDomains: []string{fixtures.BURZA}, Callbacks: true},
			[]string{"5000900000OvEr1AAB"}, []string{"00T0900000OvEr1AAB"}},
		{"logged calls only",
			salesforce.Query{BSN: fixtures.BSNOverdue, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Calls: true},
			[]string{"5000900000OvEr1AAB"}, []string{"00T0900000OvEr2AAB"}},
		{"cases without tasks",
			salesforce.Query{BSN: fixtures.BSNOverdue, CaseDomains: []string{fixtures.BURZA, fixtures.BURZA}},
			[]string{"5000900000OvEr1AAB"}, []string{}},
		{"undomained tasks without cases",
			salesforce.Query{BSN: fixtures.BSNCRMOnly, UndomainedTasks: true, Calls: true, Callbacks: true},
			[]string{}, []string{"00T0900000CrMo1AAB"}},
		{"a domain the resident has no cases in",
			salesforce.Query{BSN: fixtures.BSNFamily, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true, Calls: true},
			[]string{}, []string{}},
		{"resident not in Salesforce",
			salesforce.Query{BSN: fixtures.BSNOnlySOCZA, CaseDomains: []string{fixtures.SOCZA}, Callbacks: true},
			[]string{}, []string{}},
		{"BSN nobody knows",
			salesforce.Query{BSN: fixtures.BSNUnknown, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true},
			[]string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p, err := e.client.Profile(context.Background(), tt.q)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCases, caseIDs(p))
			assert.Equal(t, tt.wantTasks, taskIDs(p))
		})
	}
}

func TestProfileFields(t *testing.T) {
	e := newEnv(t)
	p, err := e.client.Profile(context.Background(), salesforce.Query{
		BSN: fixtures.BSNOverdue, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true,
	})
	require.NoError(t, err)
	assert.Equal(t, []salesforce.Case{{
		ID: "5000900000OvEr1AAB", CaseNumber: "00001031", Subject: "Rijbewijs nog niet ontvangen",
		Status: "Escalated", Origin: "Phone", Domain: fixtures.BURZA, Created: day(3, 9),
	}}, p.Cases)
	assert.Equal(t, []salesforce.Task{
		{
			ID: "00T0900000OvEr3AAB", Subtype: "Task", Subject: "Terugbellen over afspraak balie", Status: "Not Started",
			Owner: "Fatima el Amrani", Due: "2026-11-24", Created: day(21, 9),
		},
		{
			ID: "00T0900000OvEr1AAB", Subtype: "Task", Subject: "Terugbellen over status rijbewijs", Status: "Not Started",
			Owner: "Jan de Vries", Due: "2026-11-17", ReminderAt: day(22, 9), ReminderSet: true, Reminders: 3,
			CaseID: "5000900000OvEr1AAB", Created: day(10, 9),
		},
	}, p.Tasks)

	p, err = e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, Calls: true})
	require.NoError(t, err)
	require.Len(t, p.Tasks, 1)
	assert.Equal(t, salesforce.Task{
		ID: "00T0900000SuZa3AAB", Subtype: "Call", Subject: "Telefoongesprek over paspoort", Status: "Completed",
		Owner: "Fatima el Amrani", Due: "2026-11-14", CaseID: "5000900000SuZa1AAB", Created: day(14, 9), Closed: true,
	}, p.Tasks[0])
}

func TestDomainFilterRunsAtTheSource(t *testing.T) {
	e := newEnv(t)
	_, err := e.client.Profile(context.Background(), salesforce.Query{
		BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true, Calls: true,
	})
	require.NoError(t, err)
	var soql []string
	for _, ex := range e.rec.exchanges() {
		// Nothing of Sociale Zaken left Salesforce: not the case, not the tasks about it.
		for _, secret := range []string{"SOCZA", "SuZa2AAB", "SuZa4AAB", "bijstand", "uitkering", "inkomstenopgave"} {
			assert.NotContains(t, ex.body, secret, "%s %s", ex.method, ex.path)
		}
		if ex.soql != "" {
			soql = append(soql, ex.soql)
		}
	}
	require.Len(t, soql, 4)
	assert.Equal(t, "SELECT Id FROM Contact WHERE BSN__c = '999993653' LIMIT 2", soql[0])
	assert.Contains(t, soql[1], "FROM Case WHERE ContactId = '@{contact.records[0].Id}' AND Domein__c IN ('BURZA')")
	assert.Contains(t, soql[2], "FROM Task WHERE WhoId = '@{contact.records[0].Id}' AND TaskSubtype IN ('Task','Call') AND WhatId IN (SELECT Id FROM Case WHERE ContactId = '@{contact.records[0].Id}' AND Domein__c IN ('BURZA'))")
	assert.Contains(t, soql[3], "FROM Task WHERE WhoId = '@{contact.records[0].Id}' AND TaskSubtype IN ('Task','Call') AND WhatId = null")
	for _, q := range soql {
		assert.NotContains(t, q, "5000900000", "no case is listed in a query: the tasks are chosen by the same filter as the cases")
	}
}

func TestOneRoundTripPerProfile(t *testing.T) {
	tests := []struct {
		name string
		q    salesforce.Query
		subs int
	}{
		{"cases and all tasks", salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA, fixtures.SOCZA}, UndomainedTasks: true, Callbacks: true, Calls: true}, 4},
		{"cases and tasks about them", salesforce.Query{BSN: fixtures.BSNOverdue, CaseDomains: []string{fixtures.BURZA}, Callbacks: true}, 3},
		{"cases only", salesforce.Query{BSN: fixtures.BSNOverdue, CaseDomains: []string{fixtures.BURZA}}, 2},
		{"undomained tasks only", salesforce.Query{BSN: fixtures.BSNCRMOnly, UndomainedTasks: true, Calls: true}, 2},
		{"resident not in Salesforce", salesforce.Query{BSN: fixtures.BSNOnlySOCZA, CaseDomains: []string{fixtures.SOCZA}, UndomainedTasks: true, Callbacks: true}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *sffake.Options, _ *salesforce.Config) { o.BatchSize = 0 }) // one page per answer
			for range 3 {
				_, err := e.client.Profile(context.Background(), tt.q)
				require.NoError(t, err)
			}
			assert.Equal(t, 3, e.rec.count(isDataRequest), "one request per profile")
			assert.Equal(t, 3, e.rec.count(isComposite))
			assert.Equal(t, 3*tt.subs, e.rec.count(func(ex exchange) bool { return ex.sub }))
			assert.Equal(t, 1, e.rec.count(isToken))
		})
	}
}

func TestResidentNotInSalesforceIsEmptyNotAnError(t *testing.T) {
	e := newEnv(t)
	p, err := e.client.Profile(context.Background(), salesforce.Query{
		BSN: fixtures.BSNUnknown, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true, Calls: true,
	})
	require.NoError(t, err)
	assert.Empty(t, p.Cases)
	assert.Empty(t, p.Tasks)
	halted := e.rec.count(func(ex exchange) bool {
		return ex.sub && ex.status == http.StatusBadRequest && strings.Contains(ex.body, "PROCESSING_HALTED")
	})
	assert.Equal(t, 3, halted, "the subrequests that refer to the missing Contact are halted by the source")
}

func TestNothingAskedSendsNothing(t *testing.T) {
	e := newEnv(t)
	for _, q := range []salesforce.Query{
		{BSN: fixtures.BSNSuzanne},
		{BSN: fixtures.BSNSuzanne, UndomainedTasks: true},
		{BSN: fixtures.BSNSuzanne, Callbacks: true, Calls: true},
	} {
		p, err := e.client.Profile(context.Background(), q)
		require.NoError(t, err)
		assert.Empty(t, p.Cases)
		assert.Empty(t, p.Tasks)
	}
	assert.Zero(t, e.srv.Requests())
}

func TestCaseQueryIsSkippedWithoutDomains(t *testing.T) {
	e := newEnv(t)
	_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNCRMOnly, UndomainedTasks: true, Calls: true})
	require.NoError(t, err)
	assert.Zero(t, e.rec.count(func(ex exchange) bool { return strings.Contains(ex.soql, "FROM Case") }))
}

func TestPagesAreFollowed(t *testing.T) {
	e := newEnv(t) // BatchSize 2
	p, err := e.client.Profile(context.Background(), salesforce.Query{
		BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA, fixtures.SOCZA}, Callbacks: true, Calls: true,
	})
	require.NoError(t, err)
	assert.Len(t, p.Tasks, 4)
	more := e.rec.count(func(ex exchange) bool { return strings.HasPrefix(ex.path, "/services/data/v60.0/query/01g") })
	assert.Equal(t, 1, more, "the four tasks come in two pages")
}

func TestTokenIsReused(t *testing.T) {
	e := newEnv(t)
	for _, bsn := range []string{fixtures.BSNSuzanne, fixtures.BSNOverdue, fixtures.BSNKCC, fixtures.BSNUnknown} {
		_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: bsn, CaseDomains: []string{fixtures.BURZA, fixtures.KCC}, Callbacks: true})
		require.NoError(t, err)
	}
	assert.Equal(t, 1, e.rec.count(isToken))
}

func TestExpiredSessionIsRefreshedOnce(t *testing.T) {
	e := newEnv(t)
	q := salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, Callbacks: true}
	_, err := e.client.Profile(context.Background(), q)
	require.NoError(t, err)
	e.fake.ExpireSessions()
	p, err := e.client.Profile(context.Background(), q)
	require.NoError(t, err)
	assert.Equal(t, []string{"5000900000SuZa1AAB"}, caseIDs(p))
	assert.Equal(t, 2, e.rec.count(isToken))
	assert.Equal(t, 1, e.rec.count(func(ex exchange) bool { return ex.status == http.StatusUnauthorized }))
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	e := newEnv(t)
	q := salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true, Calls: true}
	_, err := e.client.Profile(context.Background(), q)
	require.NoError(t, err)
	e.fake.ExpireSessions()
	// A slow token endpoint keeps the refresh in flight while every caller
	// finds its session gone.
	e.rec.setBefore(func(r *http.Request) {
		if r.URL.Path == tokenPath {
			time.Sleep(50 * time.Millisecond)
		}
	})
	const callers = 16
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			_, errs[i] = e.client.Profile(context.Background(), q)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 2, e.rec.count(isToken), "one token at the start, one refresh for all callers")
}

func TestConcurrentFirstCallersShareOneToken(t *testing.T) {
	e := newEnv(t)
	e.rec.setBefore(func(r *http.Request) {
		if r.URL.Path == tokenPath {
			time.Sleep(50 * time.Millisecond)
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNKCC, CaseDomains: []string{fixtures.KCC}})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 1, e.rec.count(isToken))
}

func TestInvalidQueryIsRefusedBeforeAnyRequest(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		q    salesforce.Query
	}{
		{"SOQL injection in the BSN", salesforce.Query{BSN: "999993653' OR BSN__c != '", CaseDomains: []string{"BURZA"}}},
		{"injection that keeps nine digits", salesforce.Query{BSN: "99999365'", CaseDomains: []string{"BURZA"}}},
		{"escaped quote", salesforce.Query{BSN: `99999365\`, CaseDomains: []string{"BURZA"}}},
		{"newline", salesforce.Query{BSN: "999993653\n", CaseDomains: []string{"BURZA"}}},
		{"empty BSN", salesforce.Query{CaseDomains: []string{"BURZA"}}},
		{"eight digits", salesforce.Query{BSN: "99999365", CaseDomains: []string{"BURZA"}}},
		{"ten digits", salesforce.Query{BSN: "9999936530", CaseDomains: []string{"BURZA"}}},
		{"non-ASCII digits", salesforce.Query{BSN: "٩٩٩٩٩٣٦٥٣", CaseDomains: []string{"BURZA"}}},
		{"bad BSN even when nothing is asked", salesforce.Query{BSN: "x"}},
		{"SOQL injection in a domain", salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{"BURZA') OR (Domein__c != '"}}},
		{"lower-case domain", salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{"burza"}}},
		{"empty domain", salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{""}}},
		{"domain too long", salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{"A12345678901234567890"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.Profile(context.Background(), tt.q)
			require.ErrorIs(t, err, salesforce.ErrInvalidQuery)
			assert.NotContains(t, err.Error(), "99999365")
		})
	}
	assert.Zero(t, e.srv.Requests())
}

func TestRequestLimit(t *testing.T) {
	e := newEnv(t, func(o *sffake.Options, _ *salesforce.Config) { o.DailyLimit = 2 })
	q := salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true, Calls: true}
	for range 2 {
		_, err := e.client.Profile(context.Background(), q)
		require.NoError(t, err, "a profile spends one API request")
	}
	_, err := e.client.Profile(context.Background(), q)
	require.ErrorIs(t, err, salesforce.ErrRequestLimit)
	assert.ErrorIs(t, err, upstream.ErrUnavailable)
	assert.NotErrorIs(t, err, upstream.ErrRejected)
	apiErr, ok := errors.AsType[*salesforce.APIError](err)
	require.True(t, ok)
	assert.Equal(t, http.StatusForbidden, apiErr.Status)
	assert.Equal(t, "REQUEST_LIMIT_EXCEEDED", apiErr.Code)
	assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
}

func TestSourceFailures(t *testing.T) {
	tests := []struct {
		name   string
		fail   func(*env)
		want   error
		extra  func(*testing.T, *env, int64)
		logged bool // by package upstream; a bad body is the caller's to log
	}{
		{"5xx is unavailable, after retries", func(e *env) { e.srv.SetFault(fixtures.Fault{Status: http.StatusInternalServerError}) }, upstream.ErrUnavailable,
			func(t *testing.T, e *env, before int64) {
				assert.Equal(t, int64(3), e.srv.Requests()-before, "first attempt and two retries")
			}, true},
		{"slow is a timeout", func(e *env) { e.srv.SetFault(fixtures.Fault{Delay: 5 * time.Second}) }, upstream.ErrTimeout, nil, true},
		{"garbage is a bad response", func(e *env) { e.srv.SetFault(fixtures.Fault{Garbage: true}) }, upstream.ErrBadResponse, nil, false},
		{"dropped connection is unavailable", func(e *env) { e.srv.SetFault(fixtures.Fault{Drop: true}) }, upstream.ErrUnavailable, nil, true},
		{"closed is unavailable", func(e *env) { require.NoError(t, e.srv.Close()) }, upstream.ErrUnavailable, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(_ *sffake.Options, c *salesforce.Config) { c.HTTP.Timeout = 300 * time.Millisecond })
			q := salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, Callbacks: true}
			_, err := e.client.Profile(context.Background(), q) // signed in before the failure
			require.NoError(t, err)
			before := e.srv.Requests()
			tt.fail(e)
			_, err = e.client.Profile(context.Background(), q)
			require.ErrorIs(t, err, tt.want)
			assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
			assert.NotContains(t, e.logs.String(), fixtures.BSNSuzanne)
			if tt.logged {
				assert.NotEmpty(t, e.logs.String(), "failures are logged")
			}
			if tt.extra != nil {
				tt.extra(t, e, before)
			}
		})
	}
}

func TestFailureBeforeSignIn(t *testing.T) {
	e := newEnv(t)
	e.srv.SetFault(fixtures.Fault{Garbage: true})
	_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}})
	require.ErrorIs(t, err, upstream.ErrBadResponse)
	e.srv.SetFault(fixtures.Fault{})
	_, err = e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}})
	require.NoError(t, err, "a failed sign-in is not cached")
}

func TestCallerDeadlineWhileWaitingForToken(t *testing.T) {
	e := newEnv(t)
	e.srv.SetFault(fixtures.Fault{Delay: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.client.Profile(ctx, salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}})
	require.ErrorIs(t, err, upstream.ErrTimeout)
}

func TestNextRecordsURLOutsideTheSource(t *testing.T) {
	evil, err := fixtures.Start("evil", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"totalSize":0,"done":true,"records":[]}`))
	}), "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = evil.Close() })

	for _, next := range []string{
		evil.URL() + "/services/data/v60.0/query/01gAAAAAAAAAAAAAAA-2",
		"//" + strings.TrimPrefix(evil.URL(), "http://") + "/services/data/v60.0/query/01gAAAAAAAAAAAAAAA-2",
		"https://" + strings.TrimPrefix(evil.URL(), "http://") + "/services/data/v60.0/query/01gAAAAAAAAAAAAAAA-2",
		"http://user@" + strings.TrimPrefix(evil.URL(), "http://") + "/services/data/v60.0/query/01gAAAAAAAAAAAAAAA-2",
		"services/data/v60.0/query/01gAAAAAAAAAAAAAAA-2",
	} {
		t.Run(next, func(t *testing.T) {
			e := newEnv(t)
			e.rec.setRewrite(func(ex *exchange) {
				if strings.Contains(ex.soql, "FROM Case") {
					ex.body = `{"totalSize":3,"done":false,"nextRecordsUrl":` + jsonString(next) + `,"records":[]}`
				}
			})
			_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}})
			require.ErrorIs(t, err, upstream.ErrForeignLink)
			assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
		})
	}
	assert.Zero(t, evil.Requests())
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestAnswersThatBreakTheQueryAreBadResponses(t *testing.T) {
	tests := []struct {
		name    string
		rewrite func(*exchange)
		want    error
	}{
		{"two Contacts with the BSN", func(ex *exchange) {
			if strings.Contains(ex.soql, "FROM Contact") {
				ex.body = `{"totalSize":2,"done":true,"records":[{"Id":"0030900000SuZaNAAV"},{"Id":"0030900000XxXxXAAV"}]}`
			}
		}, salesforce.ErrAmbiguousContact},
		{"Contact id that is not an id", func(ex *exchange) {
			if strings.Contains(ex.soql, "FROM Contact") {
				ex.body = `{"totalSize":1,"done":true,"records":[{"Id":"003' OR Id != '"}]}`
			}
		}, upstream.ErrBadResponse},
		{"a case of a domain not asked for", func(ex *exchange) {
			if strings.Contains(ex.soql, "FROM Case") {
				ex.body = strings.ReplaceAll(ex.body, `"BURZA"`, `"SOCZA"`)
			}
		}, upstream.ErrBadResponse},
		{"a task about a case not asked for", func(ex *exchange) {
			if strings.Contains(ex.soql, "FROM Task") {
				ex.body = strings.ReplaceAll(ex.body, `"WhatId":"5000900000SuZa1AAB"`, `"WhatId":"5000900000SuZa2AAB"`)
			}
		}, upstream.ErrBadResponse},
		{"a subtype not asked for", func(ex *exchange) {
			if strings.Contains(ex.soql, "FROM Task") {
				ex.body = strings.ReplaceAll(ex.body, `"TaskSubtype":"Task"`, `"TaskSubtype":"Call"`)
			}
		}, upstream.ErrBadResponse},
		{"not done and no next page", func(ex *exchange) {
			if strings.Contains(ex.soql, "FROM Case") {
				ex.body = `{"totalSize":3,"done":false,"records":[]}`
			}
		}, upstream.ErrBadResponse},
		{"wrong JSON shape", func(ex *exchange) {
			if strings.Contains(ex.soql, "FROM Case") {
				ex.body = `{"totalSize":"many","done":true,"records":{}}`
			}
		}, upstream.ErrBadResponse},
		{"token answer without a token", func(ex *exchange) {
			if ex.path == tokenPath {
				ex.body = `{"token_type":"Bearer"}`
			}
		}, upstream.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.rec.setRewrite(tt.rewrite)
			_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, Callbacks: true})
			require.ErrorIs(t, err, tt.want)
			assert.ErrorIs(t, err, upstream.ErrBadResponse)
			assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
		})
	}
}

func TestErrorArrayIsParsedWithoutTheBSN(t *testing.T) {
	e := newEnv(t)
	e.rec.setRewrite(func(ex *exchange) {
		if strings.Contains(ex.soql, "FROM Contact") {
			ex.status = http.StatusBadRequest
			ex.body = `[{"message":"\nSELECT Id FROM Contact WHERE BSN__c = '999993653' LIMIT 2\n                                ^\nERROR at Row:1:Column:33\nNo such column 'BSN__c' on entity 'Contact'. Also seen: 999990020.","errorCode":"INVALID_FIELD","fields":["BSN__c"]}]`
		}
	})
	_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}})
	require.ErrorIs(t, err, upstream.ErrRejected)
	assert.NotErrorIs(t, err, salesforce.ErrRequestLimit)
	apiErr, ok := errors.AsType[*salesforce.APIError](err)
	require.True(t, ok)
	assert.Equal(t, http.StatusBadRequest, apiErr.Status)
	assert.Equal(t, "INVALID_FIELD", apiErr.Code)
	assert.Equal(t, []string{"BSN__c"}, apiErr.Fields)
	assert.Equal(t, "No such column 'BSN__c' on entity 'Contact'. Also seen: [BSN].", apiErr.Message)
	assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
	assert.NotContains(t, err.Error(), fixtures.BSNFamily)
	assert.NotContains(t, e.logs.String(), fixtures.BSNSuzanne)
}

func TestSignInRefused(t *testing.T) {
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tests := []struct {
		name     string
		opt      option
		wantCode string
	}{
		{"unknown consumer key", func(_ *sffake.Options, c *salesforce.Config) { c.ConsumerKey = "someone-else" }, "invalid_client"},
		{"other user", func(_ *sffake.Options, c *salesforce.Config) { c.Username = "admin@gemeente.example" }, "invalid_grant"},
		{"key of another certificate", func(_ *sffake.Options, c *salesforce.Config) { c.PrivateKey = other }, "invalid_grant"},
		{"clock far behind", func(_ *sffake.Options, c *salesforce.Config) {
			c.Now = func() time.Time { return testNow.Add(-time.Hour) }
		}, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opt)
			_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}})
			require.Error(t, err)
			assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
			require.ErrorIs(t, err, upstream.ErrRejected)
			apiErr, ok := errors.AsType[*salesforce.APIError](err)
			require.True(t, ok)
			assert.Equal(t, tt.wantCode, apiErr.Code)
			assert.Zero(t, e.rec.count(func(ex exchange) bool { return ex.soql != "" }), "no query without a token")
		})
	}
}

func TestAudienceIsTheLoginURL(t *testing.T) {
	// The org answers on its own origin and on login.salesforce.com; a
	// client whose LoginURL is the org's origin signs in (the other tests),
	// and the assertion carries exactly that URL as a plain string.
	e := newEnv(t)
	var assertion atomic.Pointer[string]
	e.rec.setBefore(func(r *http.Request) {
		if r.URL.Path == tokenPath {
			_ = r.ParseForm()
			a := r.PostForm.Get("assertion")
			assertion.Store(&a)
		}
	})
	_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}})
	require.NoError(t, err)
	require.NotNil(t, assertion.Load())
	parts := strings.Split(*assertion.Load(), ".")
	require.Len(t, parts, 3)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(mustB64(t, parts[1]), &claims))
	assert.Equal(t, e.srv.URL(), claims["aud"])
	assert.Equal(t, consumerKey, claims["iss"])
	assert.Equal(t, username, claims["sub"])
	assert.Equal(t, float64(testNow.Add(3*time.Minute).Unix()), claims["exp"])
	var header map[string]any
	require.NoError(t, json.Unmarshal(mustB64(t, parts[0]), &header))
	assert.Equal(t, "RS256", header["alg"])
}

func TestNewRejectsBadConfig(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	good := func() salesforce.Config {
		return salesforce.Config{
			URL: "https://gemeente.my.salesforce.com", LoginURL: "https://login.salesforce.com",
			ConsumerKey: consumerKey, Username: username, PrivateKey: key(t),
		}
	}
	_, err = salesforce.New(good())
	require.NoError(t, err)
	tests := []struct {
		name   string
		change func(*salesforce.Config)
		want   string
	}{
		{"no URL", func(c *salesforce.Config) { c.URL = "" }, "salesforce: Config.URL: "},
		{"URL with a query", func(c *salesforce.Config) { c.URL = "https://x.my.salesforce.com?a=b" }, "salesforce: Config.URL: "},
		{"no login URL", func(c *salesforce.Config) { c.LoginURL = "" }, "salesforce: Config.LoginURL: "},
		{"no consumer key", func(c *salesforce.Config) { c.ConsumerKey = "" }, "salesforce: Config.ConsumerKey is empty"},
		{"no username", func(c *salesforce.Config) { c.Username = "" }, "salesforce: Config.Username is empty"},
		{"no key", func(c *salesforce.Config) { c.PrivateKey = nil }, "salesforce: Config.PrivateKey is nil"},
		{"EC key", func(c *salesforce.Config) { c.PrivateKey = ec }, "salesforce: Config.PrivateKey: want an RSA key"},
		{"small RSA key", func(c *salesforce.Config) { c.PrivateKey = small }, "salesforce: Config.PrivateKey: RSA key of 1024 bits"},
		{"bad API version", func(c *salesforce.Config) { c.APIVersion = "60" }, "salesforce: Config.APIVersion "},
		{"API version with a path", func(c *salesforce.Config) { c.APIVersion = "v60.0/../x" }, "salesforce: Config.APIVersion "},
	}
	for _, tt := range tests {
		t.Run(tt.name+" names the Go field", func(t *testing.T) {
			c := good()
			tt.change(&c)
			_, err := salesforce.New(c)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "got %q", err)
			for _, yamlKey := range []string{"url:", "login_url", "consumer_key", "username", "private_key", "api_version"} {
				assert.NotContains(t, err.Error(), yamlKey, "the config file's key is cmd's to add")
			}
		})
	}
}

func TestParsePrivateKey(t *testing.T) {
	k := key(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ec)
	require.NoError(t, err)
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }

	for name, in := range map[string][]byte{
		"PKCS#1": enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k)),
		"PKCS#8": enc("PRIVATE KEY", pkcs8),
	} {
		t.Run(name+" is read", func(t *testing.T) {
			got, err := salesforce.ParsePrivateKey(in)
			require.NoError(t, err)
			assert.True(t, k.Equal(got))
		})
	}
	for name, in := range map[string][]byte{
		"not PEM":          []byte("-----BEGIN nothing"),
		"EC in PKCS#8":     enc("PRIVATE KEY", ecPKCS8),
		"broken PKCS#1":    enc("RSA PRIVATE KEY", []byte("nope")),
		"broken PKCS#8":    enc("PRIVATE KEY", []byte("nope")),
		"encrypted":        enc("ENCRYPTED PRIVATE KEY", []byte("nope")),
		"a certificate":    enc("CERTIFICATE", []byte("nope")),
		"empty":            nil,
		"public key alone": enc("PUBLIC KEY", []byte("nope")),
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			_, err := salesforce.ParsePrivateKey(in)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "nope")
		})
	}
}

func TestManyCasesKeepOneTaskQuery(t *testing.T) {
	e := newEnv(t, func(o *sffake.Options, _ *salesforce.Config) { o.BatchSize = 500 })
	e.rec.setRewrite(func(ex *exchange) {
		if !strings.HasPrefix(ex.soql, "SELECT Id, CaseNumber") {
			return
		}
		var recs []string
		for i := range 500 {
			recs = append(recs, fmt.Sprintf(`{"Id":"500090000%06dAAB","Domein__c":"BURZA","CreatedDate":"2026-01-01T09:00:00.000+0000"}`, i))
		}
		recs = append(recs, `{"Id":"5000900000SuZa1AAB","Domein__c":"BURZA","CreatedDate":"2026-11-14T09:00:00.000+0000"}`)
		ex.body = `{"totalSize":501,"done":true,"records":[` + strings.Join(recs, ",") + `]}`
	})
	p, err := e.client.Profile(context.Background(), salesforce.Query{
		BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true, Calls: true,
	})
	require.NoError(t, err)
	assert.Len(t, p.Cases, 501)
	assert.Equal(t, []string{"00T0900000SuZa1AAB", "00T0900000SuZa3AAB"}, taskIDs(p))
	assert.Equal(t, 1, e.rec.count(isDataRequest), "however many cases, the tasks come with the same request")
}

func TestCompositeRequestShape(t *testing.T) {
	e := newEnv(t)
	var body atomic.Pointer[[]byte]
	e.rec.setBefore(func(r *http.Request) {
		if r.URL.Path == compositePath {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			body.Store(&b)
			assert.Equal(t, http.MethodPost, r.Method)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		}
	})
	_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, Callbacks: true})
	require.NoError(t, err)
	require.NotNil(t, body.Load())
	var req struct {
		AllOrNone        *bool `json:"allOrNone"`
		CompositeRequest []struct {
			Method, URL, ReferenceID string
		} `json:"compositeRequest"`
	}
	require.NoError(t, json.Unmarshal(*body.Load(), &req))
	require.NotNil(t, req.AllOrNone)
	assert.False(t, *req.AllOrNone, "one failed query does not roll back reads")
	require.Len(t, req.CompositeRequest, 3)
	var refs []string
	for i, sr := range req.CompositeRequest {
		refs = append(refs, sr.ReferenceID)
		assert.Equal(t, http.MethodGet, sr.Method)
		assert.True(t, strings.HasPrefix(sr.URL, "/services/data/v60.0/query?q=SELECT+"), sr.URL)
		if i > 0 {
			assert.Contains(t, sr.URL, "%27@{contact.records[0].Id}%27", "the reference is sent as written, inside the quotes")
		}
	}
	assert.Equal(t, []string{"contact", "cases", "tasks"}, refs)
}

func TestSubrequestErrorsMapAsRequestErrors(t *testing.T) {
	tests := []struct {
		name     string
		match    string // the subrequest whose answer is replaced
		status   int
		body     string
		want     error
		wantCode string
	}{
		{"a rejected case query", "SELECT Id, CaseNumber", http.StatusBadRequest,
			`[{"message":"\nSELECT Id FROM Case WHERE BSN__c = '999993653'\n^\nERROR at Row:1:Column:1\nNo such column","errorCode":"INVALID_FIELD"}]`, upstream.ErrRejected, "INVALID_FIELD"},
		{"a failing task query", "FROM Task", http.StatusInternalServerError,
			`[{"message":"An unexpected error occurred.","errorCode":"UNKNOWN_EXCEPTION"}]`, upstream.ErrUnavailable, "UNKNOWN_EXCEPTION"},
		{"a halted task query though the Contact was found", "FROM Task", http.StatusBadRequest,
			`[{"message":"Invalid reference specified.","errorCode":"PROCESSING_HALTED"}]`, upstream.ErrRejected, "PROCESSING_HALTED"},
		{"the request limit inside", "SELECT Id, CaseNumber", http.StatusForbidden,
			`[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, salesforce.ErrRequestLimit, "REQUEST_LIMIT_EXCEEDED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.rec.setRewrite(func(ex *exchange) {
				if ex.sub && strings.Contains(ex.soql, tt.match) {
					ex.status, ex.body = tt.status, tt.body
				}
			})
			_, err := e.client.Profile(context.Background(), salesforce.Query{BSN: fixtures.BSNSuzanne, CaseDomains: []string{fixtures.BURZA}, Callbacks: true})
			require.ErrorIs(t, err, tt.want)
			apiErr, ok := errors.AsType[*salesforce.APIError](err)
			require.True(t, ok)
			assert.Equal(t, tt.status, apiErr.Status)
			assert.Equal(t, tt.wantCode, apiErr.Code)
			assert.NotContains(t, err.Error(), fixtures.BSNSuzanne)
			assert.Equal(t, 1, e.rec.count(isDataRequest), "a subrequest's error is not retried on its own")
		})
	}
}

func TestCompositeAnswersThatDoNotFitAreBadResponses(t *testing.T) {
	tests := []struct {
		name    string
		rewrite func(*exchange)
	}{
		{"an answer without one subrequest", func(ex *exchange) {
			if isComposite(*ex) {
				var res struct {
					CompositeResponse []json.RawMessage `json:"compositeResponse"`
				}
				_ = json.Unmarshal([]byte(ex.body), &res)
				res.CompositeResponse = res.CompositeResponse[:len(res.CompositeResponse)-1]
				b, _ := json.Marshal(res)
				ex.body = string(b)
			}
		}},
		{"an answer with a subrequest twice", func(ex *exchange) {
			if isComposite(*ex) {
				ex.body = strings.Replace(ex.body, `"referenceId":"cases"`, `"referenceId":"contact"`, 1)
			}
		}},
		{"a task about a case among those about none", func(ex *exchange) {
			if ex.sub && strings.Contains(ex.soql, "WhatId = null") {
				ex.body = strings.Replace(ex.body, `"WhatId":null`, `"WhatId":"5000900000OvEr1AAB"`, 1)
			}
		}},
		{"a task about no case among those about cases", func(ex *exchange) {
			if ex.sub && strings.Contains(ex.soql, "WhatId IN (SELECT") {
				ex.body = strings.Replace(ex.body, `"WhatId":"5000900000OvEr1AAB"`, `"WhatId":null`, 1)
			}
		}},
		{"a subrequest status that is no status", func(ex *exchange) {
			if ex.sub && strings.Contains(ex.soql, "FROM Contact") {
				ex.status = 42
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.rec.setRewrite(tt.rewrite)
			_, err := e.client.Profile(context.Background(), salesforce.Query{
				BSN: fixtures.BSNOverdue, CaseDomains: []string{fixtures.BURZA}, UndomainedTasks: true, Callbacks: true, Calls: true,
			})
			require.ErrorIs(t, err, upstream.ErrBadResponse)
			assert.NotContains(t, err.Error(), fixtures.BSNOverdue)
		})
	}
}
