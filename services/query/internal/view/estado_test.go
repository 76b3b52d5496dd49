package view_test

import (
	"os"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiaevent/companiaeventtest"
)

// TestOpenAPIEstadosAreTheContracts checks every estado list of the
// reader's OpenAPI document against companiaevent.Estados: the enums of
// the view's and the historial's estado, of the estado query parameter,
// and the keys of por_estado (Estadisticas.PorEstado). The document cannot
// import the list, so adding an estado fails here until it names it.
func TestOpenAPIEstadosAreTheContracts(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../ports/httpapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := companiaeventtest.CheckEstados(doc, 5); err != nil {
		t.Errorf("the reader's openapi.json:\n%v", err)
	}
}
