package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/connectors/brp"
	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/salesforce"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
	"github.com/klantbeeld/klantbeeld/connectors/zaken"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/openapi"
	"github.com/klantbeeld/klantbeeld/policies"
	"github.com/klantbeeld/klantbeeld/view"
	"github.com/klantbeeld/klantbeeld/workflow"
)

// App is one gateway built from a Config: what `klantbeeld serve` and
// `klantbeeld demo` run, and what end-to-end tests start on port 0.
type App struct {
	Config Config
	Logger *slog.Logger
	// Store is the audit store; tests close it to take it away.
	Store audit.Store
	Log   *audit.Log
	// Checkpoints signs the audit log's tree at an interval, on demand and at Close.
	Checkpoints *audit.Checkpointer
	// Verifier checks the checkpoints' signatures.
	Verifier note.Verifier
	Engine   *policies.Engine
	// Metrics are served as cfg.Metrics says; nil when it says off.
	Metrics *gateway.Metrics

	// Workflow writes wrap-ups and reminds callbacks; nil without
	// Klantinteracties and Salesforce.
	Workflow *workflow.Workflow
	jobs     *jobsDB

	follower *policyFollower
	operator *operatorServer
	handler  http.Handler
	// tls is the HTTPS configuration; nil: plain HTTP.
	tls    *tls.Config
	server *http.Server
	ln     net.Listener
	served chan error
}

// NewApp builds everything cfg describes; nothing listens yet.
func NewApp(ctx context.Context, cfg Config, logger *slog.Logger) (app *App, err error) {
	a := &App{Config: cfg, Logger: logger}
	defer func() {
		if err != nil {
			// The start failed; that error is the one to report.
			_ = a.closeStores()
		}
	}()

	key, err := audit.LoadKey(cfg.Audit.PseudonymKeyFile, true)
	if err != nil {
		return nil, fmt.Errorf("audit.pseudonym_key_file: %w", err)
	}
	pseudonyms, err := audit.NewPseudonymizer(key)
	if err != nil {
		return nil, fmt.Errorf("audit.pseudonym_key_file: %w", err)
	}
	al, err := openAuditLog(ctx, cfg.Audit, logger, nil)
	if err != nil {
		return nil, err
	}
	a.Store, a.Verifier = al.store, al.verifier
	var logOpts audit.LogOptions
	if cfg.Metrics.Listen != metricsOff {
		a.Metrics = gateway.NewMetrics()
		logOpts.Observe = a.Metrics.AuditBatch
	}
	a.Log = audit.NewLog(al.store, logOpts)
	a.Checkpoints = audit.NewCheckpointer(al.store, al.signer, audit.CheckpointerOptions{
		Interval: cfg.Audit.CheckpointInterval.Duration, WitnessFile: cfg.Audit.WitnessFile, Logger: logger,
	})

	bundle := policies.Embedded()
	if cfg.Policies.Dir != "" {
		if bundle, err = policies.LoadDir(cfg.Policies.Dir); err != nil {
			return nil, fmt.Errorf("policies.dir: %w", err)
		}
	}
	pstore, ok := al.store.(audit.PolicyStore)
	if !ok {
		return nil, errors.New("audit.dsn: this audit store cannot keep policy versions")
	}
	if bundle, err = activeBundle(ctx, pstore, bundle, logger, time.Now); err != nil {
		return nil, err
	}
	if _, err := policies.Check(ctx, bundle); err != nil {
		return nil, fmt.Errorf("policies: version %s does not pass its checks (run klantbeeld policy test): %w", bundle.Version(), err)
	}
	if a.Engine, err = policies.NewEngine(ctx, bundle); err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	a.follower = startPolicyFollower(pstore, a.Engine, cfg.Policies.PollInterval.Duration, logger)
	spec, err := openapi.Load()
	if err != nil {
		return nil, err
	}
	authCfg := auth.Config{
		Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience,
		JWKSURL: cfg.Auth.JWKSURL, JWKSFile: cfg.Auth.JWKSFile,
		RequireOrganisationCertificate: cfg.TLS.RequireClientCertificate,
	}
	if f := cfg.Auth.FSC; f.Issuer != "" {
		authCfg.FSC = &auth.Config{Issuer: f.Issuer, Audience: f.Audience, JWKSURL: f.JWKSURL, JWKSFile: f.JWKSFile}
	}
	verifier, err := auth.NewVerifier(ctx, authCfg)
	if err != nil {
		return nil, err
	}
	// Residents' tokens (DigiD through the broker), for subject access;
	// the interface stays nil when they are not configured.
	var residents gateway.ResidentAuthenticator
	if r := cfg.Auth.Residents; r.Issuer != "" {
		rv, err := auth.NewResidentVerifier(ctx, auth.ResidentConfig{
			Config:   auth.Config{Issuer: r.Issuer, Audience: r.Audience, JWKSURL: r.JWKSURL, JWKSFile: r.JWKSFile},
			BSNClaim: r.BSNClaim,
		})
		if err != nil {
			return nil, err
		}
		residents = rv
	}
	var observer upstream.Observer
	if a.Metrics != nil {
		observer = a.Metrics
	}
	srcs, clients, err := connectSources(cfg.Sources, logger, observer)
	if err != nil {
		return nil, err
	}
	a.Workflow, a.jobs, err = openWorkflow(ctx, cfg, clients.klantinteracties, clients.salesforce, a.Log, pseudonyms, logger)
	if err != nil {
		return nil, err
	}
	var wf gateway.Workflow
	if a.Workflow != nil {
		wf = a.Workflow
	}
	sessions, ok := al.store.(audit.ContactSessionStore)
	if !ok {
		return nil, errors.New("audit.dsn: this audit store cannot keep contact sessions")
	}
	gw, err := gateway.New(gateway.Config{
		Sources:          srcs,
		Policy:           a.Engine,
		Audit:            a.Log,
		AuditLog:         a.Store,
		Checkpoints:      a.Checkpoints,
		Residents:        residents,
		Policies:         &gateway.PolicyAdmin{Engine: a.Engine, Store: pstore},
		Sessions:         sessions,
		Workflow:         wf,
		SessionIdle:      cfg.ContactSessions.IdleTimeout.Duration,
		Contexts:         view.ContextsOf(srcs),
		Pseudonyms:       pseudonyms,
		Auth:             verifier,
		Spec:             spec,
		Logger:           logger,
		CallerLimits:     cfg.callerLimits(),
		MaxViewsInFlight: cfg.MaxViewsInFlight,
		CORSOrigins:      cfg.CORS.AllowedOrigins,
		Metrics:          a.Metrics,
		ServeMetrics:     cfg.Metrics.Listen == "",
	})
	if err != nil {
		return nil, err
	}
	a.handler = gw.Handler()
	if a.tls, err = serverTLS(cfg.TLS); err != nil {
		return nil, err
	}
	return a, nil
}

