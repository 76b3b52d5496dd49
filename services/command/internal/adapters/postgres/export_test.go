package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RunInTx exposes runInTx to the external tests.
func RunInTx(ctx context.Context, pool *pgxpool.Pool, first func(*pgx.Batch), fn func(pgx.Tx) error) error {
	return runInTx(ctx, pool, first, fn)
}

// MigrationCount is the number of embedded migrations.
func MigrationCount() int {
	ms, err := loadMigrations()
	if err != nil {
		panic(err)
	}
	return len(ms)
}
