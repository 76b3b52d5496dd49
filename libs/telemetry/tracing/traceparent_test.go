package tracing_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/telemetry/tracing"
)

func TestParseTraceparent(t *testing.T) {
	t.Parallel()
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		name, in, want string
	}{
		{"valid", valid, valid},
		{"sampled off", valid[:53] + "00", valid[:53] + "00"},
		{"future version with more fields", future + "-extra", future},
		{"future version at the length bound", future + "-" + strings.Repeat("x", tracing.MaxTraceparentLen-56), future},
		{"future version over the length bound", future + "-" + strings.Repeat("x", tracing.MaxTraceparentLen-55), ""},
		{"one megabyte", future + "-" + strings.Repeat("a", 1_048_000-56), ""},
		{"one megabyte of garbage", strings.Repeat("0", 1_048_000), ""},
		{"empty", "", ""},
		{"version 00 too long", valid + "-x", ""},
		{"future version, no dash after flags", future + "x", ""},
		{"version ff", "ff" + valid[2:], ""},
		{"upper case", strings.ToUpper(valid), ""},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ""},
		{"version 00 with reserved flags", valid[:53] + "10", ""},
		{"short", valid[:54], ""},
		{"bad separator", strings.Replace(valid, "-", "_", 1), ""},
		{"non-hex", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", ""},
		{"garbage", "hello", ""},
	}
	for _, tc := range cases {
		got, ok := tracing.ParseTraceparent(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: ParseTraceparent(%d bytes) = %q, %v; want %q", tc.name, len(tc.in), got, ok, tc.want)
		}
		// SpanContext follows the same rule.
		sc, ok := tracing.SpanContext(tc.in)
		if ok != (tc.want != "") || ok && tracing.Traceparent(sc)[3:52] != tc.want[3:52] {
			t.Errorf("%s: SpanContext(%d bytes) = %v, %v; want it to read %q", tc.name, len(tc.in), sc, ok, tc.want)
		}
	}
}
