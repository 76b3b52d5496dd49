package command_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// memRepo is an in-memory command.Repository for unit tests.
type memRepo struct {
	mu    sync.Mutex
	rows  map[string]compania.Snapshot
	idem  map[string]command.IdempotencyRecord
	saved int
	// raceKey, when set, simulates a concurrent transaction recording the
	// same idempotency key between lookup and Add.
	raceKey *command.IdempotencyRecord
}

func newMemRepo() *memRepo {
	return &memRepo{rows: map[string]compania.Snapshot{}, idem: map[string]command.IdempotencyRecord{}}
}

func (r *memRepo) Add(_ context.Context, c *compania.Compania, meta command.Meta) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.raceKey != nil {
		r.idem[r.raceKey.Scope+"|"+r.raceKey.Key] = *r.raceKey
		r.raceKey = nil
	}
	if k := meta.Idempotency; k != nil {
		if _, ok := r.idem[k.Scope+"|"+k.Key]; ok {
			return command.ErrIdempotencyKeyTaken
		}
		r.idem[k.Scope+"|"+k.Key] = *k
	}
	if _, ok := r.rows[c.ID()]; ok {
		return compania.ErrIDTaken
	}
	r.rows[c.ID()] = c.Snapshot()
	r.saved++
	return nil
}

func (r *memRepo) Update(_ context.Context, id string, _ command.Meta, fn func(*compania.Compania) error) (*compania.Compania, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.rows[id]
	if !ok {
		return nil, compania.ErrNotFound
	}
	c, err := compania.FromSnapshot(s)
	if err != nil {
		return nil, err
	}
	if err := fn(c); err != nil {
		return nil, err
	}
	if len(c.Events()) > 0 {
		r.rows[id] = c.Snapshot()
		r.saved++
	}
	return c, nil
}

func (r *memRepo) LookupIdempotency(_ context.Context, scope, key string) (command.IdempotencyRecord, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.idem[scope+"|"+key]
	return rec, ok, nil
}

const id = "0b7e2a5c-6c1e-4c2f-9f0e-2f4b8f7a1d11"

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func clock() command.Clock { return func() time.Time { return t0 } }

func ids() command.IDGenerator { return func() string { return id } }

type recorder struct {
	mu     sync.Mutex
	events []compania.Event
}

func (r *recorder) handle(_ context.Context, ev []compania.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev...)
}

func datos() compania.Datos {
	return compania.Datos{Nombre: "ACME", Email: "a@acme.co", Identificacion: "900"}
}

