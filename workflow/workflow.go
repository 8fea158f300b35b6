// Package workflow is the front office's write side: the wrap-up of a
// contact, written to Klantinteracties (klantcontact, betrokkene, the
// onderwerpobject of its zaak and, for a callback, an interne taak assigned
// to an afdeling, groep or medewerker) and to Salesforce (a Task), and the
// callbacks that follow from it: searched per owner across both systems,
// reminded at their term and escalated to a backup after the last reminder.
//
// Durability and exactly-once: a wrap-up is a row and two River jobs (one
// per system) committed in one transaction, in the database River runs on
// (SQLite with riversqlite for the embedded default, PostgreSQL with
// riverpgxv5), so a write whose system is down is retried until it
// succeeds. The idempotency key (per caller) is unique in that table: a
// repeated WrapUp returns the first wrap-up's result and writes nothing.
// Each write step stores the id it produced before the next step, and
// looks before it creates (a klantcontact by its referentienummer, the
// others by their klantcontact, the Salesforce Task by Klantbeeld_Key__c),
// so a retry after a lost answer does not write twice.
//
// Reminders: a periodic River job (run by the elected leader only) finds
// callbacks past their term and inserts one step job per callback and step,
// unique by its arguments; the step job checks the callback's state, sends
// the e-mail, updates Salesforce, records an audit event and only then
// advances the state. Two gateways on one PostgreSQL database therefore send
// each reminder once. Time comes from Config.Now, so tests run the cycle.
//
// The package has no HTTP server; no BSN is logged or put in a job's
// arguments (it stays in the wrap-up row until both systems are written,
// and is then removed).
package workflow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
)

// Defaults for zero Config fields.
const (
	DefaultTerm                      = 48 * time.Hour
	DefaultRemindersBeforeEscalation = 3
	DefaultScanInterval              = time.Minute
	DefaultPollInterval              = time.Second
	DefaultRetryMin                  = 5 * time.Second
	DefaultRetryMax                  = 10 * time.Minute
	DefaultWriteWait                 = 5 * time.Second
	// MaxAttempts of a write job: with DefaultRetryMax between attempts
	// about a week of retrying before River discards the job.
	MaxAttempts = 1000
)

// Kinds of Assignee.
const (
	Afdeling   = klantinteracties.ActorAfdeling
	Groep      = klantinteracties.ActorGroep
	Medewerker = klantinteracties.ActorMedewerker
)

// Assignee is who owns a callback: an afdeling, a groep or a medewerker.
type Assignee struct {
	Kind string `json:"kind"` // Afdeling, Groep or Medewerker
	ID   string `json:"id"`   // afdeling or groep code, medewerker's user name (token sub)
	Name string `json:"name,omitempty"`
	// Department is the afdeling the assignee belongs to (for an afdeling
	// its own ID when empty); it chooses the backup (Config.Backup).
	Department string `json:"department,omitempty"`
}

func (a Assignee) key() string { return a.Kind + ":" + a.ID }

func (a Assignee) department() string {
	if a.Department == "" && a.Kind == Afdeling {
		return a.ID
	}
	return a.Department
}

func (a Assignee) actor() klantinteracties.Actor {
	return klantinteracties.Actor{Kind: a.Kind, ID: a.ID, Naam: a.Name}
}

// Directory maps assignees to their Salesforce owner and their e-mail
// address. StaticDirectory is a map-based one.
type Directory interface {
	// SalesforceOwner is the Id of the User or queue that owns a's
	// callbacks in Salesforce.
	SalesforceOwner(a Assignee) (string, error)
	// Email is where a's reminders go.
	Email(a Assignee) (string, error)
}

// StaticDirectory is a Directory from configuration, keyed by
// "kind:id" (e.g. "afdeling:burgerzaken", "medewerker:jdevries").
type StaticDirectory struct {
	Owners map[string]string
	Emails map[string]string
}

// ErrUnknownAssignee: the directory has no entry for an assignee.
var ErrUnknownAssignee = errors.New("workflow: assignee not in the directory")

func (d StaticDirectory) SalesforceOwner(a Assignee) (string, error) {
	if id, ok := d.Owners[a.key()]; ok {
		return id, nil
	}
	return "", fmt.Errorf("%w: no Salesforce owner for %s", ErrUnknownAssignee, a.key())
}

