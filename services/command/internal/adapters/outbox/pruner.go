package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/seedwork/retry"
)

// PrunerOptions tune a Pruner. Zero fields take the documented defaults.
type PrunerOptions struct {
	// Retention is how long published rows are kept (to look at, or to
	// replay by clearing published_at). Default 24h.
	Retention time.Duration
	// Interval is the time between two prunes. Default 1m.
	Interval time.Duration
	// ChunkSize is the maximum number of rows one DELETE removes, so that a
	// large backlog is pruned in short transactions. Default 1000.
	ChunkSize int
	// Logger receives the pruner's error logs. Default: none.
	Logger *slog.Logger
}

// Pruner deletes published outbox rows older than the retention, discarded
// ones included (an operator gave up on them: published_at is set).
// Unpublished rows, parked ones included, are never touched. Several pruners (one per replica) may run at once:
// they skip each other's rows.
type Pruner struct {
	pool *pgxpool.Pool
	opts PrunerOptions
	log  *slog.Logger
}

// NewPruner returns a Pruner on pool.
func NewPruner(pool *pgxpool.Pool, opts PrunerOptions) (*Pruner, error) {
	if pool == nil {
		return nil, errors.New("outbox pruner: pool is required")
	}
	if opts.Retention <= 0 {
		opts.Retention = 24 * time.Hour
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 1000
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pruner{pool: pool, opts: opts, log: log.With("component", "outbox-pruner")}, nil
}

// Run prunes every Interval (the first time right away) until ctx is
// cancelled, then returns nil. A failed prune is logged and retried at the
// next tick.
func (p *Pruner) Run(ctx context.Context) error {
	for {
		if n, err := p.Prune(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("outbox prune failed", "err", err, "deleted", n)
		}
		if !retry.Sleep(ctx, p.opts.Interval) {
			return nil
		}
	}
}

const pruneSQL = `DELETE FROM outbox WHERE id IN (
	SELECT id FROM outbox
	WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => $1)
	ORDER BY published_at LIMIT $2
	FOR UPDATE SKIP LOCKED)`

// Prune deletes, chunk by chunk, the rows published more than Retention ago
// (by the database clock), and returns how many it deleted.
func (p *Pruner) Prune(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := p.pool.Exec(ctx, pruneSQL, p.opts.Retention.Seconds(), p.opts.ChunkSize)
		if err != nil {
			return total, fmt.Errorf("prune outbox: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(p.opts.ChunkSize) {
			return total, nil
		}
	}
}
