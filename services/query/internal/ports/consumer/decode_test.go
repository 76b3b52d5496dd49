package consumer

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

func validEvent() companiaevent.Event {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	return companiaevent.Event{
		ID: "ev-1", Name: companiaevent.CompaniaCreada, Time: t0,
		Data: companiaevent.Data{Compania: companiaevent.Compania{
			ID: "0a1b2c3d-0000-4000-8000-000000000001", Nombre: "Acme", Email: "info@acme.co",
			Identificacion: "NIT-1", Estado: companiaevent.EstadoPendiente,
			FechaCreacion: t0, FechaActualizacion: t0, Version: 1,
		}},
	}
}

func encode(t testing.TB, e companiaevent.Event) kafka.Message {
	t.Helper()
	m, err := companiaevent.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	h := make([]kafka.Header, len(m.Headers))
	for i, x := range m.Headers {
		h[i] = kafka.Header{Key: x.Key, Value: x.Value}
	}
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: h}
}

func withHeader(m kafka.Message, key, value string) kafka.Message {
	var h []kafka.Header
	for _, x := range m.Headers {
		if x.Key != key {
			h = append(h, x)
		}
	}
	if value != "" {
		h = append(h, kafka.Header{Key: key, Value: []byte(value)})
	}
	m.Headers = h
	return m
}

