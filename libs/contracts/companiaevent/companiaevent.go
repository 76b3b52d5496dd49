// Package companiaevent is the integration-event contract of the companias
// bounded context: what the command service publishes to Kafka and what any
// consumer (the query service or an external system) may rely on.
//
// Events travel in CloudEvents 1.0 Kafka binary mode: the record value is the
// JSON document Data, and the CloudEvents attributes are record headers
// (ce_specversion, ce_id, ce_source, ce_type, ce_time, ce_subject,
// ce_dataschema, content-type, and the W3C traceparent). The record key is
// the company id, so every event of one company lands on one partition, in
// order. Delivery is
// at least once: consumers deduplicate on ce_id, or — better — apply an event
// only when its Data.Compania.Version is newer than what they hold, since every
// event carries the full company snapshot after it.
//
// The contract is versioned by the suffix of ce_type (".v1"). Additive changes
// (new optional fields, new event types) keep the major version; consumers
// must ignore unknown fields and skip unknown event types of a known major
// version. A breaking change gets a new major version (".v2").
//
// This package depends on the standard library only.
package companiaevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultTopic is the default Kafka topic of the integration events.
const DefaultTopic = "topic-eventos-compania"

// SpecVersion is the CloudEvents specification version used.
const SpecVersion = "1.0"

// Source is the ce_source attribute of every event emitted by the command service.
const Source = "/propalpes/companias"

// ContentType is the content-type header (CloudEvents datacontenttype).
const ContentType = "application/json"

// TypePrefix starts every ce_type of this contract.
const TypePrefix = "co.propalpes.companias."

// MajorVersion is the contract major version this package speaks.
const MajorVersion = 1

// Kafka record header names (CloudEvents Kafka protocol binding, binary mode).
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
	HeaderContentType = "content-type"
	HeaderTraceparent = "traceparent"
	// HeaderDataSchema (CloudEvents dataschema) is the $id of the JSON
	// Schema the value satisfies, SchemaID(name). Encode always writes it;
	// Decode does not require it, since events published before it was
	// added lack it (the topic keeps records forever).
	HeaderDataSchema = "ce_dataschema"
)

// Name is the name of an event, the ubiquitous-language verb in past tense.
type Name string

// The event names of major version 1.
const (
	CompaniaCreada      Name = "CompaniaCreada"
	CompaniaActualizada Name = "CompaniaActualizada"
	CompaniaAprobada    Name = "CompaniaAprobada"
	CompaniaRechazada   Name = "CompaniaRechazada"
)

// Names lists every event name this version of the contract knows. It is
// the one list of event types: the writer's domain events are tested to map
// onto it one to one, and the reader's projection is tested to handle each
// (README, "Adding a command").
func Names() []Name {
	return []Name{CompaniaCreada, CompaniaActualizada, CompaniaAprobada, CompaniaRechazada}
}

// Known reports whether n is an event name of this version of the contract.
func (n Name) Known() bool {
	for _, k := range Names() {
		if k == n {
			return true
		}
	}
	return false
}

// Type returns the ce_type of n in the current major version, for example
// "co.propalpes.companias.CompaniaCreada.v1".
func (n Name) Type() string { return fmt.Sprintf("%s%s.v%d", TypePrefix, n, MajorVersion) }

// Estado values of a company, as Compania.Estado carries them. A company
// starts PENDIENTE and moves once to APROBADA or RECHAZADA.
const (
	EstadoPendiente = "PENDIENTE"
	EstadoAprobada  = "APROBADA"
	EstadoRechazada = "RECHAZADA"
)

// Estados lists every estado this version of the contract knows, in
// lifecycle order. It is the one list of estados: the reader's filters,
// statistics and projection range over it, the schema's and the API
// documents' enums are tested against it, and the writer's domain estados
// are tested to map onto it. Adding an estado starts here (README, "Adding
// an estado"); the tests that range over Estados then name every other
// place.
func Estados() []string {
	return []string{EstadoPendiente, EstadoAprobada, EstadoRechazada}
}

