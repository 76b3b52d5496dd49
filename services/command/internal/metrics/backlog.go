package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBacklogTimeout bounds the backlog query of one scrape.
const DefaultBacklogTimeout = 2 * time.Second

// Querier runs one query returning one row; *pgxpool.Pool implements it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// backlogSQL reads the unpublished rows (parked ones excluded) through the
// partial index outbox_unpublished_idx, and counts the parked rows through
// outbox_parked_idx; now() is the database's clock, the one that stamped
// created_at, so the age is free of clock skew.
const backlogSQL = `SELECT count(*), min(created_at), now(),
	(SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL AND published_at IS NULL)
FROM outbox WHERE published_at IS NULL AND parked_at IS NULL`

// Backlog is a collector of the outbox backlog, read from PostgreSQL at each
// scrape:
//
//	companias_outbox_backlog_rows                    unpublished rows, parked ones excluded
//	companias_outbox_oldest_unpublished_age_seconds  age of the oldest one (0 if none)
//	companias_outbox_parked_rows                     parked rows (waiting for an operator)
//	companias_outbox_backlog_up                      1 if the query succeeded, else 0
//
// The unpublished rows include those held back behind a parked row of
// their company: they grow older until the parked row is retried or
// discarded.
//
// When the query fails or times out, only the _up gauge (0) is exposed and
// the error is logged: a scrape never hangs on the database and never shows
// a stale backlog.
type Backlog struct {
	db      Querier
	timeout time.Duration
	log     *slog.Logger

	rows, age, parked, up *prometheus.Desc
}

// NewBacklog returns a Backlog collector querying db with at most timeout
// per scrape (DefaultBacklogTimeout if not positive), logging failures to
// log (nil: discard). Register it with the service's registry.
func NewBacklog(db Querier, timeout time.Duration, log *slog.Logger) *Backlog {
	if timeout <= 0 {
		timeout = DefaultBacklogTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backlog{
		db: db, timeout: timeout, log: log,
		rows: prometheus.NewDesc("companias_outbox_backlog_rows",
			"Outbox rows not yet published to Kafka, read at scrape time; parked rows excluded, rows held back behind a parked row of their company included.", nil, nil),
		age: prometheus.NewDesc("companias_outbox_oldest_unpublished_age_seconds",
			"Age of the oldest unpublished outbox row (0 when the backlog is empty), read at scrape time; parked rows excluded, rows held back behind a parked row included.", nil, nil),
		parked: prometheus.NewDesc("companias_outbox_parked_rows",
			"Outbox rows parked because Kafka refused them permanently (or they could not be read), waiting for an operator to retry or discard them (companias-command outbox list), read at scrape time.", nil, nil),
		up: prometheus.NewDesc("companias_outbox_backlog_up",
			"1 if the outbox backlog could be read at this scrape, 0 otherwise.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (b *Backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- b.rows
	ch <- b.age
	ch <- b.parked
	ch <- b.up
}

// Collect implements prometheus.Collector: it runs one query.
func (b *Backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	var (
		n, parked int64
		oldest    *time.Time
		dbNow     time.Time
	)
	if err := b.db.QueryRow(ctx, backlogSQL).Scan(&n, &oldest, &dbNow, &parked); err != nil {
		b.log.Warn("read outbox backlog for metrics", "error", err)
		ch <- prometheus.MustNewConstMetric(b.up, prometheus.GaugeValue, 0)
		return
	}
	age := 0.0
	if oldest != nil {
		age = max(dbNow.Sub(*oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(b.rows, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(b.age, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(b.parked, prometheus.GaugeValue, float64(parked))
	ch <- prometheus.MustNewConstMetric(b.up, prometheus.GaugeValue, 1)
}