func TestCrearCompania(t *testing.T) {
	t.Parallel()
	repo, rec := newMemRepo(), &recorder{}
	h := command.NewCrearCompaniaHandler(repo, ids(), clock(), rec.handle)
	res, err := h.Handle(context.Background(), command.CrearCompania{Datos: datos()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Compania.ID != id || res.Compania.Version != 1 || res.Replayed {
		t.Errorf("result = %+v", res)
	}
	if len(rec.events) != 1 || rec.events[0].EventName() != "CompaniaCreada" {
		t.Errorf("after-commit handlers got %v", rec.events)
	}
	// A client-supplied id is honoured.
	const own = "11111111-2222-4333-8444-555555555555"
	res, err = h.Handle(context.Background(), command.CrearCompania{ID: own, Datos: compania.Datos{Nombre: "B", Email: "b@b.co", Identificacion: "1"}})
	if err != nil || res.Compania.ID != own {
		t.Fatalf("own id: %+v, %v", res, err)
	}
	// Invalid input never reaches the repository nor the handlers.
	if _, err := h.Handle(context.Background(), command.CrearCompania{}); !errors.Is(err, compania.ErrInvalid) {
		t.Errorf("err = %v", err)
	}
	if repo.saved != 2 || len(rec.events) != 2 {
		t.Errorf("saved %d, events %d", repo.saved, len(rec.events))
	}
}

func TestCrearCompaniaIdempotency(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	h := command.NewCrearCompaniaHandler(repo, ids(), clock(), nil)
	key := &command.Idempotency{Scope: "s", Key: "k", RequestHash: []byte{1}}
	first, err := h.Handle(context.Background(), command.CrearCompania{Datos: datos(), Idempotency: key})
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.Handle(context.Background(), command.CrearCompania{Datos: datos(), Idempotency: key})
	if err != nil || !again.Replayed || again.Compania != first.Compania {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	other := &command.Idempotency{Scope: "s", Key: "k", RequestHash: []byte{2}}
	if _, err := h.Handle(context.Background(), command.CrearCompania{Datos: datos(), Idempotency: other}); !errors.Is(err, command.ErrIdempotencyMismatch) {
		t.Errorf("mismatch err = %v", err)
	}
	if repo.saved != 1 {
		t.Errorf("saved %d times", repo.saved)
	}
}

func TestCrearCompaniaConcurrentSameKey(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	stored := compania.Snapshot{ID: "22222222-2222-4222-8222-222222222222", Version: 1, Estado: compania.Pendiente}
	repo.raceKey = &command.IdempotencyRecord{Scope: "s", Key: "k", RequestHash: []byte{1}, Result: stored}
	h := command.NewCrearCompaniaHandler(repo, ids(), clock(), nil)
	res, err := h.Handle(context.Background(), command.CrearCompania{Datos: datos(), Idempotency: &command.Idempotency{Scope: "s", Key: "k", RequestHash: []byte{1}}})
	if err != nil || !res.Replayed || res.Compania != stored {
		t.Fatalf("lost race answered %+v, %v; want the winner's result", res, err)
	}
}

func TestChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, rec := newMemRepo(), &recorder{}
	crear := command.NewCrearCompaniaHandler(repo, ids(), clock(), nil)
	if _, err := crear.Handle(ctx, command.CrearCompania{Datos: datos()}); err != nil {
		t.Fatal(err)
	}
	actualizar := command.NewActualizarCompaniaHandler(repo, clock(), rec.handle)
	aprobar := command.NewAprobarCompaniaHandler(repo, clock(), rec.handle)
	rechazar := command.NewRechazarCompaniaHandler(repo, clock(), rec.handle)
	nombre := "ACME 2"

	if _, err := actualizar.Handle(ctx, command.ActualizarCompania{ID: id, Cambios: compania.Cambios{Nombre: &nombre}, ExpectedVersion: 7}); !errors.Is(err, compania.ErrVersionMismatch) {
		t.Errorf("If-Match mismatch err = %v", err)
	}
	res, err := actualizar.Handle(ctx, command.ActualizarCompania{ID: id, Cambios: compania.Cambios{Nombre: &nombre}, ExpectedVersion: 1})
	if err != nil || res.Compania.Version != 2 || res.Compania.Nombre != nombre {
		t.Fatalf("actualizar = %+v, %v", res, err)
	}
	if _, err := aprobar.Handle(ctx, command.AprobarCompania{ID: "33333333-3333-4333-8333-333333333333"}); !errors.Is(err, compania.ErrNotFound) {
		t.Errorf("unknown id err = %v", err)
	}
	if res, err = aprobar.Handle(ctx, command.AprobarCompania{ID: id}); err != nil || res.Compania.Estado != compania.Aprobada {
		t.Fatalf("aprobar = %+v, %v", res, err)
	}
	if _, err := rechazar.Handle(ctx, command.RechazarCompania{ID: id, Motivo: "x"}); !errors.Is(err, compania.ErrInvalidTransition) {
		t.Errorf("rechazar aprobada err = %v", err)
	}
	if len(rec.events) != 2 {
		t.Errorf("after-commit events = %d, want 2", len(rec.events))
	}
}

func TestConstructorsRequireDependencies(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("NewCrearCompaniaHandler accepted a nil repository")
		}
	}()
	command.NewCrearCompaniaHandler(nil, ids(), clock(), nil)
}
