package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klantbeeld/klantbeeld/fixtures/sources"
	"github.com/klantbeeld/klantbeeld/policies"
)

const usage = `klantbeeld: a purpose-bound resident view for a municipality

Usage:
  klantbeeld demo [-listen 127.0.0.1:8080] [-data ./data]
        fake source systems, a demo identity provider and the gateway, with
        ready-to-paste requests printed for each role
  klantbeeld demo token -sub ID [-department D] [-roles R1,R2] [-organisation OIN -scope P] [-ttl 8h] [-data ./data]
        mint a token with the demo identity provider's key
  klantbeeld serve -config FILE
        the gateway with real sources (every key can be overridden by
        KLANTBEELD_<KEY_PATH>, e.g. KLANTBEELD_SOURCES_BRP_URL)
  klantbeeld fixtures [-host 127.0.0.1]
        only the fake source systems, for developing front ends
  klantbeeld audit verify|export|checkpoint|verifier-key -config FILE
        verify the audit log from the database (and against a checkpoint
        kept elsewhere), export it (NDJSON or Logboek Dataverwerkingen),
        sign a checkpoint now, print the checkpoints' verifier key
  klantbeeld policy test [-dir DIR]
        run the policy bundle's tests and guard invariants
  klantbeeld policy eval [-dir DIR] -input FILE
        evaluate one decision input (JSON) and print the decision

Run "klantbeeld COMMAND -h" for a command's flags.
`

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr, environ)
	case "serve":
		err = runServe(ctx, args[1:], stderr, environ)
	case "fixtures":
		err = runFixtures(ctx, args[1:], stdout, stderr)
	case "policy":
		err = runPolicy(ctx, args[1:], stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], stdout, stderr, environ)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "klantbeeld: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "klantbeeld %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage: the flags were wrong; the flag package has said why.
var errUsage = errors.New("usage")

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return errUsage
	}
	return nil
}

func runServe(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration `file` (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "serve needs -config FILE")
		return errUsage
	}
	cfg, err := LoadConfig(*path, environ)
	if err != nil {
		return err
	}
	// Before anything is opened: plain HTTP where it may not be served.
	if err := cfg.checkListen(); err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)
	tuneGC(environ, logger)
	warnKeysBesideDatabase(cfg.Audit, logger)
	app, err := NewApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if err := app.Start(); err != nil {
		app.Close(context.Background())
		return err
	}
	logger.Info("klantbeeld listening", "addr", app.Addr().String())
	werr := app.Wait(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return errors.Join(werr, app.Close(shutdown))
}

