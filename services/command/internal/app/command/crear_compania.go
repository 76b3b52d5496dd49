package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// CrearCompania registers a company.
type CrearCompania struct {
	// ID is the client-chosen company id, or "" to have one generated.
	ID    string
	Datos compania.Datos
	// Idempotency, when set, makes the command replayable: the same key and
	// request hash return the first outcome; the same key with another hash
	// is ErrIdempotencyMismatch.
	Idempotency *Idempotency
	Traceparent string
}

// CrearCompaniaHandler handles CrearCompania.
type CrearCompaniaHandler struct {
	repo  Repository
	ids   IDGenerator
	now   Clock
	after EventHandler
}

// NewCrearCompaniaHandler builds the handler; repo, ids and now are required.
func NewCrearCompaniaHandler(repo Repository, ids IDGenerator, now Clock, after EventHandler) *CrearCompaniaHandler {
	if repo == nil || ids == nil || now == nil {
		panic("command: NewCrearCompaniaHandler needs a repository, an id generator and a clock")
	}
	return &CrearCompaniaHandler{repo: repo, ids: ids, now: now, after: after}
}

// Handle creates the company in one transaction (row, event log, outbox and
// idempotency record) and then runs the in-process event handlers.
func (h *CrearCompaniaHandler) Handle(ctx context.Context, cmd CrearCompania) (Result, error) {
	if cmd.Idempotency != nil {
		if res, ok, err := h.replay(ctx, *cmd.Idempotency); ok || err != nil {
			return res, err
		}
	}
	id := cmd.ID
	if id == "" {
		id = h.ids()
	}
	c, err := compania.New(id, cmd.Datos, h.now())
	if err != nil {
		return Result{}, err
	}
	meta := Meta{Traceparent: cmd.Traceparent}
	if k := cmd.Idempotency; k != nil {
		meta.Idempotency = &IdempotencyRecord{Scope: k.Scope, Key: k.Key, RequestHash: k.RequestHash, Result: c.Snapshot()}
	}
	err = h.repo.Add(ctx, c, meta)
	if errors.Is(err, ErrIdempotencyKeyTaken) {
		// A concurrent request with the same key committed first: answer as a retry.
		if res, ok, err := h.replay(ctx, *cmd.Idempotency); ok || err != nil {
			return res, err
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("crear compania: %w", err)
	}
	runAfter(ctx, h.after, c)
	return Result{Compania: c.Snapshot()}, nil
}

func (h *CrearCompaniaHandler) replay(ctx context.Context, k Idempotency) (Result, bool, error) {
	rec, ok, err := h.repo.LookupIdempotency(ctx, k.Scope, k.Key)
	if err != nil {
		return Result{}, false, fmt.Errorf("crear compania: lookup idempotency key: %w", err)
	}
	if !ok {
		return Result{}, false, nil
	}
	if !bytes.Equal(rec.RequestHash, k.RequestHash) {
		return Result{}, false, ErrIdempotencyMismatch
	}
	return Result{Compania: rec.Result, Replayed: true}, true, nil
}
