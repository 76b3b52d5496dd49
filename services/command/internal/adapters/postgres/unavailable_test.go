package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// repoCalls runs every call of the HTTP path on repo and returns their errors.
func repoCalls(t *testing.T, repo *postgres.Repository) map[string]error {
	t.Helper()
	ctx := t.Context()
	_, updErr := repo.Update(ctx, uuid.NewString(), command.Meta{}, func(*compania.Compania) error { return nil })
	_, _, lookupErr := repo.LookupIdempotency(ctx, "s", "k")
	return map[string]error{
		"Add":               repo.Add(ctx, newCompania(t, "Nu", "N-1"), command.Meta{}),
		"Update":            updErr,
		"LookupIdempotency": lookupErr,
	}
}

func poolTo(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg) // connects lazily
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestIntegrationNoConnectionSlotIsUnavailable: when PostgreSQL refuses a
// connection because it has no slot left ("too many clients", 53300: what a
// busy shared server answers), the calls fail with apperr.Unavailable, so
// that clients get a 503 and retry instead of a 500.
func TestIntegrationNoConnectionSlotIsUnavailable(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	setup := open(t, dsn)
	if err := postgres.Migrate(t.Context(), setup); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	setup.Close()

	// A role allowed one connection (superusers have no limit), held by
	// someone else. The refusal comes before any privilege matters.
	admin := func(sql string, args ...any) error {
		conn, err := pgx.Connect(context.Background(), pgtest.AdminURL())
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), sql, args...)
		return err
	}
	role := "slot_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if err := admin(fmt.Sprintf(`CREATE ROLE %s LOGIN NOSUPERUSER CONNECTION LIMIT 1`, role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, role)
		if err := admin("DROP ROLE IF EXISTS " + role); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	holder, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())

	repo := postgres.NewRepository(poolTo(t, fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", role, cfg.Host, cfg.Port, cfg.Database)))
	defer repo.Close()
	for call, err := range repoCalls(t, repo) {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "53300" {
			t.Fatalf("%s = %v, want the server's 53300", call, err)
		}
		if k := apperr.KindOf(err); k != apperr.Unavailable {
			t.Errorf("%s: kind %v, want unavailable (error %v)", call, k, err)
		}
	}
}

// TestIntegrationUnreachableServerIsUnavailable: nothing listens.
func TestIntegrationUnreachableServerIsUnavailable(t *testing.T) {
	t.Parallel()
	repo := postgres.NewRepository(poolTo(t, "postgres://postgres@127.0.0.1:1/x?sslmode=disable"))
	defer repo.Close()
	for call, err := range repoCalls(t, repo) {
		if k := apperr.KindOf(err); err == nil || k != apperr.Unavailable {
			t.Errorf("%s = %v (kind %v), want unavailable", call, err, k)
		}
	}
}

// TestIntegrationMissingDatabaseIsNotUnavailable: a configuration fault
// (3D000) is no outage: retrying does not help.
func TestIntegrationMissingDatabaseIsNotUnavailable(t *testing.T) {
	t.Parallel()
	dsn, err := pgtest.WithDatabase(pgtest.AdminURL(), "missing_"+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	repo := postgres.NewRepository(poolTo(t, dsn))
	defer repo.Close()
	for call, err := range repoCalls(t, repo) {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
			t.Fatalf("%s = %v, want the server's 3D000", call, err)
		}
		if k := apperr.KindOf(err); k == apperr.Unavailable {
			t.Errorf("%s: kind unavailable for a missing database", call)
		}
	}
}

// TestIntegrationDomainErrorsStayDomainErrors: the marking leaves the
// errors of a reachable server alone.
func TestIntegrationDomainErrorsStayDomainErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.repo.Update(t.Context(), uuid.NewString(), command.Meta{}, func(*compania.Compania) error { return nil }); !errors.Is(err, compania.ErrNotFound) || apperr.KindOf(err) == apperr.Unavailable {
		t.Errorf("Update of a missing company = %v (kind %v), want ErrNotFound", err, apperr.KindOf(err))
	}
}
