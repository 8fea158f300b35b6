package workflow_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/fixtures"
	kifake "github.com/klantbeeld/klantbeeld/fixtures/klantinteracties"
	sffake "github.com/klantbeeld/klantbeeld/fixtures/salesforce"
	"github.com/klantbeeld/klantbeeld/workflow"
)

const (
	kiToken     = "test-token"
	consumerKey = "klantbeeld-test"
	sfUser      = "integration@gemeente.example"
	// A Monday, so that working-time arithmetic is easy to follow.
	start = "2026-11-16T10:00:00Z"
)

// clock is the injected time of the workflow and both fakes.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// auditLog keeps appended events.
type auditLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditLog) Append(_ context.Context, ev audit.Event) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return int64(len(a.events)), nil
}

func (a *auditLog) Events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.events...)
}

// mailSink is an SMTP server on loopback that keeps what it receives.
type mailSink struct {
	mu   sync.Mutex
	msgs []sentMail
	addr string
}

type sentMail struct {
	From string
	To   []string
	Data string
}

func (s *mailSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s}, nil }

func (s *mailSink) Messages() []sentMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sentMail(nil), s.msgs...)
}

type sinkSession struct {
	sink *mailSink
	cur  sentMail
}

func (s *sinkSession) Reset()        { s.cur = sentMail{} }
func (s *sinkSession) Logout() error { return nil }
func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.From = from
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, s.cur)
	s.sink.mu.Unlock()
	return nil
}

func startMailSink(t *testing.T) *mailSink {
	t.Helper()
	sink := &mailSink{}
	srv := smtp.NewServer(sink)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sink.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink
}

var (
	keyOnce sync.Once
	appKey  *rsa.PrivateKey
)

func rsaKey() *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		appKey = k
	})
	return appKey
}

// env is both fake systems with their connectors, a mail sink, an audit
// log and a clock, shared by the workflows a test starts.
type env struct {
	clock *clock
	ki    *kifake.Fake
	sf    *sffake.Fake
	kiC   *klantinteracties.Client
	sfC   *salesforce.Client
	mail  *mailSink
	audit *auditLog
	// loseKI and loseSF are how many of the next POSTs to each system
	// are carried out but answered 502, as if the answer was lost.
	loseKI, loseSF atomic.Int32
}

// lossy serves next, but for a POST while *lose is positive throws the
// answer away and says 502.
func lossy(next http.Handler, lose *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !strings.Contains(r.URL.Path, "oauth2") && lose.Add(-1) >= 0 {
			next.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		lose.Store(max(lose.Load(), 0))
		next.ServeHTTP(w, r)
	})
}

func newEnv(t *testing.T) *env {
	t.Helper()
	at, err := time.Parse(time.RFC3339, start)
	require.NoError(t, err)
	e := &env{clock: &clock{now: at}, audit: &auditLog{}}
	e.ki = kifake.New(kifake.Options{Token: kiToken, Now: e.clock.Now})
	kiSrv := httptest.NewServer(lossy(e.ki, &e.loseKI))
	t.Cleanup(kiSrv.Close)
	e.sf = sffake.New(sffake.Options{ConsumerKey: consumerKey, Username: sfUser, PublicKey: rsaKey().Public(), Now: e.clock.Now})
	sfSrv := httptest.NewServer(lossy(e.sf, &e.loseSF))
	t.Cleanup(sfSrv.Close)
	fast := upstream.Config{Timeout: 2 * time.Second, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond,
		BreakerCooldown: 20 * time.Millisecond}
	e.kiC, err = klantinteracties.New(klantinteracties.Config{URL: kiSrv.URL + kifake.BasePath, Token: kiToken, HTTP: fast})
	require.NoError(t, err)
	e.sfC, err = salesforce.New(salesforce.Config{URL: sfSrv.URL, LoginURL: sfSrv.URL, ConsumerKey: consumerKey,
		Username: sfUser, PrivateKey: rsaKey(), HTTP: fast, Now: e.clock.Now})
	require.NoError(t, err)
	e.mail = startMailSink(t)
	return e
}

// Directory entries of the tests: two Burgerzaken employees, the
// department, and its queue as the backup.
var directory = workflow.StaticDirectory{
	Owners: map[string]string{
		"medewerker:jdevries":     fixtures.Owners[1].ID,
		"medewerker:kcc-anna":     fixtures.Owners[0].ID,
		"afdeling:burgerzaken":    sffake.Queues[0].ID,
		"groep:burgerzaken-queue": sffake.Queues[0].ID,
	},
	Emails: map[string]string{
		"medewerker:jdevries":     "j.devries@gemeente.example",
		"afdeling:burgerzaken":    "burgerzaken@gemeente.example",
		"groep:burgerzaken-queue": "coordinator.burgerzaken@gemeente.example",
	},
}

var backup = map[string]workflow.Assignee{
	"burgerzaken": {Kind: workflow.Groep, ID: "burgerzaken-queue", Name: "Coördinatie Burgerzaken", Department: "burgerzaken"},
}

func (e *env) config(t *testing.T) workflow.Config {
	return workflow.Config{
		Klantinteracties: e.kiC,
		Salesforce:       e.sfC,
		Directory:        directory,
		Audit:            e.audit,
		SMTP:             workflow.SMTPConfig{Addr: e.mail.addr, From: "klantbeeld@gemeente.example"},
		Backup:           backup,
		Now:              e.clock.Now,
		ScanInterval:     50 * time.Millisecond,
		PollInterval:     20 * time.Millisecond,
		RetryMin:         50 * time.Millisecond,
		RetryMax:         200 * time.Millisecond,
		WriteWait:        5 * time.Second,
	}
}

func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "workflow.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// start makes and starts a workflow on cfg, stopped when the test ends.
func startWorkflow(t *testing.T, cfg workflow.Config) *workflow.Workflow {
	t.Helper()
	ctx := context.Background()
	w, err := workflow.New(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Stop(ctx)
	})
	return w
}

// eventually polls cond every 10 ms up to 15 s (a bound for slow machines,
// not a measurement).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countMail(msgs []sentMail, to, contains string) int {
	n := 0
	for _, m := range msgs {
		if len(m.To) == 1 && m.To[0] == to && strings.Contains(m.Data, contains) {
			n++
		}
	}
	return n
}

// suzanne's wrap-up with a callback to jdevries of Burgerzaken about her
// BURZA zaak.
func suzanneWrapUp() workflow.WrapUp {
	res, _ := fixtures.ResidentByBSN(fixtures.BSNSuzanne)
	zaak := ""
	for _, z := range res.Zaken {
		zaak = z.UUID
		break
	}
	return workflow.WrapUp{
		BSN:          fixtures.BSNSuzanne,
		ResidentName: "Suzanne Moulin",
		Kanaal:       "telefoon",
		Onderwerp:    "Paspoort aanvragen",
		Inhoud:       "Vraagt naar de levertijd van haar paspoort.",
		Zaak:         zaak,
		Callback: &workflow.Callback{
			GevraagdeHandeling: "Bel mevrouw terug over de levertijd",
			Toegewezen:         workflow.Assignee{Kind: workflow.Medewerker, ID: "jdevries", Name: "J. de Vries", Department: "burgerzaken"},
		},
		Employee: workflow.Employee{Sub: "kcc-anna", Department: "kcc"},
	}
}

// The gateway's audit log is an Auditor.
var _ workflow.Auditor = (*audit.Log)(nil)
