// Package compania is the domain model of the companias bounded context: the
// Compania aggregate, its value rules, its domain events and its errors.
//
// The aggregate is always valid: New and the behaviour methods check every
// rule and record exactly one domain event per state change, bumping the
// version by one. Time is always passed in; the package never reads a clock.
package compania

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/seedwork/aggregate"
	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// Estado is the lifecycle state of a company. The zero value is invalid.
type Estado int

// The states. A company starts Pendiente and moves once to Aprobada or Rechazada.
const (
	Pendiente Estado = iota + 1
	Aprobada
	Rechazada
)

// estadoNames holds the wire name of each Estado, indexed by it: the one
// place that says which Estado values exist. A constant added above without
// a name here is not Valid, and the tests of this package and of the
// integration adapter (which checks these names against the contract's
// companiaevent.Estados) fail.
var estadoNames = [...]string{
	Pendiente: "PENDIENTE",
	Aprobada:  "APROBADA",
	Rechazada: "RECHAZADA",
}

// Estados returns every valid Estado, in lifecycle order.
func Estados() []Estado {
	out := make([]Estado, 0, len(estadoNames)-1)
	for e := Pendiente; e.Valid(); e++ {
		out = append(out, e)
	}
	return out
}

// Valid reports whether e is one of the declared states (not the zero value,
// not out of range).
func (e Estado) Valid() bool { return e > 0 && int(e) < len(estadoNames) && estadoNames[e] != "" }

// String returns the wire name (PENDIENTE, APROBADA, RECHAZADA), or
// "Estado(n)" for an invalid e.
func (e Estado) String() string {
	if !e.Valid() {
		return fmt.Sprintf("Estado(%d)", int(e))
	}
	return estadoNames[e]
}