// KnownEstado reports whether s is an estado of Estados.
func KnownEstado(s string) bool {
	for _, e := range Estados() {
		if e == s {
			return true
		}
	}
	return false
}

// Compania is the full snapshot of a company right after an event.
// Times are RFC 3339 in UTC. Version starts at 1 and grows by one per event,
// so for one company the events carry versions 1, 2, 3… with no gap.
type Compania struct {
	ID                 string    `json:"id"`
	Nombre             string    `json:"nombre"`
	Email              string    `json:"email"`
	Identificacion     string    `json:"identificacion"`
	Estado             string    `json:"estado"`
	MotivoRechazo      *string   `json:"motivo_rechazo"`
	FechaCreacion      time.Time `json:"fecha_creacion"`
	FechaActualizacion time.Time `json:"fecha_actualizacion"`
	Version            int64     `json:"version"`
}

// Data is the record value of every event.
type Data struct {
	// Compania is the company after the event.
	Compania Compania `json:"compania"`
	// Campos lists the fields a CompaniaActualizada changed ("nombre",
	// "email"); it is empty for the other events.
	Campos []string `json:"campos,omitempty"`
}

// Event is one integration event: its CloudEvents attributes and its data.
type Event struct {
	// ID is the event id (ce_id), unique per event; the deduplication key.
	ID string
	// Name is the event name; the ce_type is Name.Type().
	Name Name
	// Time is when the event happened (ce_time).
	Time time.Time
	// Traceparent is the W3C trace context of the originating request, or "".
	Traceparent string
	Data        Data
}

// Subject returns the ce_subject: the company id.
func (e Event) Subject() string { return e.Data.Compania.ID }

// Header is a Kafka record header, independent of any client library.
type Header struct {
	Key   string
	Value []byte
}

// Message is an encoded event: what goes into one Kafka record.
type Message struct {
	Key     []byte
	Value   []byte
	Headers []Header
}

