package outbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// Channel is the LISTEN/NOTIFY channel of the outbox. After a write
// that added outbox rows has committed, and never after a rollback,
// the writer's Repository (internal/adapters/postgres) sends a pg_notify on Channel with an empty payload, in a
// transaction of its own, so a relay that LISTENs on it is woken once the
// rows are visible. Writes that commit close together share one
// notification (at most one per Repository per notify interval, 1ms by
// default), and a Repository built WithWaker sends none while its own
// process's relay leads. Notifications are a wake-up hint only: one is lost if the writer
// dies right after its commit or while the relay's LISTEN connection is down,
// so the relay must still poll now and then, and must drain all it finds
// when woken.
const Channel = "companias_outbox"

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
func EncodeHeaders(hs []companiaevent.Header) ([]byte, error) {
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
func DecodeHeaders(raw []byte) ([]companiaevent.Header, error) {
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

func textSafe(b []byte) bool {
	return utf8.Valid(b) && !strings.ContainsRune(string(b), 0)
}
