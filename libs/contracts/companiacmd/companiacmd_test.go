package companiacmd_test

import (
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

func FuzzDecodeCrearCompania(f *testing.F) {
	f.Add(`{"id":"c","data":{"nombre":"A","email":"a@b.co","identificacion":"9"}}`)
	f.Add(`{"id":""}`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := companiacmd.DecodeCrearCompania([]byte(s))
		if err == nil && (c.ID == "" || len(c.ID) > companiacmd.MaxIDLength) {
			t.Fatalf("accepted %q as %+v", s, c)
		}
		if err != nil && !errors.Is(err, companiacmd.ErrMalformed) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
