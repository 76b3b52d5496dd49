// Package companiacmd is the contract of the integration commands the
// companias command service consumes from Kafka.
//
// A CrearCompania command is a JSON record value
//
//	{"id": "<command id>", "data": {"nombre": "...", "email": "...", "identificacion": "..."}}
//
// on DefaultTopic. The command id makes it idempotent: a redelivered or
// re-sent command with the same id creates nothing twice. A message that
// cannot be decoded or fails validation is moved to DeadLetterTopic(topic)
// with the headers below, and the consumer moves on.
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

// DeadLetterTopic returns the dead-letter topic for commands read from topic.
func DeadLetterTopic(topic string) string { return topic + ".dlq" }

// Dead-letter headers: why a message was rejected and where it came from.
const (
	HeaderDLQReason    = "dlq_reason"
	HeaderDLQError     = "dlq_error"
	HeaderDLQTopic     = "dlq_original_topic"
	HeaderDLQPartition = "dlq_original_partition"
	HeaderDLQOffset    = "dlq_original_offset"
	HeaderDLQTime      = "dlq_time"
)

// Dead-letter reasons (values of HeaderDLQReason).
const (
	ReasonMalformed = "malformed" // not JSON of the command's shape
	ReasonInvalid   = "invalid"   // well-formed, but the data broke a domain rule
	ReasonConflict  = "conflict"  // refused by the current state (e.g. a duplicate company)
)

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
