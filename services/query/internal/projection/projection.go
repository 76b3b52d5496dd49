// Package projection folds the integration events of the companias context
// into the denormalised company view (view.Compania). It is pure: no I/O, no
// clock, no globals.
//
// The fold has two parts with different rules:
//
//   - The snapshot (every field of the company, Version and EventTime) is
//     version-guarded: an event whose Data.Compania.Version is not newer than
//     the view's Version leaves it untouched. Every event carries the full
//     snapshot after it, so the newest event alone decides the snapshot.
//   - The historial is a set of state changes keyed by the version of the
//     event that made them (CompaniaCreada → PENDIENTE, CompaniaAprobada →
//     APROBADA, CompaniaRechazada → RECHAZADA; CompaniaActualizada adds
//     nothing). Each entry is a function of its event alone, so adding an
//     entry that is already there changes nothing.
//
// Together this makes the fold idempotent, commutative and associative:
// duplicates, replays and any delivery order of the same set of events give
// the same view. A duplicate or replayed event — the everyday kind of stale
// event under at-least-once delivery — changes nothing at all, because its
// historial entry is already present. The only thing a stale event can still
// contribute is its own historial entry when that entry is missing, which can
// happen only if an older event arrives after a newer one (never within one
// Kafka partition, but a rebuild or a repaired topic may do it); dropping it
// would make the view depend on delivery order.
//
// A store applies the same rules without reading the current document: a
// version-guarded upsert of the snapshot plus an unconditional $set of each
// historial entry under its own key (see the mongoview adapter).
package projection

import (
	"cmp"
	"slices"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/services/query/internal/view"
)

// FromEvent returns the view that e alone implies: its company snapshot, its
// ce_time as EventTime, and its historial entry if it changed the estado.
// Times are converted to UTC.
func FromEvent(e companiaevent.Event) view.Compania {
	c := e.Data.Compania
	v := view.Compania{
		ID:                 c.ID,
		Nombre:             c.Nombre,
		Email:              c.Email,
		Identificacion:     c.Identificacion,
		Estado:             c.Estado,
		MotivoRechazo:      cloneString(c.MotivoRechazo),
		FechaCreacion:      c.FechaCreacion.UTC(),
		FechaActualizacion: c.FechaActualizacion.UTC(),
		Version:            c.Version,
		EventTime:          e.Time.UTC(),
	}
	if h, ok := Entry(e); ok {
		v.Historial = []view.CambioEstado{h}
	}
	return v
}

// estadoEntered is the estado each event of the contract makes its company
// enter, or "" for an event that leaves the estado as it was. Every name of
// companiaevent.Names is a key and every estado of companiaevent.Estados a
// value (the tests check both), so a new event type or estado fails the tests
// until its line is here.
var estadoEntered = map[companiaevent.Name]string{
	companiaevent.CompaniaCreada:      companiaevent.EstadoPendiente,
	companiaevent.CompaniaActualizada: "",
	companiaevent.CompaniaAprobada:    companiaevent.EstadoAprobada,
	companiaevent.CompaniaRechazada:   companiaevent.EstadoRechazada,
}

// Entry returns the historial entry of e and true if e changed the estado of
// its company: PENDIENTE for CompaniaCreada, APROBADA for CompaniaAprobada
// and RECHAZADA (with the motivo) for CompaniaRechazada. The entry's Fecha is
// the event's fecha_actualizacion and its Version the event's version.
// CompaniaActualizada and unknown names give false.
func Entry(e companiaevent.Event) (view.CambioEstado, bool) {
	estado := estadoEntered[e.Name]
	if estado == "" {
		return view.CambioEstado{}, false
	}
	c := e.Data.Compania
	h := view.CambioEstado{Estado: estado, Fecha: c.FechaActualizacion.UTC(), Version: c.Version}
	if estado == companiaevent.EstadoRechazada {
		h.Motivo = cloneString(c.MotivoRechazo)
	}
	return h, true
}

// Apply folds event e into cur (nil when no view exists yet) and reports
// whether the result differs from cur. It is Merge(cur, FromEvent(e)).
func Apply(cur *view.Compania, e companiaevent.Event) (view.Compania, bool) {
	return Merge(cur, FromEvent(e))
}

