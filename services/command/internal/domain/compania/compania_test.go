package compania_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

const id = "0b7e2a5c-6c1e-4c2f-9f0e-2f4b8f7a1d11"

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func datos() compania.Datos {
	return compania.Datos{Nombre: "ACME SAS", Email: "info@acme.co", Identificacion: "900123456-7"}
}

func mustNew(t *testing.T) *compania.Compania {
	t.Helper()
	c, err := compania.New(id, datos(), t0)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Kind != apperr.Invalid {
		t.Fatalf("want a validation error, got %v", err)
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestNew(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	s := c.Snapshot()
	if s.ID != id || s.Estado != compania.Pendiente || s.Version != 1 || !s.FechaCreacion.Equal(t0) ||
		!s.FechaActualizacion.Equal(t0) || s.MotivoRechazo != "" {
		t.Errorf("snapshot = %+v", s)
	}
	ev := c.Events()
	if len(ev) != 1 || ev[0].EventName() != "CompaniaCreada" || ev[0].State() != s {
		t.Errorf("events = %+v", ev)
	}
}

func TestNewNormalises(t *testing.T) {
	t.Parallel()
	local := time.FixedZone("COT", -5*3600)
	c, err := compania.New(strings.ToUpper(id), compania.Datos{Nombre: "  ACME  ", Email: " a@b.co ", Identificacion: " 9-1 "},
		t0.In(local))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Snapshot()
	if s.ID != id || s.Nombre != "ACME" || s.Email != "a@b.co" || s.Identificacion != "9-1" || s.FechaCreacion.Location() != time.UTC {
		t.Errorf("snapshot = %+v", s)
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		id   string
		d    compania.Datos
		want []string
	}{
		{"all empty", "", compania.Datos{}, []string{"id", "nombre", "email", "identificacion"}},
		{"bad uuid", "not-a-uuid", datos(), []string{"id"}},
		{"uuid without dashes", strings.ReplaceAll(id, "-", "") + "abcd", datos(), []string{"id"}},
		{"blank nombre", id, compania.Datos{Nombre: "   ", Email: "a@b.co", Identificacion: "1"}, []string{"nombre"}},
		{"nombre too long", id, compania.Datos{Nombre: long(201), Email: "a@b.co", Identificacion: "1"}, []string{"nombre"}},
		{"nombre control char", id, compania.Datos{Nombre: "a\x00b", Email: "a@b.co", Identificacion: "1"}, []string{"nombre"}},
		{"nombre invalid utf8", id, compania.Datos{Nombre: "a\xffb", Email: "a@b.co", Identificacion: "1"}, []string{"nombre"}},
		{"email no at", id, compania.Datos{Nombre: "x", Email: "acme.co", Identificacion: "1"}, []string{"email"}},
		{"email display name", id, compania.Datos{Nombre: "x", Email: "Acme <a@b.co>", Identificacion: "1"}, []string{"email"}},
		{"email no dot in domain", id, compania.Datos{Nombre: "x", Email: "a@localhost", Identificacion: "1"}, []string{"email"}},
		{"email too long", id, compania.Datos{Nombre: "x", Email: long(250) + "@b.co", Identificacion: "1"}, []string{"email"}},
		{"identificacion symbols", id, compania.Datos{Nombre: "x", Email: "a@b.co", Identificacion: "90 01"}, []string{"identificacion"}},
		{"identificacion too long", id, compania.Datos{Nombre: "x", Email: "a@b.co", Identificacion: long(41)}, []string{"identificacion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := compania.New(tt.id, tt.d, t0)
			if !errors.Is(err, compania.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if got := fieldsOf(t, err); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("fields = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLimitsAccepted(t *testing.T) {
	t.Parallel()
	d := compania.Datos{Nombre: strings.Repeat("ñ", 200), Email: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".co", Identificacion: strings.Repeat("A", 40)}
	if _, err := compania.New(id, d, t0); err != nil {
		t.Fatalf("limits rejected: %v", err)
	}
}

func ptr(s string) *string { return &s }

func TestTransitions(t *testing.T) {
	t.Parallel()
	t1 := t0.Add(time.Hour)
	type step func(c *compania.Compania) error
	aprobar := func(c *compania.Compania) error { return c.Aprobar(t1) }
	rechazar := func(c *compania.Compania) error { return c.Rechazar("documentos incompletos", t1) }
	actualizar := func(c *compania.Compania) error { return c.Actualizar(compania.Cambios{Nombre: ptr("Nuevo")}, t1) }
	tests := []struct {
		name        string
		steps       []step
		wantErr     error // of the last step
		wantEstado  compania.Estado
		wantVersion int64
		wantEvents  []string
	}{
		{"aprobar", []step{aprobar}, nil, compania.Aprobada, 2, []string{"CompaniaCreada", "CompaniaAprobada"}},
		{"rechazar", []step{rechazar}, nil, compania.Rechazada, 2, []string{"CompaniaCreada", "CompaniaRechazada"}},
		{"actualizar pendiente", []step{actualizar}, nil, compania.Pendiente, 2, []string{"CompaniaCreada", "CompaniaActualizada"}},
		{"actualizar aprobada", []step{aprobar, actualizar}, nil, compania.Aprobada, 3,
			[]string{"CompaniaCreada", "CompaniaAprobada", "CompaniaActualizada"}},
		{"aprobar twice", []step{aprobar, aprobar}, compania.ErrInvalidTransition, compania.Aprobada, 2, nil},
		{"rechazar aprobada", []step{aprobar, rechazar}, compania.ErrInvalidTransition, compania.Aprobada, 2, nil},
		{"aprobar rechazada", []step{rechazar, aprobar}, compania.ErrInvalidTransition, compania.Rechazada, 2, nil},
		{"actualizar rechazada", []step{rechazar, actualizar}, compania.ErrInvalidTransition, compania.Rechazada, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustNew(t)
			var err error
			for _, s := range tt.steps {
				err = s(c)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil && apperr.KindOf(err) != apperr.Conflict {
				t.Errorf("kind = %v, want conflict", apperr.KindOf(err))
			}
			if c.Estado() != tt.wantEstado || c.Version() != tt.wantVersion {
				t.Errorf("estado %v version %d, want %v %d", c.Estado(), c.Version(), tt.wantEstado, tt.wantVersion)
			}
			if tt.wantEvents != nil {
				var names []string
				for i, e := range c.Events() {
					names = append(names, e.EventName())
					if e.State().Version != int64(i+1) {
						t.Errorf("event %d carries version %d", i, e.State().Version)
					}
				}
				if strings.Join(names, ",") != strings.Join(tt.wantEvents, ",") {
					t.Errorf("events = %v, want %v", names, tt.wantEvents)
				}
			}
		})
	}
}

func TestRechazarNeedsMotivo(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	err := c.Rechazar("  ", t0)
	if got := fieldsOf(t, err); len(got) != 1 || got[0] != "motivo" {
		t.Errorf("fields = %v", got)
	}
	if c.Estado() != compania.Pendiente || c.Version() != 1 {
		t.Errorf("a refused command changed the company")
	}
	if err := c.Rechazar(" sin RUT ", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if s := c.Snapshot(); s.MotivoRechazo != "sin RUT" {
		t.Errorf("motivo = %q", s.MotivoRechazo)
	}
	ev := c.Events()
	if r, ok := ev[len(ev)-1].(compania.CompaniaRechazada); !ok || r.Motivo != "sin RUT" {
		t.Errorf("last event = %#v", ev[len(ev)-1])
	}
}

func TestActualizar(t *testing.T) {
	t.Parallel()
	t.Run("nothing given", func(t *testing.T) {
		t.Parallel()
		err := mustNew(t).Actualizar(compania.Cambios{}, t0)
		if got := fieldsOf(t, err); strings.Join(got, ",") != "nombre,email" {
			t.Errorf("fields = %v", got)
		}
	})
	t.Run("every bad field listed", func(t *testing.T) {
		t.Parallel()
		err := mustNew(t).Actualizar(compania.Cambios{Nombre: ptr(""), Email: ptr("x")}, t0)
		if got := fieldsOf(t, err); strings.Join(got, ",") != "nombre,email" {
			t.Errorf("fields = %v", got)
		}
	})
	t.Run("same values are a no-op", func(t *testing.T) {
		t.Parallel()
		c := mustNew(t)
		if err := c.Actualizar(compania.Cambios{Nombre: ptr(" ACME SAS "), Email: ptr("info@acme.co")}, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if c.Version() != 1 || len(c.Events()) != 1 || !c.Snapshot().FechaActualizacion.Equal(t0) {
			t.Errorf("no-op update changed the company: %+v", c.Snapshot())
		}
	})
	t.Run("campos lists what changed", func(t *testing.T) {
		t.Parallel()
		c := mustNew(t)
		if err := c.Actualizar(compania.Cambios{Nombre: ptr("ACME SAS"), Email: ptr("nuevo@acme.co")}, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		ev := c.Events()
		a, ok := ev[len(ev)-1].(compania.CompaniaActualizada)
		if !ok || strings.Join(a.Campos, ",") != "email" || a.Compania.Email != "nuevo@acme.co" {
			t.Errorf("event = %#v", ev[len(ev)-1])
		}
	})
}

func TestClockStepBackNeverMovesTimeBackwards(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	if err := c.Aprobar(t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if s := c.Snapshot(); s.FechaActualizacion.Before(s.FechaCreacion) {
		t.Errorf("fecha_actualizacion %v before fecha_creacion %v", s.FechaActualizacion, s.FechaCreacion)
	}
}

func TestFromSnapshot(t *testing.T) {
	t.Parallel()
	s := mustNew(t).Snapshot()
	c, err := compania.FromSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.Snapshot() != s || len(c.Events()) != 0 {
		t.Errorf("FromSnapshot = %+v, %d events", c.Snapshot(), len(c.Events()))
	}
	for _, bad := range []compania.Snapshot{{ID: "x", Version: 1, Estado: compania.Pendiente}, {ID: id, Version: 0, Estado: compania.Pendiente}, {ID: id, Version: 1}} {
		if _, err := compania.FromSnapshot(bad); err == nil {
			t.Errorf("FromSnapshot(%+v) accepted a corrupt snapshot", bad)
		}
	}
}

func TestEstado(t *testing.T) {
	t.Parallel()
	estados := compania.Estados()
	if len(estados) == 0 || estados[0] != compania.Pendiente {
		t.Fatalf("Estados() = %v, want the lifecycle order starting at Pendiente", estados)
	}
	for _, e := range estados {
		if !e.Valid() {
			t.Errorf("%v.Valid() = false", e)
		}
		got, err := compania.ParseEstado(e.String())
		if err != nil || got != e {
			t.Errorf("ParseEstado(%q) = %v, %v", e.String(), got, err)
		}
	}
	for _, bad := range []compania.Estado{0, -1, estados[len(estados)-1] + 1} {
		if bad.Valid() {
			t.Errorf("Estado(%d).Valid() = true", int(bad))
		}
		if got, want := bad.String(), fmt.Sprintf("Estado(%d)", int(bad)); got != want {
			t.Errorf("Estado(%d).String() = %q, want %q", int(bad), got, want)
		}
		if _, err := compania.FromSnapshot(compania.Snapshot{ID: id, Version: 1, Estado: bad}); err == nil {
			t.Errorf("FromSnapshot accepted estado %d", int(bad))
		}
	}
	if _, err := compania.ParseEstado("Pendiente"); err == nil {
		t.Error("ParseEstado accepted a non-wire name")
	}
}

func TestID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		valid bool   // ValidID(in)
		parse string // ParseID(in); "" for an error
	}{
		{id, true, id},
		{strings.ToUpper(id), true, id},
		{" " + id + "\t", false, id},
		{"", false, ""},
		{"x", false, ""},
		{id[:35], false, ""},
		{id + "0", false, ""},
		{"0b7e2a5c-6c1e-4c2f-9f0e-2f4b8f7a1d1g", false, ""},
		{"0b7e2a5c-6c1e-4c2f-9f0e+2f4b8f7a1d11", false, ""},
		{"0b7e2a5c16c1e-4c2f-9f0e-2f4b8f7a1d11", false, ""},
		{"{b7e2a5c-6c1e-4c2f-9f0e-2f4b8f7a1d1}", false, ""},
		{"0b7e2a5c6c1e4c2f9f0e2f4b8f7a1d11", false, ""},
	} {
		if got := compania.ValidID(tc.in); got != tc.valid {
			t.Errorf("ValidID(%q) = %v, want %v", tc.in, got, tc.valid)
		}
		got, err := compania.ParseID(tc.in)
		if tc.parse == "" {
			if err == nil {
				t.Errorf("ParseID(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.parse {
			t.Errorf("ParseID(%q) = %q, %v; want %q", tc.in, got, err, tc.parse)
		}
		if !compania.ValidID(got) {
			t.Errorf("ParseID(%q) = %q, which is not a ValidID", tc.in, got)
		}
	}
}

// TestEventNamesAreRecorded checks EventNames against what the aggregate
// records over every behaviour: each recorded event is listed, and each
// listed event is recorded by some behaviour. A new event type fails here
// until it is in EventNames and this test drives the behaviour that records
// it.
func TestEventNamesAreRecorded(t *testing.T) {
	t.Parallel()
	recorded := map[string]bool{}
	record := func(c *compania.Compania) {
		for _, e := range c.Events() {
			recorded[e.EventName()] = true
		}
	}
	nombre := "Otra SAS"
	a := mustNew(t)
	if err := a.Actualizar(compania.Cambios{Nombre: &nombre}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := a.Aprobar(t0.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	record(a)
	r := mustNew(t)
	if err := r.Rechazar("incompleta", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	record(r)

	listed := map[string]bool{}
	for _, n := range compania.EventNames() {
		if listed[n] {
			t.Errorf("EventNames lists %s twice", n)
		}
		listed[n] = true
		if !recorded[n] {
			t.Errorf("EventNames lists %s, which no behaviour driven here recorded", n)
		}
	}
	for n := range recorded {
		if !listed[n] {
			t.Errorf("the aggregate recorded %s, which EventNames does not list", n)
		}
	}
}
