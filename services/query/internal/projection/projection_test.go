package projection_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/services/query/internal/projection"
	"github.com/propalpes/companias/services/query/internal/view"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func strp(s string) *string { return &s }

// lifecycle returns the events of one company: created, updated, then
// approved (or rejected) and, when approved, updated again.
func lifecycle(id string, reject bool) []companiaevent.Event {
	base := companiaevent.Compania{
		ID: id, Nombre: "Acme " + id, Email: "info@" + id + ".co", Identificacion: "NIT-" + id,
		Estado: companiaevent.EstadoPendiente, FechaCreacion: t0, FechaActualizacion: t0, Version: 1,
	}
	ev := func(n companiaevent.Name, c companiaevent.Compania, campos ...string) companiaevent.Event {
		return companiaevent.Event{
			ID: fmt.Sprintf("%s-v%d", id, c.Version), Name: n,
			Time: c.FechaActualizacion.Add(time.Millisecond),
			Data: companiaevent.Data{Compania: c, Campos: campos},
		}
	}
	out := []companiaevent.Event{ev(companiaevent.CompaniaCreada, base)}
	c := base
	c.Version, c.Nombre, c.FechaActualizacion = 2, "Acme Renamed "+id, t0.Add(time.Minute)
	out = append(out, ev(companiaevent.CompaniaActualizada, c, "nombre"))
	c.Version, c.FechaActualizacion = 3, t0.Add(2*time.Minute)
	if reject {
		c.Estado, c.MotivoRechazo = companiaevent.EstadoRechazada, strp("documentos incompletos")
		return append(out, ev(companiaevent.CompaniaRechazada, c))
	}
	c.Estado = companiaevent.EstadoAprobada
	out = append(out, ev(companiaevent.CompaniaAprobada, c))
	c.Version, c.Email, c.FechaActualizacion = 4, "ventas@"+id+".co", t0.Add(3*time.Minute)
	return append(out, ev(companiaevent.CompaniaActualizada, c, "email"))
}

func fold(events []companiaevent.Event) map[string]view.Compania {
	views := map[string]view.Compania{}
	for _, e := range events {
		id := e.Data.Compania.ID
		var cur *view.Compania
		if v, ok := views[id]; ok {
			cur = &v
		}
		views[id], _ = projection.Apply(cur, e)
	}
	return views
}

func TestApplyLifecycle(t *testing.T) {
	t.Parallel()
	approved := fold(lifecycle("a", false))["a"]
	want := view.Compania{
		ID: "a", Nombre: "Acme Renamed a", Email: "ventas@a.co", Identificacion: "NIT-a",
		Estado: companiaevent.EstadoAprobada, FechaCreacion: t0, FechaActualizacion: t0.Add(3 * time.Minute),
		Version: 4, EventTime: t0.Add(3*time.Minute + time.Millisecond),
		Historial: []view.CambioEstado{
			{Estado: companiaevent.EstadoPendiente, Fecha: t0, Version: 1},
			{Estado: companiaevent.EstadoAprobada, Fecha: t0.Add(2 * time.Minute), Version: 3},
		},
	}
	if !reflect.DeepEqual(approved, want) {
		t.Errorf("approved view:\n got %+v\nwant %+v", approved, want)
	}

	rejected := fold(lifecycle("r", true))["r"]
	if rejected.Estado != companiaevent.EstadoRechazada || rejected.Version != 3 ||
		rejected.MotivoRechazo == nil || *rejected.MotivoRechazo != "documentos incompletos" {
		t.Errorf("rejected view: got %+v", rejected)
	}
	wantHist := []view.CambioEstado{
		{Estado: companiaevent.EstadoPendiente, Fecha: t0, Version: 1},
		{Estado: companiaevent.EstadoRechazada, Fecha: t0.Add(2 * time.Minute), Version: 3, Motivo: strp("documentos incompletos")},
	}
	if !reflect.DeepEqual(rejected.Historial, wantHist) {
		t.Errorf("rejected historial:\n got %+v\nwant %+v", rejected.Historial, wantHist)
	}
}