// ParseEstado parses a wire name of an Estado (exact, upper case).
func ParseEstado(s string) (Estado, error) {
	for _, e := range Estados() {
		if e.String() == s {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown estado %q", s)
}

// Datos are the client-supplied fields of a new company.
type Datos struct {
	Nombre         string
	Email          string
	Identificacion string
}

// Snapshot is the complete state of a company. Repositories store it and
// rebuild the aggregate from it with FromSnapshot; events carry it as the
// state right after them.
type Snapshot struct {
	ID                 string
	Nombre             string
	Email              string
	Identificacion     string
	Estado             Estado
	MotivoRechazo      string // empty unless Estado is Rechazada
	FechaCreacion      time.Time
	FechaActualizacion time.Time
	Version            int64
}

// Compania is the aggregate root. Its zero value is not usable: build one
// with New or FromSnapshot. It is not safe for concurrent use.
type Compania struct {
	s      Snapshot
	events aggregate.Recorder[Event]
}

// New validates the input and creates a PENDIENTE company at version 1,
// recording CompaniaCreada. id must be a UUID (it is normalised to lower
// case); the caller generates it or honours the client's. now is stored in UTC.
// nombre and email are stored in Unicode NFC and must not hold invisible
// characters (see rules.go). A validation error lists every bad field.
func New(id string, d Datos, now time.Time) (*Compania, error) {
	var fields []apperr.FieldError
	id, err := ParseID(id)
	if err != nil {
		fields = append(fields, apperr.FieldError{Field: "id", Message: err.Error()})
	}
	nombre, errNombre := normalizeNombre(d.Nombre)
	email, errEmail := normalizeEmail(d.Email)
	identificacion, errIdent := normalizeIdentificacion(d.Identificacion)
	fields = appendField(fields, "nombre", errNombre)
	fields = appendField(fields, "email", errEmail)
	fields = appendField(fields, "identificacion", errIdent)
	if err := invalid(fields); err != nil {
		return nil, err
	}
	now = now.UTC()
	c := &Compania{s: Snapshot{
		ID:                 id,
		Nombre:             nombre,
		Email:              email,
		Identificacion:     identificacion,
		Estado:             Pendiente,
		FechaCreacion:      now,
		FechaActualizacion: now,
		Version:            1,
	}}
	c.events.Record(CompaniaCreada{Compania: c.s})
	return c, nil
}

// FromSnapshot rebuilds a company from stored state without recording events.
// It is meant for repositories and rejects a snapshot that no valid company
// could have produced.
func FromSnapshot(s Snapshot) (*Compania, error) {
	if _, err := ParseID(s.ID); err != nil || s.Version < 1 || !s.Estado.Valid() {
		return nil, fmt.Errorf("corrupt compania snapshot %q (version %d, estado %v)", s.ID, s.Version, s.Estado)
	}
	return &Compania{s: s}, nil
}

// ID returns the company id.
func (c *Compania) ID() string { return c.s.ID }

// Version returns the version: 1 at creation, +1 per change.
func (c *Compania) Version() int64 { return c.s.Version }

// Estado returns the lifecycle state.
func (c *Compania) Estado() Estado { return c.s.Estado }

// Snapshot returns a copy of the current state.
func (c *Compania) Snapshot() Snapshot { return c.s }

// Events returns the events recorded since the company was built, oldest first.
func (c *Compania) Events() []Event { return c.events.Events() }

// ClearEvents forgets the recorded events; repositories call it after saving them.
func (c *Compania) ClearEvents() { c.events.Clear() }

// Cambios is a partial update: a nil field is left as it is.
type Cambios struct {
	Nombre *string
	Email  *string
}

// Actualizar changes nombre and/or email. At least one must be given; every
// bad field is reported. A RECHAZADA company cannot change (ErrInvalidTransition).
// Setting the values a company already has is accepted and changes nothing:
// no event is recorded and the version stays.
func (c *Compania) Actualizar(cb Cambios, now time.Time) error {
	var fields []apperr.FieldError
	if cb.Nombre == nil && cb.Email == nil {
		fields = append(fields, apperr.FieldError{Field: "nombre", Message: "nombre or email is required"},
			apperr.FieldError{Field: "email", Message: "nombre or email is required"})
	}
	nombre, email := c.s.Nombre, c.s.Email
	if cb.Nombre != nil {
		var err error
		nombre, err = normalizeNombre(*cb.Nombre)
		fields = appendField(fields, "nombre", err)
	}
	if cb.Email != nil {
		var err error
		email, err = normalizeEmail(*cb.Email)
		fields = appendField(fields, "email", err)
	}
	if err := invalid(fields); err != nil {
		return err
	}
	if c.s.Estado == Rechazada {
		return transicion("update", c.s.Estado)
	}
	var campos []string
	if nombre != c.s.Nombre {
		campos = append(campos, "nombre")
	}
	if email != c.s.Email {
		campos = append(campos, "email")
	}
	if len(campos) == 0 {
		return nil
	}
	c.s.Nombre, c.s.Email = nombre, email
	c.touch(now)
	c.events.Record(CompaniaActualizada{Campos: campos, Compania: c.s})
	return nil
}

// Aprobar approves a PENDIENTE company; any other state is ErrInvalidTransition.
func (c *Compania) Aprobar(now time.Time) error {
	if c.s.Estado != Pendiente {
		return transicion("approve", c.s.Estado)
	}
	c.s.Estado = Aprobada
	c.touch(now)
	c.events.Record(CompaniaAprobada{Compania: c.s})
	return nil
}

// Rechazar rejects a PENDIENTE company with a required motivo (NFC,
// trimmed, 1–1000 characters, no invisible characters); any other state is
// ErrInvalidTransition.
func (c *Compania) Rechazar(motivo string, now time.Time) error {
	m, err := normalizeMotivo(motivo)
	if err := invalid(appendField(nil, "motivo", err)); err != nil {
		return err
	}
	if c.s.Estado != Pendiente {
		return transicion("reject", c.s.Estado)
	}
	c.s.Estado = Rechazada
	c.s.MotivoRechazo = m
	c.touch(now)
	c.events.Record(CompaniaRechazada{Motivo: m, Compania: c.s})
	return nil
}

func (c *Compania) touch(now time.Time) {
	now = now.UTC()
	if now.Before(c.s.FechaActualizacion) {
		// A clock that stepped back never makes time run backwards for a company.
		now = c.s.FechaActualizacion
	}
	c.s.FechaActualizacion = now
	c.s.Version++
}

func transicion(action string, from Estado) error {
	return &apperr.Error{
		Kind:    apperr.Conflict,
		Code:    ErrInvalidTransition.Code,
		Message: fmt.Sprintf("cannot %s a compania in estado %s", action, from),
	}
}

func appendField(fields []apperr.FieldError, name string, err error) []apperr.FieldError {
	if err == nil {
		return fields
	}
	return append(fields, apperr.FieldError{Field: name, Message: err.Error()})
}

func invalid(fields []apperr.FieldError) error {
	return apperr.Validation(ErrInvalid.Code, ErrInvalid.Message, fields)
}

// Errors of the domain. Match them with errors.Is; the HTTP and Kafka ports
// map them through their apperr kind.
var (
	// ErrInvalid is the kind of every validation error; the returned error
	// lists the bad fields.
	ErrInvalid = apperr.New(apperr.Invalid, "validation", "the compania has invalid fields")
	// ErrNotFound: no company has the given id.
	ErrNotFound = apperr.New(apperr.NotFound, "compania_not_found", "compania not found")
	// ErrDuplicate: another company has the same nombre and identificacion
	// (compared case-insensitively, nombre in NFC).
	ErrDuplicate = apperr.New(apperr.Conflict, "compania_duplicada",
		"a compania with this nombre and identificacion already exists")
	// ErrIDTaken: a company with the client-supplied id already exists.
	ErrIDTaken = apperr.New(apperr.Conflict, "compania_id_en_uso", "a compania with this id already exists")
	// ErrInvalidTransition: the command is not allowed in the company's current estado.
	ErrInvalidTransition = apperr.New(apperr.Conflict, "transicion_invalida", "the command is not allowed in the current estado")
	// ErrConcurrentUpdate: the company changed between load and save; retry the command.
	ErrConcurrentUpdate = apperr.New(apperr.Conflict, "modificacion_concurrente", "the compania was modified concurrently; retry")
	// ErrVersionMismatch: the caller's expected version (If-Match) is not the current one.
	ErrVersionMismatch = apperr.New(apperr.PreconditionFailed, "version_no_coincide", "the compania is not at the expected version")
)

// Limits of the fields.
const (
	MaxNombre         = 200
	MaxEmail          = 254
	MaxIdentificacion = 40
	MaxMotivo         = 1000
)

// ValidID reports whether s is a company id: a UUID in its 36-character
// 8-4-4-4-12 hexadecimal form, in either case. ParseID accepts exactly the
// strings that are ValidID once trimmed and lower-cased. It is the writer's
// one UUID rule: a port or adapter that must tell a company id from anything
// else (a path id, a lookup key) calls it rather than keeping a copy.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch i {
		case 8, 13, 18, 23:
			if ch != '-' {
				return false
			}
		default:
			if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F') {
				return false
			}
		}
	}
	return true
}

// ParseID returns the canonical form of a client-supplied company id:
// trimmed of surrounding white space and lower-cased. It fails, with the
// message of a field error, unless the result is a ValidID.
func ParseID(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if !ValidID(s) {
		return "", errors.New("must be a UUID")
	}
	return s, nil
}
