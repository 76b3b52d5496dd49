package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/propalpes/companias/libs/httpkit"
)

// The decoders must never panic, and must return either a request that
// survives its own canonical re-encoding or an error that is a 400 (not a
// JSON object of the route's shape) or a 422 (a required member is null),
// with a problem code and a detail.
// The seeds are in testdata/fuzz/<FuzzName>/: valid bodies, the shapes every
// body decoder shares (empty, not an object, trailing data, duplicate and
// unknown members, invalid UTF-8, lone surrogates, NUL, 300 "ñ"; the nesting
// depth limit of encoding/json only in FuzzDecodeCrear) and each route's own
// mistyped, null and extra members.

func want4xx(t *testing.T, err error) {
	t.Helper()
	p := httpkit.Problem(err)
	if p.Status != http.StatusBadRequest && p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("error %v maps to %d, want 400 or 422", err, p.Status)
	}
	if p.Code == "" || p.Detail == "" {
		t.Fatalf("error %v maps to a problem without code or detail: %+v", err, p)
	}
}

func FuzzDecodeCrear(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeCrear(body)
		if err != nil {
			want4xx(t, err)
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeCrear(b)
		if err != nil || again != r {
			t.Fatalf("canonical form %s decodes to %+v, %v; want %+v", b, again, err, r)
		}
		h1, err1 := requestHash(r)
		h2, err2 := requestHash(again)
		if err1 != nil || err2 != nil || string(h1) != string(h2) {
			t.Fatalf("request hash is not stable")
		}
	})
}

func FuzzDecodeLegacy(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeLegacy(body)
		if err != nil {
			want4xx(t, err)
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeLegacy(b)
		if err != nil || again != r {
			t.Fatalf("canonical form %s decodes to %+v, %v; want %+v", b, again, err, r)
		}
	})
}

func FuzzDecodeActualizar(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeActualizar(body)
		if err != nil {
			want4xx(t, err)
			return
		}
		canon := map[string]string{}
		if r.Nombre != nil {
			canon["nombre"] = *r.Nombre
		}
		if r.Email != nil {
			canon["email"] = *r.Email
		}
		b, err := json.Marshal(canon)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeActualizar(b)
		if err != nil || !samePtr(again.Nombre, r.Nombre) || !samePtr(again.Email, r.Email) {
			t.Fatalf("canonical form %s decodes to %+v, %v; want %+v", b, again, err, r)
		}
	})
}

func samePtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func FuzzDecodeRechazar(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRechazar(body)
		if err != nil {
			want4xx(t, err)
			return
		}
		b, err := json.Marshal(map[string]string{"motivo": r.Motivo})
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeRechazar(b)
		if err != nil || again != r {
			t.Fatalf("canonical form %s decodes to %+v, %v; want %+v", b, again, err, r)
		}
	})
}

func FuzzDecodeEmpty(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := decodeEmpty(body); err != nil {
			want4xx(t, err)
		}
	})
}