// Encode turns e into a Kafka record in CloudEvents binary mode.
func Encode(e Event) (Message, error) {
	if e.ID == "" || e.Data.Compania.ID == "" || !e.Name.Known() {
		return Message{}, fmt.Errorf("encode event %q: id, name and company id are required", e.Name)
	}
	value, err := json.Marshal(e.Data)
	if err != nil {
		return Message{}, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	h := []Header{
		{HeaderSpecVersion, []byte(SpecVersion)},
		{HeaderID, []byte(e.ID)},
		{HeaderSource, []byte(Source)},
		{HeaderType, []byte(e.Name.Type())},
		{HeaderTime, []byte(e.Time.UTC().Format(time.RFC3339Nano))},
		{HeaderSubject, []byte(e.Subject())},
		{HeaderDataSchema, []byte(SchemaID(e.Name))},
		{HeaderContentType, []byte(ContentType)},
	}
	if e.Traceparent != "" {
		h = append(h, Header{HeaderTraceparent, []byte(e.Traceparent)})
	}
	return Message{Key: []byte(e.Data.Compania.ID), Value: value, Headers: h}, nil
}

// Decoding errors. A consumer dead-letters a message whose error matches
// ErrMalformed or ErrUnsupportedVersion, and skips (and counts) one matching
// ErrUnknownEvent: it was produced by a newer minor version of the contract.
var (
	ErrMalformed          = errors.New("malformed event")
	ErrUnsupportedVersion = errors.New("unsupported event major version")
	ErrUnknownEvent       = errors.New("unknown event type of a known major version")
)

// ParseType splits a ce_type into its event name and major version.
func ParseType(ceType string) (Name, int, error) {
	rest, ok := strings.CutPrefix(ceType, TypePrefix)
	if !ok {
		return "", 0, fmt.Errorf("%w: ce_type %q does not start with %q", ErrMalformed, ceType, TypePrefix)
	}
	i := strings.LastIndex(rest, ".v")
	if i <= 0 {
		return "", 0, fmt.Errorf("%w: ce_type %q has no .v<major> suffix", ErrMalformed, ceType)
	}
	var major int
	if _, err := fmt.Sscanf(rest[i+2:], "%d", &major); err != nil || major <= 0 || fmt.Sprint(major) != rest[i+2:] {
		return "", 0, fmt.Errorf("%w: ce_type %q has a bad major version", ErrMalformed, ceType)
	}
	return Name(rest[:i]), major, nil
}

// Decode reads an event from a Kafka record's headers and value. It checks
// the CloudEvents attributes and the JSON shape, not the JSON Schema (see
// Schema). The returned error wraps ErrMalformed, ErrUnsupportedVersion or
// ErrUnknownEvent.
func Decode(headers []Header, value []byte) (Event, error) {
	get := func(k string) (string, bool) {
		for _, h := range headers {
			if h.Key == k {
				return string(h.Value), true
			}
		}
		return "", false
	}
	ceType, ok := get(HeaderType)
	if !ok || ceType == "" {
		return Event{}, fmt.Errorf("%w: missing %s header", ErrMalformed, HeaderType)
	}
	name, major, err := ParseType(ceType)
	if err != nil {
		return Event{}, err
	}
	if major != MajorVersion {
		return Event{}, fmt.Errorf("%w: %s (this consumer speaks v%d)", ErrUnsupportedVersion, ceType, MajorVersion)
	}
	if !name.Known() {
		return Event{}, fmt.Errorf("%w: %s", ErrUnknownEvent, ceType)
	}
	e := Event{Name: name}
	if e.ID, ok = get(HeaderID); !ok || e.ID == "" {
		return Event{}, fmt.Errorf("%w: missing %s header", ErrMalformed, HeaderID)
	}
	if sv, _ := get(HeaderSpecVersion); sv != SpecVersion {
		return Event{}, fmt.Errorf("%w: %s is %q, want %q", ErrMalformed, HeaderSpecVersion, sv, SpecVersion)
	}
	ts, _ := get(HeaderTime)
	// The time must also be an RFC 3339 time in UTC, as Encode writes it:
	// "0000-01-01T00:30:00+01:00" is in the year -1 in UTC.
	if e.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil || e.Time.UTC().Year() < 0 || e.Time.UTC().Year() > 9999 {
		return Event{}, fmt.Errorf("%w: bad %s %q", ErrMalformed, HeaderTime, ts)
	}
	e.Traceparent, _ = get(HeaderTraceparent)
	dec := json.NewDecoder(bytes.NewReader(value))
	if err := dec.Decode(&e.Data); err != nil {
		return Event{}, fmt.Errorf("%w: value: %s", ErrMalformed, jsonError(err))
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: value has trailing data", ErrMalformed)
	}
	c := e.Data.Compania
	if c.ID == "" || c.Version < 1 || c.Estado == "" {
		return Event{}, fmt.Errorf("%w: compania id, estado and version are required", ErrMalformed)
	}
	if subj, ok := get(HeaderSubject); ok && subj != c.ID {
		return Event{}, fmt.Errorf("%w: %s %q differs from compania id %q", ErrMalformed, HeaderSubject, subj, c.ID)
	}
	return e, nil
}

// jsonError describes an error of decoding Data without quoting a value of
// it: the value carries personal data (emails, tax ids), and consumers log
// this text and copy it into dead letters. encoding/json quotes a value in
// a number's type error and in a time's parse error.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te):
		got, _, _ := strings.Cut(te.Value, " ") // "number 1.5" → "number"
		return fmt.Sprintf("%s: got %s, want %s", te.Field, got, te.Type)
	case errors.As(err, &pe):
		return "a time is not RFC 3339"
	}
	return err.Error()
}