func TestApplyConverges(t *testing.T) {
	t.Parallel()
	a, r := lifecycle("a", false), lifecycle("r", true)
	inOrder := append(append([]companiaevent.Event{}, a...), r...)
	want := fold(inOrder)

	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := func(seed uint64) []companiaevent.Event {
		s := append(append([]companiaevent.Event{}, inOrder...), inOrder...) // every event twice
		rng := rand.New(rand.NewPCG(seed, seed))
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		return s
	}
	tests := []struct {
		name   string
		events []companiaevent.Event
	}{
		{"in order", inOrder},
		{"interleaved companies", []companiaevent.Event{a[0], r[0], a[1], r[1], a[2], r[2], a[3]}},
		{"duplicates", []companiaevent.Event{a[0], a[0], a[1], a[1], a[1], a[2], a[3], a[3], r[0], r[1], r[1], r[2], r[2]}},
		{"replay of the whole log", append(append([]companiaevent.Event{}, inOrder...), inOrder...)},
		{"replay of a suffix after a rebalance", []companiaevent.Event{a[0], a[1], a[2], a[1], a[2], a[3], r[0], r[1], r[2], r[0], r[1], r[2]}},
		{"out of order", []companiaevent.Event{a[3], a[1], a[2], a[0], r[2], r[0], r[1]}},
		{"reversed", reversed(inOrder)},
		{"random order with duplicates 1", shuffled(rng.Uint64())},
		{"random order with duplicates 2", shuffled(rng.Uint64())},
		{"random order with duplicates 3", shuffled(rng.Uint64())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fold(tt.events); !reflect.DeepEqual(got, want) {
				t.Errorf("views differ from in-order fold:\n got %+v\nwant %+v", got, want)
			}
			// Collapsing the batch and merging gives the same views.
			got := map[string]view.Compania{}
			for _, v := range projection.Collapse(tt.events) {
				got[v.ID] = v
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("collapsed views differ:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func reversed(s []companiaevent.Event) []companiaevent.Event {
	out := make([]companiaevent.Event, len(s))
	for i, e := range s {
		out[len(s)-1-i] = e
	}
	return out
}

func TestApplyStaleChangesNothing(t *testing.T) {
	t.Parallel()
	ev := lifecycle("a", false)
	cur := fold(ev)["a"]
	for _, e := range ev {
		got, changed := projection.Apply(&cur, e)
		if changed {
			t.Errorf("re-applying v%d reported a change", e.Data.Compania.Version)
		}
		if !reflect.DeepEqual(got, cur) {
			t.Errorf("re-applying v%d changed the view:\n got %+v\nwant %+v", e.Data.Compania.Version, got, cur)
		}
	}
	// A stale event with a different snapshot (same version) does not win.
	e := ev[3]
	e.Data.Compania.Nombre = "Impostor"
	if got, changed := projection.Apply(&cur, e); changed || got.Nombre != cur.Nombre {
		t.Errorf("same-version event changed the snapshot: changed=%v nombre=%q", changed, got.Nombre)
	}
}

func TestApplyOutOfOrderFillsOnlyHistorial(t *testing.T) {
	t.Parallel()
	ev := lifecycle("a", false)
	cur, _ := projection.Apply(nil, ev[3]) // v4 first: no historial yet
	if len(cur.Historial) != 0 || cur.Version != 4 {
		t.Fatalf("view from v4: got %+v", cur)
	}
	got, changed := projection.Apply(&cur, ev[2]) // the older approval adds its entry only
	if !changed {
		t.Errorf("older approval: want changed")
	}
	if got.Version != 4 || got.Email != cur.Email || got.EventTime != cur.EventTime {
		t.Errorf("older approval changed the snapshot: got %+v", got)
	}
	if len(got.Historial) != 1 || got.Historial[0].Estado != companiaevent.EstadoAprobada {
		t.Errorf("older approval historial: got %+v", got.Historial)
	}
	if _, changed := projection.Apply(&got, ev[1]); changed { // an older update adds nothing
		t.Errorf("older update: reported a change")
	}
}

func TestApplyDoesNotAlias(t *testing.T) {
	t.Parallel()
	ev := lifecycle("r", true)
	cur := fold(ev[:2])["r"]
	got, _ := projection.Apply(&cur, ev[2])
	*got.MotivoRechazo = "mutated"
	*got.Historial[1].Motivo = "mutated"
	got.Historial[0].Estado = "mutated"
	if cur.Historial[0].Estado != companiaevent.EstadoPendiente {
		t.Errorf("Apply aliased the historial of its input")
	}
	if *ev[2].Data.Compania.MotivoRechazo != "documentos incompletos" {
		t.Errorf("Apply aliased the motivo of the event")
	}
}

func TestEntry(t *testing.T) {
	t.Parallel()
	ev := lifecycle("r", true)
	tests := []struct {
		e      companiaevent.Event
		estado string
		ok     bool
	}{
		{ev[0], companiaevent.EstadoPendiente, true},
		{ev[1], "", false},
		{ev[2], companiaevent.EstadoRechazada, true},
		{companiaevent.Event{Name: "CompaniaFusionada"}, "", false},
	}
	for _, tt := range tests {
		h, ok := projection.Entry(tt.e)
		if ok != tt.ok || h.Estado != tt.estado {
			t.Errorf("Entry(%s) = %+v, %v; want estado %q, %v", tt.e.Name, h, ok, tt.estado, tt.ok)
		}
		if ok && (h.Version != tt.e.Data.Compania.Version || !h.Fecha.Equal(tt.e.Data.Compania.FechaActualizacion)) {
			t.Errorf("Entry(%s): version/fecha = %d/%s", tt.e.Name, h.Version, h.Fecha)
		}
	}
}

// TestEntryCoversTheContract checks the projection against the contract's
// lists: Entry decides, for every event name of companiaevent.Names, which
// estado it enters (or none), each such estado is one of
// companiaevent.Estados, and every estado is entered by some event. A new
// event type or estado fails here until projection.go handles it.
func TestEntryCoversTheContract(t *testing.T) {
	t.Parallel()
	entered := map[string]bool{}
	for _, n := range companiaevent.Names() {
		estado, ok := projection.EstadoEntered[n]
		if !ok {
			t.Errorf("event %s: add it to estadoEntered in projection.go (the estado it enters, or \"\")", n)
			continue
		}
		if estado != "" && !companiaevent.KnownEstado(estado) {
			t.Errorf("event %s enters %q, which is not in companiaevent.Estados()", n, estado)
		}
		entered[estado] = true
		e := companiaevent.Event{Name: n, Data: companiaevent.Data{Compania: companiaevent.Compania{
			Version: 7, FechaActualizacion: t0, MotivoRechazo: strp("motivo")}}}
		h, ok := projection.Entry(e)
		if ok != (estado != "") || h.Estado != estado {
			t.Errorf("Entry(%s) = %+v, %v; want estado %q", n, h, ok, estado)
		}
		if wantMotivo := estado == companiaevent.EstadoRechazada; (h.Motivo != nil) != wantMotivo {
			t.Errorf("Entry(%s).Motivo = %v, want one only for %s", n, h.Motivo, companiaevent.EstadoRechazada)
		}
	}
	for n := range projection.EstadoEntered {
		if !n.Known() {
			t.Errorf("estadoEntered has %s, which is not in companiaevent.Names()", n)
		}
	}
	for _, estado := range companiaevent.Estados() {
		if !entered[estado] {
			t.Errorf("no event enters estado %s: the historial could never show it", estado)
		}
	}
}

func TestCollapseKeepsFirstAppearanceOrder(t *testing.T) {
	t.Parallel()
	a, r := lifecycle("a", false), lifecycle("r", true)
	got := projection.Collapse([]companiaevent.Event{r[0], a[0], r[1], a[1], a[2]})
	if len(got) != 2 || got[0].ID != "r" || got[1].ID != "a" {
		t.Fatalf("Collapse order: got %v", got)
	}
	if got[1].Version != 3 || len(got[1].Historial) != 2 || got[0].Version != 2 || len(got[0].Historial) != 1 {
		t.Errorf("Collapse content: got %+v", got)
	}
	if projection.Collapse(nil) != nil {
		t.Errorf("Collapse(nil) should be nil")
	}
}

func TestCollapseRuns(t *testing.T) {
	t.Parallel()
	a, r := lifecycle("a", false), lifecycle("r", true) // a: v1..v4, r: v1..v3
	tests := []struct {
		name   string
		events []companiaevent.Event
		first  map[string]int64
		gaps   []view.VersionGap
	}{
		{"contiguous", []companiaevent.Event{a[1], r[0], a[2], r[1]}, map[string]int64{"a": 2, "r": 1}, nil},
		{"duplicates and disorder", []companiaevent.Event{a[2], a[1], a[2], a[3], a[1]}, map[string]int64{"a": 2}, nil},
		{"jump inside a run", []companiaevent.Event{a[0], r[0], a[3], r[2], a[1]},
			map[string]int64{"a": 1, "r": 1}, []view.VersionGap{
				{CompaniaID: "a", Previous: 2, Version: 4, InBatch: true},
				{CompaniaID: "r", Previous: 1, Version: 3, InBatch: true},
			}},
		{"single event", []companiaevent.Event{a[3]}, map[string]int64{"a": 4}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runs, gaps := projection.CollapseRuns(tt.events)
			want := fold(tt.events)
			if len(runs) != len(want) {
				t.Fatalf("%d runs, want %d", len(runs), len(want))
			}
			for _, r := range runs {
				if !reflect.DeepEqual(r.View, want[r.View.ID]) {
					t.Errorf("run view of %s:\n got %+v\nwant %+v", r.View.ID, r.View, want[r.View.ID])
				}
				if r.First != tt.first[r.View.ID] || r.FirstVersion() != tt.first[r.View.ID] {
					t.Errorf("run of %s: First %d, want %d", r.View.ID, r.First, tt.first[r.View.ID])
				}
			}
			if !reflect.DeepEqual(gaps, tt.gaps) {
				t.Errorf("gaps %+v, want %+v", gaps, tt.gaps)
			}
		})
	}
}

func TestRunFirstVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ first, version, want int64 }{{0, 5, 5}, {3, 5, 3}, {5, 5, 5}, {7, 5, 5}, {-1, 2, 2}} {
		r := view.Run{View: view.Compania{Version: tt.version}, First: tt.first}
		if got := r.FirstVersion(); got != tt.want {
			t.Errorf("Run{First: %d, Version: %d}.FirstVersion() = %d, want %d", tt.first, tt.version, got, tt.want)
		}
	}
}
