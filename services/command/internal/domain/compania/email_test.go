package compania_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// An email is accepted only if the event contract's "format": "email"
// accepts it too: the reader asserts that format, and an event it refuses
// is dead-lettered, so the company would never reach the read model.
func TestEmailIsTheContractsFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		email string
		ok    bool
	}{
		{"info@acme.co", true},
		{"a.b+c_d@sub-1.acme.co", true},
		{strings.Repeat("a", 64) + "@acme.co", true},
		{strings.Repeat("a", 65) + "@acme.co", false},
		{"josé@acme.co", false},
		{"info@acmé.co", false},
		{"info@ac_me.co", false},
		{"info@-acme.co", false},
		{"info@acme-.co", false},
		{"info@" + strings.Repeat("b", 64) + ".co", false},
		{"not-an-email", false},
	}
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			t.Parallel()
			d := compania.Datos{Nombre: "ACME", Email: tt.email, Identificacion: "900123456-7"}
			_, err := compania.New(id, d, t0)
			if got := err == nil; got != tt.ok {
				t.Errorf("New with email %q: err = %v, want accepted %v", tt.email, err, tt.ok)
			}
		})
	}
}
