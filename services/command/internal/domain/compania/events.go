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

// EventNames lists the EventName of every domain event type of this
// package. The tests check that the aggregate records no other, and the
// integration adapter's tests that these are the contract's event names
// (companiaevent.Names) one to one: a new event type added here without its
// integration event, or the other way round, fails there.
func EventNames() []string {
	return []string{
		CompaniaCreada{}.EventName(),
		CompaniaActualizada{}.EventName(),
		CompaniaAprobada{}.EventName(),
		CompaniaRechazada{}.EventName(),
	}
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
