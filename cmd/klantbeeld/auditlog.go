package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/postgres"
	"github.com/klantbeeld/klantbeeld/audit/sqlite"
)

// openStore opens the audit store audit.dsn names: SQLite for sqlite://,
// PostgreSQL for postgres:// and postgresql://. With examine set, an
// existing log is opened as it is, for `audit verify|export`: no migration
// runs and a missing trigger is not refused, so a tampered log can still be
// examined.
func openStore(ctx context.Context, c AuditConfig, examine bool) (audit.Store, error) {
	if postgres.IsDSN(c.DSN) {
		role := c.Role
		if role == "-" {
			role = postgres.NoRole
		}
		open := postgres.Open
		if examine {
			open = postgres.OpenExisting
		}
		s, err := open(ctx, c.DSN, postgres.Options{Schema: c.Schema, Role: role, MaxConns: int32(c.MaxConns)})
		if err != nil {
			return nil, fmt.Errorf("audit.dsn: %w", err)
		}
		return s, nil
	}
	path, err := sqlite.PathFromDSN(c.DSN)
	if err != nil {
		return nil, fmt.Errorf("audit.dsn: %w", err)
	}
	open := sqlite.Open
	if examine {
		open = sqlite.OpenExisting
	}
	s, err := open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("audit.dsn: %w", err)
	}
	return s, nil
}

// auditLog is the audit store with what guards it: the signer of its
// checkpoints and their verifier.
type auditLog struct {
	store    audit.Store
	signer   note.Signer
	verifier note.Verifier
}

// openAuditLog opens the store and the signing key (made at first start)
// and checks the log before anything is served: the append-only triggers
// are in place and the stored tree matches its latest signed checkpoint
// (and the witness file, when configured). A log that fails is refused
// with what is wrong; nothing is repaired.
func openAuditLog(ctx context.Context, c AuditConfig, logger *slog.Logger, progress io.Writer) (*auditLog, error) {
	signer, err := audit.LoadSigner(c.SigningKeyFile, true, "")
	if err != nil {
		return nil, fmt.Errorf("audit.signing_key_file: %w", err)
	}
	verifier, err := audit.SignerVerifier(c.SigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("audit.signing_key_file: %w", err)
	}
	store, err := openStore(ctx, c, false)
	if err != nil {
		return nil, err
	}
	var witness []byte
	if c.WitnessFile != "" {
		if witness, err = audit.ReadWitness(c.WitnessFile); err != nil {
			store.Close()
			return nil, fmt.Errorf("audit.witness_file: %w", err)
		}
	}
	start := time.Now()
	opts := audit.IntegrityOptions{Quick: c.StartupCheck == "quick", Witness: witness}
	if progress != nil {
		opts.Progress = progressPrinter(progress, "checking the audit log")
	}
	if err := audit.CheckIntegrity(ctx, store, verifier, opts); err != nil {
		store.Close()
		return nil, fmt.Errorf("the audit log failed its integrity check, so the gateway does not start (run `klantbeeld audit verify` for details): %w", err)
	}
	logger.Info("audit log checked", "check", c.StartupCheck, "ms", time.Since(start).Milliseconds())
	return &auditLog{store: store, signer: signer, verifier: verifier}, nil
}

// warnKeysBesideDatabase warns when a key sits in the folder of the SQLite
// file: whoever copies the database would take the keys along, and the
// pseudonyms and checkpoints would protect nothing.
func warnKeysBesideDatabase(c AuditConfig, logger *slog.Logger) {
	path, err := sqlite.PathFromDSN(c.DSN)
	if err != nil {
		return
	}
	dbDir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return
	}
	for key, file := range map[string]string{"audit.pseudonym_key_file": c.PseudonymKeyFile, "audit.signing_key_file": c.SigningKeyFile} {
		if dir, err := filepath.Abs(filepath.Dir(file)); err == nil && dir == dbDir {
			logger.Warn("a key is kept beside the audit database: keep it outside the database's folder in production", "key", key, "folder", dbDir)
		}
	}
}

// progressPrinter writes progress of a long run to w (stderr), about once a second.
func progressPrinter(w io.Writer, what string) func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		if now := time.Now(); now.Sub(last) >= time.Second || done == total {
			last = now
			fmt.Fprintf(w, "%s: %d of %d events\n", what, done, total)
		}
	}
}
