package postgres_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// stubWaker is a postgres.Waker whose answer the test sets.
type stubWaker struct {
	leading atomic.Bool
	calls   atomic.Int64
}

func (w *stubWaker) Wake() bool {
	w.calls.Add(1)
	return w.leading.Load()
}

// With a Waker, a commit that stored outbox rows wakes it, and sends a
// notification only when it does not lead; nothing else wakes it.
func TestIntegrationNotifyWaker(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := &stubWaker{}
	w.leading.Store(true)
	f := newFixture(t, postgres.WithWaker(w))

	wait, marker := listenOutbox(t, f)
	wantCalls := func(n int64) {
		t.Helper()
		if got := w.calls.Load(); got != n {
			t.Fatalf("Wake called %d times, want %d", got, n)
		}
	}

	// Leading: woken, no notification.
	c := newCompania(t, "Nu", "N-1")
	if err := f.repo.Add(ctx, c, command.Meta{}); err != nil {
		t.Fatal(err)
	}
	wantCalls(1)
	if _, err := f.repo.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error { return c.Aprobar(now()) }); err != nil {
		t.Fatal(err)
	}
	wantCalls(2)
	f.repo.Close() // would send a notification still owed
	marker("leading")

	// Nothing committed, nothing stored in the outbox: not woken.
	f = fixture{pool: f.pool, repo: postgres.NewRepository(f.pool, postgres.WithWaker(w))}
	defer f.repo.Close()
	if err := f.repo.Add(ctx, newCompania(t, "NU", "n-1"), command.Meta{}); !errors.Is(err, compania.ErrDuplicate) {
		t.Fatalf("Add = %v, want ErrDuplicate", err)
	}
	if _, err := f.repo.Update(ctx, c.ID(), command.Meta{}, func(*compania.Compania) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error {
		_ = c.Actualizar(compania.Cambios{Nombre: new("Xi")}, now())
		return errors.New("rolled back")
	}); err == nil {
		t.Fatal("Update succeeded")
	}
	wantCalls(2)

	// Not leading: asked, then a notification for the leader elsewhere.
	w.leading.Store(false)
	if err := f.repo.Add(ctx, newCompania(t, "Omicron", "O-1"), command.Meta{}); err != nil {
		t.Fatal(err)
	}
	wantCalls(3)
	wait("")
	marker("not leading")
}
