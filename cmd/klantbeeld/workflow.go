package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/sqlite"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/workflow"
)

// CallbacksConfig: the wrap-ups and the callbacks that follow from them,
// run as River jobs in the audit database (PostgreSQL: schema Schema of
// the same database; SQLite: a file of its own beside the audit log).
// Wrap-ups need both Klantinteracties and Salesforce configured.
type CallbacksConfig struct {
	// Term is the callback term in working hours (weekends and Dutch
	// public holidays skipped); 0: 48h.
	Term Duration `yaml:"term"`
	// RemindersBeforeEscalation; 0: 3.
	RemindersBeforeEscalation int `yaml:"reminders_before_escalation"`
	// Backup is per department who gets its callbacks after the last
	// reminder: "groep:id", "afdeling:id" or "medewerker:id" (a bare id is
	// a groep, e.g. the department's queue).
	Backup map[string]string `yaml:"backup"`
	// Directory is per assignee ("afdeling:burgerzaken",
	// "medewerker:jdevries") its Salesforce owner Id and e-mail address.
	Directory map[string]DirectoryEntry `yaml:"directory"`
	SMTP      SMTPConfig                `yaml:"smtp"`
	// Schema is the PostgreSQL schema of the jobs; "": klantbeeld_workflow.
	Schema string `yaml:"schema"`
	// ScanInterval is how often callbacks past their term are looked for; 0: 1m.
	ScanInterval Duration `yaml:"scan_interval"`
}

// DirectoryEntry is one assignee of callbacks.
type DirectoryEntry struct {
	SalesforceOwner string `yaml:"salesforce_owner"`
	Email           string `yaml:"email"`
}

