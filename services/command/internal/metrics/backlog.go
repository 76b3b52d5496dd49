package metrics

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// DefaultBacklogInterval is how often Run reads the backlog.
	DefaultBacklogInterval = 5 * time.Second
	// DefaultBacklogTimeout bounds one backlog query.
	DefaultBacklogTimeout = 2 * time.Second
)

// Querier runs one query returning one row; *pgxpool.Pool implements it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// backlogSQL reads the unpublished rows (parked ones excluded; the relay
// deletes what it published, so the outbox holds only those two kinds), and
// counts the parked rows through outbox_parked_idx; now() is the database's
// clock, the one that stamped created_at, so the age is free of clock skew.
const backlogSQL = `SELECT count(*), min(created_at), now(),
	(SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL)
FROM outbox WHERE parked_at IS NULL`

// Backlog is a collector of the outbox backlog:
//
//	companias_outbox_backlog_rows                    unpublished rows, parked ones excluded
//	companias_outbox_oldest_unpublished_age_seconds  age of the oldest one (0 if none)
//	companias_outbox_parked_rows                     parked rows (waiting for an operator)
//	companias_outbox_backlog_up                      1 if the last read succeeded, else 0
//
// The unpublished rows include those held back behind a parked row of
// their company: they grow older until the parked row is retried or
// discarded.
//
// The values come from the last Refresh, which Run calls every interval:
// a scrape never touches the database, so scraping often (or a flood of
// requests to /metrics) costs PostgreSQL nothing. Until the first Refresh,
// and after a failed or timed-out one (the error is logged), only the _up
// gauge (0) is exposed: never a backlog older than one interval.
type Backlog struct {
	db       Querier
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger
	last     atomic.Pointer[backlogReading] // nil: no successful read yet

	rows, age, parked, up *prometheus.Desc
}

// backlogReading is the result of one successful Refresh.
type backlogReading struct {
	rows, parked int64
	age          float64 // seconds
}

// BacklogOptions tune a Backlog; the zero value takes the defaults.
type BacklogOptions struct {
	// Interval is how often Run reads the backlog (DefaultBacklogInterval
	// if not positive).
	Interval time.Duration
	// Timeout bounds one query (DefaultBacklogTimeout if not positive; at
	// most Interval).
	Timeout time.Duration
	// Logger receives read failures (nil: discard).
	Logger *slog.Logger
}

// NewBacklog returns a Backlog collector reading db. Register it with the
// service's registry and start its Run.
func NewBacklog(db Querier, o BacklogOptions) *Backlog {
	if o.Interval <= 0 {
		o.Interval = DefaultBacklogInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultBacklogTimeout
	}
	o.Timeout = min(o.Timeout, o.Interval)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Backlog{
		db: db, interval: o.Interval, timeout: o.Timeout, log: o.Logger,
		rows: prometheus.NewDesc("companias_outbox_backlog_rows",
			"Outbox rows not yet published to Kafka, read periodically; parked rows excluded, rows held back behind a parked row of their company included.", nil, nil),
		age: prometheus.NewDesc("companias_outbox_oldest_unpublished_age_seconds",
			"Age of the oldest unpublished outbox row (0 when the backlog is empty), read periodically; parked rows excluded, rows held back behind a parked row included.", nil, nil),
		parked: prometheus.NewDesc("companias_outbox_parked_rows",
			"Outbox rows parked because Kafka refused them permanently (or they could not be read), waiting for an operator to retry or discard them (companias-command outbox list), read periodically.", nil, nil),
		up: prometheus.NewDesc("companias_outbox_backlog_up",
			"1 if the last periodic read of the outbox backlog succeeded, 0 otherwise.", nil, nil),
	}
}

// Run refreshes the backlog at once and then every interval until ctx is
// done; it returns nil. Start it once, beside the service's other workers.
func (b *Backlog) Run(ctx context.Context) error {
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		if err := b.Refresh(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("read outbox backlog for metrics", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh runs the backlog query once, bounded by the timeout, and keeps
// its result for the scrapes; on failure it forgets the previous reading
// and returns the error.
func (b *Backlog) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var (
		r      backlogReading
		oldest *time.Time
		dbNow  time.Time
	)
	if err := b.db.QueryRow(ctx, backlogSQL).Scan(&r.rows, &oldest, &dbNow, &r.parked); err != nil {
		b.last.Store(nil)
		return err
	}
	if oldest != nil {
		r.age = max(dbNow.Sub(*oldest).Seconds(), 0)
	}
	b.last.Store(&r)
	return nil
}

// Describe implements prometheus.Collector.
func (b *Backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- b.rows
	ch <- b.age
	ch <- b.parked
	ch <- b.up
}

// Collect implements prometheus.Collector: it reports the last reading
// and runs no query.
func (b *Backlog) Collect(ch chan<- prometheus.Metric) {
	r := b.last.Load()
	if r == nil {
		ch <- prometheus.MustNewConstMetric(b.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(b.rows, prometheus.GaugeValue, float64(r.rows))
	ch <- prometheus.MustNewConstMetric(b.age, prometheus.GaugeValue, r.age)
	ch <- prometheus.MustNewConstMetric(b.parked, prometheus.GaugeValue, float64(r.parked))
	ch <- prometheus.MustNewConstMetric(b.up, prometheus.GaugeValue, 1)
}
