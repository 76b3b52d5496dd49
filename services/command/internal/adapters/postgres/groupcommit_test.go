package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// gated is a Repository with group commit whose first batch (a blocker
// create) holds the one committer until release, so that the creates sent
// meanwhile queue up and are written as the second batch.
type gated struct {
	fixture
	mu      sync.Mutex
	sizes   []int
	started chan struct{}
	release chan struct{}
}

func newGated(t *testing.T) *gated {
	t.Helper()
	g := &gated{started: make(chan struct{}), release: make(chan struct{})}
	pool := open(t, pgtest.NewDatabase(t))
	if err := postgres.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	repo := postgres.NewRepository(pool, postgres.WithGroupCommit(64))
	t.Cleanup(repo.Close)
	g.fixture = fixture{pool: pool, repo: repo}
	postgres.SetGroupCommitTest(repo, func(n int) {
		g.mu.Lock()
		g.sizes = append(g.sizes, n)
		nth := len(g.sizes)
		g.mu.Unlock()
		if nth == 1 {
			close(g.started)
			<-g.release
		}
	})
	return g
}

// batch runs the blocker, then each of ops in its own goroutine, in order
// (each one queued before the next starts), releases the committer and
// returns the ops' errors.
func (g *gated) batch(t *testing.T, ops ...func() error) []error {
	t.Helper()
	blocker := make(chan error, 1)
	go func() { blocker <- g.repo.Add(context.Background(), newCompania(t, "Blocker", "B-0"), command.Meta{}) }()
	<-g.started
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Go(func() { errs[i] = op() })
		waitFor(t, func() bool { return postgres.QueuedAdds(g.repo) == i+1 })
	}
	close(g.release)
	wg.Wait()
	if err := <-blocker; err != nil {
		t.Fatalf("blocker: %v", err)
	}
	return errs
}

func (g *gated) wantSizes(t *testing.T, want ...int) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.sizes) < len(want) || !slices.Equal(g.sizes[:len(want)], want) {
		t.Fatalf("batch sizes %v, want %v first", g.sizes, want)
	}
}

// waitFor polls cond every millisecond until it holds, failing the test
// after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatal("timed out waiting")
		case <-tick.C:
		}
	}
}

func (g *gated) add(ctx context.Context, c *compania.Compania, meta command.Meta) func() error {
	return func() error { return g.repo.Add(ctx, c, meta) }
}

func TestIntegrationGroupCommitBatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	g := newGated(t)
	cs := []*compania.Compania{newCompania(t, "G1", "G-1"), newCompania(t, "G2", "G-2"), newCompania(t, "G3", "G-3")}
	rec := command.IdempotencyRecord{Scope: "s", Key: "k", RequestHash: []byte{7}, Result: cs[1].Snapshot()}
	errs := g.batch(t, g.add(ctx, cs[0], command.Meta{Traceparent: traceparent}),
		g.add(ctx, cs[1], command.Meta{Traceparent: traceparent, Idempotency: &rec}),
		g.add(ctx, cs[2], command.Meta{Traceparent: traceparent}))
	g.wantSizes(t, 1, 3)
	for i, err := range errs {
		if err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	if got, want := g.counts(t), [4]int{4, 4, 4, 1}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	for _, c := range cs {
		if got := g.load(t, c.ID()); got != c.Snapshot() {
			t.Errorf("stored %+v, want %+v", got, c.Snapshot())
		}
		g.checkLog(t, c.ID(), companiaevent.DefaultTopic, c.Events(), traceparent)
	}
	if got, ok, err := g.repo.LookupIdempotency(ctx, "s", "k"); err != nil || !ok || got.Result != cs[1].Snapshot() {
		t.Errorf("LookupIdempotency = %+v, %v, %v", got, ok, err)
	}
	// The outbox rows of the batch took their ids in arrival order.
	rows, err := g.pool.Query(ctx, "SELECT convert_from(key, 'UTF8') FROM outbox ORDER BY id OFFSET 1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(keys, []string{cs[0].ID(), cs[1].ID(), cs[2].ID()}) {
		t.Errorf("outbox keys %v, %v; want the creates in order", keys, err)
	}
}

func TestIntegrationGroupCommitDuplicateFailsOnlyItself(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	g := newGated(t)
	plain := postgres.NewRepository(g.pool)
	defer plain.Close()
	if err := plain.Add(ctx, newCompania(t, "Stored", "S-1"), command.Meta{}); err != nil {
		t.Fatal(err)
	}
	a, dup, b := newCompania(t, "A", "A-1"), newCompania(t, "STORED", "s-1"), newCompania(t, "B", "B-1")
	errs := g.batch(t, g.add(ctx, a, command.Meta{}), g.add(ctx, dup, command.Meta{}), g.add(ctx, b, command.Meta{}))
	g.wantSizes(t, 1, 3)
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], compania.ErrDuplicate) {
		t.Fatalf("errors %v; want nil, ErrDuplicate, nil", errs)
	}
	if got, want := g.counts(t), [4]int{4, 4, 4, 0}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}
}

func TestIntegrationGroupCommitDuplicatePairInBatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	g := newGated(t)
	first, second, other := newCompania(t, "Twin", "T-1"), newCompania(t, "twin", "t-1"), newCompania(t, "Other", "O-1")
	same := newCompania(t, "Other 2", "O-2")
	sameID, err := compania.New(same.ID(), compania.Datos{Nombre: "Other 3", Email: "x@example.com", Identificacion: "O-3"}, now())
	if err != nil {
		t.Fatal(err)
	}
	errs := g.batch(t, g.add(ctx, first, command.Meta{}), g.add(ctx, second, command.Meta{}),
		g.add(ctx, other, command.Meta{}), g.add(ctx, same, command.Meta{}), g.add(ctx, sameID, command.Meta{}))
	g.wantSizes(t, 1, 5)
	if errs[0] != nil || !errors.Is(errs[1], compania.ErrDuplicate) || errs[2] != nil ||
		errs[3] != nil || !errors.Is(errs[4], compania.ErrIDTaken) {
		t.Fatalf("errors %v; want nil, ErrDuplicate, nil, nil, ErrIDTaken", errs)
	}
	if got, want := g.counts(t), [4]int{4, 4, 4, 0}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}
}

