package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
)

// drainRun is one backlog drain of the relay throughput figure.
type drainRun struct {
	rows      int
	relay     time.Duration // backlog committed → last row stamped published (PostgreSQL clock)
	raw       time.Duration // kafka-go: first WriteMessages call → last one acknowledged
	relayRate float64       // rows/s
	rawRate   float64       // messages/s
}

// Statements of the drain figure. The backlog copies rows the writer
// stored (keys, values and headers unchanged) under new event ids and the
// drain topic, and wakes the relay the way the writer does.
const (
	drainInsert = `WITH ins AS (
        INSERT INTO outbox (event_id, topic, key, value, headers)
        SELECT gen_random_uuid(), $1, key, value, headers FROM outbox WHERE topic = $2 ORDER BY id LIMIT $3
        RETURNING id)
    SELECT coalesce(min(id), 0), coalesce(max(id), 0), count(*) FROM ins`
	drainNotify   = `SELECT pg_notify('companias_outbox', '')`
	drainProgress = `SELECT count(*) FILTER (WHERE published_at IS NULL), coalesce(max(published_at), 'epoch')
    FROM outbox WHERE id BETWEEN $1 AND $2`
)

// benchDrain measures the running writer's outbox relay on a backlog: n
// rows copied from those stored on srcTopic are committed in one
// transaction (with the writer's notification) for topic, and the relay
// publishes them in batches of its default size. Raw ceiling: kafka-go,
// configured like the relay's writer, writing the same messages to
// rawTopic in WriteMessages calls of the relay's batch size, one after the
// other.
func benchDrain(ctx context.Context, b *bench, pool *pgxpool.Pool, kw *kafka.Writer, srcTopic, topic, rawTopic string, n int) (drainRun, error) {
	var out drainRun
	tx, err := pool.Begin(ctx)
	if err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var lo, hi int64
	if err := tx.QueryRow(ctx, drainInsert, topic, srcTopic, n).Scan(&lo, &hi, &out.rows); err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	if out.rows == 0 {
		return out, fmt.Errorf("drain backlog: no outbox rows on %s to copy", srcTopic)
	}
	if _, err := tx.Exec(ctx, drainNotify); err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	var committed time.Time
	if err := pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&committed); err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	deadline := time.Now().Add(b.projTimeout)
	for {
		var (
			left int
			last time.Time
		)
		if err := pool.QueryRow(ctx, drainProgress, lo, hi).Scan(&left, &last); err != nil {
			return out, fmt.Errorf("drain progress: %w", err)
		}
		if left == 0 {
			out.relay = last.Sub(committed)
			break
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("the relay left %d of %d rows unpublished after %s", left, out.rows, b.projTimeout)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return out, err
		}
	}

	msgs, err := outboxMessages(ctx, pool, rawTopic,
		`SELECT key, value, headers::text FROM outbox WHERE id BETWEEN $1 AND $2 ORDER BY id`, lo, hi)
	if err != nil {
		return out, err
	}
	t0 := time.Now()
	if err := writeChunks(ctx, kw, msgs, relayBatchSize); err != nil {
		return out, fmt.Errorf("raw kafka-go drain: %w", err)
	}
	out.raw = time.Since(t0)
	out.relayRate = float64(out.rows) / out.relay.Seconds()
	out.rawRate = float64(len(msgs)) / out.raw.Seconds()
	return out, nil
}

// relayBatchSize is the writer's default OUTBOX_BATCH_SIZE.
const relayBatchSize = 500

// drainMarkdown writes the relay drain figure.
func (r *results) drainMarkdown(p func(string, ...any)) {
	if len(r.drain) == 0 {
		return
	}
	p("## 2b. Outbox relay throughput on a backlog")
	p("")
	p("While the writer of figures 2 and 5 runs, %d rows copied from its outbox rows of figure 1 (keys, values and", r.drain[0].rows)
	p("headers unchanged, new event ids, a topic of their own) are committed in one transaction that also sends the")
	p("writer's `pg_notify('companias_outbox', '')`. Its relay claims them in batches of %d (the default", relayBatchSize)
	p("OUTBOX_BATCH_SIZE), publishes each batch with one WriteMessages call (RequireAll) and stamps it published.")
	p("*Relay* runs from the commit to the last `published_at` stamp (both read on the PostgreSQL clock). Raw")
	p("ceiling: kafka-go, configured like the relay's writer, writing the same messages to another topic in")
	p("WriteMessages calls of %d, one after the other: the publish alone, without the claim and the stamp.", relayBatchSize)
	p("")
	p("| run | rows | relay s | relay rows/s | raw kafka-go s | raw msgs/s | relay / raw |")
	p("|---|---|---|---|---|---|---|")
	for i, d := range r.drain {
		p("| %d | %d | %.2f | %.0f | %.2f | %.0f | %.0f%% |", i+1, d.rows, d.relay.Seconds(), d.relayRate, d.raw.Seconds(), d.rawRate,
			100*d.relayRate/d.rawRate)
	}
	p("| **median (min–max)** | | | %s | | %s | %s |",
		fmtAgg(aggregate(mapDrain(r.drain, func(d drainRun) float64 { return d.relayRate })), "%.0f"),
		fmtAgg(aggregate(mapDrain(r.drain, func(d drainRun) float64 { return d.rawRate })), "%.0f"),
		pct(aggregate(mapDrain(r.drain, func(d drainRun) float64 { return d.relayRate / d.rawRate }))))
	p("")
}
