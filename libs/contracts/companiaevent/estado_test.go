package companiaevent_test

import (
	"slices"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/companiaevent/companiaeventtest"
)

// TestEstadosAreTheSchemas keeps the estado list of the Go contract and of
// its JSON Schemas one list: the snapshot schema's enum is exactly Estados,
// every event schema allows only estados of Estados, and every estado is
// the estado of some event (else no company could ever enter it). Adding an
// estado fails here until compania.v1.json and the schema of the event that
// enters it say so.
func TestEstadosAreTheSchemas(t *testing.T) {
	t.Parallel()
	schemas := companiaevent.Schemas()
	if err := companiaeventtest.CheckEstados(schemas[companiaevent.SchemaBaseURI+"compania.v1.json"], 1); err != nil {
		t.Errorf("compania.v1.json: %v", err)
	}
	entered := map[string]bool{}
	for _, n := range companiaevent.Names() {
		lists, err := companiaeventtest.EstadoLists(schemas[companiaevent.SchemaID(n)])
		if err != nil {
			t.Errorf("schema %s of event %s: %v", companiaevent.SchemaID(n), n, err)
			continue
		}
		for _, list := range lists {
			for _, e := range list {
				if !companiaevent.KnownEstado(e) {
					t.Errorf("schema of %s allows estado %q, which is not in companiaevent.Estados()", n, e)
				}
				entered[e] = true
			}
		}
	}
	for _, e := range companiaevent.Estados() {
		if !entered[e] {
			t.Errorf("estado %s is the estado of no event schema: which event enters it?", e)
		}
	}
}

func TestKnownEstado(t *testing.T) {
	t.Parallel()
	for _, e := range companiaevent.Estados() {
		if !companiaevent.KnownEstado(e) {
			t.Errorf("KnownEstado(%q) = false, want true", e)
		}
	}
	for _, s := range []string{"", "pendiente", "BORRADA", " APROBADA"} {
		if companiaevent.KnownEstado(s) {
			t.Errorf("KnownEstado(%q) = true, want false", s)
		}
	}
	if got := companiaevent.Estados(); len(got) == 0 || len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
		t.Errorf("Estados() = %q, want a non-empty list without repeats", got)
	}
}
