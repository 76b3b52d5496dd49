package httpapi_test

import (
	"context"
	"strings"
	"sync"

	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// memRepo is a hand-written in-memory command.Repository with the same
// contract as the PostgreSQL one: uniqueness of id, of (nombre,
// identificacion) case-insensitively and of idempotency keys; optimistic
// versioning in Update. Its func fields inject failures.
type memRepo struct {
	mu    sync.Mutex
	byID  map[string]compania.Snapshot
	keys  map[[2]string]command.IdempotencyRecord
	metas []command.Meta
	adds  int

	// fail, when set, runs first in every call (op is "add", "update" or
	// "lookup"); a non-nil error is returned as is. It may also panic or
	// block until ctx is done.
	fail func(ctx context.Context, op string) error
	// beforeSave, when set, runs in Update after fn and before the version
	// check, to play a concurrent writer.
	beforeSave func(id string)
}

func newMemRepo() *memRepo {
	return &memRepo{byID: map[string]compania.Snapshot{}, keys: map[[2]string]command.IdempotencyRecord{}}
}

var _ command.Repository = (*memRepo)(nil)

func (r *memRepo) hook(ctx context.Context, op string) error {
	if r.fail == nil {
		return nil
	}
	return r.fail(ctx, op)
}

func (r *memRepo) Add(ctx context.Context, c *compania.Compania, meta command.Meta) error {
	if err := r.hook(ctx, "add"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := c.Snapshot()
	if k := meta.Idempotency; k != nil {
		if _, taken := r.keys[[2]string{k.Scope, k.Key}]; taken {
			return command.ErrIdempotencyKeyTaken
		}
	}
	if _, ok := r.byID[s.ID]; ok {
		return compania.ErrIDTaken
	}
	for _, o := range r.byID {
		if strings.EqualFold(o.Nombre, s.Nombre) && strings.EqualFold(o.Identificacion, s.Identificacion) {
			return compania.ErrDuplicate
		}
	}
	r.byID[s.ID] = s
	if k := meta.Idempotency; k != nil {
		r.keys[[2]string{k.Scope, k.Key}] = *k
	}
	r.metas = append(r.metas, meta)
	r.adds++
	return nil
}

func (r *memRepo) Update(ctx context.Context, id string, meta command.Meta, fn func(*compania.Compania) error) (*compania.Compania, error) {
	if err := r.hook(ctx, "update"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	s, ok := r.byID[id]
	r.mu.Unlock()
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
	if len(c.Events()) == 0 {
		return c, nil
	}
	if r.beforeSave != nil {
		r.beforeSave(id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[id].Version != s.Version {
		return nil, compania.ErrConcurrentUpdate
	}
	r.byID[id] = c.Snapshot()
	r.metas = append(r.metas, meta)
	return c, nil
}

func (r *memRepo) LookupIdempotency(ctx context.Context, scope, key string) (command.IdempotencyRecord, bool, error) {
	if err := r.hook(ctx, "lookup"); err != nil {
		return command.IdempotencyRecord{}, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.keys[[2]string{scope, key}]
	return rec, ok, nil
}

// bump plays another writer: it raises the stored version of id by one.
func (r *memRepo) bump(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.byID[id]
	s.Version++
	r.byID[id] = s
}

func (r *memRepo) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

func (r *memRepo) lastMeta() command.Meta {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.metas) == 0 {
		return command.Meta{}
	}
	return r.metas[len(r.metas)-1]
}

// scopes returns the idempotency scopes stored, in no order.
func (r *memRepo) scopes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.keys {
		out = append(out, k[0])
	}
	return out
}
