package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

func TestAwaitMigrations(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	t.Run("applied after a while", func(t *testing.T) {
		t.Parallel()
		calls := 0
		ready := func(context.Context) error {
			if calls++; calls < 3 {
				return fmt.Errorf("%w: 0004_x.sql", postgres.ErrMigrationsPending)
			}
			return nil
		}
		if err := awaitMigrations(t.Context(), ready, time.Millisecond, log); err != nil || calls != 3 {
			t.Errorf("awaitMigrations = %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("never applied", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		ready := func(context.Context) error { return fmt.Errorf("%w: 0004_x.sql", postgres.ErrMigrationsPending) }
		err := awaitMigrations(ctx, ready, time.Millisecond, log)
		if !errors.Is(err, postgres.ErrMigrationsPending) || !strings.Contains(err.Error(), "companias-command migrate") {
			t.Errorf("awaitMigrations = %v, want ErrMigrationsPending telling to run migrate", err)
		}
	})
	t.Run("database down", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		down := errors.New("connection refused")
		err := awaitMigrations(ctx, func(context.Context) error { return down }, time.Millisecond, log)
		if !errors.Is(err, down) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("awaitMigrations = %v, want the connection error and the deadline", err)
		}
	})
}

// With MIGRATE_ON_START=false on an empty database the writer waits for
// the migrations and fails without them; here the wait is cut short.
func TestIntegrationServeWithoutMigrationsWaits(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	pool, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	var logs bytes.Buffer
	err = awaitMigrations(ctx, postgres.NewChecker(pool).Ready, 100*time.Millisecond, slog.New(slog.NewJSONHandler(&logs, nil)))
	if !errors.Is(err, postgres.ErrMigrationsPending) {
		t.Errorf("awaitMigrations on an empty database = %v, want ErrMigrationsPending", err)
	}
	if !strings.Contains(logs.String(), "waiting for the schema migrations") {
		t.Errorf("logged %q, want what it waits for", logs.String())
	}
}