// An Idempotency-Key sent twice in one batch, and one sent again after it
// was stored, replay the first outcome through the use case.
func TestIntegrationGroupCommitIdempotencyReplay(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	g := newGated(t)
	h := command.NewCrearCompaniaHandler(g.repo, uuid.NewString, now, nil)
	key := &command.Idempotency{Scope: "http:POST /v1/companias", Key: "k", RequestHash: []byte{1}}
	datos := compania.Datos{Nombre: "Idem", Email: "i@example.com", Identificacion: "I-1"}
	results := make([]command.Result, 3)
	crear := func(i int, d compania.Datos) func() error {
		return func() (err error) {
			results[i], err = h.Handle(ctx, command.CrearCompania{Datos: d, Idempotency: key})
			return err
		}
	}
	other := compania.Datos{Nombre: "Neighbour", Email: "n@example.com", Identificacion: "N-1"}
	errs := g.batch(t, crear(0, datos), crear(1, datos), func() (err error) {
		results[2], err = h.Handle(ctx, command.CrearCompania{Datos: other})
		return err
	})
	g.wantSizes(t, 1, 3)
	if errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("errors %v", errs)
	}
	if results[0].Replayed || !results[1].Replayed || results[1].Compania != results[0].Compania || results[2].Replayed {
		t.Fatalf("results %+v; want the second to replay the first", results)
	}
	// Outside a batch: the stored key replays without writing.
	again, err := h.Handle(ctx, command.CrearCompania{Datos: datos, Idempotency: key})
	if err != nil || !again.Replayed || again.Compania != results[0].Compania {
		t.Fatalf("replay after the batch = %+v, %v", again, err)
	}
	if got, want := g.counts(t), [4]int{3, 3, 3, 1}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}
}

// A database error fails every create of the batch with the same error, of
// kind Unavailable, and stores none of them. The server's answer to the
// batch statement is the one a backend being shut down gives (57P01,
// admin_shutdown), raised by a trigger for these companies only, so that no
// reconnecting pool can dodge it.
func TestIntegrationGroupCommitDatabaseErrorFailsTheBatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	g := newGated(t)
	if _, err := g.pool.Exec(ctx, `CREATE FUNCTION shutting_down() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'terminating connection due to administrator command' USING ERRCODE = '57P01';
        END $$;
        CREATE TRIGGER shutting_down BEFORE INSERT ON companias
            FOR EACH ROW WHEN (NEW.nombre LIKE 'Down %') EXECUTE FUNCTION shutting_down()`); err != nil {
		t.Fatal(err)
	}
	cs := []*compania.Compania{newCompania(t, "E1", "E-1"), newCompania(t, "Down 2", "E-2"), newCompania(t, "E3", "E-3")}
	errs := g.batch(t, g.add(ctx, cs[0], command.Meta{}), g.add(ctx, cs[1], command.Meta{}), g.add(ctx, cs[2], command.Meta{}))
	g.wantSizes(t, 1, 3)
	for i, err := range errs {
		if err == nil || apperr.KindOf(err) != apperr.Unavailable {
			t.Errorf("create %d: %v, want an Unavailable error", i, err)
		}
	}
	if got, want := g.counts(t), [4]int{1, 1, 1, 0}; got != want {
		t.Fatalf("counts = %v, want %v (the blocker only)", got, want)
	}
}

// A lone create is written at once, alone, by the caller's committer: no
// window, no timer. The hook sees a batch of one started while Add is still
// running, and nothing else queued.
func TestIntegrationGroupCommitLoneCreateDoesNotWait(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t, postgres.WithGroupCommit(postgres.MaxGroupCommitMax))
	var sizes []int
	postgres.SetGroupCommitTest(f.repo, func(n int) { sizes = append(sizes, n) })
	for i := range 3 {
		c := newCompania(t, "Lone", "L-"+strings.Repeat("1", i+1))
		if err := f.repo.Add(ctx, c, command.Meta{}); err != nil {
			t.Fatal(err)
		}
		if q := postgres.QueuedAdds(f.repo); q != 0 {
			t.Fatalf("%d creates still queued after Add returned", q)
		}
	}
	if !slices.Equal(sizes, []int{1, 1, 1}) {
		t.Fatalf("batch sizes %v, want three batches of one", sizes)
	}
}

// A create whose context ends while it waits for a committer is not written
// and does not fail its neighbours.
func TestIntegrationGroupCommitCancelledWhileQueued(t *testing.T) {
	t.Parallel()
	g := newGated(t)
	cctx, cancel := context.WithCancel(t.Context())
	gone, kept := newCompania(t, "Gone", "X-1"), newCompania(t, "Kept", "K-1")
	errs := g.batch(t, func() error {
		return g.repo.Add(cctx, gone, command.Meta{})
	}, func() error {
		cancel() // the first is queued: it gives up before the committer takes it
		return g.repo.Add(t.Context(), kept, command.Meta{})
	})
	if !errors.Is(errs[0], context.Canceled) || errs[1] != nil {
		t.Fatalf("errors %v; want Canceled, nil", errs)
	}
	g.wantSizes(t, 1, 1)
	if got, want := g.counts(t), [4]int{2, 2, 2, 0}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}
}
