package postgres

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// OutboxChannel is the LISTEN/NOTIFY channel of the outbox. After a write
// that added outbox rows has committed, and never after a rollback,
// Repository sends a pg_notify on OutboxChannel with an empty payload, in a
// transaction of its own, so a relay that LISTENs on it is woken once the
// rows are visible. Writes that commit close together share one
// notification (at most one per Repository per notify interval, 1ms by
// default), and a Repository built WithWaker sends none while its own
// process's relay leads. Notifications are a wake-up hint only: one is lost if the writer
// dies right after its commit or while the relay's LISTEN connection is down,
// so the relay must still poll now and then, and must drain all it finds
// when woken.
const OutboxChannel = "companias_outbox"

// OutboxRow is one row of the outbox table, as the relay reads it:
//
//	SELECT id, event_id, topic, key, value, headers, created_at FROM outbox
//	 WHERE published_at IS NULL ORDER BY id ... FOR UPDATE SKIP LOCKED
//
// Scan headers into a []byte and decode them with DecodeHeaders. Rows of one
// company are inserted in event (version) order, because its writers are
// serialised by the row lock of the company, so ordering by id keeps a
// company's events in order.
type OutboxRow struct {
	ID        int64
	EventID   string // the ce_id, a UUIDv7
	Topic     string
	Key       []byte // the company id
	Value     []byte // companiaevent.Data as JSON
	Headers   []companiaevent.Header
	CreatedAt time.Time
}

// Message returns the Kafka record of the row.
func (r OutboxRow) Message() companiaevent.Message {
	return companiaevent.Message{Key: r.Key, Value: r.Value, Headers: r.Headers}
}

// outboxHeader is the JSON form of one header. Value holds the header value
// as text when it is valid UTF-8 without NUL (jsonb cannot store U+0000);
// otherwise B64 holds it in standard base64 and Value is absent.
type outboxHeader struct {
	Key   string  `json:"key"`
	Value *string `json:"value,omitempty"`
	B64   *string `json:"b64,omitempty"`
}

// EncodeHeaders returns the JSON stored in outbox.headers: an array, in
// record order, of {"key": k, "value": v} objects, or {"key": k, "b64": v}
// when v is not valid UTF-8 or contains a NUL byte (v in standard base64,
// with padding). A key must be non-empty valid UTF-8 without NUL. nil encodes as [].
//
// Headers whose keys and values are plain printable ASCII (the CloudEvents
// headers the writer stores) are written directly; the output is the same
// as encoding/json's, which writes the others.
func EncodeHeaders(hs []companiaevent.Header) ([]byte, error) {
	if b, ok := encodeHeadersPlain(hs); ok {
		return b, nil
	}
	return encodeHeadersJSON(hs)
}

