package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

// awaitMigrations polls ready every interval until it returns nil (the
// embedded migrations are applied) or ctx ends; then it returns the last
// error, which matches postgres.ErrMigrationsPending when the schema was
// reachable but behind. It logs what it waits for once, then every minute.
func awaitMigrations(ctx context.Context, ready func(context.Context) error, interval time.Duration, log *slog.Logger) error {
	var last error
	var lastLog time.Time
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil { // not the check ctx's end cut short
			last = err
		}
		if time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			log.WarnContext(ctx, "waiting for the schema migrations (MIGRATE_ON_START=false: run companias-command migrate)", "err", err)
		}
		select {
		case <-ctx.Done():
			if errors.Is(last, postgres.ErrMigrationsPending) {
				return fmt.Errorf("%w (MIGRATE_ON_START=false: run companias-command migrate first)", last)
			}
			return fmt.Errorf("wait for schema migrations: %w", errors.Join(last, ctx.Err()))
		case <-t.C:
		}
	}
}