func runFixtures(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fixtures", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "`address` to listen on (ports are picked free)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set, err := sources.Start(sources.Options{Host: *host})
	if err != nil {
		return err
	}
	defer set.Close()
	pemKey, err := set.Credentials.SalesforcePrivateKeyPEM()
	if err != nil {
		return err
	}
	keyFile := filepath.Join(os.TempDir(), fmt.Sprintf("klantbeeld-salesforce-%d.pem", os.Getpid()))
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		return err
	}
	defer os.Remove(keyFile)
	c := set.Credentials
	fmt.Fprintf(stdout, `Fake source systems are running (Ctrl-C stops them). As environment for klantbeeld serve:

KLANTBEELD_SOURCES_BRP_URL=%s
KLANTBEELD_SOURCES_BRP_API_KEY=%s
KLANTBEELD_SOURCES_ZAKEN_URL=%s
KLANTBEELD_SOURCES_ZAKEN_CATALOGI_URL=%s
KLANTBEELD_SOURCES_ZAKEN_CLIENT_ID=%s
KLANTBEELD_SOURCES_ZAKEN_SECRET=%s
KLANTBEELD_SOURCES_SALESFORCE_URL=%s
KLANTBEELD_SOURCES_SALESFORCE_LOGIN_URL=%s
KLANTBEELD_SOURCES_SALESFORCE_CONSUMER_KEY=%s
KLANTBEELD_SOURCES_SALESFORCE_USERNAME=%s
KLANTBEELD_SOURCES_SALESFORCE_PRIVATE_KEY_FILE=%s
KLANTBEELD_SOURCES_KLANTINTERACTIES_URL=%s
KLANTBEELD_SOURCES_KLANTINTERACTIES_TOKEN=%s
`, set.BRPURL(), c.BRPAPIKey, set.ZakenURL(), set.CatalogiURL(), c.ZakenClientID, c.ZakenSecret,
		set.SalesforceURL(), set.SalesforceURL(), c.SalesforceKey, c.SalesforceUser, keyFile,
		set.KlantinteractiesURL(), c.KlantinteractiesKey)
	<-ctx.Done()
	return nil
}

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "test" && args[0] != "eval") {
		fmt.Fprint(stderr, "usage: klantbeeld policy test [-dir DIR] | policy eval [-dir DIR] -input FILE\n")
		return errUsage
	}
	fs := flag.NewFlagSet("policy "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "bundle `directory` (*.rego and data.json); empty: the embedded bundle")
	input := fs.String("input", "", "decision input `file` (JSON); - reads standard input")
	rest := args[1:]
	// `policy test DIR`: the folder may also come as the one argument, after any flags.
	if args[0] == "test" {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		if fs.NArg() == 1 && *dir == "" {
			*dir = fs.Arg(0)
		}
		rest = fs.Args()[min(fs.NArg(), 1):]
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	bundle := policies.Embedded()
	if *dir != "" {
		var err error
		if bundle, err = policies.LoadDir(*dir); err != nil {
			return err
		}
	}
	if args[0] == "test" {
		return policyTest(ctx, bundle, stdout)
	}
	if *input == "" {
		fmt.Fprintln(stderr, "policy eval needs -input FILE")
		return errUsage
	}
	var raw []byte
	var err error
	if *input == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(*input)
	}
	if err != nil {
		return err
	}
	var in policies.Input
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("input: %w", err)
	}
	engine, err := policies.NewEngine(ctx, bundle)
	if err != nil {
		return err
	}
	d, err := engine.Decide(ctx, in)
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(struct {
		policies.Decision
		BundleVersion string `json:"bundle_version"`
	}{d, d.BundleVersion}, "", "  ")
	fmt.Fprintln(stdout, string(out))
	return nil
}

// policyTest runs what an activation runs (policies.Check): the bundle
// compiles, its own Rego tests pass and it keeps the guard invariants.
func policyTest(ctx context.Context, bundle policies.Bundle, stdout io.Writer) error {
	rep, err := policies.Check(ctx, bundle)
	failed := 0
	for _, r := range rep.Tests {
		mark := "PASS"
		switch {
		case r.Skip:
			mark = "SKIP"
		case !r.Pass:
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(stdout, "%s %s.%s (%s)", mark, r.Package, r.Name, r.Location)
		if r.Err != "" {
			fmt.Fprintf(stdout, ": %s", r.Err)
		}
		fmt.Fprintln(stdout)
	}
	if len(rep.Invariants) > 0 {
		broken := map[string]bool{}
		for _, v := range rep.Violations {
			broken[v.Invariant] = true
			fmt.Fprintf(stdout, "FAIL guard invariant %s: %s\n", v.Invariant, v.Detail)
		}
		for _, inv := range rep.Invariants {
			if !broken[inv] {
				fmt.Fprintf(stdout, "PASS guard invariant %s\n", inv)
			}
		}
		fmt.Fprintf(stdout, "PASS guard invariants: %d decisions checked\n", rep.Cases)
	}
	fmt.Fprintf(stdout, "%d Rego tests, %d failed; %d invariants, %d broken; bundle %s\n", len(rep.Tests), failed, len(rep.Invariants), len(rep.Violations), rep.Version)
	if err != nil {
		return fmt.Errorf("policy tests failed: %w", err)
	}
	return nil
}
