package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// tripCounter is a pgx tracer that counts the round trips a pool makes:
// one per query sent on its own, one per batch.
type tripCounter struct {
	mu       sync.Mutex
	queries  []string
	batches  int
	batchSQL []string // the statements of the batches
}

func (c *tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.mu.Lock()
	c.queries = append(c.queries, d.SQL)
	c.mu.Unlock()
	return ctx
}
func (c *tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.mu.Lock()
	c.batches++
	c.mu.Unlock()
	return ctx
}
func (c *tripCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.mu.Lock()
	c.batchSQL = append(c.batchSQL, d.SQL)
	c.mu.Unlock()
}
func (c *tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// take returns the counts so far and resets them.
func (c *tripCounter) take() (queries []string, batches int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	queries, batches = c.queries, c.batches
	c.queries, c.batches, c.batchSQL = nil, 0, nil
	return queries, batches
}

func tracedPool(t *testing.T) (*pgxpool.Pool, *tripCounter) {
	t.Helper()
	tc := &tripCounter{}
	pool := open(t, pgtest.NewDatabase(t), postgres.WithMaxConns(1),
		postgres.WithConfig(func(c *pgxpool.Config) { c.ConnConfig.Tracer = tc }))
	return pool, tc
}

// With no fn, the statements travel in one round trip, as one implicit
// transaction with no BEGIN or COMMIT; a failed statement rolls the whole
// transaction back and leaves the connection clean for the next user.
func TestIntegrationRunInTxOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, tc := tracedPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE t (x int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert := func(xs ...int) func(*pgx.Batch) {
		return func(b *pgx.Batch) {
			for _, x := range xs {
				b.Queue("INSERT INTO t VALUES ($1)", x)
			}
		}
	}
	conn := func() *pgx.Conn {
		t.Helper()
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		return c.Conn()
	}
	before := conn()
	tc.take()

	if err := postgres.RunInTx(ctx, pool, insert(1, 2), nil); err != nil {
		t.Fatalf("RunInTx = %v", err)
	}
	stmts := tc.statements()
	if q, b := tc.take(); len(q) != 0 || b != 1 || len(stmts) != 2 {
		t.Fatalf("RunInTx sent %d batches of the statements %q and the queries %q, want one batch of the two inserts", b, stmts, q)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}

	// The third insert collides: nothing of the transaction stays, and the
	// server ended it by itself: no other round trip.
	tc.take()
	err := postgres.RunInTx(ctx, pool, insert(3, 4, 1), nil)
	var pgErr interface{ SQLState() string }
	if !errors.As(err, &pgErr) || pgErr.SQLState() != "23505" {
		t.Fatalf("RunInTx = %v, want the unique violation", err)
	}
	if q, b := tc.take(); b != 1 || len(q) != 0 {
		t.Fatalf("failed RunInTx sent %d batches and the queries %q, want one batch and nothing else", b, q)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d rows after the failed transaction, want 2", n)
	}
	if after := conn(); after != before || after.PgConn().TxStatus() != 'I' {
		t.Fatalf("the pool's connection was replaced or left in a transaction (status %c)", after.PgConn().TxStatus())
	}
	if s := pool.Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired", s.AcquiredConns())
	}
}

// statements returns the statements of the batches so far and resets them.
func (c *tripCounter) statements() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.batchSQL
	c.batchSQL = nil
	return out
}

// Repository.Add is one round trip of two statements, one implicit
// transaction: the idempotency record, and one statement for the company,
// its event-log row and its outbox row.
func TestIntegrationAddIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, tc := tracedPool(t)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	w := &stubWaker{}
	w.leading.Store(true) // so no notification travels either
	repo := postgres.NewRepository(pool, postgres.WithWaker(w))
	defer repo.Close()
	c := newCompania(t, "Pi", "P-1")
	tc.take()
	if err := repo.Add(ctx, c, command.Meta{Idempotency: &command.IdempotencyRecord{Scope: "s", Key: "k", RequestHash: []byte{1}}}); err != nil {
		t.Fatal(err)
	}
	stmts := tc.statements()
	if q, b := tc.take(); len(q) != 0 || b != 1 {
		t.Fatalf("Add sent %d batches and the queries %q, want one batch", b, q)
	}
	if len(stmts) != 2 {
		t.Fatalf("Add sent %d statements %q, want 2: the idempotency record, the company with its rows", len(stmts), stmts)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d outbox rows (%v), want 1", n, err)
	}
}

// A company that recorded several events before Add (not one a use case
// makes, but the Repository's contract) is stored with every event, in
// version order in the outbox.
func TestIntegrationAddSeveralEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	c := newCompania(t, "Rho", "R-1")
	if err := c.Actualizar(compania.Cambios{Nombre: new("Rho SAS")}, now()); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.Add(ctx, c, command.Meta{}); err != nil {
		t.Fatal(err)
	}
	if got := f.load(t, c.ID()); got != c.Snapshot() {
		t.Fatalf("stored\n%+v\nwant\n%+v", got, c.Snapshot())
	}
	f.checkLog(t, c.ID(), companiaevent.DefaultTopic, c.Events(), "")
	if got, want := f.counts(t), [4]int{1, 2, 2, 0}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}
}
