package integration_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/companiaevent/companiaeventtest"
	"github.com/propalpes/companias/services/command/internal/adapters/integration"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// TestEstadosAreTheContracts keeps the domain's estados and the contract's
// one list: the wire name of each compania.Estado, in lifecycle order, is
// companiaevent.Estados. Adding an estado to one side fails here until the
// other has it.
func TestEstadosAreTheContracts(t *testing.T) {
	t.Parallel()
	var got []string
	for _, e := range compania.Estados() {
		got = append(got, integration.Snapshot(compania.Snapshot{Estado: e}).Estado)
	}
	if want := companiaevent.Estados(); !slices.Equal(got, want) {
		t.Errorf("domain estados map to %q, want companiaevent.Estados() %q (same order)", got, want)
	}
}

// TestEventNamesAreTheContracts pins the domain event types to the
// contract's event names one to one: every domain event has an integration
// event, and every integration event is emitted by some domain event.
func TestEventNamesAreTheContracts(t *testing.T) {
	t.Parallel()
	var got []string
	for _, n := range compania.EventNames() {
		got = append(got, n)
		if !companiaevent.Name(n).Known() {
			t.Errorf("domain event %s has no integration event in companiaevent.Names()", n)
		}
	}
	for _, n := range companiaevent.Names() {
		if !slices.Contains(got, string(n)) {
			t.Errorf("integration event %s is emitted by no domain event (compania.EventNames())", n)
		}
	}
}

// TestEventMapsEveryDomainEvent maps one recorded event of each kind.
func TestEventMapsEveryDomainEvent(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	newCompania := func() *compania.Compania {
		c, err := compania.New("0b7e2a5c-6c1e-4c2f-9f0e-2f4b8f7a1d11",
			compania.Datos{Nombre: "ACME SAS", Email: "info@acme.co", Identificacion: "900123456-7"}, t0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	email := "otro@acme.co"
	a := newCompania()
	if err := a.Actualizar(compania.Cambios{Email: &email}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := a.Aprobar(t0.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := newCompania()
	if err := r.Rechazar("incompleta", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	seen := map[companiaevent.Name]bool{}
	for _, e := range append(a.Events(), r.Events()...) {
		ev, err := integration.Event("018f0000-0000-7000-8000-000000000001", e, "")
		if err != nil {
			t.Errorf("Event(%s): %v", e.EventName(), err)
			continue
		}
		seen[ev.Name] = true
		s := e.State()
		if ev.Name != companiaevent.Name(e.EventName()) || ev.Data.Compania.Version != s.Version ||
			ev.Data.Compania.Estado != s.Estado.String() || !ev.Time.Equal(s.FechaActualizacion) {
			t.Errorf("Event(%s) = %+v, does not carry the domain event's state %+v", e.EventName(), ev, s)
		}
		if _, err := companiaevent.Encode(ev); err != nil {
			t.Errorf("Encode(%s): %v", ev.Name, err)
		}
	}
	for _, n := range companiaevent.Names() {
		if !seen[n] {
			t.Errorf("no domain event driven here maps to %s", n)
		}
	}
}

// TestOpenAPIEstadosAreTheContracts checks the enum of every estado
// property of the writer's OpenAPI document against companiaevent.Estados:
// the document cannot import the list, so adding an estado fails here until
// it names it.
func TestOpenAPIEstadosAreTheContracts(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../ports/httpapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := companiaeventtest.CheckEstados(doc, 1); err != nil {
		t.Errorf("the writer's openapi.json:\n%v", err)
	}
}
