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

// SetGroupCommitTest lets one committer at a time run and calls onBatch with
// the size of each batch before writing it (onBatch may block).
func SetGroupCommitTest(r *Repository, onBatch func(n int)) {
	r.group.committers = 1
	r.group.onBatch = onBatch
}

// QueuedAdds is the number of creates waiting for a committer.
func QueuedAdds(r *Repository) int {
	r.group.mu.Lock()
	defer r.group.mu.Unlock()
	return len(r.group.queue)
}
