package outbox_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

// (7) Pruning deletes the rows published longer ago than the retention, in
// chunks, and nothing else: not recent ones, not unpublished ones however old.
func TestIntegrationPrunerDeletesOnlyOldPublishedRows(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	ctx := context.Background()
	mustCommit(t, pool, "t", company(t, 8)...)
	// ids 1–5: published 25h ago; 6: published 1h ago; 7: unpublished,
	// created 48h ago; 8: unpublished.
	for _, q := range []string{
		`UPDATE outbox SET published_at = now() - interval '25 hours' WHERE id <= 5`,
		`UPDATE outbox SET published_at = now() - interval '1 hour' WHERE id = 6`,
		`UPDATE outbox SET created_at = now() - interval '48 hours' WHERE id = 7`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p, err := outbox.NewPruner(pool, outbox.PrunerOptions{Retention: 24 * time.Hour, ChunkSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Prune(ctx)
	if err != nil || n != 5 {
		t.Fatalf("Prune = %d, %v; want 5, nil", n, err)
	}
	if got := ids(t, pool); !slices.Equal(got, []int64{6, 7, 8}) {
		t.Errorf("rows left %v, want [6 7 8]", got)
	}
	if n, err := p.Prune(ctx); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0, nil", n, err)
	}
}

// A discarded row (published_at and discarded_at set) is pruned like a
// published one once older than the retention; a parked row never is,
// however old, and neither are the rows held back behind it.
func TestIntegrationPrunerDiscardedAndParkedRows(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	ctx := context.Background()
	mustCommit(t, pool, "t", company(t, 3)...)
	// 1: discarded 25h ago; 2: parked 48h ago; 3: held behind it, 48h old.
	for _, q := range []string{
		`UPDATE outbox SET parked_at = now() - interval '26 hours', park_reason = 'too_large',
			published_at = now() - interval '25 hours', discarded_at = now() - interval '25 hours' WHERE id = 1`,
		`UPDATE outbox SET created_at = now() - interval '48 hours', parked_at = now() - interval '48 hours',
			park_reason = 'too_large' WHERE id = 2`,
		`UPDATE outbox SET created_at = now() - interval '48 hours' WHERE id = 3`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p, err := outbox.NewPruner(pool, outbox.PrunerOptions{Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1, nil", n, err)
	}
	if got := ids(t, pool); !slices.Equal(got, []int64{2, 3}) {
		t.Errorf("rows left %v, want [2 3]", got)
	}
}

// Run prunes periodically and returns nil when cancelled; a failing prune
// is logged, not fatal.
func TestIntegrationPrunerRun(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	ctx := context.Background()
	p, err := outbox.NewPruner(pool, outbox.PrunerOptions{Retention: time.Hour, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	mustCommit(t, pool, "t", company(t, 2)...)
	if _, err := pool.Exec(ctx, `UPDATE outbox SET published_at = now() - interval '2 hours' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the old row pruned", func() bool { return slices.Equal(ids(t, pool), []int64{2}) })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestIntegrationPrunerReportsDatabaseErrors(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	p, err := outbox.NewPruner(pool, outbox.PrunerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	if _, err := p.Prune(context.Background()); err == nil {
		t.Error("Prune on a closed pool = nil error, want an error")
	}
}

func ids(t testing.TB, pool *pgxpool.Pool) []int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
