package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// verdict is what the consumer does with one message.
type verdict int

const (
	apply      verdict = iota // project the event
	skip                      // unknown event type of a known major version: count and move on
	deadLetter                // poison: copy to the DLQ and move on
)

// decoded is the outcome of decoding one message.
type decoded struct {
	verdict verdict
	event   companiaevent.Event
	reason  string // deadletter reason when verdict is deadLetter
	err     error  // why it was skipped or dead-lettered
}

// decoder decodes and validates messages against the event contract. It is
// safe for concurrent use once built.
type decoder struct {
	schemas map[companiaevent.Name]*jsonschema.Schema
}

// newDecoder compiles the JSON Schemas of every known event once.
func newDecoder() (*decoder, error) {
	c := jsonschema.NewCompiler()
	for id, b := range companiaevent.Schemas() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", id, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", id, err)
		}
	}
	d := &decoder{schemas: map[companiaevent.Name]*jsonschema.Schema{}}
	for _, n := range companiaevent.Names() {
		s, err := c.Compile(companiaevent.SchemaID(n))
		if err != nil {
			return nil, fmt.Errorf("compile schema of %s: %w", n, err)
		}
		d.schemas[n] = s
	}
	return d, nil
}

// decode classifies m: a valid event to apply; an unknown event type of
// the known major version to skip (a newer minor version of the contract);
// or poison to dead-letter — malformed headers or value (including a
// missing ce_type), an unsupported major version, or a value that breaks
// the event's JSON Schema.
func (d *decoder) decode(m kafka.Message) decoded {
	h := make([]companiaevent.Header, len(m.Headers))
	for i, x := range m.Headers {
		h[i] = companiaevent.Header{Key: x.Key, Value: x.Value}
	}
	e, err := companiaevent.Decode(h, m.Value)
	switch {
	case errors.Is(err, companiaevent.ErrUnknownEvent):
		return decoded{verdict: skip, err: err}
	case errors.Is(err, companiaevent.ErrUnsupportedVersion):
		return decoded{verdict: deadLetter, reason: deadletter.ReasonUnsupportedVersion, err: err}
	case err != nil:
		return decoded{verdict: deadLetter, reason: deadletter.ReasonMalformed, err: err}
	}
	s, ok := d.schemas[e.Name]
	if !ok { // cannot happen: Decode returns known names only
		return decoded{verdict: deadLetter, reason: deadletter.ReasonMalformed, err: fmt.Errorf("no schema for %s", e.Name)}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Value))
	if err != nil {
		return decoded{verdict: deadLetter, reason: deadletter.ReasonMalformed, err: fmt.Errorf("value: %w", err)}
	}
	if err := s.Validate(inst); err != nil {
		return decoded{verdict: deadLetter, reason: deadletter.ReasonInvalid, err: fmt.Errorf("%s breaks its schema: %w", e.Name, err)}
	}
	// encoding/json matches member names regardless of case, so the event
	// decoded from {"estado":"PENDIENTE","ESTADO":"BOGUS"} holds BOGUS while
	// the schema checked PENDIENTE: the event applied must satisfy it too.
	if err := validateDecoded(s, e); err != nil {
		return decoded{verdict: deadLetter, reason: deadletter.ReasonInvalid, err: fmt.Errorf("%s decodes to data that breaks its schema: %w", e.Name, err)}
	}
	return decoded{verdict: apply, event: e}
}

// validateDecoded validates the JSON encoding of e's data against s.
func validateDecoded(s *jsonschema.Schema, e companiaevent.Event) error {
	b, err := json.Marshal(e.Data)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}