// SMTPConfig is where reminders are mailed; without Addr they are logged.
type SMTPConfig struct {
	Addr         string `yaml:"addr"`
	From         string `yaml:"from"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

func (c CallbacksConfig) validate(bad func(string, string, ...any)) {
	switch {
	case c.Term.invalid != "":
		bad("callbacks.term", "%q is not a duration like 48h", c.Term.invalid)
	case c.Term.Duration < 0 || c.Term.Duration > 2000*time.Hour:
		bad("callbacks.term", "%s is outside 0..2000h", c.Term.Duration)
	}
	switch {
	case c.ScanInterval.invalid != "":
		bad("callbacks.scan_interval", "%q is not a duration like 1m", c.ScanInterval.invalid)
	case c.ScanInterval.Duration < 0:
		bad("callbacks.scan_interval", "%s is negative", c.ScanInterval.Duration)
	}
	if c.RemindersBeforeEscalation < 0 || c.RemindersBeforeEscalation > 20 {
		bad("callbacks.reminders_before_escalation", "%d is outside 0..20", c.RemindersBeforeEscalation)
	}
	for dept, v := range c.Backup {
		if _, err := parseAssignee(v, workflow.Groep); err != nil {
			bad("callbacks.backup."+dept, "%v", err)
		}
	}
	for key := range c.Directory {
		if _, err := parseAssignee(key, ""); err != nil {
			bad("callbacks.directory", "%q: %v", key, err)
		}
	}
	if c.SMTP.Addr != "" && c.SMTP.From == "" {
		bad("callbacks.smtp.from", "is empty")
	}
	if c.SMTP.Password != "" && c.SMTP.PasswordFile != "" {
		bad("callbacks.smtp.password", "set only one of callbacks.smtp.password and callbacks.smtp.password_file")
	}
}

// parseAssignee reads "kind:id"; without a kind, def (or an error when def is "").
func parseAssignee(s, def string) (workflow.Assignee, error) {
	kind, id, ok := strings.Cut(s, ":")
	if !ok {
		kind, id = def, s
	}
	switch kind {
	case workflow.Afdeling, workflow.Groep, workflow.Medewerker:
	default:
		return workflow.Assignee{}, fmt.Errorf("%q is not afdeling:id, groep:id or medewerker:id", s)
	}
	if id == "" {
		return workflow.Assignee{}, fmt.Errorf("%q names no id", s)
	}
	return workflow.Assignee{Kind: kind, ID: id}, nil
}

// jobsDB is the database the workflow's jobs run on, closed with the app.
type jobsDB struct {
	db   *sql.DB
	pool *pgxpool.Pool
}

func (j *jobsDB) Close() {
	if j.db != nil {
		_ = j.db.Close()
	}
	if j.pool != nil {
		j.pool.Close()
	}
}

// defaultWorkflowSchema is the PostgreSQL schema of the jobs.
const defaultWorkflowSchema = "klantbeeld_workflow"

// openWorkflow builds the workflow when both systems it writes to are
// configured (else nil: the endpoints are not served) and starts it.
func openWorkflow(ctx context.Context, cfg Config, ki *klantinteracties.Client, sf *salesforce.Client, recorder workflow.Auditor, pseudonyms *audit.Pseudonymizer, logger *slog.Logger) (*workflow.Workflow, *jobsDB, error) {
	if ki == nil || sf == nil {
		return nil, nil, nil
	}
	c := cfg.Callbacks
	dir := workflow.StaticDirectory{Owners: map[string]string{}, Emails: map[string]string{}}
	for key, e := range c.Directory {
		if e.SalesforceOwner != "" {
			dir.Owners[key] = e.SalesforceOwner
		}
		if e.Email != "" {
			dir.Emails[key] = e.Email
		}
	}
	backup := map[string]workflow.Assignee{}
	for dept, v := range c.Backup {
		a, err := parseAssignee(v, workflow.Groep)
		if err != nil {
			return nil, nil, fmt.Errorf("callbacks.backup.%s: %w", dept, err)
		}
		a.Department = dept
		backup[dept] = a
	}
	wcfg := workflow.Config{
		Klantinteracties: ki, Salesforce: sf, Directory: dir, Audit: recorder, Pseudonyms: pseudonyms,
		Term: c.Term.Duration, RemindersBeforeEscalation: c.RemindersBeforeEscalation, Backup: backup,
		ScanInterval: c.ScanInterval.Duration, Logger: logger,
	}
	if c.SMTP.Addr != "" {
		password := c.SMTP.Password
		if c.SMTP.PasswordFile != "" {
			p, err := secretValue("callbacks.smtp.password", "", c.SMTP.PasswordFile)
			if err != nil {
				return nil, nil, err
			}
			password = p
		}
		wcfg.SMTP = workflow.SMTPConfig{Addr: c.SMTP.Addr, From: c.SMTP.From, Username: c.SMTP.Username, Password: password}
	} else {
		wcfg.Mailer = workflow.LogMailer{Logger: logger}
	}
	jobs := &jobsDB{}
	if postgres.IsDSN(cfg.Audit.DSN) {
		schema := c.Schema
		if schema == "" {
			schema = defaultWorkflowSchema
		}
		pool, err := pgxpool.New(ctx, cfg.Audit.DSN)
		if err != nil {
			return nil, nil, fmt.Errorf("callbacks: %w", err)
		}
		jobs.pool = pool
		if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			jobs.Close()
			return nil, nil, fmt.Errorf("callbacks.schema: %w", err)
		}
		wcfg.Pool, wcfg.Schema = pool, schema
	} else {
		path, err := sqlite.PathFromDSN(cfg.Audit.DSN)
		if err != nil {
			return nil, nil, fmt.Errorf("audit.dsn: %w", err)
		}
		jobsPath := filepath.Join(filepath.Dir(path), "workflow.db")
		if err := os.MkdirAll(filepath.Dir(jobsPath), 0o700); err != nil {
			return nil, nil, fmt.Errorf("callbacks: %w", err)
		}
		db, err := sql.Open("sqlite", "file:"+jobsPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		if err != nil {
			return nil, nil, fmt.Errorf("callbacks: %w", err)
		}
		db.SetMaxOpenConns(1)
		jobs.db = db
		wcfg.DB = db
	}
	w, err := workflow.New(ctx, wcfg)
	if err != nil {
		jobs.Close()
		return nil, nil, fmt.Errorf("callbacks: %w", err)
	}
	if err := w.Start(ctx); err != nil {
		jobs.Close()
		return nil, nil, fmt.Errorf("callbacks: %w", err)
	}
	return w, jobs, nil
}

// stopWorkflow stops the jobs and closes their database.
func stopWorkflow(ctx context.Context, w *workflow.Workflow, jobs *jobsDB) error {
	var err error
	if w != nil {
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if serr := w.Stop(stopCtx); serr != nil && !errors.Is(serr, context.Canceled) {
			err = serr
		}
	}
	if jobs != nil {
		jobs.Close()
	}
	return err
}
