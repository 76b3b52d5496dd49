package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/propalpes/companias/services/command/internal/domain/compania"
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

func TestExpectedVersion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		header []string
		want   int64
		status int // 0: no error
	}{
		{nil, 0, 0},
		{[]string{`*`}, 0, 0},
		{[]string{`"3"`}, 3, 0},
		{[]string{` "3" `}, 3, 0},
		{[]string{`"3", "3"`}, 3, 0},
		{[]string{`W/"1", "3"`}, 3, 0},
		{[]string{`"x", "3"`}, 3, 0},
		{[]string{`W/"1"`, `"3"`}, 3, 0}, // several header lines form one list
		{[]string{`, "3",`}, 3, 0},       // empty elements are ignored
		{[]string{`"9223372036854775807"`}, 9223372036854775807, 0},
		{[]string{`W/"3"`}, 0, 412},
		{[]string{`"0"`}, 0, 412},
		{[]string{`"03"`}, 0, 412},
		{[]string{`"-3"`}, 0, 412},
		{[]string{`"9223372036854775808"`}, 0, 412},
		{[]string{`""`}, 0, 412},
		{[]string{`"a,b"`}, 0, 412}, // a comma is a valid etagc
		{[]string{`"3", "4"`}, 0, 400},
		{[]string{`*, "3"`}, 0, 400},
		{[]string{``}, 0, 400},
		{[]string{`3`}, 0, 400},
		{[]string{`"3`}, 0, 400},
		{[]string{`"3" "4"`}, 0, 400},
		{[]string{`w/"3"`}, 0, 400},
		{[]string{"\"a\x7fb\""}, 0, 400},
		{[]string{`"a"b"`}, 0, 400},
	}
	for _, tc := range cases {
		h := http.Header{}
		for _, v := range tc.header {
			h.Add("If-Match", v)
		}
		got, err := expectedVersion(h)
		status := 0
		if err != nil {
			status = problemFor(err).Status
		}
		if got != tc.want || status != tc.status {
			t.Errorf("If-Match %q = %d, status %d (%v); want %d, status %d", tc.header, got, status, err, tc.want, tc.status)
		}
		if status == 412 && !errors.Is(err, compania.ErrVersion) {
			t.Errorf("If-Match %q: 412 is not compania.ErrVersion: %v", tc.header, err)
		}
	}
}

func TestIsUUID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a11":   true,
		"0B8E2F64-6C1E-4F57-9A53-1D5F9C0E7A11":   true,
		"0b8e2f646c1e4f579a531d5f9c0e7a11":       false,
		"{0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a11}": false,
		"0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a1g":   false,
		"0b8e2f64_6c1e-4f57-9a53-1d5f9c0e7a11":   false,
		"":                                       false,
	} {
		if got := isUUID(s); got != want {
			t.Errorf("isUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidRequestID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"abc-123":                true,
		strings.Repeat("x", 128): true,
		strings.Repeat("x", 129): false,
		"":                       false,
		"a b":                    false,
		"ñ":                      false,
		"req\n":                  false,
		"01HZX3~:/+=.":           true,
	} {
		if got := validRequestID(s); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", s, got, want)
		}
	}
}
