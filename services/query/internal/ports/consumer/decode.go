package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
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

// newDecoder compiles the JSON Schemas of every known event once, with
// format assertion on: draft 2020-12 treats "format" as an annotation by
// default, which would let an email "not-an-email" or an id that is no uuid
// through.
func newDecoder() (*decoder, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
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
		return decoded{verdict: deadLetter, reason: deadletter.ReasonInvalid, err: fmt.Errorf("%s breaks its schema: %s", e.Name, violations(err))}
	}
	// encoding/json matches member names regardless of case, so the event
	// decoded from {"estado":"PENDIENTE","ESTADO":"BOGUS"} holds BOGUS while
	// the schema checked PENDIENTE: the event applied must satisfy it too.
	if err := validateDecoded(s, e); err != nil {
		return decoded{verdict: deadLetter, reason: deadletter.ReasonInvalid, err: fmt.Errorf("%s decodes to data that breaks its schema: %s", e.Name, violations(err))}
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

// maxViolations bounds the rules violations lists; the dead-letter header
// is bounded anyway (deadletter.MaxErrorLen).
const maxViolations = 8

// violations summarises a schema validation error as the JSON Pointer of
// each value that broke a rule and the rule, for example
// "/compania/email: format email; /compania/identificacion: pattern". It
// never includes a value: events carry personal data (emails, tax ids) and
// this text goes to the logs and to the dlq_error header. That is also why
// the jsonschema error is not wrapped: its text quotes the values.
func violations(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "does not validate"
	}
	var out []string
	seen := map[string]bool{}
	var walk func(*jsonschema.ValidationError)
	walk = func(v *jsonschema.ValidationError) {
		if len(v.Causes) > 0 {
			for _, c := range v.Causes {
				walk(c)
			}
			return
		}
		s := pointer(v.InstanceLocation) + ": " + rule(v.ErrorKind)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	walk(ve)
	if len(out) == 0 {
		return "does not validate"
	}
	if len(out) > maxViolations {
		out = append(out[:maxViolations], fmt.Sprintf("and %d more", len(out)-maxViolations))
	}
	return strings.Join(out, "; ")
}

// pointer is the JSON Pointer (RFC 6901) of a value; "" is the whole value.
func pointer(loc []string) string {
	var b strings.Builder
	r := strings.NewReplacer("~", "~0", "/", "~1")
	for _, tok := range loc {
		b.WriteByte('/')
		b.WriteString(r.Replace(tok))
	}
	return b.String()
}

// rule names the rule an error kind reports, with the schema's side of it
// where that helps (the format, the missing property names, the wanted
// types) and never the value checked.
func rule(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Format:
		return "format " + k.Want
	case *kind.Required:
		return "required " + strings.Join(k.Missing, ", ")
	case *kind.Type:
		return "type " + strings.Join(k.Want, " or ")
	}
	if p := k.KeywordPath(); len(p) > 0 {
		return strings.Join(p, "/")
	}
	return "does not validate"
}
