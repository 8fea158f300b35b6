// Package pgtest gives tests a PostgreSQL database of their own: the server
// named by KLANTBEELD_TEST_POSTGRES_URL (the test is skipped when it is
// unset and fails when it is set but unreachable, so that CI never passes
// by skipping), a fresh schema per test that is dropped at the end, so tests
// run in parallel on one shared database, and a TCP proxy the test can cut
// to take PostgreSQL away mid-test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable with the PostgreSQL URL of the
// tests, e.g. postgres://postgres@127.0.0.1:5432/test. Its user must be
// allowed to create schemas and roles (a superuser, for the tamper tests).
const EnvURL = "KLANTBEELD_TEST_POSTGRES_URL"

// connectTimeout bounds reaching the test server.
const connectTimeout = 10 * time.Second

// URL returns the test server's URL. It skips the test when EnvURL is unset
// and fails it when the server cannot be reached.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL tests (set it to e.g. postgres://postgres@127.0.0.1:5432/test to run them)", EnvURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		// Never skip here: CI set the variable, so PostgreSQL must be there.
		t.Fatalf("%s is set but PostgreSQL cannot be reached: %v", EnvURL, err)
	}
	_ = conn.Close(ctx)
	return u
}

// Schema creates a schema with a random name (kb_test_…) on the server at
// dsn and drops it, with everything in it, when the test ends.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "kb_test_" + hex.EncodeToString(b)
	Exec(t, dsn, "", "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		// The test's own context is done by now.
		Exec(t, dsn, "", "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	})
	return name
}

// Conn connects to dsn as its user with schema ("" for the server's
// default) first on the search path, as an operator's psql would; it is
// closed when the test ends.
func Conn(t testing.TB, dsn, schema string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if schema != "" {
		cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL statements on a connection of their own (see Conn) and
// fails the test on an error.
func Exec(t testing.TB, dsn, schema string, sql string, args ...any) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if schema != "" {
		cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// WithAddr returns dsn with its host and port replaced by addr, to reach
// the same server through a Proxy.
func WithAddr(t testing.TB, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s must be a postgres:// URL to be proxied", EnvURL)
	}
	u.Host = addr
	return u.String()
}

// WithoutTLS returns dsn with sslmode=disable, for a Proxy that must read
// the protocol (Proxy.CutAtCommit).
func WithoutTLS(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: %s must be a postgres:// URL", EnvURL)
	}
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// Addr is the host:port the server of dsn listens on.
func Addr(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
}
