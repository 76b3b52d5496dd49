package command

import (
	"context"
	"fmt"
	"time"

	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// ActualizarCompania changes nombre and/or email of a company.
type ActualizarCompania struct {
	ID      string
	Cambios compania.Cambios
	// ExpectedVersion, when non-zero, must equal the stored version
	// (compania.ErrVersionMismatch otherwise); it carries the HTTP If-Match.
	ExpectedVersion int64
	Traceparent     string
}

// AprobarCompania approves a PENDIENTE company.
type AprobarCompania struct {
	ID              string
	ExpectedVersion int64
	Traceparent     string
}

// RechazarCompania rejects a PENDIENTE company with a motivo.
type RechazarCompania struct {
	ID              string
	Motivo          string
	ExpectedVersion int64
	Traceparent     string
}

// changer runs one state change on an existing company inside Repository.Update.
type changer struct {
	repo  Repository
	now   Clock
	after EventHandler
}

func newChanger(repo Repository, now Clock, after EventHandler) changer {
	if repo == nil || now == nil {
		panic("command: handlers need a repository and a clock")
	}
	return changer{repo: repo, now: now, after: after}
}

func (ch changer) change(ctx context.Context, op, id string, expected int64, traceparent string,
	fn func(c *compania.Compania, now time.Time) error) (Result, error) {
	c, err := ch.repo.Update(ctx, id, Meta{Traceparent: traceparent}, func(c *compania.Compania) error {
		if expected != 0 && c.Version() != expected {
			return compania.ErrVersionMismatch
		}
		return fn(c, ch.now())
	})
	if err != nil {
		return Result{}, fmt.Errorf("%s compania %s: %w", op, id, err)
	}
	runAfter(ctx, ch.after, c)
	return Result{Compania: c.Snapshot()}, nil
}

// ActualizarCompaniaHandler handles ActualizarCompania.
type ActualizarCompaniaHandler struct{ changer }

// NewActualizarCompaniaHandler builds the handler; repo and now are required.
func NewActualizarCompaniaHandler(repo Repository, now Clock, after EventHandler) *ActualizarCompaniaHandler {
	return &ActualizarCompaniaHandler{newChanger(repo, now, after)}
}

// Handle applies the change in one transaction. Setting the current values
// again succeeds without a new version or event.
func (h *ActualizarCompaniaHandler) Handle(ctx context.Context, cmd ActualizarCompania) (Result, error) {
	return h.change(ctx, "actualizar", cmd.ID, cmd.ExpectedVersion, cmd.Traceparent,
		func(c *compania.Compania, now time.Time) error { return c.Actualizar(cmd.Cambios, now) })
}

// AprobarCompaniaHandler handles AprobarCompania.
type AprobarCompaniaHandler struct{ changer }

// NewAprobarCompaniaHandler builds the handler; repo and now are required.
func NewAprobarCompaniaHandler(repo Repository, now Clock, after EventHandler) *AprobarCompaniaHandler {
	return &AprobarCompaniaHandler{newChanger(repo, now, after)}
}

// Handle approves the company in one transaction.
func (h *AprobarCompaniaHandler) Handle(ctx context.Context, cmd AprobarCompania) (Result, error) {
	return h.change(ctx, "aprobar", cmd.ID, cmd.ExpectedVersion, cmd.Traceparent,
		func(c *compania.Compania, now time.Time) error { return c.Aprobar(now) })
}

// RechazarCompaniaHandler handles RechazarCompania.
type RechazarCompaniaHandler struct{ changer }

// NewRechazarCompaniaHandler builds the handler; repo and now are required.
func NewRechazarCompaniaHandler(repo Repository, now Clock, after EventHandler) *RechazarCompaniaHandler {
	return &RechazarCompaniaHandler{newChanger(repo, now, after)}
}

// Handle rejects the company in one transaction.
func (h *RechazarCompaniaHandler) Handle(ctx context.Context, cmd RechazarCompania) (Result, error) {
	return h.change(ctx, "rechazar", cmd.ID, cmd.ExpectedVersion, cmd.Traceparent,
		func(c *compania.Compania, now time.Time) error { return c.Rechazar(cmd.Motivo, now) })
}