// connectSources builds the view's sources in the order views list them:
// each configured source wraps its connector; one without a URL is
// view.Unconfigured, so that a view still names it (unavailable,
// not_configured where the policy permits it).
//
// obs, when not nil, watches every source's calls and circuit breaker.
func connectSources(c SourcesConfig, logger *slog.Logger, obs upstream.Observer) ([]view.Source, writers, error) {
	var w writers
	httpCfg := func(d Duration) upstream.Config {
		return upstream.Config{Timeout: d.Duration, Logger: logger, Observer: obs}
	}
	sources := []struct {
		name, url string
		connect   func() (view.Source, error)
	}{
		{view.SourceBRP, c.BRP.URL, func() (view.Source, error) {
			key, err := secretValue("sources.brp.api_key", c.BRP.APIKey, c.BRP.APIKeyFile)
			if err != nil {
				return nil, err
			}
			cl, err := brp.New(brp.Config{URL: c.BRP.URL, APIKey: key, HTTP: httpCfg(c.BRP.Timeout)})
			if err != nil {
				return nil, fmt.Errorf("sources.brp: %w", err)
			}
			return view.NewBRP(cl), nil
		}},
		{view.SourceZaken, c.Zaken.URL, func() (view.Source, error) {
			secret, err := secretValue("sources.zaken.secret", c.Zaken.Secret, c.Zaken.SecretFile)
			if err != nil {
				return nil, err
			}
			cl, err := zaken.New(zaken.Config{ZakenURL: c.Zaken.URL, CatalogiURL: c.Zaken.CatalogiURL, ClientID: c.Zaken.ClientID, Secret: secret, HTTP: httpCfg(c.Zaken.Timeout)})
			if err != nil {
				return nil, fmt.Errorf("sources.zaken: %w", err)
			}
			return view.NewZaken(cl, 0), nil
		}},
		{view.SourceSalesforce, c.Salesforce.URL, func() (view.Source, error) {
			pemBytes, err := os.ReadFile(c.Salesforce.PrivateKeyFile)
			if err != nil {
				return nil, fmt.Errorf("sources.salesforce.private_key_file: %w", err)
			}
			key, err := salesforce.ParsePrivateKey(pemBytes)
			if err != nil {
				return nil, fmt.Errorf("sources.salesforce.private_key_file: %w", err)
			}
			cl, err := salesforce.New(salesforce.Config{
				URL: c.Salesforce.URL, LoginURL: c.Salesforce.LoginURL, ConsumerKey: c.Salesforce.ConsumerKey,
				Username: c.Salesforce.Username, PrivateKey: key, HTTP: httpCfg(c.Salesforce.Timeout),
			})
			if err != nil {
				return nil, fmt.Errorf("sources.salesforce: %w", err)
			}
			w.salesforce = cl
			return view.NewSalesforce(cl), nil
		}},
		{view.SourceKlantinteracties, c.Klantinteracties.URL, func() (view.Source, error) {
			token, err := secretValue("sources.klantinteracties.token", c.Klantinteracties.Token, c.Klantinteracties.TokenFile)
			if err != nil {
				return nil, err
			}
			cl, err := klantinteracties.New(klantinteracties.Config{URL: c.Klantinteracties.URL, Token: token, HTTP: httpCfg(c.Klantinteracties.Timeout)})
			if err != nil {
				return nil, fmt.Errorf("sources.klantinteracties: %w", err)
			}
			w.klantinteracties = cl
			return view.NewKlantinteracties(cl), nil
		}},
	}
	out := make([]view.Source, 0, len(sources))
	for _, s := range sources {
		if s.url == "" {
			out = append(out, view.Unconfigured(s.name))
			continue
		}
		src, err := s.connect()
		if err != nil {
			return nil, writers{}, err
		}
		if obs != nil {
			obs.Circuit(s.name, false)
		}
		out = append(out, src)
	}
	return out, w, nil
}

