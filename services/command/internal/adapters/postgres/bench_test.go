package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/integration"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// BenchmarkCreate compares Repository.Add (company row, event-log row and
// outbox row; one statement in one round trip, an implicit transaction; plus its
// share of the coalesced notification) with raw pgx writing the same company row and outbox row in one
// transaction: "raw" the plain way (BEGIN, INSERT, INSERT, COMMIT: four round
// trips) and "raw-batch" with Batch.BeginTx (two round trips: BEGIN with the
// INSERTs, then COMMIT). "Repository.Add+group" is Add with
// WithGroupCommit(DefaultGroupCommitMax): concurrent creates share one
// statement and one transaction. All
// variants run on one database in one process; creates/s is the figure to
// read. On a shared machine repeat the run (-count, or the test binary in a
// loop) and compare medians.
//
//	go test -run '^$' -bench Create -benchtime 3s ./internal/adapters/postgres/
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(b), postgres.WithMaxConns(40))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	repo := postgres.NewRepository(pool)
	defer repo.Close()
	group := postgres.NewRepository(pool, postgres.WithGroupCommit(postgres.DefaultGroupCommitMax))
	defer group.Close()

	adder := func(repo *postgres.Repository) func(context.Context) error {
		return func(ctx context.Context) error {
			c, err := compania.New(uuid.Must(uuid.NewV7()).String(), compania.Datos{
				Nombre: "Bench " + uuid.NewString(), Email: "bench@example.com", Identificacion: "900123456-7",
			}, now())
			if err != nil {
				return err
			}
			return repo.Add(ctx, c, command.Meta{Traceparent: traceparent})
		}
	}
	add, addGroup := adder(repo), adder(group)
	const (
		insertCompania = `INSERT INTO companias (id, nombre, email, identificacion, estado, motivo_rechazo,
            fecha_creacion, fecha_actualizacion, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
		insertOutbox = `INSERT INTO outbox (event_id, topic, key, value, headers) VALUES ($1, $2, $3, $4, $5)`
	)
	// The raw variants write a precomputed record: they pay for no encoding.
	tmpl, err := compania.New(uuid.NewString(), compania.Datos{Nombre: "T", Email: "t@example.com", Identificacion: "1"}, now())
	if err != nil {
		b.Fatal(err)
	}
	msg, err := integration.Message(uuid.NewString(), tmpl.Events()[0], traceparent)
	if err != nil {
		b.Fatal(err)
	}
	headers, err := outbox.EncodeHeaders(msg.Headers)
	if err != nil {
		b.Fatal(err)
	}
	rawArgs := func() (company, outbox []any) {
		id := uuid.Must(uuid.NewV7()).String()
		t := now()
		company = []any{id, "Bench " + uuid.NewString(), "bench@example.com", "900123456-7", "PENDIENTE", nil, t, t, 1}
		outbox = []any{uuid.Must(uuid.NewV7()).String(), companiaevent.DefaultTopic, []byte(id), msg.Value, headers}
		return company, outbox
	}
	raw := func(ctx context.Context) error {
		company, outbox := rawArgs()
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, insertCompania, company...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertOutbox, outbox...); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	rawBatch := func(ctx context.Context) error {
		company, outbox := rawArgs()
		batch := &pgx.Batch{}
		batch.BeginTx(pgx.TxOptions{})
		batch.Queue(insertCompania, company...)
		batch.Queue(insertOutbox, outbox...)
		br := pool.SendBatch(ctx, batch)
		tx := br.Tx()
		defer func() { _ = tx.Rollback(ctx) }()
		if err := br.Close(); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}

	for _, g := range []int{1, 8, 32} {
		for _, v := range []struct {
			name string
			op   func(context.Context) error
		}{{"raw", raw}, {"raw-batch", rawBatch}, {"Repository.Add", add}, {"Repository.Add+group", addGroup}} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", v.name, g), func(b *testing.B) { runParallel(b, g, v.op) })
		}
	}
}

// runParallel runs op b.N times on g goroutines and reports creates/s.
func runParallel(b *testing.B, g int, op func(context.Context) error) {
	ctx := context.Background()
	// Warm every connection's statement cache outside the timer.
	for range g {
		if err := op(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range g {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
}
