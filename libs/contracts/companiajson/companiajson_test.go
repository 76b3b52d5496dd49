package companiajson_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/companiajson"
)

// The HTTP form and the event form of a company encode to the same JSON.
func TestSameJSONAsTheEventForm(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 6, 30, 0, 123456000, time.FixedZone("COT", -5*3600))
	motivo := "documentos incompletos"
	ev := companiaevent.Compania{ID: "0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a11", Nombre: "Empresa", Email: "a@b.co",
		Identificacion: "900-1", Estado: companiaevent.EstadoRechazada, MotivoRechazo: &motivo,
		FechaCreacion: at.UTC(), FechaActualizacion: at.Add(time.Second).UTC(), Version: 2}
	hc := companiajson.Compania{ID: ev.ID, Nombre: ev.Nombre, Email: ev.Email, Identificacion: ev.Identificacion,
		Estado: ev.Estado, MotivoRechazo: ev.MotivoRechazo, FechaCreacion: companiajson.Time(at),
		FechaActualizacion: companiajson.Time(at.Add(time.Second)), Version: ev.Version}
	a, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("HTTP form %s\nevent form %s", b, a)
	}
}
