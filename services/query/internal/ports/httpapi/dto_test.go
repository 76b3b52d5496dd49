package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/propalpes/companias/services/query/internal/view"
)

// Times are written exactly as encoding/json writes a time.Time in UTC,
// whatever their zone and precision, in the single view and in lists.
func TestCompaniaTimesAsTimeMarshalJSON(t *testing.T) {
	t.Parallel()
	cot := time.FixedZone("COT", -5*3600)
	times := []time.Time{
		time.Date(2025, 3, 1, 5, 0, 0, 0, cot),          // another zone, no fraction
		time.Date(2025, 3, 1, 10, 0, 0, 100000000, cot), // trailing zeros dropped
		time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.Local),
	}
	want := func(tm time.Time) string {
		b, err := json.Marshal(tm.UTC())
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i, tm := range times {
		c := compania("c-1", "Acme", tm, 1)
		c.FechaActualizacion, c.EventTime = tm.Add(time.Nanosecond), tm.Add(time.Microsecond)
		c.Historial = []view.CambioEstado{{Estado: "PENDIENTE", Fecha: tm, Version: 1}}
		e := newEnv(t, newFakeViews(c))

		got := decodeJSON[map[string]any](t, e.do(t, http.MethodGet, "/v1/companias/c-1"), http.StatusOK)
		list := decodeJSON[struct {
			Items []map[string]any `json:"items"`
		}](t, e.do(t, http.MethodGet, "/v1/companias"), http.StatusOK)
		if len(list.Items) != 1 {
			t.Fatalf("time %d: list has %d items, want 1", i, len(list.Items))
		}
		for _, body := range []map[string]any{got, list.Items[0]} {
			for field, tm := range map[string]time.Time{
				"fecha_creacion": c.FechaCreacion, "fecha_actualizacion": c.FechaActualizacion, "event_time": c.EventTime,
			} {
				if body[field] != want(tm) {
					t.Errorf("time %d: %s = %v, want %q", i, field, body[field], want(tm))
				}
			}
			h := body["historial"].([]any)[0].(map[string]any)
			if h["fecha"] != want(tm) {
				t.Errorf("time %d: historial fecha = %v, want %q", i, h["fecha"], want(tm))
			}
		}
	}
}