func TestDecode(t *testing.T) {
	t.Parallel()
	d, err := newDecoder()
	if err != nil {
		t.Fatal(err)
	}
	ok := encode(t, validEvent())
	mutate := func(f func(*companiaevent.Event)) kafka.Message {
		e := validEvent()
		f(&e)
		return encode(t, e)
	}
	rawValue := func(v string) kafka.Message { m := ok; m.Value = []byte(v); return m }
	tests := []struct {
		name    string
		m       kafka.Message
		verdict verdict
		reason  string
	}{
		{"valid", ok, apply, ""},
		{"unknown fields are ignored", rawValue(`{"compania":{"id":"0a1b2c3d-0000-4000-8000-000000000001","nombre":"Acme","email":"info@acme.co","identificacion":"NIT-1","estado":"PENDIENTE","motivo_rechazo":null,"fecha_creacion":"2026-11-27T10:00:00Z","fecha_actualizacion":"2026-11-27T10:00:00Z","version":1,"sector":"x"},"extra":1}`), apply, ""},
		{"unknown event of v1", withHeader(ok, companiaevent.HeaderType, "co.propalpes.companias.CompaniaFusionada.v1"), skip, ""},
		{"v2", withHeader(ok, companiaevent.HeaderType, "co.propalpes.companias.CompaniaCreada.v2"), deadLetter, deadletter.ReasonUnsupportedVersion},
		{"missing ce_type", withHeader(ok, companiaevent.HeaderType, ""), deadLetter, deadletter.ReasonMalformed},
		{"foreign ce_type", withHeader(ok, companiaevent.HeaderType, "com.example.Other.v1"), deadLetter, deadletter.ReasonMalformed},
		{"missing ce_id", withHeader(ok, companiaevent.HeaderID, ""), deadLetter, deadletter.ReasonMalformed},
		{"bad ce_time", withHeader(ok, companiaevent.HeaderTime, "ayer"), deadLetter, deadletter.ReasonMalformed},
		{"not JSON", rawValue("{"), deadLetter, deadletter.ReasonMalformed},
		{"trailing data", rawValue(string(ok.Value) + "{}"), deadLetter, deadletter.ReasonMalformed},
		{"subject differs", withHeader(ok, companiaevent.HeaderSubject, "other"), deadLetter, deadletter.ReasonMalformed},
		{"id not a uuid", mutate(func(e *companiaevent.Event) { e.Data.Compania.ID = "acme" }), deadLetter, deadletter.ReasonInvalid},
		{"creada not at version 1", mutate(func(e *companiaevent.Event) { e.Data.Compania.Version = 2 }), deadLetter, deadletter.ReasonInvalid},
		{"rechazada without motivo", mutate(func(e *companiaevent.Event) {
			e.Name, e.Data.Compania.Estado, e.Data.Compania.Version = companiaevent.CompaniaRechazada, companiaevent.EstadoRechazada, 2
		}), deadLetter, deadletter.ReasonInvalid},
		{"actualizada without campos", mutate(func(e *companiaevent.Event) {
			e.Name, e.Data.Compania.Version = companiaevent.CompaniaActualizada, 2
		}), deadLetter, deadletter.ReasonInvalid},
		{"email not an email", mutate(func(e *companiaevent.Event) { e.Data.Compania.Email = "not-an-email" }), deadLetter, deadletter.ReasonInvalid},
		{"fecha not a date-time", rawValue(strings.Replace(string(ok.Value), `"fecha_creacion":"2026-11-27T10:00:00Z"`, `"fecha_creacion":"2026-11-27T10:00:00"`, 1)), deadLetter, deadletter.ReasonMalformed},
		{"missing required field", rawValue(`{"compania":{"id":"0a1b2c3d-0000-4000-8000-000000000001","estado":"PENDIENTE","version":1}}`), deadLetter, deadletter.ReasonInvalid},
	}
	for _, tt := range tests {
		got := d.decode(tt.m)
		if got.verdict != tt.verdict || got.reason != tt.reason {
			t.Errorf("%s: verdict %d reason %q (err %v); want %d %q", tt.name, got.verdict, got.reason, got.err, tt.verdict, tt.reason)
		}
		if tt.verdict != apply && got.err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if got := d.decode(withHeader(ok, companiaevent.HeaderType, "co.propalpes.companias.CompaniaFusionada.v1")); !errors.Is(got.err, companiaevent.ErrUnknownEvent) {
		t.Errorf("skip error: %v", got.err)
	}
}

// A schema violation is reported as the JSON Pointer of each value and the
// rule it broke, never the value: the reason goes to the logs and to the
// dlq_error header, and emails and tax ids are personal data.
func TestDecodeSchemaErrorNamesPathsAndRulesOnly(t *testing.T) {
	t.Parallel()
	d, err := newDecoder()
	if err != nil {
		t.Fatal(err)
	}
	const email, identificacion = "not-an-email", "NIT 900.123.456"
	e := validEvent()
	e.Data.Compania.Email, e.Data.Compania.Identificacion = email, identificacion
	got := d.decode(encode(t, e))
	if got.verdict != deadLetter || got.reason != deadletter.ReasonInvalid {
		t.Fatalf("verdict %d reason %q (err %v); want dead letter %q", got.verdict, got.reason, got.err, deadletter.ReasonInvalid)
	}
	msg := got.err.Error()
	for _, v := range []string{email, identificacion, "900"} {
		if strings.Contains(msg, v) {
			t.Errorf("error %q quotes the value %q", msg, v)
		}
	}
	for _, w := range []string{"/compania/email: format email", "/compania/identificacion: pattern"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
}

// FuzzDecodeMessage feeds arbitrary headers and values through the decode
// path: it must never panic and must classify every message. A skipped one
// is an ErrUnknownEvent, a dead-lettered one has a reason and an error (for
// a schema violation, one that quotes no email of the value), and
// an applied one is a complete event whose re-encoding (what the projection
// stores is what Encode would publish) is applied as the same event.
// Seeds are in testdata/fuzz/FuzzDecodeMessage/.
func FuzzDecodeMessage(f *testing.F) {
	d, err := newDecoder()
	if err != nil {
		f.Fatal(err)
	}
	ok := encode(f, validEvent())
	f.Fuzz(func(t *testing.T, ceType, ceID string, value []byte, ceTime string) {
		m := withHeader(withHeader(withHeader(ok, companiaevent.HeaderType, ceType), companiaevent.HeaderID, ceID), companiaevent.HeaderTime, ceTime)
		m = withHeader(m, companiaevent.HeaderSubject, "")
		m.Value = value
		got := d.decode(m)
		switch got.verdict {
		case apply:
			if got.err != nil {
				t.Fatalf("applied with an error: %v", got.err)
			}
			// The accepted value satisfies the contract's required shape.
			if got.event.Data.Compania.ID == "" || got.event.Data.Compania.Version < 1 || !got.event.Name.Known() {
				t.Fatalf("applied an incomplete event: %+v", got.event)
			}
			if !json.Valid(value) {
				t.Fatalf("applied invalid JSON %q", value)
			}
			again := d.decode(encode(t, got.event))
			if again.verdict != apply || !reflect.DeepEqual(canonical(t, again.event), canonical(t, got.event)) {
				t.Fatalf("applied %+v, but its encoding is decoded to verdict %d, %+v (%v)", got.event, again.verdict, again.event, again.err)
			}
		case skip:
			if !errors.Is(got.err, companiaevent.ErrUnknownEvent) {
				t.Fatalf("skipped without ErrUnknownEvent: %v", got.err)
			}
		case deadLetter:
			switch got.reason {
			case deadletter.ReasonMalformed, deadletter.ReasonInvalid, deadletter.ReasonUnsupportedVersion:
			default:
				t.Fatalf("dead-letter reason %q", got.reason)
			}
			if got.err == nil {
				t.Fatal("dead-lettered without an error")
			}
			// A schema violation names paths and rules, which hold no
			// '@': an email of the value is never quoted.
			if got.reason == deadletter.ReasonInvalid && strings.Contains(got.err.Error(), "@") {
				t.Fatalf("schema error quotes a value: %v", got.err)
			}
		default:
			t.Fatalf("verdict %d", got.verdict)
		}
	})
}

// canonical is an event's record, for comparing events.
func canonical(t *testing.T, e companiaevent.Event) companiaevent.Message {
	t.Helper()
	m, err := companiaevent.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