// encodeHeadersPlain writes hs when every key and value is plain (see
// plainASCII) and every key non-empty; it reports false otherwise.
func encodeHeadersPlain(hs []companiaevent.Header) ([]byte, bool) {
	n := 2
	for _, h := range hs {
		if h.Key == "" || !plainASCII(h.Key) || !plainASCII(h.Value) {
			return nil, false
		}
		n += len(`{"key":"","value":""},`) + len(h.Key) + len(h.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":"`...)
		b = append(b, h.Key...)
		b = append(b, `","value":"`...)
		b = append(b, h.Value...)
		b = append(b, `"}`...)
	}
	return append(b, ']'), true
}

// plainASCII reports whether encoding/json writes s as is between quotes:
// printable ASCII other than the quote, the backslash and the characters it
// escapes for HTML (<, > and &).
func plainASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// encodeHeadersJSON is EncodeHeaders by encoding/json, for any headers.
func encodeHeadersJSON(hs []companiaevent.Header) ([]byte, error) {
	out := make([]outboxHeader, len(hs))
	for i, h := range hs {
		if h.Key == "" || !textSafe([]byte(h.Key)) {
			return nil, fmt.Errorf("encode outbox headers: key %q is empty or not UTF-8 text", h.Key)
		}
		out[i].Key = h.Key
		if textSafe(h.Value) {
			v := string(h.Value)
			out[i].Value = &v
		} else {
			v := base64.StdEncoding.EncodeToString(h.Value)
			out[i].B64 = &v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode outbox headers: %w", err)
	}
	return b, nil
}

// DecodeHeaders reads outbox.headers as written by EncodeHeaders, keeping
// the order. [] decodes to an empty, non-nil slice; JSON null is an error.
// Each object must have a key and exactly one of value and b64.
//
// Headers as EncodeHeaders writes them and PostgreSQL's jsonb gives them
// back (strings without escapes) are read by a small scanner that makes
// only the allocations of the result; anything else goes through
// encoding/json, with the same result or error.
func DecodeHeaders(raw []byte) ([]companiaevent.Header, error) {
	if hs, ok := decodeHeadersPlain(raw); ok {
		return hs, nil
	}
	return decodeHeadersJSON(raw)
}

// decodeHeadersJSON is DecodeHeaders by encoding/json, for any input.
func decodeHeadersJSON(raw []byte) ([]companiaevent.Header, error) {
	var in []outboxHeader
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("decode outbox headers: %w", err)
	}
	if in == nil {
		return nil, errors.New("decode outbox headers: not a JSON array")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode outbox headers: trailing data after the array")
	}
	out := make([]companiaevent.Header, len(in))
	for i, h := range in {
		if h.Key == "" {
			return nil, fmt.Errorf("decode outbox headers: header %d has no key", i)
		}
		out[i].Key = h.Key
		switch {
		case h.Value != nil && h.B64 == nil:
			out[i].Value = []byte(*h.Value)
		case h.B64 != nil && h.Value == nil:
			v, err := base64.StdEncoding.DecodeString(*h.B64)
			if err != nil {
				return nil, fmt.Errorf("decode outbox headers: header %q: %w", h.Key, err)
			}
			out[i].Value = v
		default:
			return nil, fmt.Errorf("decode outbox headers: header %q: %w", h.Key, errValueOrB64)
		}
	}
	return out, nil
}

var errValueOrB64 = errors.New(`needs exactly one of "value" and "b64"`)

// decodeHeadersPlain reads headers JSON of the plain shape: an array of
// objects with exactly the members "key" and one of "value" and "b64", in
// either order, every string free of escapes, control characters and
// invalid UTF-8, JSON white space anywhere between tokens, and a non-empty
// key and valid base64. It reports false for anything else, which
// decodeHeadersJSON then reads (or rejects) instead; for what it accepts,
// it returns exactly what decodeHeadersJSON returns.
func decodeHeadersPlain(raw []byte) ([]companiaevent.Header, bool) {
	p := plainScanner{b: raw}
	if !p.byte('[') {
		return nil, false
	}
	out := make([]companiaevent.Header, 0, 8)
	if p.byte(']') {
		return out, p.end()
	}
	for {
		h, ok := p.header()
		if !ok {
			return nil, false
		}
		out = append(out, h)
		if p.byte(',') {
			continue
		}
		if p.byte(']') && p.end() {
			return out, true
		}
		return nil, false
	}
}

// plainScanner reads the tokens of decodeHeadersPlain.
type plainScanner struct {
	b []byte
	i int
}

func (p *plainScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space, if it comes next.
func (p *plainScanner) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (p *plainScanner) end() bool {
	p.space()
	return p.i == len(p.b)
}

// str consumes a string without escapes and returns its content, which
// aliases the input.
func (p *plainScanner) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// header consumes {"key": k, "value": v} or {"key": k, "b64": v}, members
// in either order.
func (p *plainScanner) header() (companiaevent.Header, bool) {
	var (
		h          companiaevent.Header
		key, value []byte
		haveKey    bool
		b64        bool
		haveValue  bool
	)
	if !p.byte('{') {
		return h, false
	}
	for n := 0; n < 2; n++ {
		if n == 1 && !p.byte(',') {
			return h, false
		}
		name, ok := p.str()
		if !ok || !p.byte(':') {
			return h, false
		}
		s, ok := p.str()
		if !ok {
			return h, false
		}
		switch string(name) {
		case "key":
			if haveKey {
				return h, false
			}
			key, haveKey = s, true
		case "value", "b64":
			if haveValue {
				return h, false
			}
			value, haveValue, b64 = s, true, string(name) == "b64"
		default:
			return h, false
		}
	}
	if !p.byte('}') || !haveKey || !haveValue || len(key) == 0 {
		return h, false
	}
	h.Key = string(key)
	if !b64 {
		h.Value = bytes.Clone(value)
		return h, true
	}
	v := make([]byte, base64.StdEncoding.DecodedLen(len(value)))
	n, err := base64.StdEncoding.Decode(v, value)
	if err != nil {
		return h, false
	}
	h.Value = v[:n]
	return h, true
}

func textSafe(b []byte) bool {
	return utf8.Valid(b) && !strings.ContainsRune(string(b), 0)
}
