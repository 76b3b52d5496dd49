package outbox_test

import (
	"reflect"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

func TestHeadersRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []companiaevent.Header
		json    string
	}{
		{"none", nil, `[]`},
		{"text", []companiaevent.Header{{Key: "ce_id", Value: []byte("abc")}, {Key: "a", Value: []byte("ñ")}},
			`[{"key":"ce_id","value":"abc"},{"key":"a","value":"ñ"}]`},
		{"empty value", []companiaevent.Header{{Key: "k", Value: []byte{}}}, `[{"key":"k","value":""}]`},
		{"binary", []companiaevent.Header{{Key: "bin", Value: []byte{0xff, 0x00, 0x01}}}, `[{"key":"bin","b64":"/wAB"}]`},
		{"nul in text", []companiaevent.Header{{Key: "nul", Value: []byte("a\x00b")}}, `[{"key":"nul","b64":"YQBi"}]`},
		{"order kept, repeated keys", []companiaevent.Header{{Key: "b", Value: []byte("1")}, {Key: "a", Value: []byte("2")}, {Key: "b", Value: []byte("3")}},
			`[{"key":"b","value":"1"},{"key":"a","value":"2"},{"key":"b","value":"3"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := outbox.EncodeHeaders(tt.headers)
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tt.json {
				t.Errorf("EncodeHeaders = %s, want %s", raw, tt.json)
			}
			got, err := outbox.DecodeHeaders(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.headers
			if want == nil {
				want = []companiaevent.Header{}
			}
			for i := range want {
				if want[i].Value == nil {
					want[i].Value = []byte{}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("DecodeHeaders = %q, want %q", got, want)
			}
		})
	}
}

func TestEncodeHeadersRejectsBadKeys(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "a\x00b", "\xff"} {
		if _, err := outbox.EncodeHeaders([]companiaevent.Header{{Key: key, Value: []byte("v")}}); err == nil {
			t.Errorf("EncodeHeaders with key %q succeeded", key)
		}
	}
}

func TestDecodeHeadersErrors(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		``,
		`{}`,
		`null`,
		`[] x`,
		`[]]`,
		`[{"key":"k"}]`,
		`[{"value":"v"}]`,
		`[{"key":"k","value":"v","b64":"dg=="}]`,
		`[{"key":"k","b64":"not base64!"}]`,
		`[{"key":"k","value":"v","extra":1}]`,
		`[{"key":"k","value":1}]`,
	} {
		if got, err := outbox.DecodeHeaders([]byte(raw)); err == nil {
			t.Errorf("DecodeHeaders(%s) = %q, want an error", raw, got)
		}
	}
}
