package mongoview_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/view"
)

func mustApply(t *testing.T, s *mongoview.Store, views ...view.Compania) mongoview.WriteStats {
	t.Helper()
	st, err := s.Apply(ctxT(t), view.Runs(views))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return st
}

func mustGet(t *testing.T, s *mongoview.Store, id string) view.Compania {
	t.Helper()
	v, err := s.Get(ctxT(t), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return v
}

func TestIntegrationStoreUpsertStaleDuplicate(t *testing.T) {
	t.Parallel()
	s, _, _ := openStore(t, postgres, mongoview.Options{})
	ctx := ctxT(t)

	if _, err := s.Get(ctx, uuid(1)); !errors.Is(err, view.ErrNotFound) {
		t.Fatalf("Get missing: got %v, want view.ErrNotFound", err)
	}

	v1 := only(compania(1, 1))
	if st := mustApply(t, s, v1); st.Views != 1 || st.SafeViews != 0 || st.Calls != 1 {
		t.Errorf("insert v1: stats %+v", st)
	}
	if got := mustGet(t, s, v1.ID); !reflect.DeepEqual(got, v1) {
		t.Errorf("after v1:\n got %+v\nwant %+v", got, v1)
	}
	if st := mustApply(t, s, v1); st.SafeViews != 1 || st.Calls != 2 {
		t.Errorf("duplicate v1: stats %+v", st)
	}
	if got := mustGet(t, s, v1.ID); !reflect.DeepEqual(got, v1) {
		t.Errorf("after duplicate v1:\n got %+v\nwant %+v", got, v1)
	}

	// v3 (approval) before v2: the snapshot jumps to v3, v2 is stale.
	v3 := only(compania(1, 3))
	mustApply(t, s, v3)
	mustApply(t, s, only(compania(1, 2)))
	want := compania(1, 3)
	if got := mustGet(t, s, v1.ID); !reflect.DeepEqual(got, want) {
		t.Errorf("after v1, v3, v2:\n got %+v\nwant %+v", got, want)
	}

	// A stale view still adds its missing historial entry, and nothing else.
	other := compania(2, 3) // PENDIENTE and APROBADA entries
	mustApply(t, s, only(other))
	mustApply(t, s, only(compania(2, 1)))
	if got := mustGet(t, s, other.ID); !reflect.DeepEqual(got, other) {
		t.Errorf("late v1 historial:\n got %+v\nwant %+v", got, other)
	}

	// Rejection: motivo in the snapshot and in the historial entry.
	r := compania(3, 1)
	r.Version, r.Estado, r.MotivoRechazo = 2, companiaevent.EstadoRechazada, strp("sin RUT")
	r.Historial = append(r.Historial, view.CambioEstado{Estado: companiaevent.EstadoRechazada, Fecha: t0, Version: 2, Motivo: strp("sin RUT")})
	mustApply(t, s, r)
	if got := mustGet(t, s, r.ID); !reflect.DeepEqual(got, r) {
		t.Errorf("rejected:\n got %+v\nwant %+v", got, r)
	}
}

func TestIntegrationStoreChunkingAndPartialBulkErrors(t *testing.T) {
	t.Parallel()
	s, _, _ := openStore(t, postgres, mongoview.Options{})
	ctx := ctxT(t)
	const n = 110 // several chunks, and > 50 matched statements if it were one bulk
	chunks := (n + mongoview.DefaultChunkSize - 1) / mongoview.DefaultChunkSize
	var v1, v2, mixed []view.Compania
	for i := range n {
		v1 = append(v1, only(compania(i, 1)))
		v2 = append(v2, only(compania(i, 2)))
	}
	if st := mustApply(t, s, v1...); st.SafeViews != 0 || st.Calls != chunks {
		t.Errorf("insert %d: stats %+v, want %d calls", n, st, chunks)
	}
	// Every statement matches an existing document: this hangs FerretDB
	// unless chunked.
	if st := mustApply(t, s, v2...); st.SafeViews != 0 || st.Calls != chunks {
		t.Errorf("update %d: stats %+v, want %d calls", n, st, chunks)
	}
	// Interleave stale and newer views: FerretDB stops each bulk at the
	// first duplicate key; the rest must still be applied.
	for i := range n {
		if i%2 == 0 {
			mixed = append(mixed, only(compania(i, 1))) // stale
		} else {
			mixed = append(mixed, only(compania(i, 3))) // newer
		}
	}
	st := mustApply(t, s, mixed...)
	t.Logf("mixed stale and newer: %+v", st)
	for i := range n {
		got := mustGet(t, s, uuid(i))
		want := int64(2)
		if i%2 == 1 {
			want = 3
		}
		if got.Version != want {
			t.Errorf("company %d: version %d, want %d", i, got.Version, want)
		}
	}
	est, err := s.Estadisticas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if est.Total != n || est.PorEstado[companiaevent.EstadoAprobada] != n/2 || est.PorEstado[companiaevent.EstadoPendiente] != n/2 ||
		est.PorEstado[companiaevent.EstadoRechazada] != 0 {
		t.Errorf("estadisticas: %+v", est)
	}
}

// TestIntegrationStoreConcurrentReadersDoNotExhaustFerretDB writes, from
// four stores on clients of their own (three readers and a rebuild, each
// writing one batch at a time), batches that update existing companies (every
// statement matches) to one FerretDB with its default pool, all at once.
// FerretDB holds a connection per matching statement of an update command
// until the command ends; with chunks of 40, four such commands need 160
// connections of 50 and the server hangs for good. Default chunks fit.
func TestIntegrationStoreConcurrentReadersDoNotExhaustFerretDB(t *testing.T) {
	t.Parallel()
	s, srv, _ := openStore(t, postgres, mongoview.Options{})
	const writers, perWriter, rounds = 4, 80, 2
	var all []view.Compania
	for i := range writers * perWriter {
		all = append(all, only(compania(i, 1)))
	}
	mustApply(t, s, all...)

	stores := make([]*mongoview.Store, writers)
	for w := range stores {
		var err error
		if stores[w], err = mongoview.Open(ctxT(t), connect(t, srv.URI()), mongoview.Options{Database: "views"}); err != nil {
			t.Fatal(err)
		}
	}
	// Each write is bounded: a hung FerretDB fails the test instead of
	// blocking it (the client's own timeout is 20 s).
	ctx, cancel := context.WithTimeout(ctxT(t), time.Minute)
	defer cancel()
	start := make(chan struct{})
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w, st := range stores {
		wg.Go(func() {
			<-start
			for v := int64(2); v < 2+rounds; v++ {
				batch := make([]view.Compania, 0, perWriter)
				for i := w * perWriter; i < (w+1)*perWriter; i++ {
					batch = append(batch, only(compania(i, v)))
				}
				if _, err := st.Apply(ctx, view.Runs(batch)); err != nil {
					errs[w] = fmt.Errorf("writer %d, version %d: %w", w, v, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, perWriter, writers*perWriter - 1} {
		if got := mustGet(t, s, uuid(i)); got.Version != 1+rounds {
			t.Errorf("company %d at version %d, want %d", i, got.Version, 1+rounds)
		}
	}
}

// TestIntegrationStoreChunkSizeOne sends one statement per call, and a
// stale view's two collision-safe statements together.
func TestIntegrationStoreChunkSizeOne(t *testing.T) {
	t.Parallel()
	s, _, _ := openStore(t, postgres, mongoview.Options{ChunkSize: 1})
	v1, v2 := only(compania(1, 1)), only(compania(2, 1))
	if st := mustApply(t, s, v1, v2); st.Calls != 2 || st.SafeViews != 0 {
		t.Errorf("insert 2: stats %+v, want 2 calls", st)
	}
	if st := mustApply(t, s, v1, only(compania(2, 2))); st.SafeViews != 1 || st.Calls != 3 {
		t.Errorf("stale and newer: stats %+v, want 1 safe view in 3 calls", st)
	}
	if got := mustGet(t, s, uuid(2)); got.Version != 2 {
		t.Errorf("company 2 at version %d, want 2", got.Version)
	}
}

func TestIntegrationStoreConcurrentWritersConverge(t *testing.T) {
	t.Parallel()
	s, _, _ := openStore(t, postgres, mongoview.Options{})
	const companies, writers = 5, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for v := int64(1); v <= 4; v++ {
				// Writers race on the same documents, with versions in different orders.
				ver := v
				if w%2 == 1 {
					ver = 5 - v
				}
				var batch []view.Compania
				for c := range companies {
					batch = append(batch, only(compania(c, ver)))
				}
				if _, err := s.Apply(ctxT(t), view.Runs(batch)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Apply: %v", err)
	}
	for c := range companies {
		if got, want := mustGet(t, s, uuid(c)), compania(c, 4); !reflect.DeepEqual(got, want) {
			t.Errorf("company %d:\n got %+v\nwant %+v", c, got, want)
		}
	}
}

func TestIntegrationStoreListFiltersAndPagination(t *testing.T) {
	t.Parallel()
	s, _, _ := openStore(t, postgres, mongoview.Options{})
	ctx := ctxT(t)

	var all []view.Compania
	for i := range 13 {
		c := compania(i, int64(1+i%3)) // versions 1, 2, 3 → PENDIENTE, PENDIENTE, APROBADA
		if i%4 == 0 {
			c.FechaCreacion = t0 // ties on fecha_creacion, broken by id
		}
		all = append(all, c)
	}
	special := compania(20, 1)
	special.Nombre, special.Email, special.Identificacion = ".*Punto Ñandú", "Mixed.Case@Example.CO", "X-1"
	all = append(all, special)
	mustApply(t, s, all...)

	ids := func(p []view.Compania) []string {
		out := []string{}
		for _, c := range p {
			out = append(out, c.ID)
		}
		return out
	}
	list := func(f view.Filter) []view.Compania {
		t.Helper()
		var got []view.Compania
		for range 100 {
			p, err := s.List(ctx, f)
			if err != nil {
				t.Fatalf("List %+v: %v", f, err)
			}
			if len(p.Items) > max(f.Limit, 1) && f.Limit > 0 {
				t.Fatalf("page of %d items, limit %d", len(p.Items), f.Limit)
			}
			got = append(got, p.Items...)
			if p.Next == nil {
				return got
			}
			f.After = p.Next
		}
		t.Fatal("pagination does not end")
		return nil
	}

	// Expected orders computed in Go.
	byFecha := append([]view.Compania{}, all...)
	sortBy(byFecha, func(a, b view.Compania) bool {
		if !a.FechaCreacion.Equal(b.FechaCreacion) {
			return a.FechaCreacion.After(b.FechaCreacion)
		}
		return a.ID > b.ID
	})
	byNombre := append([]view.Compania{}, all...)
	sortBy(byNombre, func(a, b view.Compania) bool {
		if la, lb := lower(a.Nombre), lower(b.Nombre); la != lb {
			return la < lb
		}
		return a.ID < b.ID
	})

	for _, limit := range []int{1, 4, 100} {
		if got := list(view.Filter{Limit: limit}); !reflect.DeepEqual(ids(got), ids(byFecha)) {
			t.Errorf("by fecha, limit %d:\n got %v\nwant %v", limit, ids(got), ids(byFecha))
		}
		if got := list(view.Filter{Sort: view.SortNombre, Limit: limit}); !reflect.DeepEqual(ids(got), ids(byNombre)) {
			t.Errorf("by nombre, limit %d:\n got %v\nwant %v", limit, ids(got), ids(byNombre))
		}
	}
	if got := list(view.Filter{Limit: 4}); !reflect.DeepEqual(got, byFecha) {
		t.Errorf("listed views differ from the written ones")
	}

	filter := func(keep func(view.Compania) bool) []string {
		out := []string{}
		for _, c := range byFecha {
			if keep(c) {
				out = append(out, c.ID)
			}
		}
		return out
	}
	tests := []struct {
		name string
		f    view.Filter
		want []string
	}{
		{"estado", view.Filter{Estado: companiaevent.EstadoAprobada, Limit: 2},
			filter(func(c view.Compania) bool { return c.Estado == companiaevent.EstadoAprobada })},
		{"nombre prefix, case-insensitive", view.Filter{NombrePrefix: "EMPRESA 00", Limit: 3},
			filter(func(c view.Compania) bool { return len(c.Nombre) > 10 && lower(c.Nombre[:10]) == "empresa 00" })},
		{"nombre prefix with regexp metacharacters is literal", view.Filter{NombrePrefix: ".*punto ñ"}, []string{special.ID}},
		{"regexp metacharacters match nothing else", view.Filter{NombrePrefix: ".*"}, []string{special.ID}},
		{"prefix is anchored", view.Filter{NombrePrefix: "mpresa"}, []string{}},
		{"identificacion exact", view.Filter{Identificacion: "NIT-7"}, []string{uuid(7)}},
		{"identificacion is not a prefix", view.Filter{Identificacion: "NIT-"}, []string{}},
		{"email exact, case-insensitive", view.Filter{Email: "mixed.case@example.co"}, []string{special.ID}},
		{"combined", view.Filter{Estado: companiaevent.EstadoPendiente, NombrePrefix: "empresa", Sort: view.SortNombre, Limit: 2},
			func() []string {
				out := []string{}
				for _, c := range byNombre {
					if c.Estado == companiaevent.EstadoPendiente && c.ID != special.ID {
						out = append(out, c.ID)
					}
				}
				return out
			}()},
		// User input is never an operator.
		{"operator in estado", view.Filter{Estado: `{"$gt": ""}`}, []string{}},
		{"operator in nombre", view.Filter{NombrePrefix: `{"$gt": ""}`}, []string{}},
		{"operator in identificacion", view.Filter{Identificacion: `{"$ne": null}`}, []string{}},
		{"operator in email", view.Filter{Email: `{"$regex": ".*"}`}, []string{}},
		{"dollar field name", view.Filter{Estado: "$where"}, []string{}},
	}
	for _, tt := range tests {
		if got := ids(list(tt.f)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIntegrationStoreListRejectsBadSortAndCursor(t *testing.T) {
	t.Parallel()
	// These checks happen before any I/O; a store on an unreachable server
	// would do, but Open needs one, so use the Filter validation via List on
	// a real store only in the integration test. Here: the error kinds.
	s, _, _ := openStore(t, postgres, mongoview.Options{})
	ctx := ctxT(t)
	for _, f := range []view.Filter{
		{Sort: "id"},
		{Sort: view.SortNombre, After: &view.Cursor{Sort: view.SortFechaCreacion, Key: "2026-01-01T00:00:00Z", ID: "x"}},
		{After: &view.Cursor{Sort: view.SortFechaCreacion, Key: "yesterday", ID: "x"}},
		{After: &view.Cursor{Sort: view.SortFechaCreacion, Key: "2026-01-01T00:00:00Z"}},
	} {
		if _, err := s.List(ctx, f); apperr.KindOf(err) != apperr.Invalid {
			t.Errorf("List(%+v): got %v, want an Invalid error", f, err)
		}
	}
}

func TestIntegrationStoreGenerations(t *testing.T) {
	t.Parallel()
	s, _, client := openStore(t, postgres, mongoview.Options{PointerTTL: -1})
	ctx := ctxT(t)
	mustApply(t, s, compania(1, 1))

	gen, err := s.ActiveGeneration(ctx)
	if err != nil || gen != mongoview.InitialGeneration {
		t.Fatalf("ActiveGeneration: %q, %v", gen, err)
	}
	next, err := s.NextGeneration(ctx)
	if err != nil || next != "2" {
		t.Fatalf("NextGeneration: %q, %v", next, err)
	}
	if err := s.PrepareGeneration(ctx, gen); !errors.Is(err, mongoview.ErrActiveGeneration) {
		t.Errorf("PrepareGeneration(active): %v", err)
	}
	// A leftover of a failed rebuild is dropped by PrepareGeneration.
	if _, err := s.ApplyTo(ctx, next, view.Runs([]view.Compania{compania(9, 1)})); err != nil {
		t.Fatal(err)
	}
	if err := s.PrepareGeneration(ctx, next); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetIn(ctx, next, uuid(9)); !errors.Is(err, view.ErrNotFound) {
		t.Errorf("leftover survived PrepareGeneration: %v", err)
	}
	if _, err := s.ApplyTo(ctx, next, view.Runs([]view.Compania{compania(2, 1)})); err != nil {
		t.Fatal(err)
	}
	// The old generation keeps serving until the switch.
	mustGet(t, s, uuid(1))
	if err := s.SwitchGeneration(ctx, "7", next); !errors.Is(err, mongoview.ErrPointerMoved) {
		t.Errorf("switch from a wrong generation: %v", err)
	}
	if err := s.SwitchGeneration(ctx, gen, next); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, uuid(1)); !errors.Is(err, view.ErrNotFound) {
		t.Errorf("old view visible after switch: %v", err)
	}
	mustGet(t, s, uuid(2))
	if err := s.DropGeneration(ctx, next); !errors.Is(err, mongoview.ErrActiveGeneration) {
		t.Errorf("DropGeneration(active): %v", err)
	}
	if err := s.DropGeneration(ctx, gen); err != nil {
		t.Fatal(err)
	}
	if gens, err := s.Generations(ctx); err != nil || !reflect.DeepEqual(gens, []string{"2"}) {
		t.Errorf("Generations: %v, %v", gens, err)
	}

	// A second store (another replica) sees the switch; Open is idempotent.
	other, err := mongoview.Open(ctx, client, mongoview.Options{Database: "views"})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := other.ActiveGeneration(ctx); g != next {
		t.Errorf("other replica sees generation %q", g)
	}
	var raw bson.M
	if err := client.Database("views").Collection(mongoview.PointerCollection).
		FindOne(ctx, bson.D{{Key: "_id", Value: "companias"}}).Decode(&raw); err != nil || raw["generation"] != next {
		t.Errorf("pointer document: %v, %v", raw, err)
	}
}

func TestIntegrationStorePointerCache(t *testing.T) {
	t.Parallel()
	s, _, client := openStore(t, postgres, mongoview.Options{PointerTTL: time.Hour})
	ctx := ctxT(t)
	other, err := mongoview.Open(ctx, client, mongoview.Options{Database: "views", PointerTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.PrepareGeneration(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	if err := other.SwitchGeneration(ctx, "1", "2"); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.ActiveGeneration(ctx); g != "1" {
		t.Errorf("cached pointer: got %q, want the cached 1 within the TTL", g)
	}
	if g, _ := other.ActiveGeneration(ctx); g != "2" {
		t.Errorf("switching store: got %q, want 2 at once", g)
	}
}

func TestIntegrationStoreRebuildLock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, _, _ := openStore(t, postgres, mongoview.Options{Now: clock})
	ctx := ctxT(t)

	if err := s.AcquireRebuildLock(ctx, "a", "2", time.Minute); err != nil {
		t.Fatal(err)
	}
	err := s.AcquireRebuildLock(ctx, "b", "2", time.Minute)
	if !errors.Is(err, mongoview.ErrRebuildLocked) || apperr.KindOf(err) != apperr.Conflict {
		t.Fatalf("second acquire: got %v, want ErrRebuildLocked (Conflict)", err)
	}
	if err := s.RenewRebuildLock(ctx, "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.RenewRebuildLock(ctx, "b", time.Minute); !errors.Is(err, mongoview.ErrLockLost) {
		t.Errorf("renew by non-owner: %v", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute) // a's lock expires
	mu.Unlock()
	if err := s.AcquireRebuildLock(ctx, "b", "3", time.Minute); err != nil {
		t.Fatalf("take over an expired lock: %v", err)
	}
	if err := s.RenewRebuildLock(ctx, "a", time.Minute); !errors.Is(err, mongoview.ErrLockLost) {
		t.Errorf("renew after takeover: %v", err)
	}
	if h, err := s.RebuildLockHolder(ctx); err != nil || h.Owner != "b" || h.Generation != "3" {
		t.Errorf("holder: %+v, %v", h, err)
	}
	if err := s.ReleaseRebuildLock(ctx, "a"); err != nil { // not the owner: no-op
		t.Fatal(err)
	}
	if err := s.AcquireRebuildLock(ctx, "c", "3", time.Minute); !errors.Is(err, mongoview.ErrRebuildLocked) {
		t.Errorf("release by non-owner freed the lock: %v", err)
	}
	if err := s.ReleaseRebuildLock(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.AcquireRebuildLock(ctx, "c", "3", time.Minute); err != nil {
		t.Errorf("acquire after release: %v", err)
	}
}

func TestIntegrationStoreUnavailableThenBack(t *testing.T) {
	t.Parallel()
	srv, opts := startServerOpts(t, postgres)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).
		SetTimeout(2 * time.Second).SetServerSelectionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	ctx := ctxT(t)
	s, err := mongoview.Open(ctx, client, mongoview.Options{Database: "views", PointerTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, compania(1, 1))
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for name, call := range map[string]func() error{
		"Ping":         func() error { return s.Ping(ctx) },
		"Get":          func() error { _, err := s.Get(ctx, uuid(1)); return err },
		"List":         func() error { _, err := s.List(ctx, view.Filter{}); return err },
		"Estadisticas": func() error { _, err := s.Estadisticas(ctx); return err },
		"Apply":        func() error { _, err := s.Apply(ctx, view.Runs([]view.Compania{compania(1, 2)})); return err },
	} {
		wg.Go(func() {
			if err := call(); apperr.KindOf(err) != apperr.Unavailable {
				t.Errorf("%s on a stopped server: got %v, want kind Unavailable", name, err)
			}
		})
	}
	wg.Wait()
	startWith(t, opts) // same address, same backend
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Apply(ctx, view.Runs([]view.Compania{only(compania(1, 2))}))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not come back: %v", err)
		}
	}
	if got := mustGet(t, s, uuid(1)); got.Version != 2 {
		t.Errorf("after restart: version %d", got.Version)
	}
}

func TestIntegrationStoreOpenConcurrently(t *testing.T) {
	t.Parallel()
	srv, client := startServer(t, postgres)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = mongoview.Open(ctx, client, mongoview.Options{Database: "views", OnCollectionCreated: srv.EnsureIDIndex})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
	}
	n, err := client.Database("views").Collection(mongoview.PointerCollection).CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Errorf("pointer documents: %d, %v", n, err)
	}
}
