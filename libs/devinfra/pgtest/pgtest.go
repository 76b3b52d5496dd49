// Package pgtest hands out throwaway PostgreSQL databases for tests and
// creates the long-lived development database for `make run`. It talks to
// an existing server (it does not embed one) through an admin URL whose role
// may CREATE and DROP databases.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// AdminURLEnv names the environment variable that overrides DefaultAdminURL.
const AdminURLEnv = "PGTEST_ADMIN_URL"

// DefaultAdminURL is the admin URL used when AdminURLEnv is unset: the local
// server with trust authentication for user postgres.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Timeouts for the admin round trips made by NewDatabase.
const (
	createTimeout = 30 * time.Second
	dropTimeout   = 30 * time.Second
	retryInterval = 50 * time.Millisecond
)

// PostgreSQL error codes handled here.
const (
	codeDuplicateDatabase = "42P04" // duplicate_database
	codeObjectInUse       = "55006" // object_in_use: template1 busy during CREATE DATABASE
	codeUniqueViolation   = "23505" // unique_violation: concurrent CREATE DATABASE of one name
)

// AdminURL returns the value of AdminURLEnv, or DefaultAdminURL when it is
// unset or empty.
func AdminURL() string {
	if u := os.Getenv(AdminURLEnv); u != "" {
		return u
	}
	return DefaultAdminURL
}

// NewDatabase creates an empty database with a unique random name (t_<hex>)
// through AdminURL and returns a URL DSN for it, with the admin URL's user,
// host and parameters. The database is dropped WITH (FORCE) in t.Cleanup, so
// connections still open then are terminated. NewDatabase calls t.Fatalf
// with the reason when PostgreSQL is unreachable or refuses; it never skips.
// It is safe to call from parallel tests.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL()

	name, err := randomName()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dsn, err := WithDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: admin URL from $%s: %v", AdminURLEnv, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), createTimeout)
	defer cancel()
	if err := createDatabase(ctx, admin, name); err != nil {
		t.Fatalf("pgtest: cannot create a test database on PostgreSQL at %s "+
			"(is the server running? set $%s to override): %v", redact(admin), AdminURLEnv, err)
	}

	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("pgtest: drop test database %s: %v", name, err)
		}
	})
	return dsn
}

// EnsureDatabase connects to adminURL and creates database name if it does
// not exist yet; an existing database is left untouched. name must be a
// plain identifier (see ValidateName). It is safe against a concurrent
// creator of the same database.
func EnsureDatabase(ctx context.Context, adminURL, name string) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("pgtest: ensure database: %w", err)
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("pgtest: ensure database %s: connect to %s: %w", name, redact(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if err != nil {
		return fmt.Errorf("pgtest: ensure database %s: look up: %w", name, err)
	}
	if exists {
		return nil
	}
	if err := createWithRetry(ctx, conn, name); err != nil {
		if code := pgCode(err); code == codeDuplicateDatabase || code == codeUniqueViolation {
			return nil // lost a race with another creator: the database exists
		}
		return fmt.Errorf("pgtest: ensure database %s: %w", name, err)
	}
	return nil
}

// WithDatabase returns dsn with its database name replaced by name. dsn must
// be a postgres:// or postgresql:// URL; user, password, host, port and
// query parameters are kept. name is path-escaped, not validated.
func WithDatabase(dsn, name string) (string, error) {
	if name == "" {
		return "", errors.New("pgtest: with database: empty database name")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error would print the whole DSN, password included.
		return "", errors.New("pgtest: with database: DSN is not a valid URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("pgtest: with database: DSN scheme %q is not postgres or postgresql "+
			"(keyword/value DSNs are not supported)", u.Scheme)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// ValidateName reports whether name is a plain PostgreSQL identifier that
// this package will create: 1 to 63 bytes, a letter or underscore followed
// by letters, digits or underscores. Callers still quote it in SQL.
func ValidateName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("invalid database name %q: want 1 to 63 characters", name)
	}
	for i, r := range name {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		digit := r >= '0' && r <= '9'
		if !letter && (i == 0 || !digit) {
			return fmt.Errorf("invalid database name %q: want [A-Za-z_][A-Za-z0-9_]*", name)
		}
	}
	return nil
}

// createDatabase connects to adminURL and creates database name.
func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return createWithRetry(ctx, conn, name)
}

// createWithRetry runs CREATE DATABASE, retrying while the template database
// is busy (another session connected to template1), until ctx is done.
func createWithRetry(ctx context.Context, conn *pgx.Conn, name string) error {
	q := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	for {
		_, err := conn.Exec(ctx, q)
		if err == nil {
			return nil
		}
		if pgCode(err) != codeObjectInUse {
			return fmt.Errorf("create database %s: %w", name, err)
		}
		timer := time.NewTimer(retryInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("create database %s: %w (last: %w)", name, ctx.Err(), err)
		case <-timer.C:
		}
	}
}

// dropDatabase connects to adminURL and drops database name, terminating
// its remaining connections.
func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("drop: %w", err)
	}
	return nil
}

// randomName returns a fresh database name t_<16 hex digits>.
func randomName() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random database name: %w", err)
	}
	return "t_" + hex.EncodeToString(b[:]), nil
}

// pgCode returns the SQLSTATE of err, or "" if it carries none.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// redact hides the password of a URL DSN for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "<unparsable DSN>"
	}
	return u.Redacted()
}