func (d StaticDirectory) Email(a Assignee) (string, error) {
	if e, ok := d.Emails[a.key()]; ok {
		return e, nil
	}
	return "", fmt.Errorf("%w: no e-mail address for %s", ErrUnknownAssignee, a.key())
}

// Auditor records audit events; *audit.Log is one.
type Auditor interface {
	Append(ctx context.Context, ev audit.Event) (int64, error)
}

// Config configures a Workflow. Exactly one of DB and Pool is set.
type Config struct {
	// DB is an SQLite database (modernc.org/sqlite). Open it with
	// _pragma=busy_timeout(5000) and SetMaxOpenConns(1), as riversqlite
	// advises.
	DB *sql.DB
	// Pool is a PostgreSQL pool; Schema, when set, holds River's and the
	// workflow's tables (it must exist).
	Pool   *pgxpool.Pool
	Schema string

	Klantinteracties *klantinteracties.Client
	Salesforce       *salesforce.Client
	Directory        Directory
	// Audit records every reminder and reassignment; required.
	Audit Auditor
	// Pseudonyms, when set, gives audit events the resident's pseudonym
	// as Subject (computed at wrap-up; the BSN is not kept for it).
	Pseudonyms *audit.Pseudonymizer

	// Mailer sends the reminders; nil means SMTP over SMTP.Addr.
	Mailer Mailer
	SMTP   SMTPConfig

	// Term is the working time a callback has before its first reminder,
	// and between reminders; 0 means DefaultTerm. Calendar decides what
	// counts as working time; zero means DutchCalendar().
	Term     time.Duration
	Calendar Calendar
	// RemindersBeforeEscalation; 0 means 3.
	RemindersBeforeEscalation int
	// Backup is who takes over a callback after the last reminder, by
	// the assignee's department (Assignee.Department, an afdeling's ID).
	Backup map[string]Assignee

	// Now is the workflow's clock (due dates, reminders); nil: time.Now.
	Now func() time.Time
	// ScanInterval is how often callbacks are checked for their term.
	ScanInterval time.Duration
	// PollInterval is how often River looks for new jobs (SQLite has no
	// notifications; PostgreSQL uses LISTEN too).
	PollInterval time.Duration
	// RetryMin and RetryMax bound the exponential wait between attempts
	// of a failed write.
	RetryMin, RetryMax time.Duration
	// WriteWait is how long WrapUp waits for the first attempt of each
	// write before it answers with what is still pending.
	WriteWait time.Duration
	// Workers is how many jobs run at once; 0 means 4.
	Workers int
	Logger  *slog.Logger
}

// SMTPConfig is the mail server reminders go through.
type SMTPConfig struct {
	Addr     string // host:port
	From     string
	Username string // PLAIN auth when set (only over TLS or to localhost)
	Password string
	Timeout  time.Duration // 0: 10s
}

// Workflow runs wrap-ups and callbacks. It is safe for concurrent use.
type Workflow struct {
	cfg    Config
	db     backend
	mailer Mailer
	log    *slog.Logger
}

// Errors of the package.
var (
	// ErrInvalid: the wrap-up or search failed validation (a *ValidationError).
	ErrInvalid = errors.New("workflow: invalid request")
	// ErrKeyReused: the idempotency key was used for another wrap-up.
	ErrKeyReused = errors.New("workflow: idempotency key used for a different wrap-up")
)

// ValidationError names the field at fault; it matches ErrInvalid.
type ValidationError struct {
	Field, Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("workflow: invalid request: %s: %s", e.Field, e.Reason)
}

func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }

