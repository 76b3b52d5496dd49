package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// The decoders must never panic, and must return either a request that
// survives its own canonical re-encoding or an error that maps to a 4xx.

var commonSeeds = []string{
	``, ` `, `null`, `[]`, `"x"`, `1`, `{`, `}`, `{}`, `{} {}`, `{}x`, `{"a":1}`, `{"a":1,"a":2}`,
	"{\"nombre\":\"\xff\"}", `{"nombre":"\ud800"}`, `{"nombre":"a\u0000b"}`, `{"nombre":{"x":[1,2,{"y":null}]}}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	`{"nombre":"` + strings.Repeat("ñ", 300) + `"}`,
}

func addSeeds(f *testing.F, specific ...string) {
	for _, s := range append(commonSeeds, specific...) {
		f.Add([]byte(s))
	}
}

func want4xx(t *testing.T, err error) {
	t.Helper()
	if p := problemFor(err); p.Status < 400 || p.Status > 499 {
		t.Fatalf("error %v maps to %d, want a 4xx", err, p.Status)
	}
}

func FuzzDecodeCrear(f *testing.F) {
	addSeeds(f,
		`{"nombre":"ACME","email":"a@b.co","identificacion":"1"}`,
		`{"id":"0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a11","nombre":"ACME","email":"a@b.co","identificacion":"1"}`,
		`{"id":null,"nombre":null,"email":null,"identificacion":null}`,
		`{"nombre":5,"email":true,"identificacion":[],"id":{}}`,
		`{"Nombre":"x"}`, `{"nombre":"a","nombre":"b"}`, "\t{\"email\" : \"x\"}\n",
	)
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

func FuzzDecodeIngestion(f *testing.F) {
	addSeeds(f,
		`{"compania":{"nombre":"ACME","email":"a@b.co","identificacion":"1"}}`,
		`{"compania":null}`, `{"compania":{}}`, `{"compania":"x"}`, `{"compania":[]}`,
		`{"compania":{"nombre":"a"},"x":1}`, `{"compania":{"x":1}}`, `{"compania":{"nombre":"a","nombre":"b"}}`,
		`{"compania":{"nombre":1}}`, `{"compania":{} }x`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeIngestion(body)
		if err != nil {
			want4xx(t, err)
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeIngestion(b)
		if err != nil || again != r {
			t.Fatalf("canonical form %s decodes to %+v, %v; want %+v", b, again, err, r)
		}
	})
}

func FuzzDecodeActualizar(f *testing.F) {
	addSeeds(f,
		`{"nombre":"ACME"}`, `{"email":"a@b.co"}`, `{"nombre":"A","email":"a@b.co"}`,
		`{"nombre":null}`, `{"email":null,"nombre":"x"}`, `{"nombre":1}`, `{"estado":"APROBADA"}`,
	)
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
	addSeeds(f, `{"motivo":"documentos incompletos"}`, `{"motivo":null}`, `{"motivo":1}`, `{"motivo":"a","x":1}`)
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
	addSeeds(f, ` {} `, `{"x":null}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := decodeEmpty(body); err != nil {
			want4xx(t, err)
		}
	})
}
