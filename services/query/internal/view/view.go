// Package view defines the read models of the query service: the
// denormalised company view, the statistics, the list filter and cursor,
// and the projection status. Adapters store them; the HTTP port renders them.
package view

import (
	"time"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// Compania is the denormalised view of one company, built from its
// integration events. Version is the version of the newest event applied.
type Compania struct {
	ID                 string
	Nombre             string
	Email              string
	Identificacion     string
	Estado             string
	MotivoRechazo      *string
	FechaCreacion      time.Time
	FechaActualizacion time.Time
	Version            int64
	// EventTime is the ce_time of the newest event applied.
	EventTime time.Time
	// Historial lists each estado the company entered, oldest first:
	// PENDIENTE at creation, then APROBADA or RECHAZADA.
	Historial []CambioEstado
}

// Run is one company's events of one batch folded into a view
// (projection.CollapseRuns), ready to be merged into a store.
type Run struct {
	// View is the view the events imply: the newest snapshot with the
	// historial entries of every event (as projection.Collapse).
	View Compania
	// First is the lowest version among the events; View.Version is the
	// highest. Zero (or anything not below View.Version) means a run of
	// View.Version alone.
	First int64
}

// FirstVersion returns the lowest version of r: First, or View.Version
// when First is zero or not below it.
func (r Run) FirstVersion() int64 {
	if r.First <= 0 || r.First > r.View.Version {
		return r.View.Version
	}
	return r.First
}

// Runs wraps views as runs of one version each (First = Version).
func Runs(views []Compania) []Run {
	out := make([]Run, len(views))
	for i, v := range views {
		out[i] = Run{View: v, First: v.Version}
	}
	return out
}

// VersionGap is a jump in a company's event versions met by the projection:
// an event of version Version applied after version Previous with Version >
// Previous+1, so that the events in between were never seen here (lost
// upstream, or discarded from the writer's outbox). The event is applied
// anyway: every event carries the full snapshot.
type VersionGap struct {
	CompaniaID string
	// Previous is the version the event followed: the stored view's
	// version (0 when no view was stored) or, when InBatch, the previous
	// version of the company in the same batch.
	Previous int64
	// Version is the version of the event after the gap.
	Version int64
	// InBatch tells a jump between two events of one batch from a jump
	// over the stored view.
	InBatch bool
}

// CambioEstado is one entry of a company's historial.
type CambioEstado struct {
	Estado  string
	Fecha   time.Time
	Version int64
	Motivo  *string
}

// Estadisticas counts companies per estado.
type Estadisticas struct {
	Total     int64
	PorEstado map[string]int64 // keyed by every estado of companiaevent.Estados, always all of them
}

// Sort orders of List.
const (
	SortFechaCreacion = "fecha_creacion" // newest first (default)
	SortNombre        = "nombre"         // A→Z, case-insensitive
)

// Filter selects and orders companies. Empty strings do not filter.
type Filter struct {
	Estado         string // one of companiaevent.Estados
	NombrePrefix   string // case-insensitive prefix of nombre
	Identificacion string // exact
	Email          string // exact, case-insensitive
	Sort           string // SortFechaCreacion or SortNombre
	Limit          int    // 1..100
	// After continues a previous page (nil for the first page).
	After *Cursor
}

// Cursor is the position after the last item of a page: the sort key of
// that item and its id as a tie-breaker. The HTTP port encodes it opaquely.
type Cursor struct {
	Sort string // the Filter.Sort it belongs to
	Key  string // nombre (lower-cased) or fecha_creacion as RFC 3339 nano
	ID   string
}

// Page is one page of a list.
type Page struct {
	Items []Compania
	Next  *Cursor // nil on the last page
}

// Projection states.
const (
	StateRunning    = "running"
	StateRebuilding = "rebuilding"
	StateFailing    = "failing"
	StateIdle       = "idle" // not assigned to this replica / not joined yet
)

// PartitionStatus is the projection progress of one partition of the events topic.
type PartitionStatus struct {
	Partition     int
	Committed     int64 // next offset the group will read; -1 if none committed
	HighWatermark int64
	Lag           int64
	LastEventTime time.Time // zero if no event applied since start
	State         string
}

// RebuildProgress reports a view rebuild.
type RebuildProgress struct {
	State      string // "idle", "running", "switching", "done", "failed"
	Generation string // the collection generation being built
	Processed  int64  // events consumed so far
	Total      int64  // events to consume (sum of high watermarks at start)
	StartedAt  time.Time
	FinishedAt time.Time
	Error      string
}

// ErrNotFound is returned when no view exists for an id.
var ErrNotFound = apperr.New(apperr.NotFound, "compania_not_found", "compania not found")
