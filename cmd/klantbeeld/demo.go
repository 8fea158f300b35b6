package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klantbeeld/klantbeeld/fixtures/sources"
)

// demoSetup is what `klantbeeld demo` starts before the gateway: the fake
// sources and the demo identity provider, and the config that joins them.
type demoSetup struct {
	Sources *sources.Set
	IdP     *demoIdP
	Config  Config
}

// newDemoSetup starts the fakes, makes the identity provider and writes its
// JWKS and the Salesforce key under dataDir, and returns the gateway's
// config (SQLite audit log under dataDir). opts tune the fakes.
func newDemoSetup(dataDir, listen string, opts sources.Options) (*demoSetup, error) {
	set, err := sources.Start(opts)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			set.Close()
		}
	}()
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	idp, err := newDemoIdP(demoIssuer, now)
	if err != nil {
		return nil, err
	}
	demoDir := filepath.Join(dataDir, "demo")
	if err := os.MkdirAll(demoDir, 0o700); err != nil {
		return nil, err
	}
	jwks, err := idp.JWKS()
	if err != nil {
		return nil, err
	}
	jwksFile := filepath.Join(demoDir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		return nil, err
	}
	sfKey, err := set.Credentials.SalesforcePrivateKeyPEM()
	if err != nil {
		return nil, err
	}
	sfKeyFile := filepath.Join(demoDir, "salesforce.pem")
	if err := os.WriteFile(sfKeyFile, sfKey, 0o600); err != nil {
		return nil, err
	}
	c := set.Credentials
	cfg := DefaultConfig()
	cfg.Listen = listen
	cfg.Log = LogConfig{Level: "info", Format: "text"}
	cfg.Auth.Issuer, cfg.Auth.Audience, cfg.Auth.JWKSFile = demoIssuer, demoAudience, jwksFile
	cfg.Audit.DSN = "sqlite://" + filepath.ToSlash(filepath.Join(dataDir, "audit.db"))
	cfg.Audit.PseudonymKeyFile = filepath.Join(dataDir, "pseudonym.key")
	cfg.Audit.SigningKeyFile = filepath.Join(dataDir, "checkpoint.key")
	cfg.Sources = SourcesConfig{
		BRP:   BRPConfig{URL: set.BRPURL(), APIKey: c.BRPAPIKey},
		Zaken: ZakenConfig{URL: set.ZakenURL(), CatalogiURL: set.CatalogiURL(), ClientID: c.ZakenClientID, Secret: c.ZakenSecret},
		Salesforce: SalesforceConfig{
			URL: set.SalesforceURL(), LoginURL: set.SalesforceURL(), ConsumerKey: c.SalesforceKey,
			Username: c.SalesforceUser, PrivateKeyFile: sfKeyFile,
		},
		Klantinteracties: KlantinteractiesConfig{URL: set.KlantinteractiesURL(), Token: c.KlantinteractiesKey},
	}
	ok = true
	return &demoSetup{Sources: set, IdP: idp, Config: cfg}, nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":8080", "`address` of the gateway")
	dataDir := fs.String("data", "data", "`folder` for the audit log, keys and the demo JWKS")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	setup, err := newDemoSetup(*dataDir, *listen, sources.Options{})
	if err != nil {
		return err
	}
	defer setup.Sources.Close()
	cfg := setup.Config
	// KLANTBEELD_* variables apply to the demo too (e.g. KLANTBEELD_LISTEN).
	if err := applyEnv(&cfg, environ); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)
	app, err := NewApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if err := app.Start(); err != nil {
		app.Close(context.Background())
		return err
	}
	if err := printDemo(stdout, app.URL(), setup.IdP, *dataDir); err != nil {
		app.Close(context.Background())
		return err
	}
	werr := app.Wait(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(werr, app.Close(shutdown))
}

// printDemo prints a token and a ready curl command per demo user and
// writes the tokens to dataDir/demo/tokens.env.
func printDemo(w io.Writer, baseURL string, idp *demoIdP, dataDir string) error {
	var env strings.Builder
	fmt.Fprintf(w, "\nklantbeeld demo is running at %s\n", baseURL)
	fmt.Fprintf(w, "Fake BRP, Zaken/Catalogi, Salesforce and Klantinteracties run on loopback; the audit log is %s.\n", filepath.Join(dataDir, "audit.db"))
	fmt.Fprintf(w, "API document: %s/v1/openapi.json   Ctrl-C stops everything.\n", baseURL)
	for _, u := range demoUsers {
		tok, err := idp.Token(u, tokenOptions{})
		if err != nil {
			return err
		}
		name := "KB_" + strings.ToUpper(strings.ReplaceAll(u.Label, "-", "_"))
		fmt.Fprintf(&env, "export %s=%s\n", name, tok)
		expect := "a view for purpose " + u.Purpose
		if u.Roles[0] != "medewerker" {
			expect = "403: a " + u.Label + " never receives resident data"
		}
		fmt.Fprintf(w, "\n# %s (%s, department %s, roles %s): expect %s\n", u.Label, u.Name, u.Department, strings.Join(u.Roles, ","), expect)
		fmt.Fprintf(w, "%s='%s'\n", name, tok)
		fmt.Fprintf(w, "curl -s %s/v1/resident-views -H \"Authorization: Bearer $%s\" -H 'Content-Type: application/json' -d '{\"bsn\":\"%s\",\"purpose\":\"%s\"}'\n",
			baseURL, name, u.BSN, u.Purpose)
	}
	file := filepath.Join(dataDir, "demo", "tokens.env")
	if err := os.WriteFile(file, []byte(env.String()), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nThe tokens are also in %s (source it in another shell). Try other residents: 999990068 (only Sociale Zaken records),\n999971104 (geheimhouding), 999970239 (deceased), 999990007 (unknown everywhere).\n\n", file)
	return nil
}