// New checks cfg, migrates the database (River's tables and the
// workflow's) and returns a Workflow that does not run jobs until Start.
// Its errors name the Config field at fault.
func New(ctx context.Context, cfg Config) (*Workflow, error) {
	switch {
	case (cfg.DB == nil) == (cfg.Pool == nil):
		return nil, errors.New("workflow: Config: set exactly one of DB (SQLite) and Pool (PostgreSQL)")
	case cfg.DB != nil && cfg.Schema != "":
		return nil, errors.New("workflow: Config.Schema is for PostgreSQL only")
	case cfg.Klantinteracties == nil:
		return nil, errors.New("workflow: Config.Klantinteracties is nil")
	case cfg.Salesforce == nil:
		return nil, errors.New("workflow: Config.Salesforce is nil")
	case cfg.Directory == nil:
		return nil, errors.New("workflow: Config.Directory is nil")
	case cfg.Audit == nil:
		return nil, errors.New("workflow: Config.Audit is nil")
	case cfg.Mailer == nil && cfg.SMTP.Addr == "":
		return nil, errors.New("workflow: Config.SMTP.Addr is empty (or set Config.Mailer)")
	case cfg.Mailer == nil && cfg.SMTP.From == "":
		return nil, errors.New("workflow: Config.SMTP.From is empty")
	case cfg.Term < 0, cfg.RemindersBeforeEscalation < 0, cfg.ScanInterval < 0, cfg.PollInterval < 0,
		cfg.RetryMin < 0, cfg.RetryMax < 0, cfg.WriteWait < 0, cfg.Workers < 0:
		return nil, errors.New("workflow: Config: durations and counts must not be negative")
	}
	for dep, b := range cfg.Backup {
		if err := checkAssignee(b); err != nil {
			return nil, fmt.Errorf("workflow: Config.Backup[%q]: %w", dep, err)
		}
	}
	if cfg.Term == 0 {
		cfg.Term = DefaultTerm
	}
	if cfg.Calendar.Location == nil {
		cfg.Calendar = DutchCalendar()
	}
	if cfg.RemindersBeforeEscalation == 0 {
		cfg.RemindersBeforeEscalation = DefaultRemindersBeforeEscalation
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	if cfg.WriteWait == 0 {
		cfg.WriteWait = DefaultWriteWait
	}
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Workflow{cfg: cfg, log: log, mailer: cfg.Mailer}
	if w.mailer == nil {
		w.mailer = &SMTPMailer{Config: cfg.SMTP}
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, &kiWorker{w: w})
	river.AddWorker(workers, &sfWorker{w: w})
	river.AddWorker(workers, &scanWorker{w: w})
	river.AddWorker(workers, &stepWorker{w: w})
	rc := &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers:           workers,
		FetchPollInterval: cfg.PollInterval,
		FetchCooldown:     min(cfg.PollInterval, river.FetchCooldownDefault),
		RetryPolicy:       retryPolicy{min: cfg.RetryMin, max: cfg.RetryMax},
		MaxAttempts:       MaxAttempts,
		Logger:            log,
		Schema:            cfg.Schema,
		JobTimeout:        2 * time.Minute,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(cfg.ScanInterval),
			func() (river.JobArgs, *river.InsertOpts) { return scanArgs{}, nil },
			&river.PeriodicJobOpts{ID: "klantbeeld_callback_scan", RunOnStart: true},
		)},
	}
	var err error
	if cfg.DB != nil {
		w.db, err = newSQLite(ctx, cfg.DB, rc)
	} else {
		w.db, err = newPostgres(ctx, cfg.Pool, rc)
	}
	if err != nil {
		return nil, fmt.Errorf("workflow: %w", err)
	}
	return w, nil
}

// Start runs the job workers (writes, the scan for callbacks past their
// term, reminders and escalations) until Stop. Wrap-ups made before Start
// are durable and are written once it runs.
func (w *Workflow) Start(ctx context.Context) error {
	return w.db.start(ctx)
}

// Stop waits for running jobs to finish (or ctx to end) and stops.
func (w *Workflow) Stop(ctx context.Context) error {
	return w.db.stop(ctx)
}

// retryPolicy waits exponentially from min to max between attempts.
type retryPolicy struct{ min, max time.Duration }

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	wait := p.min
	for i := 1; i < job.Attempt && wait < p.max; i++ {
		wait *= 2
	}
	return time.Now().Add(min(wait, p.max))
}

// timeFormat stores times in one width, so that TEXT comparison is time order.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func checkAssignee(a Assignee) error {
	switch a.Kind {
	case Afdeling, Groep, Medewerker:
	default:
		return errors.New("kind must be afdeling, groep or medewerker")
	}
	if strings.TrimSpace(a.ID) == "" || len(a.ID) > 200 {
		return errors.New("id must be 1 to 200 characters")
	}
	return nil
}
