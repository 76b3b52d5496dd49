package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
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

// insertOutbox adds one unpublished outbox row created age ago.
func insertOutbox(t *testing.T, db *pgxpool.Pool, age time.Duration) {
	t.Helper()
	_, err := db.Exec(context.Background(), `INSERT INTO outbox (event_id, topic, key, value, created_at)
		VALUES (gen_random_uuid(), 't', 'k', 'v', now() - make_interval(secs => $1))`, age.Seconds())
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
	b := metrics.NewBacklog(pool, metrics.BacklogOptions{})
	reg.MustRegister(b)
	get := func(name string) float64 {
		t.Helper()
		if err := b.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
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

	insertOutbox(t, pool, 90*time.Second)
	insertOutbox(t, pool, 10*time.Second)
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

	// A parked row, however old, is not backlog but counted apart.
	insertOutbox(t, pool, 2*time.Hour)
	if _, err := pool.Exec(ctx, `UPDATE outbox SET parked_at = now(), park_reason = 'too_large'
		WHERE id = (SELECT max(id) FROM outbox)`); err != nil {
		t.Fatal(err)
	}
	if n, age, parked := get("companias_outbox_backlog_rows"), get("companias_outbox_oldest_unpublished_age_seconds"), get("companias_outbox_parked_rows"); n != 2 || age > 150 || parked != 1 {
		t.Errorf("with a parked row: rows %g age %g parked %g, want 2, about 90s, 1", n, age, parked)
	}

	// The relay deletes what it published.
	if _, err := pool.Exec(ctx, `DELETE FROM outbox WHERE parked_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	if n, age := get("companias_outbox_backlog_rows"), get("companias_outbox_oldest_unpublished_age_seconds"); n != 0 || age != 0 {
		t.Errorf("after publishing: rows %g age %g, want 0 0", n, age)
	}

	// The query can use the partial index of parked rows (the planner
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
	for _, idx := range []string{"outbox_parked_idx"} {
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
	c := metrics.NewBacklog(pool, metrics.BacklogOptions{Timeout: time.Second})
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("Refresh on a closed pool succeeded")
	}
	err = testutil.CollectAndCompare(c, strings.NewReader(`
# HELP companias_outbox_backlog_up 1 if the last periodic read of the outbox backlog succeeded, 0 otherwise.
# TYPE companias_outbox_backlog_up gauge
companias_outbox_backlog_up 0
`))
	if err != nil {
		t.Error(err)
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

// A hung database costs a refresh its timeout, and a scrape nothing.
func TestBacklogTimesOut(t *testing.T) {
	t.Parallel()
	c := metrics.NewBacklog(hungQuerier{}, metrics.BacklogOptions{Timeout: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- c.Refresh(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Refresh = %v, want the deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a refresh waited on a hung database")
	}
	if up := testutil.ToFloat64(c); up != 0 { // only _up is exposed on failure
		t.Errorf("up = %g, want 0", up)
	}
}

// countingQuerier answers every query with a fixed backlog (3 rows, the
// oldest 42 s old, 1 parked), or fails when fail is set, and counts them.
type countingQuerier struct {
	queries atomic.Int64
	fail    atomic.Bool
}

func (q *countingQuerier) QueryRow(context.Context, string, ...any) pgx.Row {
	q.queries.Add(1)
	return countingRow{q.fail.Load()}
}

type countingRow struct{ fail bool }

func (r countingRow) Scan(dest ...any) error {
	if r.fail {
		return errors.New("connection refused")
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	oldest := now.Add(-42 * time.Second)
	*dest[0].(*int64) = 3
	*dest[1].(**time.Time) = &oldest
	*dest[2].(*time.Time) = now
	*dest[3].(*int64) = 1
	return nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// Scrapes read the cached values: however many arrive, the database sees
// one query per interval.
func TestBacklogScrapesDoNotQuery(t *testing.T) {
	t.Parallel()
	q := &countingQuerier{}
	b := metrics.NewBacklog(q, metrics.BacklogOptions{Interval: time.Hour})
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	waitFor(t, "the first refresh", func() bool { return testutil.ToFloat64(collectorOf(b, "companias_outbox_backlog_up")) == 1 })

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 20 {
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := q.queries.Load(); n != 1 {
		t.Errorf("1000 scrapes within one interval ran %d queries, want 1", n)
	}
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP companias_outbox_backlog_rows Outbox rows not yet published to Kafka, read periodically; parked rows excluded, rows held back behind a parked row of their company included.
# TYPE companias_outbox_backlog_rows gauge
companias_outbox_backlog_rows 3
# HELP companias_outbox_oldest_unpublished_age_seconds Age of the oldest unpublished outbox row (0 when the backlog is empty), read periodically; parked rows excluded, rows held back behind a parked row included.
# TYPE companias_outbox_oldest_unpublished_age_seconds gauge
companias_outbox_oldest_unpublished_age_seconds 42
`), "companias_outbox_backlog_rows", "companias_outbox_oldest_unpublished_age_seconds")
	if err != nil {
		t.Error(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on cancel", err)
	}
}

// Run keeps refreshing; a failed read drops the old values (only _up 0)
// and is logged, and the next good read brings them back.
func TestBacklogRunRefreshes(t *testing.T) {
	t.Parallel()
	q := &countingQuerier{}
	logs := &lockedBuffer{}
	b := metrics.NewBacklog(q, metrics.BacklogOptions{Interval: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	up := func() float64 { return testutil.ToFloat64(collectorOf(b, "companias_outbox_backlog_up")) }
	waitFor(t, "a good read", func() bool { return up() == 1 })
	q.fail.Store(true)
	waitFor(t, "a failed read to show", func() bool { return testutil.CollectAndCount(b) == 1 && up() == 0 })
	waitFor(t, "the failure in the log", func() bool { return strings.Contains(logs.String(), "read outbox backlog") })
	q.fail.Store(false)
	waitFor(t, "a good read again", func() bool { return testutil.CollectAndCount(b) == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on cancel", err)
	}
}

// collectorOf narrows c to the one metric name, for testutil.ToFloat64.
func collectorOf(c prometheus.Collector, name string) prometheus.Collector {
	return filtered{c, name}
}

type filtered struct {
	prometheus.Collector
	name string
}

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.Collector.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