// writers are the connectors the workflow writes wrap-ups through (nil
// when the source is not configured).
type writers struct {
	klantinteracties *klantinteracties.Client
	salesforce       *salesforce.Client
}

// Start listens on Config.Listen and serves in the background.
func (a *App) Start() error {
	if err := a.Config.checkListen(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen (%s): %w", EnvName("listen"), err)
	}
	if a.tls != nil {
		ln = tls.NewListener(ln, a.tls)
	}
	a.ln = ln
	a.server = &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
	}
	a.served = make(chan error, 1)
	go func() { a.served <- a.server.Serve(ln) }()
	if l := a.Config.Metrics.Listen; l != "" && l != metricsOff {
		op, err := startOperator(l, a.Metrics, a.Config.Metrics.Pprof, a.Logger)
		if err != nil {
			return err
		}
		a.operator = op
	}
	return nil
}

// Addr is the address the gateway listens on.
func (a *App) Addr() net.Addr { return a.ln.Addr() }

// URL is the gateway's base URL on loopback.
func (a *App) URL() string {
	_, port, _ := net.SplitHostPort(a.ln.Addr().String())
	if a.tls != nil {
		return "https://localhost:" + port
	}
	return "http://localhost:" + port
}

// Wait blocks until ctx is done or the server fails.
func (a *App) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-a.served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Close stops taking requests, lets those in flight finish (their audit
// events included), then closes the audit log and store.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.server != nil {
		errs = append(errs, a.server.Shutdown(ctx))
	}
	if a.operator != nil {
		errs = append(errs, a.operator.Close(ctx))
	}
	errs = append(errs, a.closeStores())
	return errors.Join(errs...)
}

func (a *App) closeStores() error {
	var errs []error
	if a.follower != nil {
		a.follower.Close()
	}
	// Before the log: the jobs record reminders in it.
	errs = append(errs, stopWorkflow(context.Background(), a.Workflow, a.jobs))
	if a.Log != nil {
		errs = append(errs, a.Log.Close())
	}
	// After the log: the last checkpoint covers every event written.
	if a.Checkpoints != nil {
		errs = append(errs, a.Checkpoints.Close())
	}
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
	}
	return errors.Join(errs...)
}

// newLogger is the one logger, as the configuration says.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
