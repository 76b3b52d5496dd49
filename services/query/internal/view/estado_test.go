package view_test

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// TestOpenAPIEstadosAreTheContracts checks every estado list of the
// reader's OpenAPI document against companiaevent.Estados, in order: the
// enum of each "estado" property and of the estado query parameter, and the
// keys of por_estado (Estadisticas.PorEstado). Adding an estado fails here
// until the document lists it.
func TestOpenAPIEstadosAreTheContracts(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../ports/httpapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := companiaevent.Estados()
	lists := map[string][]string{} // where → the estados listed there
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				if est, ok := props["estado"].(map[string]any); ok {
					lists[path+"/properties/estado/enum"] = stringList(est["enum"])
				}
				if pe, ok := props["por_estado"].(map[string]any); ok {
					lists[path+"/properties/por_estado/required"] = stringList(pe["required"])
					var keys []string
					if p, ok := pe["properties"].(map[string]any); ok {
						for k := range p {
							keys = append(keys, k)
						}
					}
					slices.Sort(keys)
					sorted := slices.Sorted(slices.Values(want))
					if !slices.Equal(keys, sorted) {
						t.Errorf("%s/properties/por_estado/properties has keys %q, want %q", path, keys, sorted)
					}
				}
			}
			if v["name"] == "estado" && v["in"] == "query" {
				s, _ := v["schema"].(map[string]any)
				lists[path+"/schema/enum"] = stringList(s["enum"])
			}
			for k, x := range v {
				walk(path+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(path+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("", doc)
	if len(lists) < 4 {
		t.Errorf("found %d estado lists in openapi.json, want at least 4 (filter, view, historial, por_estado): %q", len(lists), lists)
	}
	for where, got := range lists {
		if !slices.Equal(got, want) {
			t.Errorf("openapi.json %s = %q, want companiaevent.Estados() %q", where, got, want)
		}
	}
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
