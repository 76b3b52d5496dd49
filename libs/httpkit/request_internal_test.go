package httpkit

import (
	"strings"
	"testing"
)

func TestParseTraceparent(t *testing.T) {
	t.Parallel()
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		name   string
		values []string
		want   string
	}{
		{"valid", []string{valid}, valid},
		{"sampled off", []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		{"future version with more fields", []string{"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"},
			"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"absent", nil, ""},
		{"twice", []string{valid, valid}, ""},
		{"version 00 too long", []string{valid + "-x"}, ""},
		{"future version, no dash after flags", []string{"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"}, ""},
		{"version ff", []string{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, ""},
		{"upper case", []string{strings.ToUpper(valid)}, ""},
		{"zero trace id", []string{"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, ""},
		{"zero parent id", []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}, ""},
		{"version 00 with reserved flags", []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-10"}, ""},
		{"short", []string{valid[:54]}, ""},
		{"bad separator", []string{strings.Replace(valid, "-", "_", 1)}, ""},
		{"non-hex", []string{"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"}, ""},
		{"garbage", []string{"hello"}, ""},
	}
	for _, tc := range cases {
		got, ok := parseTraceparent(tc.values)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: parseTraceparent(%q) = %q, %v; want %q", tc.name, tc.values, got, ok, tc.want)
		}
	}
}
