// Package command holds the command handlers of the command service, one
// file per use case, and the interfaces they consume.
package command

import (
	"context"
	"time"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// Repository is the unit of work for Compania aggregates. Each call is one
// database transaction that stores the aggregate, appends its recorded events
// to the event log, and adds one outbox row per event; nothing is published
// unless the transaction commits.
type Repository interface {
	// Add inserts a new company. It returns compania.ErrDuplicate when the
	// (nombre, identificacion) pair is taken, compania.ErrIDTaken when the id
	// is, and ErrIdempotencyKeyTaken when meta.Idempotency's key was recorded
	// by a concurrent transaction (nothing is stored then).
	Add(ctx context.Context, c *compania.Compania, meta Meta) error
	// Update loads the company (compania.ErrNotFound if absent), runs fn on
	// it and, if fn succeeds and recorded events, saves it with an optimistic
	// version check (compania.ErrConcurrentUpdate when another transaction won).
	// It returns the company as saved, with the events fn recorded.
	Update(ctx context.Context, id string, meta Meta, fn func(*compania.Compania) error) (*compania.Compania, error)
	// LookupIdempotency returns the record stored for (scope, key), if any.
	LookupIdempotency(ctx context.Context, scope, key string) (IdempotencyRecord, bool, error)
}

// Meta travels with a command into its transaction.
type Meta struct {
	// Traceparent is the W3C trace context of the request; it is stored with
	// the outbox rows and sent as the traceparent Kafka header.
	Traceparent string
	// Idempotency, when set, is recorded in the same transaction.
	Idempotency *IdempotencyRecord
}

// IdempotencyRecord remembers the outcome of a command sent with an
// idempotency key, so that a retry replays it instead of running again.
type IdempotencyRecord struct {
	// Scope separates key spaces: one per route and caller (for example
	// "http:POST /v1/companias:sub:<sha-256 hex>", or the route alone for
	// the anonymous caller) or one per Kafka topic ("kafka:<topic>"). The
	// ports build it; it is at most a few hundred bytes.
	Scope string
	Key   string
	// RequestHash identifies the request body; a retry with the same key and
	// another body is refused with ErrIdempotencyMismatch.
	RequestHash []byte
	// Result is the company right after the command.
	Result compania.Snapshot
}

// Idempotency identifies a command for deduplication.
type Idempotency struct {
	Scope       string
	Key         string
	RequestHash []byte
}

// IDGenerator returns new company ids (UUIDs).
type IDGenerator func() string

// Clock returns the current time.
type Clock func() time.Time

// EventHandler receives the domain events of a command after its transaction
// committed. It runs synchronously in the request; it must not fail the
// command (the events are already durable in the outbox), so it returns nothing.
type EventHandler func(ctx context.Context, events []compania.Event)

// Errors of the application layer.
var (
	// ErrIdempotencyMismatch: the idempotency key was used before with another request.
	ErrIdempotencyMismatch = apperr.New(apperr.Invalid, "idempotency_key_reused",
		"the Idempotency-Key was already used with a different request")
	// ErrIdempotencyKeyTaken is returned by Repository.Add when a concurrent
	// transaction recorded the same idempotency key first.
	ErrIdempotencyKeyTaken = apperr.New(apperr.Conflict, "idempotency_key_in_flight",
		"a request with this Idempotency-Key is being processed")
)

// Result is the outcome of a command.
type Result struct {
	// Compania is the company after the command.
	Compania compania.Snapshot
	// Replayed is true when an idempotent retry returned a stored outcome
	// without running the command again.
	Replayed bool
}

func runAfter(ctx context.Context, after EventHandler, c *compania.Compania) {
	if after == nil {
		return
	}
	if ev := c.Events(); len(ev) > 0 {
		after(ctx, ev)
	}
}
