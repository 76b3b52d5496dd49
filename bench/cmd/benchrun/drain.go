package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
)

// drainRun is one backlog drain of the relay throughput figure.
type drainRun struct {
	rows      int
	relay     time.Duration // backlog committed → no row of it left (the relay deletes what it published) (PostgreSQL clock)
	raw       time.Duration // kafka-go: first WriteMessages call → last one acknowledged
	relayRate float64       // rows/s
	rawRate   float64       // messages/s
	relayCPU  cpuPerOp      // CPU ms per row during the relay's drain (service: the writer)
	rawCPU    cpuPerOp      // CPU ms per message during the raw run (self: kafka-go and kfake)
}

// Statements of the drain figure. The backlog is records the writer
// published (keys, values and headers unchanged) under new event ids and
// the drain topic, inserted as outbox rows in one transaction that wakes the
// relay the way the writer does.
const (
	drainInsert = `WITH ins AS (
        INSERT INTO outbox (event_id, topic, key, value, headers)
        SELECT gen_random_uuid(), $1, k, v, h::jsonb FROM unnest($2::bytea[], $3::bytea[], $4::text[]) AS u(k, v, h)
        RETURNING id)
    SELECT coalesce(min(id), 0), coalesce(max(id), 0), count(*) FROM ins`
	drainNotify = `SELECT pg_notify('companias_outbox', '')`
	// The relay deletes the rows Kafka acknowledged: the backlog is
	// drained when none of its rows is left.
	drainProgress = `SELECT EXISTS (SELECT 1 FROM outbox WHERE id BETWEEN $1 AND $2), clock_timestamp()`
)

// drainPoll is how often benchDrain looks for the end of the drain; the
// relay time it reports is late by at most that and one round trip.
const drainPoll = 2 * time.Millisecond

// benchDrain measures the running writer's outbox relay on a backlog: n
// records the writer published on srcTopic (read from k) are committed as
// outbox rows for topic in one transaction (with the writer's
// notification), and the relay publishes them in batches of its default
// size. Raw ceiling: kafka-go, configured like the relay's writer, writing
// the same messages to rawTopic in WriteMessages calls of the relay's batch
// size, one after the other.
func benchDrain(ctx context.Context, b *bench, pool *pgxpool.Pool, writerPid int, k kafkaSide, kw *kafka.Writer, srcTopic, topic, rawTopic string, n int) (drainRun, error) {
	var out drainRun
	msgs, err := topicMessages(ctx, k, srcTopic, rawTopic, n)
	if err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	if len(msgs) == 0 {
		return out, fmt.Errorf("drain backlog: no records on %s to copy", srcTopic)
	}
	keys, values, headers := make([][]byte, len(msgs)), make([][]byte, len(msgs)), make([]string, len(msgs))
	for i, m := range msgs {
		keys[i], values[i] = m.Key, m.Value
		if headers[i], err = outboxHeaders(m.Headers); err != nil {
			return out, err
		}
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var lo, hi int64
	if err := tx.QueryRow(ctx, drainInsert, topic, keys, values, headers).Scan(&lo, &hi, &out.rows); err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	if _, err := tx.Exec(ctx, drainNotify); err != nil {
		return out, fmt.Errorf("drain backlog: %w", err)
	}
	// The CPU of the drain starts at the commit, which wakes the relay
	// (the insert itself is not the relay's).
	cpu0 := takeCPU(writerPid)
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
			left bool
			now  time.Time
		)
		if err := pool.QueryRow(ctx, drainProgress, lo, hi).Scan(&left, &now); err != nil {
			return out, fmt.Errorf("drain progress: %w", err)
		}
		if !left {
			out.relay = now.Sub(committed)
			out.relayCPU = cpu0.perOp(takeCPU(writerPid), out.rows)
			break
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("the relay left rows of %d unpublished after %s", out.rows, b.projTimeout)
		}
		if err := sleepCtx(ctx, drainPoll); err != nil {
			return out, err
		}
	}

	cpu0 = takeCPU(0)
	t0 := time.Now()
	if err := writeChunks(ctx, kw, msgs, relayBatchSize); err != nil {
		return out, fmt.Errorf("raw kafka-go drain: %w", err)
	}
	out.raw = time.Since(t0)
	out.rawCPU = cpu0.perOp(takeCPU(0), len(msgs))
	out.relayRate = float64(out.rows) / out.relay.Seconds()
	out.rawRate = float64(len(msgs)) / out.raw.Seconds()
	return out, nil
}

// outboxHeaders encodes record headers as the writer stores them in
// outbox.headers: a JSON array of {"key", "value"} objects, or {"key",
// "b64"} for a value that is not UTF-8 text without NUL.
func outboxHeaders(hs []kafka.Header) (string, error) {
	type header struct {
		Key   string  `json:"key"`
		Value *string `json:"value,omitempty"`
		B64   *string `json:"b64,omitempty"`
	}
	out := make([]header, len(hs))
	for i, h := range hs {
		out[i].Key = h.Key
		if utf8.Valid(h.Value) && !bytes.ContainsRune(h.Value, 0) {
			v := string(h.Value)
			out[i].Value = &v
		} else {
			v := base64.StdEncoding.EncodeToString(h.Value)
			out[i].B64 = &v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode outbox headers: %w", err)
	}
	return string(b), nil
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
	p("While the writer of figures 2 and 5 runs, %d records its relay published in figure 1 (keys, values and", r.drain[0].rows)
	p("headers unchanged, new event ids, a topic of their own) are committed as outbox rows in one transaction that also sends the")
	p("writer's `pg_notify('companias_outbox', '')`. Its relay claims them in batches of %d (the default", relayBatchSize)
	p("OUTBOX_BATCH_SIZE), publishes each batch with one WriteMessages call (RequireAll) and deletes its rows.")
	p("*Relay* runs from the commit to the first poll (every %s) that finds none of the rows left: the relay", drainPoll)
	p("deletes each row once Kafka acknowledged it (both times read on the PostgreSQL clock). Raw")
	p("ceiling: kafka-go, configured like the relay's writer, writing the same messages to another topic in")
	p("WriteMessages calls of %d, one after the other: the publish alone, without the claim and the delete.", relayBatchSize)
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

// cpuMedDrain is the per-process median of the CPU per row of the runs.
func cpuMedDrain(ds []drainRun, f func(drainRun) cpuPerOp) cpuPerOp {
	med := func(g func(cpuPerOp) float64) float64 {
		return aggregate(mapDrain(ds, func(d drainRun) float64 { return g(f(d)) })).med
	}
	return cpuPerOp{
		service:  med(func(c cpuPerOp) float64 { return c.service }),
		self:     med(func(c cpuPerOp) float64 { return c.self }),
		postgres: med(func(c cpuPerOp) float64 { return c.postgres }),
		machine:  med(func(c cpuPerOp) float64 { return c.machine }),
	}
}
