package compania_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// invisible lists characters the free-text fields refuse: format
// characters (Cf), controls (Cc) and line/paragraph separators.
var invisible = []rune{
	0x202A, 0x202B, 0x202C, 0x202D, 0x202E, // bidi embeddings and overrides
	0x2066, 0x2067, 0x2068, 0x2069, // bidi isolates
	0x200E, 0x200F, 0x061C, // bidi marks
	0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, // zero-width
	0x00AD, 0xE0041, // soft hyphen, tag letter A
	0x0000, 0x0007, 0x001B, 0x007F, 0x0085, 0x009B, // C0, DEL, C1
	0x2028, 0x2029, // line and paragraph separators
}

// fieldErr returns the only field error of err; it fails unless err is a
// validation error naming exactly field.
func fieldErr(t *testing.T, err error, field string) apperr.FieldError {
	t.Helper()
	if !errors.Is(err, compania.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	e, _ := apperr.As(err)
	if len(e.Fields) != 1 || e.Fields[0].Field != field {
		t.Fatalf("fields = %+v, want only %s", e.Fields, field)
	}
	return e.Fields[0]
}

// TestTextRefusesInvisibleCharacters checks that nombre, email and motivo
// refuse each invisible character, wherever it is, with a field error that
// names the field and does not quote the value. The ones that are also
// white space (U+0085, U+2028, U+2029) are trimmed at the ends like any
// white space, so they are refused only inside.
func TestTextRefusesInvisibleCharacters(t *testing.T) {
	t.Parallel()
	for _, r := range invisible {
		for _, at := range []string{"start", "middle", "end"} {
			if at != "middle" && unicode.IsSpace(r) {
				continue
			}
			t.Run(fmt.Sprintf("U+%04X at %s", r, at), func(t *testing.T) {
				t.Parallel()
				with := func(a, b string) string {
					switch at {
					case "start":
						return string(r) + a + b
					case "end":
						return a + b + string(r)
					}
					return a + string(r) + b
				}
				checks := []struct {
					field, value string
					run          func(string) error
				}{
					{"nombre", with("Secreta", "Holding"), func(v string) error {
						_, err := compania.New(id, compania.Datos{Nombre: v, Email: "a@b.co", Identificacion: "1"}, t0)
						return err
					}},
					{"email", with("secreta.holding", "@b.co"), func(v string) error {
						_, err := compania.New(id, compania.Datos{Nombre: "ACME", Email: v, Identificacion: "1"}, t0)
						return err
					}},
					{"nombre", with("Secreta", "Holding"), func(v string) error {
						return mustNew(t).Actualizar(compania.Cambios{Nombre: &v}, t0)
					}},
					{"email", with("secreta.holding", "@b.co"), func(v string) error {
						return mustNew(t).Actualizar(compania.Cambios{Email: &v}, t0)
					}},
					{"motivo", with("Secreta", "Holding"), func(v string) error {
						return mustNew(t).Rechazar(v, t0)
					}},
				}
				for _, c := range checks {
					f := fieldErr(t, c.run(c.value), c.field)
					if strings.Contains(f.Message, "Secreta") || strings.Contains(f.Message, "secreta") ||
						strings.ContainsRune(f.Message, r) || !isPrintableASCII(f.Message) {
						t.Errorf("%s: message %q quotes the value", c.field, f.Message)
					}
				}
			})
		}
	}
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// TestInvisibleListIsFormatOrControl keeps the table above honest: every
// character of it is in a class the rule names.
func TestInvisibleListIsFormatOrControl(t *testing.T) {
	t.Parallel()
	for _, r := range invisible {
		if !unicode.In(r, unicode.Cf, unicode.Cc, unicode.Zl, unicode.Zp) {
			t.Errorf("U+%04X is not Cf, Cc, Zl or Zp", r)
		}
	}
}

// TestTextIsNFC checks that the free-text fields are stored in NFC, so that
// canonically equivalent spellings are one value: a decomposed nombre is
// stored composed, and setting a company's nombre in another spelling of
// the same text changes nothing.
func TestTextIsNFC(t *testing.T) {
	t.Parallel()
	const composed = "Compa\u00f1\u00eda \u00c1ndes"      // "Compañía Ándes", precomposed
	const decomposed = "Compan\u0303i\u0301a A\u0301ndes" // the same, base letters + combining marks
	const email = "manana@b.co"                           // the contract's format email is ASCII only
	if composed == decomposed || norm.NFC.String(decomposed) != composed {
		t.Fatal("the fixtures are not two spellings of one text")
	}
	c, err := compania.New(id, compania.Datos{Nombre: " " + decomposed + " ", Email: email, Identificacion: "1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Snapshot()
	if s.Nombre != composed || s.Email != email {
		t.Errorf("nombre %+q, email %+q; want %+q, %+q", s.Nombre, s.Email, composed, email)
	}
	ev := c.Events()
	if got := ev[0].State().Nombre; got != composed {
		t.Errorf("the event carries nombre %+q, want %+q", got, composed)
	}

	c.ClearEvents()
	nfd := decomposed
	if err := c.Actualizar(compania.Cambios{Nombre: &nfd}, t0); err != nil {
		t.Fatal(err)
	}
	if c.Version() != 1 || len(c.Events()) != 0 {
		t.Errorf("another spelling of the same nombre made version %d, events %v", c.Version(), c.Events())
	}

	if err := c.Rechazar("sin RUT va\u0301lido", t0); err != nil {
		t.Fatal(err)
	}
	if m := c.Snapshot().MotivoRechazo; m != "sin RUT v\u00e1lido" {
		t.Errorf("motivo %+q, want NFC", m)
	}
}

// TestTextLengthCountsNFC checks that the limit counts characters as
// stored: 200 decomposed "ñ" (400 code points) are 200 characters.
func TestTextLengthCountsNFC(t *testing.T) {
	t.Parallel()
	nombre := strings.Repeat("n\u0303", compania.MaxNombre)
	c, err := compania.New(id, compania.Datos{Nombre: nombre, Email: "a@b.co", Identificacion: "1"}, t0)
	if err != nil {
		t.Fatalf("200 decomposed characters refused: %v", err)
	}
	if n := utf8.RuneCountInString(c.Snapshot().Nombre); n != compania.MaxNombre {
		t.Errorf("stored %d characters, want %d", n, compania.MaxNombre)
	}
	_, err = compania.New(id, compania.Datos{Nombre: nombre + "n\u0303", Email: "a@b.co", Identificacion: "1"}, t0)
	fieldErr(t, err, "nombre")
}

// FuzzTextFields runs nombre and motivo through the domain. An accepted
// value is stored in NFC, trimmed, 1 to the limit characters long, with no
// control, separator or format character, and every canonically
// equivalent spelling of it (its NFD) is accepted as the same value. A
// refused one is a field error naming the field with one of the rule's
// fixed messages, so a message never quotes the value.
// Seeds are in testdata/fuzz/FuzzTextFields/.
func FuzzTextFields(f *testing.F) {
	messages := map[string][]string{
		"nombre": textMessages("nombre", compania.MaxNombre),
		"motivo": textMessages("motivo", compania.MaxMotivo),
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, field := range []string{"nombre", "motivo"} {
			limit := compania.MaxNombre
			if field == "motivo" {
				limit = compania.MaxMotivo
			}
			got, err := textThrough(field, v)
			if err != nil {
				if fe := fieldErr(t, err, field); !slices.Contains(messages[field], fe.Message) {
					t.Fatalf("%s %+q: message %q is not one of the rule's", field, v, fe.Message)
				}
				continue
			}
			n := utf8.RuneCountInString(got)
			if !norm.NFC.IsNormalString(got) || got != strings.TrimSpace(got) || n < 1 || n > limit {
				t.Fatalf("%s %+q stored as %+q (%d characters)", field, v, got, n)
			}
			for _, r := range got {
				if unicode.In(r, unicode.Cf, unicode.Cc, unicode.Zl, unicode.Zp) {
					t.Fatalf("%s %+q stored with U+%04X", field, v, r)
				}
			}
			if again, err := textThrough(field, norm.NFD.String(v)); err != nil || again != got {
				t.Fatalf("%s: the NFD of %+q is %+q, %v; want %+q", field, v, again, err, got)
			}
		}
	})
}

// textThrough stores v as field (nombre through New, motivo through
// Rechazar) and returns what the company holds.
func textThrough(field, v string) (string, error) {
	if field == "nombre" {
		c, err := compania.New(id, compania.Datos{Nombre: v, Email: "a@b.co", Identificacion: "1"}, t0)
		if err != nil {
			return "", err
		}
		return c.Snapshot().Nombre, nil
	}
	c, err := compania.New(id, datos(), t0)
	if err != nil {
		return "", err
	}
	if err := c.Rechazar(v, t0); err != nil {
		return "", err
	}
	return c.Snapshot().MotivoRechazo, nil
}

func textMessages(what string, limit int) []string {
	return []string{
		"must be valid UTF-8",
		what + " is required",
		fmt.Sprintf("must be at most %d characters", limit),
		"must not contain control characters",
		"must not contain line or paragraph separators",
		"must not contain invisible format characters (bidi controls, zero-width characters)",
	}
}
