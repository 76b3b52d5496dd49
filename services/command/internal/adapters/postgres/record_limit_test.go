package postgres_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/adapters/integration"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// An event whose Kafka record (key, value, header keys and values) would
// exceed WithMaxRecordBytes is refused with ErrRecordTooLarge, an Invalid
// error naming no field value, and nothing of the write is stored; a record
// of exactly the limit is stored.
func TestIntegrationRecordLimit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	meta := command.Meta{Traceparent: traceparent,
		Idempotency: &command.IdempotencyRecord{Scope: "test", Key: "k-1", RequestHash: []byte{1}}}

	c := newCompania(t, "Limite Exacto SAS", "LIM-1")
	msg, err := integration.Message(uuid.NewString(), c.Events()[0], traceparent) // same size: a UUID event id
	if err != nil {
		t.Fatal(err)
	}
	size := postgres.RecordSize(msg)
	if want := len(msg.Key) + len(msg.Value) + len("traceparent") + len(traceparent); size < want {
		t.Fatalf("RecordSize = %d, less than key + value + traceparent header (%d)", size, want)
	}

	tight := postgres.NewRepository(f.pool, postgres.WithMaxRecordBytes(size-1))
	t.Cleanup(tight.Close)
	err = tight.Add(ctx, c, meta)
	if !errors.Is(err, postgres.ErrRecordTooLarge) || apperr.KindOf(err) != apperr.Invalid {
		t.Fatalf("Add over the limit = %v, want ErrRecordTooLarge (Invalid)", err)
	}
	var ae *apperr.Error
	if errors.As(err, &ae); ae.Code != "record_too_large" || strings.Contains(ae.Message, "Limite") || strings.Contains(ae.Message, "LIM-1") {
		t.Errorf("error code %q message %q: want record_too_large and no field value", ae.Code, ae.Message)
	}
	if got := f.counts(t); got != [4]int{} {
		t.Fatalf("after a refused Add: companias, events, outbox, idempotency = %v, want none", got)
	}

	exact := postgres.NewRepository(f.pool, postgres.WithMaxRecordBytes(size))
	t.Cleanup(exact.Close)
	if err := exact.Add(ctx, c, meta); err != nil {
		t.Fatalf("Add at exactly the limit = %v", err)
	}
	before := f.counts(t)

	// Update: a rejection reason that makes the record too large.
	_, err = exact.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error {
		return c.Rechazar(strings.Repeat("m", 100), now())
	})
	if !errors.Is(err, postgres.ErrRecordTooLarge) {
		t.Fatalf("Update over the limit = %v, want ErrRecordTooLarge", err)
	}
	if got := f.counts(t); got != before {
		t.Errorf("after a refused Update: counts %v, want %v", got, before)
	}
	if s := f.load(t, c.ID()); s.Version != 1 || s.Estado != compania.Pendiente {
		t.Errorf("after a refused Update: version %d estado %v, want 1, PENDIENTE", s.Version, s.Estado)
	}
}
