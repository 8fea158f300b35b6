package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/export"
)

const auditUsage = `usage:
  klantbeeld audit verify -config FILE [-checkpoint FILE] [-verifier-key KEY]
  klantbeeld audit export -config FILE [-format ndjson|ldv] [-from TIME] [-to TIME]
  klantbeeld audit checkpoint -config FILE
  klantbeeld audit verifier-key -config FILE
`

// runAudit is `klantbeeld audit …`: offline work on the audit log, straight
// from the database.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration `file` (YAML); KLANTBEELD_* variables apply")
	var witness, vkey, format, from, to *string
	switch sub {
	case "verify":
		witness = fs.String("checkpoint", "", "a signed checkpoint `file` kept outside the database (what a witness holds): the log must extend it")
		vkey = fs.String("verifier-key", "", "the checkpoints' verifier `key`; empty: derived from audit.signing_key_file")
	case "export":
		format = fs.String("format", export.FormatNDJSON, "ndjson (the stored events) or ldv (Logboek Dataverwerkingen records)")
		from = fs.String("from", "", "only events at or after this `time` (RFC 3339)")
		to = fs.String("to", "", "only events before this `time` (RFC 3339)")
	case "checkpoint", "verifier-key":
	default:
		fmt.Fprintf(stderr, "klantbeeld audit: unknown command %q\n%s", sub, auditUsage)
		return errUsage
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintf(stderr, "audit %s needs -config FILE\n", sub)
		return errUsage
	}
	cfg, err := LoadConfig(*path, environ)
	if err != nil {
		return err
	}
	if sub == "verifier-key" {
		k, err := audit.VerifierKey(cfg.Audit.SigningKeyFile)
		if err != nil {
			return fmt.Errorf("audit.signing_key_file: %w", err)
		}
		fmt.Fprintln(stdout, k)
		return nil
	}
	store, err := openStore(ctx, cfg.Audit, sub != "checkpoint")
	if err != nil {
		return err
	}
	defer store.Close()
	switch sub {
	case "verify":
		return auditVerify(ctx, store, cfg.Audit, *witness, *vkey, stdout, stderr)
	case "export":
		opts := export.Options{Format: *format, Progress: func(seq int64, n int) { fmt.Fprintf(stderr, "exported %d events (up to seq %d)\n", n, seq) }}
		if opts.From, err = parseTimeFlag(stderr, "from", *from); err != nil {
			return err
		}
		if opts.To, err = parseTimeFlag(stderr, "to", *to); err != nil {
			return err
		}
		_, err := export.Write(ctx, store, stdout, opts)
		if errors.Is(err, export.ErrFormat) {
			fmt.Fprintf(stderr, "audit export: -format %q: want ndjson or ldv\n", *format)
			return errUsage
		}
		return err
	default: // checkpoint
		signer, err := audit.LoadSigner(cfg.Audit.SigningKeyFile, false, "")
		if err != nil {
			return fmt.Errorf("audit.signing_key_file: %w", err)
		}
		cp := audit.NewCheckpointer(store, signer, audit.CheckpointerOptions{Interval: -1, WitnessFile: cfg.Audit.WitnessFile, Logger: slog.New(slog.DiscardHandler)})
		defer cp.Close()
		c, err := cp.Checkpoint(ctx)
		if errors.Is(err, audit.ErrNotFound) {
			return errors.New("the audit log is empty: there is nothing to sign yet")
		}
		if err != nil {
			return err
		}
		_, err = stdout.Write(c.Note)
		return err
	}
}

// auditVerify recomputes the log and reports the first sequence number that
// does not match.
func auditVerify(ctx context.Context, store audit.Store, c AuditConfig, witnessFile, vkey string, stdout, stderr io.Writer) error {
	verifier, err := audit.SignerVerifier(c.SigningKeyFile)
	if vkey != "" {
		verifier, err = audit.NewVerifier(strings.TrimSpace(vkey))
	}
	if err != nil {
		return fmt.Errorf("verifier key: %w", err)
	}
	var witness []byte
	if witnessFile != "" {
		if witness, err = os.ReadFile(witnessFile); err != nil {
			return fmt.Errorf("-checkpoint: %w", err)
		}
	}
	trigErr := store.CheckAppendOnly(ctx)
	report, err := audit.Verify(ctx, store, verifier, audit.VerifyOptions{Witness: witness, Progress: progressPrinter(stderr, "verifying")})
	if err != nil {
		if ve, ok := errors.AsType[*audit.VerifyError](err); ok && ve.Seq > 0 {
			fmt.Fprintf(stdout, "FAIL at sequence number %d: %s\n", ve.Seq, ve.Reason)
		} else {
			fmt.Fprintf(stdout, "FAIL: %v\n", err)
		}
		return errors.Join(errors.New("the audit log does not verify"), trigErr)
	}
	if trigErr != nil {
		fmt.Fprintf(stdout, "FAIL: %v\n", trigErr)
		return errors.New("the audit log's append-only triggers are not all in place")
	}
	fmt.Fprintf(stdout, "OK: %d events, tree %x, %d checkpoints consistent (latest at %d)\n", report.Tree.N, report.Tree.Hash[:], report.Checkpoints, report.Latest)
	return nil
}

// parseTimeFlag reads an RFC 3339 flag value; empty is the zero time.
func parseTimeFlag(stderr io.Writer, name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		fmt.Fprintf(stderr, "audit export: -%s %q is not an RFC 3339 time like 2026-12-01T00:00:00Z\n", name, v)
		return time.Time{}, errUsage
	}
	return t, nil
}
