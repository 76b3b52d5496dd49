// Package companiajson is the JSON form of a company in the HTTP answers of
// both services: the Compania schema of the writer's and the reader's
// openapi.json (the reader adds its view's fields to it). It is the same
// representation as the events' companiaevent.Compania, with the times
// already formatted, so that encoding an answer calls no MarshalJSON.
package companiajson

import "time"

// Compania is a company as the HTTP APIs answer it. Times are RFC 3339 in
// UTC with the nanoseconds they have (see Time); MotivoRechazo is null
// unless the estado is RECHAZADA.
type Compania struct {
	ID                 string  `json:"id"`
	Nombre             string  `json:"nombre"`
	Email              string  `json:"email"`
	Identificacion     string  `json:"identificacion"`
	Estado             string  `json:"estado"`
	MotivoRechazo      *string `json:"motivo_rechazo"`
	FechaCreacion      string  `json:"fecha_creacion"`
	FechaActualizacion string  `json:"fecha_actualizacion"`
	Version            int64   `json:"version"`
}

// Time formats t in UTC as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds, trailing zeros dropped), without the quotes.
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
