package companiaeventtest_test

import (
	"reflect"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiaevent/companiaeventtest"
)

func TestEstadoLists(t *testing.T) {
	t.Parallel()
	doc := `{
	  "paths": {"/v1/x": {"get": {"parameters": [
	    {"name": "estado", "in": "query", "schema": {"type": "string", "enum": ["B", "A"]}},
	    {"name": "otro", "in": "query", "schema": {"enum": ["Z"]}}]}}},
	  "components": {"schemas": {
	    "V": {"properties": {"estado": {"enum": ["B", "A"]}, "otro": {"enum": ["Z"]}}},
	    "E": {"allOf": [{"$ref": "v.json"}, {"properties": {"estado": {"const": "A"}}}]},
	    "S": {"properties": {"por_estado": {"required": ["B", "A"], "properties": {"B": {}, "A": {}}}}}
	  }}
	}`
	got, err := companiaeventtest.EstadoLists([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"/paths/~1v1~1x/get/parameters/0/schema/enum":            {"A", "B"},
		"/components/schemas/V/properties/estado/enum":           {"A", "B"},
		"/components/schemas/E/allOf/1/properties/estado/const":  {"A"},
		"/components/schemas/S/properties/por_estado/required":   {"A", "B"},
		"/components/schemas/S/properties/por_estado/properties": {"A", "B"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EstadoLists =\n%q\nwant\n%q", got, want)
	}
	if _, err := companiaeventtest.EstadoLists([]byte("{")); err == nil {
		t.Error("EstadoLists accepted a document that is not JSON")
	}
}

func TestCheckEstados(t *testing.T) {
	t.Parallel()
	ok := `{"properties": {"estado": {"enum": ["RECHAZADA", "PENDIENTE", "APROBADA"]}}}`
	if err := companiaeventtest.CheckEstados([]byte(ok), 1); err != nil {
		t.Errorf("CheckEstados(%s) = %v, want nil", ok, err)
	}
	for _, bad := range []struct {
		doc string
		min int
	}{
		{`{"properties": {"estado": {"enum": ["PENDIENTE", "APROBADA"]}}}`, 1},
		{`{"properties": {"estado": {"const": "PENDIENTE"}}}`, 1},
		{ok, 2},
		{`{}`, 1},
		{`[`, 0},
	} {
		if err := companiaeventtest.CheckEstados([]byte(bad.doc), bad.min); err == nil {
			t.Errorf("CheckEstados(%s, %d) = nil, want an error", bad.doc, bad.min)
		}
	}
}
