package postgres_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

// headerSeeds are inputs of both readers of DecodeHeaders: the plain shapes
// the fast reader takes, and shapes it must leave to encoding/json.
var headerSeeds = []string{
	`[]`, ` [ ] `, "[\n]\t",
	`[{"key":"ce_id","value":"abc"},{"key":"a","value":"ñ"}]`,
	`[{"key": "ce_id", "value": "abc"}, {"b64": "/wAB", "key": "bin"}]`, // as jsonb prints it
	`[{"value":"v","key":"k"}]`,
	`[{"key":"k","value":""}]`,
	`[{"key":"k","b64":""}]`,
	`[{"key":"k","value":"a\"b"}]`,
	`[{"key":"k","value":"\u00f1"}]`,
	`[{"key":"k","value":"tab	in"}]`,
	"[{\"key\":\"k\",\"value\":\"\xff\"}]",
	`[{"KEY":"k","Value":"v"}]`,
	`[{"key":"k","key":"l","value":"v"}]`,
	`[{"key":"k","value":"v","b64":"dg=="}]`,
	`[{"key":"k","value":"v","value":"w"}]`,
	`[{"key":"","value":"v"}]`,
	`[{"key":"k","b64":"not base64!"}]`,
	`[{"key":"k","b64":"dg"}]`,
	`[{"key":"k","value":null}]`,
	`[{"key":"k","value":1}]`,
	`[{"key":"k"}]`,
	`[{"key":"k","value":"v","extra":1}]`,
	`[{"key":"k","value":"v"},]`,
	`[{"key":"k","value":"v"}] x`,
	`[] []`, `[`, `]`, ``, `null`, `{}`, `[1]`, `[[]]`,
}

// Whatever the fast reader accepts, encoding/json reads the same way; and
// DecodeHeaders agrees with encoding/json on every input.
func FuzzDecodeHeadersReadersAgree(f *testing.F) {
	for _, s := range headerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := postgres.DecodeHeadersJSON(raw)
		if got, ok := postgres.DecodeHeadersPlain(raw); ok {
			if wantErr != nil {
				t.Fatalf("plain reader accepted %q, which encoding/json rejects: %v", raw, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("plain reader read %q as %q, encoding/json as %q", raw, got, want)
			}
		}
		got, err := postgres.DecodeHeaders(raw)
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeHeaders(%q) = %q, %v; encoding/json: %q, %v", raw, got, err, want, wantErr)
		}
	})
}

// The plain reader takes the headers the repository writes, as PostgreSQL's
// jsonb gives them back to the relay.
func TestIntegrationPlainReaderTakesStoredHeaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := open(t, pgtest.NewDatabase(t))
	hs := []companiaevent.Header{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte("01a21bfe-26fb-73f7-aaaa-6938c0030bd8")},
		{Key: "ce_time", Value: []byte("2026-11-27T07:52:50.683245Z")},
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "bin", Value: []byte{0xff, 0x00, 0x01}},
		{Key: "empty", Value: []byte{}},
		{Key: "ñandú", Value: []byte("señal")},
	}
	enc, err := postgres.EncodeHeaders(hs)
	if err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := pool.QueryRow(ctx, "SELECT $1::jsonb", enc).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	got, ok := postgres.DecodeHeadersPlain(stored)
	if !ok {
		t.Fatalf("plain reader refused the stored headers %s", stored)
	}
	if !reflect.DeepEqual(got, hs) {
		t.Fatalf("plain reader read %s as %q, want %q", stored, got, hs)
	}
}

// Whatever the direct writer writes, encoding/json writes byte for byte;
// and EncodeHeaders agrees with encoding/json on every input.
func FuzzEncodeHeadersWritersAgree(f *testing.F) {
	for _, s := range [][2]string{
		{"ce_id", "01a21bfe-26fb-73f7-aaaa-6938c0030bd8"}, {"content-type", "application/json"}, {"k", ""},
		{"", "v"}, {"k", "a\"b"}, {"k", "a\\b"}, {"k", "<&>"}, {"k", "ñ"}, {"k", "\x00"}, {"k", "\xff"}, {"k", "\t"}, {"k\x7f", "v"},
	} {
		f.Add(s[0], []byte(s[1]), "second", []byte("value"))
	}
	f.Fuzz(func(t *testing.T, k1 string, v1 []byte, k2 string, v2 []byte) {
		for _, hs := range [][]companiaevent.Header{nil, {{Key: k1, Value: v1}}, {{Key: k1, Value: v1}, {Key: k2, Value: v2}}} {
			want, wantErr := postgres.EncodeHeadersJSON(hs)
			if got, ok := postgres.EncodeHeadersPlain(hs); ok && (wantErr != nil || string(got) != string(want)) {
				t.Fatalf("direct writer wrote %q for %q; encoding/json: %q, %v", got, hs, want, wantErr)
			}
			got, err := postgres.EncodeHeaders(hs)
			if (err == nil) != (wantErr == nil) || string(got) != string(want) {
				t.Fatalf("EncodeHeaders(%q) = %q, %v; encoding/json: %q, %v", hs, got, err, want, wantErr)
			}
		}
	})
}
