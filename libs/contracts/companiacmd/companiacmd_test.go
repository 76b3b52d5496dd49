package companiacmd_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
)

func TestDecodeCrearCompania(t *testing.T) {
	t.Parallel()
	c, err := companiacmd.DecodeCrearCompania([]byte(`{"id":" cmd-1 ","data":{"nombre":"ACME","email":"a@b.co","identificacion":"9"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "cmd-1" || c.Data.Nombre != "ACME" || c.Data.Email != "a@b.co" || c.Data.Identificacion != "9" {
		t.Errorf("got %+v", c)
	}
	for _, bad := range []string{
		``, `nope`, `[]`, `{"data":{}}`, `{"id":"  ","data":{}}`, `{"id":"x","data":{},"extra":1}`,
		`{"id":"x","data":{"nombre":"a","rut":"1"}}`, `{"id":"x","data":{}}{}`, `{"id":1}`,
		`{"id":"` + strings.Repeat("x", 201) + `"}`,
	} {
		if _, err := companiacmd.DecodeCrearCompania([]byte(bad)); !errors.Is(err, companiacmd.ErrMalformed) {
			t.Errorf("DecodeCrearCompania(%q) err = %v, want ErrMalformed", bad, err)
		}
	}
}

// FuzzDecodeCrearCompania decodes arbitrary record values. A refusal wraps
// ErrMalformed; an accepted command has a trimmed id of 1 to MaxIDLength
// bytes and its JSON encoding decodes to the same command. Seeds are in
// testdata/fuzz/FuzzDecodeCrearCompania/.
func FuzzDecodeCrearCompania(f *testing.F) {
	f.Fuzz(func(t *testing.T, value []byte) {
		c, err := companiacmd.DecodeCrearCompania(value)
		if err != nil {
			if !errors.Is(err, companiacmd.ErrMalformed) || c != (companiacmd.CrearCompania{}) {
				t.Fatalf("DecodeCrearCompania(%q) = %+v, %v; want only an ErrMalformed", value, c, err)
			}
			return
		}
		if c.ID == "" || len(c.ID) > companiacmd.MaxIDLength || c.ID != strings.TrimSpace(c.ID) {
			t.Fatalf("accepted %q as %+v", value, c)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := companiacmd.DecodeCrearCompania(b); err != nil || again != c {
			t.Fatalf("canonical form %s decodes to %+v, %v; want %+v", b, again, err, c)
		}
	})
}
