package metrics_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/metrics"
)

// insertOutbox adds one outbox row created age ago, published if asked.
func insertOutbox(t *testing.T, db *pgxpool.Pool, age time.Duration, published bool) {
	t.Helper()
	_, err := db.Exec(context.Background(), `INSERT INTO outbox (event_id, topic, key, value, created_at, published_at)
		VALUES (gen_random_uuid(), 't', 'k', 'v', now() - make_interval(secs => $1),
		        CASE WHEN $2 THEN now() END)`, age.Seconds(), published)
	if err != nil {
		t.Fatalf("insert outbox row: %v", err)
	}
}

func TestIntegrationBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewBacklog(pool, 0, nil))
	get := func(name string) float64 {
		t.Helper()
		v, err := gatherValue(reg, name, "")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// Empty outbox.
	if n, age, up := get("companias_outbox_backlog_rows"), get("companias_outbox_oldest_unpublished_age_seconds"), get("companias_outbox_backlog_up"); n != 0 || age != 0 || up != 1 {
		t.Errorf("empty outbox: rows %g age %g up %g, want 0 0 1", n, age, up)
	}

	insertOutbox(t, pool, time.Hour, true) // published: not backlog, however old
	insertOutbox(t, pool, 90*time.Second, false)
	insertOutbox(t, pool, 10*time.Second, false)
	if n := get("companias_outbox_backlog_rows"); n != 2 {
		t.Errorf("backlog rows = %g, want 2", n)
	}
	// The age is measured on the database clock, so only the test's own
	// duration can add to it.
	if age := get("companias_outbox_oldest_unpublished_age_seconds"); age < 90 || age > 150 {
		t.Errorf("oldest unpublished age = %gs, want about 90s", age)
	}

	if n := get("companias_outbox_parked_rows"); n != 0 {
		t.Errorf("parked rows = %g, want 0", n)
	}

	// A parked row, however old, is not backlog but counted apart; a
	// discarded one is neither.
	insertOutbox(t, pool, 2*time.Hour, false)
	if _, err := pool.Exec(ctx, `UPDATE outbox SET parked_at = now(), park_reason = 'too_large'
		WHERE id = (SELECT max(id) FROM outbox)`); err != nil {
		t.Fatal(err)
	}
	insertOutbox(t, pool, 3*time.Hour, false)
	if _, err := pool.Exec(ctx, `UPDATE outbox SET parked_at = now(), published_at = now(), discarded_at = now()
		WHERE id = (SELECT max(id) FROM outbox)`); err != nil {
		t.Fatal(err)
	}
	if n, age, parked := get("companias_outbox_backlog_rows"), get("companias_outbox_oldest_unpublished_age_seconds"), get("companias_outbox_parked_rows"); n != 2 || age > 150 || parked != 1 {
		t.Errorf("with a parked and a discarded row: rows %g age %g parked %g, want 2, about 90s, 1", n, age, parked)
	}

	if _, err := pool.Exec(ctx, `UPDATE outbox SET published_at = now() WHERE published_at IS NULL AND parked_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	if n, age := get("companias_outbox_backlog_rows"), get("companias_outbox_oldest_unpublished_age_seconds"); n != 0 || age != 0 {
		t.Errorf("after publishing: rows %g age %g, want 0 0", n, age)
	}

	// The query can use the partial index of unpublished rows (the planner
	// prefers a sequential scan of a table this small, so forbid it).
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, `EXPLAIN `+metrics.BacklogSQL)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, idx := range []string{"outbox_unpublished_idx", "outbox_parked_idx"} {
		if !strings.Contains(strings.Join(plan, "\n"), idx) {
			t.Errorf("the backlog query cannot use %s:\n%s", idx, strings.Join(plan, "\n"))
		}
	}
}

func TestIntegrationBacklogDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	pool.Close() // every query now fails at once
	var logs strings.Builder
	c := metrics.NewBacklog(pool, time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	err = testutil.CollectAndCompare(c, strings.NewReader(`
# HELP companias_outbox_backlog_up 1 if the outbox backlog could be read at this scrape, 0 otherwise.
# TYPE companias_outbox_backlog_up gauge
companias_outbox_backlog_up 0
`))
	if err != nil {
		t.Error(err)
	}
	if !strings.Contains(logs.String(), "read outbox backlog") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
}

// hungQuerier plays a database that never answers.
type hungQuerier struct{}

func (hungQuerier) QueryRow(ctx context.Context, _ string, _ ...any) pgx.Row { return hungRow{ctx} }

type hungRow struct{ ctx context.Context }

func (r hungRow) Scan(...any) error {
	<-r.ctx.Done()
	return r.ctx.Err()
}

func TestBacklogTimesOut(t *testing.T) {
	t.Parallel()
	c := metrics.NewBacklog(hungQuerier{}, 50*time.Millisecond, nil)
	done := make(chan float64, 1)
	go func() { done <- testutil.ToFloat64(c) }() // only _up is exposed on failure
	select {
	case up := <-done:
		if up != 0 {
			t.Errorf("up = %g, want 0", up)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a scrape waited on a hung database")
	}
}
