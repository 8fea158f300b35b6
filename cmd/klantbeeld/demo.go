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

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/auth"
	"github.com/klantbeeld/klantbeeld/fixtures"
	sffake "github.com/klantbeeld/klantbeeld/fixtures/salesforce"
	"github.com/klantbeeld/klantbeeld/fixtures/sources"
)

// demoSetup is what `klantbeeld demo` starts before the gateway: the fake
// sources and the demo identity provider, and the config that joins them.
type demoSetup struct {
	Sources *sources.Set
	IdP     *demoIdP
	// Residents is the demo's stand-in for DigiD through the municipality's
	// broker: tokens whose subject is a resident's BSN, for subject access.
	Residents *demoIdP
	Config    Config
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
	demoDir := filepath.Join(dataDir, "demo")
	if err := os.MkdirAll(demoDir, 0o700); err != nil {
		return nil, err
	}
	idp, err := newDemoIdP(demoIssuer, demoKeyFile(dataDir), now)
	if err != nil {
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
	residents, err := newDemoIdP(demoResidentIssuer, filepath.Join(demoDir, "digid-key.pem"), now)
	if err != nil {
		return nil, err
	}
	residentJWKS, err := residents.JWKS()
	if err != nil {
		return nil, err
	}
	residentJWKSFile := filepath.Join(demoDir, "digid-jwks.json")
	if err := os.WriteFile(residentJWKSFile, residentJWKS, 0o600); err != nil {
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
	cfg.Auth.Residents = ResidentsConfig{Issuer: demoResidentIssuer, Audience: demoResidentAudience, JWKSFile: residentJWKSFile, BSNClaim: "sub"}
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
	cfg.Callbacks = demoCallbacks()
	ok = true
	return &demoSetup{Sources: set, IdP: idp, Residents: residents, Config: cfg}, nil
}

// demoCallbacks are the demo's callback owners: the three employees, their
// departments and the departments' queues in the fake Salesforce org, the
// queues as the backups. Without SMTP the reminders are logged.
func demoCallbacks() CallbacksConfig {
	c := CallbacksConfig{Directory: map[string]DirectoryEntry{}, Backup: map[string]string{}}
	queues := map[string]fixtures.Owner{"burgerzaken": sffake.Queues[0], "sociale-zaken": sffake.Queues[1], "kcc": sffake.Queues[2]}
	owners := map[string]fixtures.Owner{"sdevries": fixtures.Owners[0], "mjansen": fixtures.Owners[1], "rbakker": fixtures.Owners[2]}
	for _, u := range demoUsers {
		o, ok := owners[u.Sub]
		if !ok {
			continue
		}
		q := queues[u.Department]
		c.Directory["medewerker:"+u.Sub] = DirectoryEntry{SalesforceOwner: o.ID, Email: u.Sub + "@gemeente.example"}
		c.Directory["afdeling:"+u.Department] = DirectoryEntry{SalesforceOwner: q.ID, Email: u.Department + "@gemeente.example"}
		c.Directory["groep:wachtrij-"+u.Department] = DirectoryEntry{SalesforceOwner: q.ID, Email: "coordinator." + u.Department + "@gemeente.example"}
		c.Backup[u.Department] = "groep:wachtrij-" + u.Department
	}
	return c
}

// demoWrapUp is the body of the demo's wrap-up of a KCC call.
func demoWrapUp(bsn string) string {
	return `{"bsn":"` + bsn + `","onderwerp":"Paspoort kwijt","inhoud":"Belt over een verloren paspoort; wil weten hoe een nieuwe aanvraag gaat.",` +
		`"callback":{"gevraagdeHandeling":"Terugbellen over de nieuwe aanvraag","toegewezenAan":{"soort":"afdeling","id":"burgerzaken"}}}`
}

// demoKeyFile is where the demo identity provider keeps its signing key.
func demoKeyFile(dataDir string) string { return filepath.Join(dataDir, "demo", "idp-key.pem") }

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) > 0 && args[0] == "token" {
		return runDemoToken(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Loopback only: the demo prints working tokens.
	listen := fs.String("listen", "127.0.0.1:8080", "`address` of the gateway")
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
	tuneGC(environ, logger)
	app, err := NewApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if err := app.Start(); err != nil {
		app.Close(context.Background())
		return err
	}
	if err := printDemo(stdout, app.URL(), setup, *dataDir); err != nil {
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
func printDemo(w io.Writer, baseURL string, setup *demoSetup, dataDir string) error {
	idp := setup.IdP
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
		how, justification := "", ""
		if u.Roles[0] == "medewerker" {
			how, justification = demoContext(u)
			how += "; "
		}
		fmt.Fprintf(w, "\n# %s (%s, department %s, roles %s): %sexpect %s\n", u.Label, u.Name, u.Department, strings.Join(u.Roles, ","), how, expect)
		fmt.Fprintf(w, "%s='%s'\n", name, tok)
		if justification == demoSessionContext {
			fmt.Fprintf(w, "KB_SESSION=$(curl -s %s/v1/contact-sessions -H \"Authorization: Bearer $%s\" -H 'Content-Type: application/json' -d '{\"kanaal\":\"telefoon\"}' | sed -E 's/.*\"id\":\"([^\"]+)\".*/\\1/')\n",
				baseURL, name)
		}
		fmt.Fprintf(w, "curl -s %s/v1/resident-views -H \"Authorization: Bearer $%s\" -H 'Content-Type: application/json' -d '{\"bsn\":\"%s\",\"purpose\":\"%s\"%s}'\n",
			baseURL, name, u.BSN, u.Purpose, justification)
		if justification == demoSessionContext {
			fmt.Fprintf(w, "# then wrap the contact up, with a callback for Burgerzaken: written to Klantinteracties and Salesforce, the session closed\n")
			fmt.Fprintf(w, "curl -s %s/v1/contact-sessions/$KB_SESSION/wrap-up -H \"Authorization: Bearer $%s\" -H 'Idempotency-Key: demo-1' -H 'Content-Type: application/json' -d '%s'\n",
				baseURL, name, demoWrapUp(u.BSN))
		}
	}
	fmt.Fprintf(w, "\n# Burgerzaken's open callbacks (with the one just asked of it), most urgent first\n")
	fmt.Fprintf(w, "curl -s %s/v1/callbacks/_search -d '{\"owner\":\"department\"}' -H 'Content-Type: application/json' -H \"Authorization: Bearer $KB_BURGERZAKEN\"\n", baseURL)
	org := demoOrganisation
	tok, err := idp.Token(org, tokenOptions{TTL: time.Hour})
	if err != nil {
		return err
	}
	fmt.Fprintf(&env, "export KB_UWV=%s\n", tok)
	fmt.Fprintf(w, "\n# %s, another government (OIN %s, client-credentials token, scope %s): expect BRP naam, geboorte and verblijfplaats only;\n", org.Name, org.Organisation, org.Scope)
	fmt.Fprintf(w, "# through an FSC Inway the same token comes as -H \"Fsc-Authorization: $KB_UWV\"; 999971104 (geheimhouding) gets 403\n")
	fmt.Fprintf(w, "KB_UWV='%s'\n", tok)
	fmt.Fprintf(w, "curl -s %s/v1/resident-views -H \"Authorization: Bearer $KB_UWV\" -H 'Content-Type: application/json' -d '{\"bsn\":\"%s\",\"purpose\":\"%s\"}'\n",
		baseURL, org.BSN, org.Purpose)
	resident := demoUser{Sub: "999993653"}
	tok, err = setup.Residents.Token(resident, tokenOptions{Audience: demoResidentAudience})
	if err != nil {
		return err
	}
	fmt.Fprintf(&env, "export KB_RESIDENT=%s\n", tok)
	fmt.Fprintf(w, "\n# resident 999993653 (Suzanne Moulin, through DigiD): expect who looked at her data, when and why\n")
	fmt.Fprintf(w, "KB_RESIDENT='%s'\n", tok)
	fmt.Fprintf(w, "curl -s %s/v1/subject-access -H \"Authorization: Bearer $KB_RESIDENT\" -H 'Content-Type: application/json' -d '{}'\n", baseURL)
	file := filepath.Join(dataDir, "demo", "tokens.env")
	if err := os.WriteFile(file, []byte(env.String()), 0o600); err != nil {
		return err
	}
	vkey, err := audit.VerifierKey(setup.Config.Audit.SigningKeyFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n# The audit log's signed checkpoints verify with this key (klantbeeld audit verifier-key):\n%s\n", vkey)
	fmt.Fprintf(w, "curl -s %s/v1/audit/checkpoint -H \"Authorization: Bearer $KB_AUDITOR\"\n", baseURL)
	fmt.Fprintf(w, "\nThe tokens are also in %s (source it in another shell). Try other residents: 999990068 (only Sociale Zaken records),\n999971104 (geheimhouding), 999970239 (deceased), 999990007 (unknown everywhere).\n\n", file)
	return nil
}

// demoSessionContext is the context of a look-up in the contact session
// the printed command before it opened (its id in $KB_SESSION).
const demoSessionContext = `,"context":{"type":"contact-session","id":"'"$KB_SESSION"'"}`

// demoContext is what a demo user's look-up is for, in words and as the
// request's "context" member: the resident's zaak of the department's
// domain (the scenario's), or else a contact session opened for the call.
func demoContext(u demoUser) (how, member string) {
	domain := map[string]string{"reisdocumenten": fixtures.BURZA, "bijstand": fixtures.SOCZA}[u.Purpose]
	if res, ok := fixtures.ResidentByBSN(u.BSN); ok && domain != "" {
		for _, z := range res.Zaken {
			zt, _ := fixtures.ZaaktypeByUUID(z.Zaaktype)
			if cat, _ := fixtures.CatalogusByUUID(zt.Catalogus); cat.Domein == domain {
				return "a look-up about the resident's zaak " + z.Identificatie, `,"context":{"type":"zaak","id":"` + z.UUID + `"}`
			}
		}
	}
	return "a look-up in a contact session opened for the call", demoSessionContext
}

// runDemoToken mints a token with the demo identity provider's key, for
// trying other departments, roles and expiries against a running demo.
func runDemoToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "data", "the demo's data `folder` (its signing key is in demo/ there)")
	sub := fs.String("sub", "", "subject (`user id`), required")
	name := fs.String("name", "", "display `name`")
	department := fs.String("department", "", "`department`, e.g. burgerzaken, sociale-zaken, kcc")
	roles := fs.String("roles", "medewerker", "comma-separated `roles`: medewerker, auditor, privacy-officer")
	organisation := fs.String("organisation", "", "`OIN` of another government (an organisation token: also its client_id)")
	scope := fs.String("scope", "", "space-separated `purposes` an organisation token is issued for")
	ttl := fs.Duration("ttl", demoTokenTTL, "how long the token is valid (`duration`)")
	audience := fs.String("aud", demoAudience, "`audience`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*sub) == "" {
		fmt.Fprintln(stderr, "demo token needs -sub")
		return errUsage
	}
	if *ttl <= 0 || *ttl > auth.DefaultMaxLifetime {
		fmt.Fprintf(stderr, "demo token: -ttl must be positive and at most %s, the longest lifetime the gateway accepts\n", auth.DefaultMaxLifetime)
		return errUsage
	}
	keyFile := demoKeyFile(*dataDir)
	if _, err := os.Stat(keyFile); err != nil {
		return fmt.Errorf("no demo signing key at %s: start `klantbeeld demo -data %s` once first", keyFile, *dataDir)
	}
	idp, err := newDemoIdP(demoIssuer, keyFile, time.Now)
	if err != nil {
		return err
	}
	u := demoUser{Sub: *sub, Name: *name, Department: *department, Organisation: *organisation, Scope: *scope}
	for r := range strings.SplitSeq(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			u.Roles = append(u.Roles, r)
		}
	}
	tok, err := idp.Token(u, tokenOptions{TTL: *ttl, Audience: *audience})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
