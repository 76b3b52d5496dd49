// Package aggregate holds the building blocks shared by DDD aggregates:
// a recorder of domain events to be held in an unexported field.
package aggregate

// Recorder accumulates the domain events an aggregate raised since it was
// loaded. It is not safe for concurrent use; an aggregate instance belongs to
// one unit of work at a time. The zero value is ready to use.
type Recorder[E any] struct {
	events []E
}

// Record appends e to the pending events.
func (r *Recorder[E]) Record(e E) { r.events = append(r.events, e) }

// Events returns a copy of the pending events, oldest first.
func (r *Recorder[E]) Events() []E {
	out := make([]E, len(r.events))
	copy(out, r.events)
	return out
}

// Clear forgets the pending events, typically after they were persisted.
func (r *Recorder[E]) Clear() { r.events = nil }