// Merge folds next, a view of the same company (from FromEvent or Collapse),
// into cur (nil when no view exists yet) and reports whether the result
// differs from cur. The snapshot of next replaces cur's only if next.Version
// is greater than cur.Version; next's historial entries are added to cur's
// unless an entry with the same Version is already there. The result's
// Historial is sorted by Version. Neither argument is modified.
func Merge(cur *view.Compania, next view.Compania) (view.Compania, bool) {
	if cur == nil {
		out := Clone(next)
		out.Historial = mergeHistorial(nil, next.Historial)
		return out, true
	}
	changed := false
	out := Clone(*cur)
	if next.Version > cur.Version {
		hist := out.Historial
		out = Clone(next)
		out.Historial = hist
		changed = true
	}
	merged := mergeHistorial(out.Historial, next.Historial)
	if len(merged) != len(out.Historial) {
		changed = true
	}
	out.Historial = merged
	return out, changed
}

// Collapse reduces a batch of events to one view per company, in the order
// in which each company first appears: the newest snapshot of the company in
// the batch together with the historial entries of every event of it in the
// batch. Merging the result into the stored views gives the same views as
// applying the events one by one, in any order. It is the views of
// CollapseRuns.
func Collapse(events []companiaevent.Event) []view.Compania {
	runs, _ := CollapseRuns(events)
	if runs == nil {
		return nil
	}
	out := make([]view.Compania, len(runs))
	for i, r := range runs {
		out[i] = r.View
	}
	return out
}

// CollapseRuns is Collapse keeping, per company, the lowest version of its
// events (Run.First), so that a store can tell a gap between the stored view
// and the run. It also returns the jumps inside each run: every distinct
// version of a company in the batch that is more than one above the
// company's next lower version in the batch, as a VersionGap with InBatch
// set, in the order of the runs and then of the versions. Duplicates and
// delivery order within the batch do not matter.
func CollapseRuns(events []companiaevent.Event) ([]view.Run, []view.VersionGap) {
	idx := make(map[string]int, len(events))
	var out []view.Run
	var versions [][]int64 // per run
	for _, e := range events {
		next := FromEvent(e)
		i, ok := idx[next.ID]
		if !ok {
			idx[next.ID] = len(out)
			merged, _ := Merge(nil, next)
			out = append(out, view.Run{View: merged, First: next.Version})
			versions = append(versions, []int64{next.Version})
			continue
		}
		out[i].View, _ = Merge(&out[i].View, next)
		out[i].First = min(out[i].First, next.Version)
		versions[i] = append(versions[i], next.Version)
	}
	var gaps []view.VersionGap
	for i, vs := range versions {
		if len(vs) < 2 {
			continue
		}
		slices.Sort(vs)
		for j := 1; j < len(vs); j++ {
			if vs[j] > vs[j-1]+1 {
				gaps = append(gaps, view.VersionGap{CompaniaID: out[i].View.ID, Previous: vs[j-1], Version: vs[j], InBatch: true})
			}
		}
	}
	return out, gaps
}

// Clone returns a deep copy of v (MotivoRechazo, Historial and the Motivo of
// each entry are copied).
func Clone(v view.Compania) view.Compania {
	v.MotivoRechazo = cloneString(v.MotivoRechazo)
	if v.Historial != nil {
		h := make([]view.CambioEstado, len(v.Historial))
		for i, e := range v.Historial {
			e.Motivo = cloneString(e.Motivo)
			h[i] = e
		}
		v.Historial = h
	}
	return v
}

// mergeHistorial returns the union of a and b keyed by Version (a's entry
// wins on a tie), sorted by Version then Fecha. It returns a new slice.
func mergeHistorial(a, b []view.CambioEstado) []view.CambioEstado {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make([]view.CambioEstado, 0, len(a)+len(b))
	seen := make(map[int64]bool, len(a)+len(b))
	for _, list := range [][]view.CambioEstado{a, b} {
		for _, e := range list {
			if seen[e.Version] {
				continue
			}
			seen[e.Version] = true
			e.Motivo = cloneString(e.Motivo)
			out = append(out, e)
		}
	}
	SortHistorial(out)
	return out
}

// SortHistorial sorts entries oldest first: by Version, then Fecha, then
// Estado.
func SortHistorial(h []view.CambioEstado) {
	slices.SortFunc(h, func(x, y view.CambioEstado) int {
		switch {
		case x.Version != y.Version:
			return cmp.Compare(x.Version, y.Version)
		case !x.Fecha.Equal(y.Fecha):
			return x.Fecha.Compare(y.Fecha)
		default:
			return cmp.Compare(x.Estado, y.Estado)
		}
	})
}

func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}
