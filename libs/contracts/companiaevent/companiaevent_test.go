package companiaevent_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

func sample() companiaevent.Event {
	t := time.Date(2026, 3, 1, 10, 0, 0, 123, time.UTC)
	return companiaevent.Event{
		ID:          "018f0000-0000-7000-8000-000000000001",
		Name:        companiaevent.CompaniaCreada,
		Time:        t,
		Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Data: companiaevent.Data{Compania: companiaevent.Compania{
			ID: "0b7e2a5c-6c1e-4c2f-9f0e-2f4b8f7a1d11", Nombre: "ACME", Email: "a@b.co", Identificacion: "9",
			Estado: companiaevent.EstadoPendiente, FechaCreacion: t, FechaActualizacion: t, Version: 1,
		}},
	}
}

func header(m companiaevent.Message, k string) string {
	for _, h := range m.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	e := sample()
	m, err := companiaevent.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != e.Data.Compania.ID {
		t.Errorf("key = %q", m.Key)
	}
	want := map[string]string{
		"ce_specversion": "1.0", "ce_id": e.ID, "ce_source": companiaevent.Source,
		"ce_type": "co.propalpes.companias.CompaniaCreada.v1", "ce_subject": e.Data.Compania.ID,
		"content-type": "application/json", "traceparent": e.Traceparent, "ce_time": "2026-03-01T10:00:00.000000123Z",
		"ce_dataschema": "https://propalpes.co/schemas/companias/CompaniaCreada.v1.json",
	}
	for k, v := range want {
		if got := header(m, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	got, err := companiaevent.Decode(m.Headers, m.Value)
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(got.Data)
	if got.ID != e.ID || got.Name != e.Name || !got.Time.Equal(e.Time) || got.Traceparent != e.Traceparent || string(gj) != string(m.Value) {
		t.Errorf("round trip = %+v", got)
	}
}

func TestEncodeRejectsIncompleteEvents(t *testing.T) {
	t.Parallel()
	for _, mut := range []func(*companiaevent.Event){
		func(e *companiaevent.Event) { e.ID = "" },
		func(e *companiaevent.Event) { e.Name = "CompaniaBorrada" },
		func(e *companiaevent.Event) { e.Data.Compania.ID = "" },
	} {
		e := sample()
		mut(&e)
		if _, err := companiaevent.Encode(e); err == nil {
			t.Errorf("Encode(%+v) succeeded", e)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	good, err := companiaevent.Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	with := func(k, v string) []companiaevent.Header {
		var hs []companiaevent.Header
		for _, h := range good.Headers {
			if h.Key != k {
				hs = append(hs, h)
			}
		}
		if v != "-" {
			hs = append(hs, companiaevent.Header{Key: k, Value: []byte(v)})
		}
		return hs
	}
	tests := []struct {
		name    string
		headers []companiaevent.Header
		value   string
		want    error
	}{
		{"missing type", with("ce_type", "-"), string(good.Value), companiaevent.ErrMalformed},
		{"foreign type", with("ce_type", "com.example.Thing.v1"), string(good.Value), companiaevent.ErrMalformed},
		{"no major", with("ce_type", "co.propalpes.companias.CompaniaCreada"), string(good.Value), companiaevent.ErrMalformed},
		{"bad major", with("ce_type", "co.propalpes.companias.CompaniaCreada.v01"), string(good.Value), companiaevent.ErrMalformed},
		{"major 2", with("ce_type", "co.propalpes.companias.CompaniaCreada.v2"), string(good.Value), companiaevent.ErrUnsupportedVersion},
		{"newer minor event", with("ce_type", "co.propalpes.companias.CompaniaArchivada.v1"), string(good.Value), companiaevent.ErrUnknownEvent},
		{"missing id", with("ce_id", "-"), string(good.Value), companiaevent.ErrMalformed},
		{"bad specversion", with("ce_specversion", "0.3"), string(good.Value), companiaevent.ErrMalformed},
		{"bad time", with("ce_time", "yesterday"), string(good.Value), companiaevent.ErrMalformed},
		{"subject mismatch", with("ce_subject", "other"), string(good.Value), companiaevent.ErrMalformed},
		{"not json", good.Headers, "{", companiaevent.ErrMalformed},
		{"trailing data", good.Headers, string(good.Value) + "{}", companiaevent.ErrMalformed},
		{"no version", good.Headers, `{"compania":{"id":"x","estado":"PENDIENTE"}}`, companiaevent.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := companiaevent.Decode(tt.headers, []byte(tt.value))
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// The error of a value that does not decode names the member and the
// problem, never the value: consumers log it and copy it into dead letters,
// and the value carries personal data.
func TestDecodeErrorQuotesNoValue(t *testing.T) {
	t.Parallel()
	good, err := companiaevent.Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	const secret = "900123456"
	tests := []struct {
		name, value, want string
	}{
		{"time", `{"compania":{"fecha_creacion":"` + secret + `@acme.co"}}`, "not RFC 3339"},
		{"number", `{"compania":{"version":` + secret + `.5}}`, "compania.version: got number, want int64"},
		{"string member holding a number", `{"compania":{"identificacion":` + secret + `}}`, "compania.identificacion: got number, want string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := companiaevent.Decode(good.Headers, []byte(tt.value))
			if !errors.Is(err, companiaevent.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to say %q and not to quote %q", err, tt.want, secret)
			}
		})
	}
}

func TestSchemasPresent(t *testing.T) {
	t.Parallel()
	s := companiaevent.Schemas()
	for _, n := range companiaevent.Names() {
		b, ok := s[companiaevent.SchemaID(n)]
		if !ok {
			t.Fatalf("no schema for %s", n)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil || doc["$id"] != companiaevent.SchemaID(n) {
			t.Errorf("schema %s: $id %v, err %v", n, doc["$id"], err)
		}
	}
}

// FuzzDecode decodes arbitrary CloudEvents headers ("" leaves a header out)
// and values. A refusal wraps ErrMalformed, ErrUnsupportedVersion (a
// well-formed ce_type of another major version) or ErrUnknownEvent (an
// unknown name of this major version). An accepted event is complete, agrees
// with its headers, and Encode turns it into a record that decodes to the
// same event. Seeds are in testdata/fuzz/FuzzDecode/.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, ceType, ceID, ceTime, ceSubject string, value []byte) {
		hs := []companiaevent.Header{
			{Key: companiaevent.HeaderSpecVersion, Value: []byte(companiaevent.SpecVersion)},
			{Key: companiaevent.HeaderSource, Value: []byte(companiaevent.Source)},
		}
		for k, v := range map[string]string{companiaevent.HeaderType: ceType, companiaevent.HeaderID: ceID,
			companiaevent.HeaderTime: ceTime, companiaevent.HeaderSubject: ceSubject} {
			if v != "" {
				hs = append(hs, companiaevent.Header{Key: k, Value: []byte(v)})
			}
		}
		e, err := companiaevent.Decode(hs, value)
		if err != nil {
			name, major, perr := companiaevent.ParseType(ceType)
			switch {
			case !reflect.DeepEqual(e, companiaevent.Event{}):
				t.Fatalf("Decode returned %+v with error %v", e, err)
			case errors.Is(err, companiaevent.ErrUnsupportedVersion):
				if perr != nil || major == companiaevent.MajorVersion {
					t.Fatalf("ce_type %q: %v, but ParseType = %d, %v", ceType, err, major, perr)
				}
			case errors.Is(err, companiaevent.ErrUnknownEvent):
				if perr != nil || major != companiaevent.MajorVersion || name.Known() {
					t.Fatalf("ce_type %q: %v, but ParseType = %s, %d, %v", ceType, err, name, major, perr)
				}
			case !errors.Is(err, companiaevent.ErrMalformed):
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		c := e.Data.Compania
		if !e.Name.Known() || e.Name.Type() != ceType || e.ID != ceID || c.ID == "" || c.Version < 1 || c.Estado == "" ||
			(ceSubject != "" && ceSubject != c.ID) {
			t.Fatalf("Decode accepted an incomplete or inconsistent event: %+v from ce_type %q, ce_id %q, ce_subject %q",
				e, ceType, ceID, ceSubject)
		}
		m, err := companiaevent.Encode(e)
		if err != nil {
			t.Fatalf("Encode of the accepted %+v: %v", e, err)
		}
		again, err := companiaevent.Decode(m.Headers, m.Value)
		if err != nil || !sameEvent(again, e) {
			t.Fatalf("the re-encoded event decodes to %+v, %v; want %+v", again, err, e)
		}
	})
}

// sameEvent compares events, times by instant.
func sameEvent(a, b companiaevent.Event) bool {
	ca, cb := a.Data.Compania, b.Data.Compania
	return a.ID == b.ID && a.Name == b.Name && a.Time.Equal(b.Time) && a.Traceparent == b.Traceparent &&
		ca.ID == cb.ID && ca.Nombre == cb.Nombre && ca.Email == cb.Email && ca.Identificacion == cb.Identificacion &&
		ca.Estado == cb.Estado && reflect.DeepEqual(ca.MotivoRechazo, cb.MotivoRechazo) &&
		ca.FechaCreacion.Equal(cb.FechaCreacion) && ca.FechaActualizacion.Equal(cb.FechaActualizacion) &&
		ca.Version == cb.Version && slices.Equal(a.Data.Campos, b.Data.Campos)
}
