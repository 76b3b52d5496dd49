package outbox_test

import (
	"bytes"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

// headerSamples are outbox.headers values: as json.Marshal writes them, as
// PostgreSQL prints jsonb, and the forms the relay's own parser leaves to
// outbox.DecodeHeaders (escapes, other members, errors).
var headerSamples = []string{
	`[]`,
	` [ ] `,
	`[{"key":"ce_id","value":"abc"},{"key":"a","value":"ñ"}]`,
	`[{"key": "ce_id", "value": "abc"}, {"key": "traceparent", "value": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}]`,
	`[{"value": "v", "key": "k"}]`,
	`[{"b64": "/wAB", "key": "bin"}]`,
	`[{"key":"k","value":""}]`,
	`[{"key":"k","value":"a\"b\\c\u00e9\n"}]`,
	`[{"key":"k\u0041","value":"v"}]`,
	`[{"KEY":"k","value":"v"}]`,
	`[{"key":"k","key":"j","value":"v"}]`,
	`[{"key":"k","value":"v","value":"w"}]`,
	``,
	`{}`,
	`null`,
	`[] x`,
	`[]]`,
	`[{"key":"k"}]`,
	`[{"value":"v"}]`,
	`[{"key":"","value":"v"}]`,
	`[{"key":"k","value":"v","b64":"dg=="}]`,
	`[{"key":"k","b64":"not base64!"}]`,
	`[{"key":"k","value":"v","extra":1}]`,
	`[{"key":"k","value":1}]`,
	`[{"key":"k","value":null}]`,
	`[{"key":"k","value":"v"},]`,
	`[{"key":"k","value":"v"}`,
	"[{\"key\":\"k\",\"value\":\"\xff\"}]",
}

// want decodes raw the reference way, outbox.DecodeHeaders.
func wantHeaders(raw []byte) ([]kafka.Header, error) {
	hs, err := outbox.DecodeHeaders(raw)
	if err != nil {
		return nil, err
	}
	out := make([]kafka.Header, len(hs))
	for i, h := range hs {
		out[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	return out, nil
}

func checkHeaders(t *testing.T, raw []byte) {
	t.Helper()
	want, wantErr := wantHeaders(raw)
	got, err := outbox.DecodeRecordHeaders(bytes.Clone(raw))
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeHeaders(%q) error = %v, outbox.DecodeHeaders error = %v", raw, err, wantErr)
	}
	if len(got) != len(want) {
		t.Fatalf("decodeHeaders(%q) = %q, want %q", raw, got, want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) || (got[i].Value == nil) != (want[i].Value == nil) {
			t.Fatalf("decodeHeaders(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestDecodeRecordHeadersAgreesWithDecodeHeaders(t *testing.T) {
	t.Parallel()
	for _, raw := range headerSamples {
		checkHeaders(t, []byte(raw))
	}
}

func FuzzDecodeHeaders(f *testing.F) {
	for _, raw := range headerSamples {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkHeaders(t, raw) })
}

func BenchmarkDecodeHeaders(b *testing.B) {
	raw := []byte(`[{"key": "ce_specversion", "value": "1.0"}, {"key": "ce_id", "value": "0193a5f0-7d3e-7c1a-9b2e-0a1b2c3d4e5f"}, ` +
		`{"key": "ce_source", "value": "/companias"}, {"key": "ce_type", "value": "co.propalpes.companias.CompaniaCreada.v1"}, ` +
		`{"key": "traceparent", "value": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}]`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := outbox.DecodeRecordHeaders(raw); err != nil {
			b.Fatal(err)
		}
	}
}
