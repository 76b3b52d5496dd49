package compania

import "time"

// Event is a domain event of the Compania aggregate. Every event carries the
// company's complete state right after it (Compania), so its version and time
// are Compania.Version and Compania.FechaActualizacion.
type Event interface {
	// EventName is the ubiquitous-language name, e.g. "CompaniaCreada".
	EventName() string
	// State is the company right after the event.
	State() Snapshot
}

// CompaniaCreada: a company was registered (version 1, PENDIENTE).
type CompaniaCreada struct{ Compania Snapshot }

// CompaniaActualizada: nombre and/or email changed; Campos names which.
type CompaniaActualizada struct {
	Campos   []string
	Compania Snapshot
}

// CompaniaAprobada: a PENDIENTE company was approved.
type CompaniaAprobada struct{ Compania Snapshot }

// CompaniaRechazada: a PENDIENTE company was rejected for Motivo.
type CompaniaRechazada struct {
	Motivo   string
	Compania Snapshot
}

// EventName implements Event.
func (CompaniaCreada) EventName() string { return "CompaniaCreada" }

// EventName implements Event.
func (CompaniaActualizada) EventName() string { return "CompaniaActualizada" }

// EventName implements Event.
func (CompaniaAprobada) EventName() string { return "CompaniaAprobada" }

// EventName implements Event.
func (CompaniaRechazada) EventName() string { return "CompaniaRechazada" }

// State implements Event.
func (e CompaniaCreada) State() Snapshot { return e.Compania }

// State implements Event.
func (e CompaniaActualizada) State() Snapshot { return e.Compania }

// State implements Event.
func (e CompaniaAprobada) State() Snapshot { return e.Compania }

// State implements Event.
func (e CompaniaRechazada) State() Snapshot { return e.Compania }

// OccurredAt returns when e happened.
func OccurredAt(e Event) time.Time { return e.State().FechaActualizacion }
