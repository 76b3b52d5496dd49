package httpapi

import (
	"errors"
	"net/http"
	"testing"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

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
			status = httpkit.Problem(err).Status
		}
		if got != tc.want || status != tc.status {
			t.Errorf("If-Match %q = %d, status %d (%v); want %d, status %d", tc.header, got, status, err, tc.want, tc.status)
		}
		if status == 412 && !errors.Is(err, compania.ErrVersionMismatch) {
			t.Errorf("If-Match %q: 412 is not compania.ErrVersionMismatch: %v", tc.header, err)
		}
	}
}

func TestValidID(t *testing.T) {
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
		if got := compania.ValidID(s); got != want {
			t.Errorf("compania.ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}
