// Package integration maps domain events of the Compania aggregate to the
// integration-event contract (libs/contracts/companiaevent). It is the only
// place where the two models meet.
package integration

import (
	"fmt"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// Event maps a domain event to its integration event with the given event id
// (the ce_id) and W3C traceparent ("" for none).
func Event(eventID string, e compania.Event, traceparent string) (companiaevent.Event, error) {
	name := companiaevent.Name(e.EventName())
	if !name.Known() {
		return companiaevent.Event{}, fmt.Errorf("no integration event for domain event %s", e.EventName())
	}
	data := companiaevent.Data{Compania: Snapshot(e.State())}
	if a, ok := e.(compania.CompaniaActualizada); ok {
		data.Campos = append([]string(nil), a.Campos...)
	}
	return companiaevent.Event{
		ID:          eventID,
		Name:        name,
		Time:        compania.OccurredAt(e).UTC(),
		Traceparent: traceparent,
		Data:        data,
	}, nil
}

// Message maps a domain event straight to its Kafka record.
func Message(eventID string, e compania.Event, traceparent string) (companiaevent.Message, error) {
	ev, err := Event(eventID, e, traceparent)
	if err != nil {
		return companiaevent.Message{}, err
	}
	return companiaevent.Encode(ev)
}

// Snapshot maps the domain state of a company to its contract shape.
func Snapshot(s compania.Snapshot) companiaevent.Compania {
	out := companiaevent.Compania{
		ID:                 s.ID,
		Nombre:             s.Nombre,
		Email:              s.Email,
		Identificacion:     s.Identificacion,
		Estado:             s.Estado.String(),
		FechaCreacion:      s.FechaCreacion.UTC(),
		FechaActualizacion: s.FechaActualizacion.UTC(),
		Version:            s.Version,
	}
	if s.MotivoRechazo != "" {
		m := s.MotivoRechazo
		out.MotivoRechazo = &m
	}
	return out
}
