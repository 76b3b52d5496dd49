// Package companiacmd is the contract of the integration commands the
// companias command service consumes from Kafka.
//
// A CrearCompania command is a JSON record value
//
//	{"id": "<command id>", "data": {"nombre": "...", "email": "...", "identificacion": "..."}}
//
// on DefaultTopic. The command id makes it idempotent: a redelivered or
// re-sent command with the same id creates nothing twice. A message that
// cannot be decoded or fails validation is moved to deadletter.Topic(topic)
// with the headers of package deadletter, and the consumer moves on.
//
// This package depends on the standard library only.
package companiacmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DefaultTopic is the default topic of CrearCompania commands.
const DefaultTopic = "topic-comando-crear-compania"

// CrearCompania asks to register a company.
type CrearCompania struct {
	// ID identifies the command; it becomes the idempotency key. Required.
	ID   string            `json:"id"`
	Data CrearCompaniaData `json:"data"`
}

// CrearCompaniaData is the company to create. The command service validates
// the fields (see its OpenAPI document for the rules).
type CrearCompaniaData struct {
	Nombre         string `json:"nombre"`
	Email          string `json:"email"`
	Identificacion string `json:"identificacion"`
}

// ErrMalformed marks a message that is not a well-formed CrearCompania.
var ErrMalformed = errors.New("malformed command")

// MaxIDLength bounds the command id.
const MaxIDLength = 200

// DecodeCrearCompania parses a record value strictly: unknown fields, trailing
// data and a missing id are errors wrapping ErrMalformed. Field values are
// validated by the domain, not here.
func DecodeCrearCompania(value []byte) (CrearCompania, error) {
	var c CrearCompania
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return CrearCompania{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return CrearCompania{}, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	c.ID = strings.TrimSpace(c.ID)
	if c.ID == "" {
		return CrearCompania{}, fmt.Errorf("%w: id is required", ErrMalformed)
	}
	if len(c.ID) > MaxIDLength {
		return CrearCompania{}, fmt.Errorf("%w: id is longer than %d bytes", ErrMalformed, MaxIDLength)
	}
	return c, nil
}
