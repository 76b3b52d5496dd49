package companiaevent_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// schemaEstados returns every value that the JSON Schema doc allows for a
// property named "estado" (its enum and const values), in document order,
// wherever the property is declared.
func schemaEstados(t *testing.T, doc []byte) []string {
	t.Helper()
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				if est, ok := props["estado"].(map[string]any); ok {
					if c, ok := est["const"].(string); ok {
						out = append(out, c)
					}
					if list, ok := est["enum"].([]any); ok {
						for _, e := range list {
							s, _ := e.(string)
							out = append(out, s)
						}
					}
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(root)
	return out
}

// TestEstadosAreTheSchemas keeps the estado list of the Go contract and of
// its JSON Schemas one list: the snapshot schema's enum is exactly Estados,
// every event schema allows only estados of Estados, and every estado is
// the estado of some event (else no company could ever enter it). Adding an
// estado fails here until compania.v1.json and the schema of the event that
// enters it say so.
func TestEstadosAreTheSchemas(t *testing.T) {
	t.Parallel()
	schemas := companiaevent.Schemas()
	snapshot := schemas[companiaevent.SchemaBaseURI+"compania.v1.json"]
	if snapshot == nil {
		t.Fatal("no compania.v1.json schema")
	}
	if got, want := schemaEstados(t, snapshot), companiaevent.Estados(); !slices.Equal(got, want) {
		t.Errorf("compania.v1.json estado enum = %q, want companiaevent.Estados() %q (same order)", got, want)
	}
	entered := map[string]bool{}
	for _, n := range companiaevent.Names() {
		doc := schemas[companiaevent.SchemaID(n)]
		if doc == nil {
			t.Errorf("no schema %s for event %s", companiaevent.SchemaID(n), n)
			continue
		}
		for _, e := range schemaEstados(t, doc) {
			if !companiaevent.KnownEstado(e) {
				t.Errorf("schema of %s allows estado %q, which is not in companiaevent.Estados()", n, e)
			}
			entered[e] = true
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
}
