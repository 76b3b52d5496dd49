package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

func open(t *testing.T, dsn string, opts ...postgres.Option) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestIntegrationMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t, pgtest.NewDatabase(t))
	checker := postgres.NewChecker(pool)

	if err := checker.Ready(ctx); !errors.Is(err, postgres.ErrMigrationsPending) {
		t.Fatalf("Ready before Migrate = %v, want ErrMigrationsPending", err)
	}

	// Two replicas starting at once.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = postgres.Migrate(ctx, pool) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate %d: %v", i, err)
		}
	}
	// And again: idempotent.
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != postgres.MigrationCount() {
		t.Fatalf("schema_migrations has %d rows, want %d", n, postgres.MigrationCount())
	}
	for _, table := range []string{"companias", "compania_eventos", "outbox", "idempotency_keys", "outbox_relay_lease"} {
		if _, err := pool.Exec(ctx, "SELECT 1 FROM "+table+" LIMIT 1"); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	if err := checker.Ready(ctx); err != nil {
		t.Fatalf("Ready after Migrate: %v", err)
	}
	// motivo_rechazo is set exactly when the company is RECHAZADA.
	for _, tc := range []struct{ estado, motivo any }{{"RECHAZADA", nil}, {"PENDIENTE", "x"}, {"RECHAZADA", ""}} {
		_, err := pool.Exec(ctx, `INSERT INTO companias VALUES (gen_random_uuid(), 'n', 'a@b.co', 'i', $1, $2, now(), now(), 1)`,
			tc.estado, tc.motivo)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
			t.Errorf("insert estado %v motivo %v = %v, want a check violation", tc.estado, tc.motivo, err)
		}
	}
	// Cached: a second call only pings.
	if err := checker.Ready(ctx); err != nil {
		t.Fatalf("second Ready: %v", err)
	}
	// A fresh checker that sees a missing migration is not ready.
	if _, err := pool.Exec(ctx, "DELETE FROM schema_migrations WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	err := postgres.NewChecker(pool).Ready(ctx)
	if !errors.Is(err, postgres.ErrMigrationsPending) || !strings.Contains(err.Error(), "0001_init.sql") {
		t.Fatalf("Ready with 0001 missing = %v, want ErrMigrationsPending naming 0001_init.sql", err)
	}
	// The schema is there, so re-applying 0001 fails and the failed migration
	// records nothing: only the later migrations' records remain.
	if err := postgres.Migrate(ctx, pool); err == nil || !strings.Contains(err.Error(), "0001_init.sql") {
		t.Fatalf("Migrate over an existing schema = %v, want an error naming 0001_init.sql", err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations WHERE version = 1").Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema_migrations after failed Migrate: %d rows of 0001, %v; want 0", n, err)
	}

	// Closed pool: not ready, and not for pending migrations.
	pool.Close()
	if err := checker.Ready(ctx); err == nil || errors.Is(err, postgres.ErrMigrationsPending) {
		t.Fatalf("Ready on a closed pool = %v, want a connection error", err)
	}
	if err := postgres.NewChecker(pool).Ready(ctx); err == nil || errors.Is(err, postgres.ErrMigrationsPending) {
		t.Fatalf("fresh Ready on a closed pool = %v, want a connection error", err)
	}
}

func TestIntegrationMigrateRefusesEditedMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t, pgtest.NewDatabase(t))
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	// A newer release's migration is left alone.
	if _, err := pool.Exec(ctx, "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')"); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate with a newer migration applied: %v", err)
	}
	if err := postgres.NewChecker(pool).Ready(ctx); err != nil {
		t.Fatalf("Ready with a newer migration applied: %v", err)
	}
	if _, err := pool.Exec(ctx, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	err := postgres.Migrate(ctx, pool)
	if err == nil || !strings.Contains(err.Error(), "must not change") {
		t.Fatalf("Migrate with an edited migration = %v, want a checksum error", err)
	}
}

func TestIntegrationOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)

	pool := open(t, dsn, postgres.WithMaxConns(3))
	if got := pool.Config().MaxConns; got != 3 {
		t.Errorf("MaxConns = %d, want 3", got)
	}
	var app string
	if err := pool.QueryRow(ctx, "SHOW application_name").Scan(&app); err != nil || app != postgres.DefaultApplicationName {
		t.Errorf("application_name = %q, %v; want %q", app, err, postgres.DefaultApplicationName)
	}
	pool2 := open(t, dsn+"&pool_max_conns=5&application_name=other")
	if got := pool2.Config().MaxConns; got != 5 {
		t.Errorf("MaxConns from DSN = %d, want 5", got)
	}
	if err := pool2.QueryRow(ctx, "SHOW application_name").Scan(&app); err != nil || app != "other" {
		t.Errorf("application_name = %q, %v; want other", app, err)
	}
	pool3 := open(t, dsn, postgres.WithApplicationName("x"), postgres.WithConfig(func(c *pgxpool.Config) { c.MinConns = 1 }))
	if got := pool3.Config().MinConns; got != 1 {
		t.Errorf("MinConns = %d, want 1", got)
	}

	if _, err := postgres.Open(ctx, "postgres://postgres:secret@127.0.0.1:5432/x?pool_max_conns=nope"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open with a bad DSN = %v, want an error without the password", err)
	}
	// Nothing listens on port 1.
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, err := postgres.Open(ctx2, "postgres://postgres@127.0.0.1:1/postgres"); err == nil {
		t.Error("Open of an unreachable server succeeded")
	}
}
