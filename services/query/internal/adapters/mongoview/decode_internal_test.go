package mongoview

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/propalpes/companias/services/query/internal/view"
)

// storedDoc is a view as the store writes it (snapshotFields and
// historialFields), as a document.
func storedDoc(v view.Compania) bson.D {
	d := append(bson.D{{Key: "_id", Value: v.ID}}, snapshotFields(v)...)
	h := bson.D{}
	for _, e := range historialFields(v) {
		h = append(h, bson.E{Key: strings.TrimPrefix(e.Key, "historial."), Value: e.Value})
	}
	return append(d, bson.E{Key: "historial", Value: h})
}

func mustRaw(t testing.TB, doc any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleView() view.Compania {
	t := time.Date(2026, 11, 27, 8, 0, 0, 123456000, time.UTC)
	motivo := "RUT vencido"
	return view.Compania{
		ID: "01a21bfe-26fb-73ba-adda-6938c0030bd8", Nombre: "ACME SAS", Email: "info@acme.co", Identificacion: "900123456-7",
		Estado: "RECHAZADA", MotivoRechazo: &motivo, FechaCreacion: t, FechaActualizacion: t.Add(time.Second), Version: 3,
		EventTime: t.Add(time.Second),
		Historial: []view.CambioEstado{
			{Estado: "PENDIENTE", Fecha: t, Version: 1},
			{Estado: "RECHAZADA", Fecha: t.Add(time.Second), Version: 3, Motivo: &motivo},
		},
	}
}

// decodeDocument gives what bson.Unmarshal into document gives, for stored
// views and for the oddities a store may hold.
func TestDecodeDocumentMatchesUnmarshal(t *testing.T) {
	t.Parallel()
	full := storedDoc(sampleView())
	set := func(d bson.D, key string, value any) bson.D {
		out := append(bson.D(nil), d...)
		for i := range out {
			if out[i].Key == key {
				out[i].Value = value
				return out
			}
		}
		return append(out, bson.E{Key: key, Value: value})
	}
	drop := func(d bson.D, key string) bson.D {
		var out bson.D
		for _, e := range d {
			if e.Key != key {
				out = append(out, e)
			}
		}
		return out
	}
	cases := map[string]bson.D{
		"stored view":                full,
		"pendiente, null motivo":     storedDoc(view.Compania{ID: "x", Nombre: "n", Estado: "PENDIENTE", Version: 1}),
		"version as int32":           set(full, "version", int32(3)),
		"version as integral double": set(full, "version", 3.0),
		"missing fields":             drop(drop(drop(full, "email"), "motivo_rechazo"), "historial"),
		"null fields":                set(set(set(full, "nombre", nil), "version", nil), "historial", nil),
		"unknown fields":             set(full, "extra", bson.D{{Key: "a", Value: 1}}),
		"empty historial":            set(full, "historial", bson.D{}),
		"historial with an int32 version": set(full, "historial", bson.D{{Key: "v1", Value: bson.D{
			{Key: "estado", Value: "PENDIENTE"}, {Key: "fecha", Value: "2026-11-27T08:00:00Z"}, {Key: "version", Value: int32(1)}, {Key: "motivo", Value: nil},
		}}}),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw := mustRaw(t, doc)
			var want document
			if err := bson.Unmarshal(raw, &want); err != nil {
				t.Fatalf("bson.Unmarshal: %v", err)
			}
			got, err := decodeDocument(raw)
			if err != nil {
				t.Fatalf("decodeDocument: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decodeDocument = %+v\nbson.Unmarshal = %+v", got, want)
			}
		})
	}
}

// A field of another type is an error, as it is for bson.Unmarshal.
func TestDecodeDocumentRejectsWrongTypes(t *testing.T) {
	t.Parallel()
	full := storedDoc(sampleView())
	with := func(key string, value any) bson.D {
		out := append(bson.D(nil), full...)
		for i := range out {
			if out[i].Key == key {
				out[i].Value = value
			}
		}
		return out
	}
	cases := map[string]bson.D{
		"nombre int":           with("nombre", 7),
		"motivo int":           with("motivo_rechazo", 7),
		"version string":       with("version", "3"),
		"version fractional":   with("version", 2.5),
		"historial array":      with("historial", bson.A{1}),
		"historial entry int":  with("historial", bson.D{{Key: "v1", Value: 1}}),
		"historial fecha bool": with("historial", bson.D{{Key: "v1", Value: bson.D{{Key: "fecha", Value: true}}}}),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw := mustRaw(t, doc)
			var d document
			if err := bson.Unmarshal(raw, &d); err == nil {
				t.Fatalf("bson.Unmarshal accepted it: the case is not a wrong type")
			}
			if _, err := decodeDocument(raw); err == nil {
				t.Error("decodeDocument = nil error, want one")
			}
		})
	}
}

// BenchmarkDecodeView reads a stored view into a view.Compania: by field
// lookups (what Get does) and by bson.Unmarshal into document.
//
//	go test -run '^$' -bench DecodeView ./internal/adapters/mongoview/
func BenchmarkDecodeView(b *testing.B) {
	raw := mustRaw(b, storedDoc(sampleView()))
	b.Run("lookups", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := decodeDocument(raw)
			if err == nil {
				_, err = d.view()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var d document
			err := bson.Unmarshal(raw, &d)
			if err == nil {
				_, err = d.view()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// idFilter builds the same bytes as the bson.D it replaces.
func TestIDFilter(t *testing.T) {
	for _, id := range []string{"", "00000000-0000-4000-8000-000000000001", "ñandú \x00?"} {
		want, err := bson.Marshal(bson.D{{Key: "_id", Value: id}})
		if err != nil {
			t.Fatal(err)
		}
		if got := idFilter(id); !bytes.Equal(got, want) {
			t.Errorf("idFilter(%q) = %x, want %x", id, []byte(got), want)
		}
	}
}
