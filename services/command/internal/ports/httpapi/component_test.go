package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/httpkit/httpkittest"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/app"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// The component tests run the real router over a real listener against the
// in-memory repository; integration_test.go runs the main flows again against
// PostgreSQL.

func crearBody(nombre, identificacion string) string {
	return fmt.Sprintf(`{"nombre":%q,"email":"info@acme.co","identificacion":%q}`, nombre, identificacion)
}

// create registers a valid company and returns the 201 answer.
func (e *env) create(t *testing.T, nombre string) resp {
	t.Helper()
	r := e.do(req{method: "POST", path: "/v1/companias", body: crearBody(nombre, "900123456")})
	want(t, r, http.StatusCreated)
	return r
}

func TestNewRequiresDependencies(t *testing.T) {
	t.Parallel()
	_, err := httpapi.New(httpapi.Deps{}, httpapi.Options{})
	if err == nil {
		t.Fatal("New(Deps{}, Options{}) = nil error, want the missing dependencies")
	}
	for _, w := range []string{"command handler", "Ready", "Logger"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
}

func TestCrearCompania(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	r := e.do(req{method: "POST", path: "/v1/companias",
		body: `{"nombre":"  ACME SAS ","email":"info@acme.co","identificacion":"900123456"}`})
	want(t, r, http.StatusCreated)
	id := r.str("id")
	if !isCanonicalUUID(id) {
		t.Fatalf("id = %q, want a generated UUID", id)
	}
	if got := r.header.Get("Location"); got != "/v1/companias/"+id {
		t.Errorf("Location = %q", got)
	}
	if got := r.header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag = %q, want \"1\"", got)
	}
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Error("a first creation is marked Idempotent-Replayed")
	}
	for k, v := range map[string]any{"nombre": "ACME SAS", "email": "info@acme.co", "identificacion": "900123456",
		"estado": "PENDIENTE", "motivo_rechazo": nil, "version": float64(1)} {
		if got, ok := r.json[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, k := range []string{"fecha_creacion", "fecha_actualizacion"} {
		ts, err := time.Parse(time.RFC3339Nano, r.str(k))
		if err != nil || !strings.HasSuffix(r.str(k), "Z") || ts.IsZero() {
			t.Errorf("%s = %q, want RFC 3339 UTC", k, r.str(k))
		}
	}
}

func TestCrearCompaniaClientID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	id := newUUID()
	r := e.do(req{method: "POST", path: "/v1/companias",
		body: fmt.Sprintf(`{"id":%q,"nombre":"ACME","email":"a@acme.co","identificacion":"1"}`, strings.ToUpper(id))})
	want(t, r, http.StatusCreated)
	if r.str("id") != id || r.header.Get("Location") != "/v1/companias/"+id {
		t.Fatalf("id = %q, Location = %q, want the client's id %s in lower case", r.str("id"), r.header.Get("Location"), id)
	}
	again := e.do(req{method: "POST", path: "/v1/companias",
		body: fmt.Sprintf(`{"id":%q,"nombre":"Otra","email":"a@acme.co","identificacion":"2"}`, id)})
	wantProblem(t, again, http.StatusConflict, "compania_id_en_uso")
}

func TestCrearCompaniaDuplicada(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	e.create(t, "ACME")
	r := e.do(req{method: "POST", path: "/v1/companias", body: crearBody("acme", "900123456")})
	wantProblem(t, r, http.StatusConflict, "compania_duplicada")
}

func TestCrearCompaniaInvalidFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	r := e.do(req{method: "POST", path: "/v1/companias",
		body: `{"id":"nope","nombre":"   ","email":"not an email","identificacion":"9001 23"}`})
	wantProblem(t, r, http.StatusUnprocessableEntity, "validation")
	got := r.fields()
	for _, f := range []string{"/id", "/nombre", "/email", "/identificacion"} {
		if got[f] == "" {
			t.Errorf("field %s not listed in errors: %v", f, got)
		}
	}
	// Absent and null members are reported as required, not as malformed.
	r = e.do(req{method: "POST", path: "/v1/companias", body: `{"nombre":null}`})
	wantProblem(t, r, http.StatusUnprocessableEntity, "validation")
	if len(r.fields()) != 3 {
		t.Errorf("errors = %v, want nombre, email and identificacion", r.fields())
	}
}

func TestMalformedBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	valid := crearBody("ACME", "1")
	cases := []struct {
		name, body string
		fields     []string // members the problem must list
		detail     string   // substring of the detail
	}{
		{name: "syntax", body: `{"nombre": "ACME",}`, detail: "not valid JSON"},
		{name: "truncated", body: `{"nombre": "AC`, detail: "not valid JSON"},
		{name: "empty", body: " ", detail: "empty"},
		{name: "array", body: `[` + valid + `]`, detail: "must be a JSON object"},
		{name: "null", body: `null`, detail: "must be a JSON object"},
		{name: "string", body: `"x"`, detail: "must be a JSON object"},
		{name: "trailing object", body: valid + `{}`, detail: "after the JSON object"},
		{name: "trailing garbage", body: valid + ` x`, detail: "after the JSON object"},
		{name: "unknown field", body: `{"nombre":"A","email":"a@b.co","identificacion":"1","estado":"APROBADA"}`,
			fields: []string{"/estado"}, detail: "/estado: unknown field"},
		{name: "case-folded name", body: `{"Nombre":"A","email":"a@b.co","identificacion":"1"}`, fields: []string{"/Nombre"}},
		{name: "wrong types", body: `{"nombre":5,"email":["a"],"identificacion":"1","x":1}`,
			fields: []string{"/nombre", "/email", "/x"}, detail: "/nombre: must be a string"},
		{name: "duplicate member", body: `{"nombre":"A","nombre":"B","email":"a@b.co","identificacion":"1"}`, detail: "duplicate"},
		{name: "invalid UTF-8", body: "{\"nombre\":\"\xff\",\"email\":\"a@b.co\",\"identificacion\":\"1\"}", detail: "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			r := e.do(req{method: "POST", path: "/v1/companias", body: tc.body})
			wantProblem(t, r, http.StatusBadRequest, "malformed_request")
			if !strings.Contains(r.str("detail"), tc.detail) {
				t.Errorf("detail = %q, want it to contain %q", r.str("detail"), tc.detail)
			}
			got := r.fields()
			if len(got) != len(tc.fields) {
				t.Errorf("errors = %v, want %v", got, tc.fields)
			}
			for _, f := range tc.fields {
				if got[f] == "" {
					t.Errorf("errors = %v, want %s listed", got, f)
				}
			}
		})
	}
	if n := len(e.logs.Records(t, "level", "ERROR")); n != 0 {
		t.Errorf("%d error logs for client errors, want none", n)
	}
}

func TestUnsupportedMediaType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	id := e.create(t, "ACME").str("id")
	cases := []struct {
		name, method, path, ctype string
	}{
		{"missing", "POST", "/v1/companias", "-"},
		{"text", "POST", "/v1/companias", "text/plain"},
		{"form", "POST", "/ingestion/compania-comando", "application/x-www-form-urlencoded"},
		{"latin1", "POST", "/v1/companias", "application/json; charset=iso-8859-1"},
		{"merge patch on POST", "POST", "/v1/companias", "application/merge-patch+json"},
		{"patch", "PATCH", "/v1/companias/" + id, "text/plain"},
		{"rechazar", "POST", "/v1/companias/" + id + "/rechazar", "application/xml"},
		{"aprobar with a body", "POST", "/v1/companias/" + id + "/aprobar", "text/plain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			hr, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(`{}`))
			if tc.ctype != "-" {
				hr.Header.Set("Content-Type", tc.ctype)
			}
			r := e.send(hr)
			wantProblem(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
			if tc.method == "PATCH" && r.header.Get("Accept-Patch") != "application/json, application/merge-patch+json" {
				t.Errorf("Accept-Patch = %q", r.header.Get("Accept-Patch"))
			}
		})
	}
	// UTF-8 spelled any way is fine.
	r := e.do(req{method: "POST", path: "/v1/companias", ctype: "Application/JSON; Charset=UTF-8", body: crearBody("B", "2")})
	want(t, r, http.StatusCreated)
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	big := `{"nombre":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`
	t.Run("content-length", func(t *testing.T) {
		e := e.with(t)
		r := e.do(req{method: "POST", path: "/v1/companias", body: big})
		wantProblem(t, r, http.StatusRequestEntityTooLarge, "request_too_large")
	})
	t.Run("chunked", func(t *testing.T) {
		e := e.with(t)
		// Hiding the length makes the client send it chunked: the limit
		// is enforced while reading.
		hr, _ := http.NewRequest("POST", e.srv.URL+"/v1/companias", io.MultiReader(strings.NewReader(big)))
		hr.Header.Set("Content-Type", "application/json")
		r := e.send(hr)
		wantProblem(t, r, http.StatusRequestEntityTooLarge, "request_too_large")
	})
	t.Run("patch", func(t *testing.T) {
		e := e.with(t)
		id := e.create(t, "ACME").str("id")
		r := e.do(req{method: "PATCH", path: "/v1/companias/" + id, body: big})
		wantProblem(t, r, http.StatusRequestEntityTooLarge, "request_too_large")
	})
	t.Run("exactly the limit is read", func(t *testing.T) {
		e := e.with(t)
		body := crearBody("Limite", "1")
		body += strings.Repeat(" ", httpapi.MaxBodyBytes-len(body))
		r := e.do(req{method: "POST", path: "/v1/companias", body: body})
		want(t, r, http.StatusCreated)
	})
}

func TestIdempotentCrear(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newEnv(t, repo)
	key := map[string]string{"Idempotency-Key": "key-1"}
	first := e.do(req{method: "POST", path: "/v1/companias", header: key, body: crearBody("ACME", "1")})
	want(t, first, http.StatusCreated)

	// Same request with other white space and member order: replayed.
	retry := e.do(req{method: "POST", path: "/v1/companias", header: key,
		body: "{\n  \"identificacion\": \"1\", \"email\": \"info@acme.co\",\n \"nombre\": \"ACME\" }"})
	want(t, retry, http.StatusCreated)
	if !bytes.Equal(retry.raw, first.raw) {
		t.Errorf("replayed body differs:\n got %s\nwant %s", retry.raw, first.raw)
	}
	for _, h := range []string{"Location", "ETag", "Content-Type"} {
		if retry.header.Get(h) != first.header.Get(h) {
			t.Errorf("replayed %s = %q, want %q", h, retry.header.Get(h), first.header.Get(h))
		}
	}
	if retry.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed = %q, want true", retry.header.Get("Idempotent-Replayed"))
	}
	if repo.count() != 1 {
		t.Errorf("%d companies stored, want 1", repo.count())
	}

	// Same key, another request.
	other := e.do(req{method: "POST", path: "/v1/companias", header: key, body: crearBody("ACME", "2")})
	wantProblem(t, other, http.StatusUnprocessableEntity, "idempotency_key_reused")

	// The key space of the legacy route is separate.
	ing := e.do(req{method: "POST", path: "/ingestion/compania-comando", header: key,
		body: `{"compania":{"nombre":"Otra","email":"a@b.co","identificacion":"3"}}`})
	want(t, ing, http.StatusAccepted)
	if ing.header.Get("Idempotent-Replayed") != "" || repo.count() != 2 {
		t.Errorf("legacy route with a key used on /v1/companias: replayed %q, %d companies, want a new company",
			ing.header.Get("Idempotent-Replayed"), repo.count())
	}

	// A failed request stores nothing: its retry runs again.
	bad := map[string]string{"Idempotency-Key": "key-2"}
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias", header: bad, body: crearBody("ACME", "1")}),
		http.StatusConflict, "compania_duplicada")
	want(t, e.do(req{method: "POST", path: "/v1/companias", header: bad, body: crearBody("Nueva", "1")}), http.StatusCreated)
}

func TestIdempotencyKeyValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	for name, k := range map[string]string{
		"too long":  strings.Repeat("k", 256),
		"space":     "a b",
		"non-ASCII": "llave-ñ",
		"tab":       "a\tb",
	} {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			hr, _ := http.NewRequest("POST", e.srv.URL+"/v1/companias", strings.NewReader(crearBody("A", "1")))
			hr.Header.Set("Content-Type", "application/json")
			hr.Header["Idempotency-Key"] = []string{k}
			r := e.send(hr)
			wantProblem(t, r, http.StatusBadRequest, "invalid_idempotency_key")
		})
	}
	t.Run("empty", func(t *testing.T) {
		e := e.with(t)
		hr, _ := http.NewRequest("POST", e.srv.URL+"/ingestion/compania-comando",
			strings.NewReader(`{"compania":{"nombre":"A","email":"a@b.co","identificacion":"1"}}`))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header["Idempotency-Key"] = []string{""}
		wantProblem(t, e.send(hr), http.StatusBadRequest, "invalid_idempotency_key")
	})
	t.Run("twice", func(t *testing.T) {
		e := e.with(t)
		hr, _ := http.NewRequest("POST", e.srv.URL+"/v1/companias", strings.NewReader(crearBody("A", "1")))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header["Idempotency-Key"] = []string{"a", "b"}
		wantProblem(t, e.send(hr), http.StatusBadRequest, "invalid_idempotency_key")
	})
	t.Run("longest", func(t *testing.T) {
		e := e.with(t)
		r := e.do(req{method: "POST", path: "/v1/companias", body: crearBody("A", "1"),
			header: map[string]string{"Idempotency-Key": strings.Repeat("~", 255)}})
		want(t, r, http.StatusCreated)
	})
}

// TestConcurrentSameKey sends one request with one key from many clients at
// once: exactly one company is created and every client gets its answer.
func TestConcurrentSameKey(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newEnv(t, repo)
	concurrentSameKey(t, e, func() int { return repo.count() })
}

func concurrentSameKey(t *testing.T, e *env, count func() int) {
	t.Helper()
	const n = 12
	results := make([]resp, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			hr, _ := http.NewRequest("POST", e.srv.URL+"/v1/companias", strings.NewReader(crearBody("Concurrente", "77")))
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set("Idempotency-Key", "same-key")
			res, err := e.srv.Client().Do(hr)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			results[i] = resp{status: res.StatusCode, header: res.Header, raw: raw}
		})
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i, r := range results {
		if r.status != http.StatusCreated {
			t.Fatalf("request %d: status %d, want 201: %s", i, r.status, r.raw)
		}
		if !bytes.Equal(r.raw, results[0].raw) {
			t.Errorf("request %d: body %s differs from %s", i, r.raw, results[0].raw)
		}
		if r.header.Get("Idempotent-Replayed") == "" {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d answers without Idempotent-Replayed, want exactly 1", fresh)
	}
	if got := count(); got != 1 {
		t.Errorf("%d companies created, want 1", got)
	}
}

func TestActualizarCompania(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	id := e.create(t, "ACME").str("id")
	path := "/v1/companias/" + id

	r := e.do(req{method: "PATCH", path: path, ctype: "application/merge-patch+json", body: `{"email":"nuevo@acme.co"}`})
	want(t, r, http.StatusOK)
	if r.str("email") != "nuevo@acme.co" || r.json["version"] != float64(2) || r.header.Get("ETag") != `"2"` {
		t.Fatalf("after patch: %s, ETag %s", r.raw, r.header.Get("ETag"))
	}
	if r.str("fecha_actualizacion") == r.str("fecha_creacion") {
		t.Error("fecha_actualizacion did not move")
	}

	// Same values: 200, no new version.
	r = e.do(req{method: "PATCH", path: path, body: `{"email":"nuevo@acme.co"}`})
	want(t, r, http.StatusOK)
	if r.header.Get("ETag") != `"2"` {
		t.Errorf("no-op patch ETag = %s, want \"2\"", r.header.Get("ETag"))
	}

	// Upper-case UUID in the path names the same company.
	r = e.do(req{method: "PATCH", path: "/v1/companias/" + strings.ToUpper(id), body: `{"nombre":"ACME Dos"}`})
	want(t, r, http.StatusOK)
	if r.str("id") != id || r.str("nombre") != "ACME Dos" {
		t.Errorf("patch via upper-case id: %s", r.raw)
	}

	for name, tc := range map[string]struct {
		body, code string
		status     int
		fields     []string
	}{
		"empty patch":      {`{}`, "validation", 422, []string{"/nombre", "/email"}},
		"null member":      {`{"nombre":null}`, "validation", 422, []string{"/nombre"}},
		"invalid email":    {`{"email":"x"}`, "validation", 422, []string{"/email"}},
		"unknown member":   {`{"estado":"APROBADA"}`, "malformed_request", 400, []string{"/estado"}},
		"wrong type":       {`{"nombre":true}`, "malformed_request", 400, []string{"/nombre"}},
		"not an object":    {`"x"`, "malformed_request", 400, nil},
		"malformed syntax": {`{"nombre":}`, "malformed_request", 400, nil},
	} {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.do(req{method: "PATCH", path: path, body: tc.body})
			wantProblem(t, r, tc.status, tc.code)
			for _, f := range tc.fields {
				if r.fields()[f] == "" {
					t.Errorf("errors = %v, want %s listed", r.fields(), f)
				}
			}
		})
	}
}

func TestIfMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	id := e.create(t, "ACME").str("id")
	path := "/v1/companias/" + id
	patch := func(ifMatch string) resp {
		return e.do(req{method: "PATCH", path: path, body: fmt.Sprintf(`{"nombre":"ACME %d"}`, time.Now().UnixNano()),
			header: map[string]string{"If-Match": ifMatch}})
	}
	want(t, patch(`"1"`), http.StatusOK)                                                 // current version → v2
	wantProblem(t, patch(`"1"`), http.StatusPreconditionFailed, "version_no_coincide")   // stale
	want(t, patch(`*`), http.StatusOK)                                                   // any → v3
	want(t, patch(` "7", "3" `), http.StatusBadRequest)                                  // two different versions
	want(t, patch(`W/"3", "3"`), http.StatusOK)                                          // the strong one counts → v4
	wantProblem(t, patch(`W/"4"`), http.StatusPreconditionFailed, "version_no_coincide") // weak never matches
	wantProblem(t, patch(`"abc"`), http.StatusPreconditionFailed, "version_no_coincide")
	wantProblem(t, patch(`"0"`), http.StatusPreconditionFailed, "version_no_coincide")
	wantProblem(t, patch(`"04"`), http.StatusPreconditionFailed, "version_no_coincide")
	for _, bad := range []string{`4`, `"4`, `*, "4"`, `"4" x`, `W/4`, `,`} {
		wantProblem(t, patch(bad), http.StatusBadRequest, "invalid_if_match")
	}

	// aprobar and rechazar honour it too.
	wantProblem(t, e.do(req{method: "POST", path: path + "/aprobar", header: map[string]string{"If-Match": `"1"`}}),
		http.StatusPreconditionFailed, "version_no_coincide")
	wantProblem(t, e.do(req{method: "POST", path: path + "/rechazar", body: `{"motivo":"x"}`,
		header: map[string]string{"If-Match": `"1"`}}), http.StatusPreconditionFailed, "version_no_coincide")
	r := e.do(req{method: "POST", path: path + "/aprobar", header: map[string]string{"If-Match": `"4"`}})
	want(t, r, http.StatusOK)
	if r.header.Get("ETag") != `"5"` {
		t.Errorf("ETag after aprobar = %s, want \"5\"", r.header.Get("ETag"))
	}
}

func TestConcurrentModification(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newEnv(t, repo)
	id := e.create(t, "ACME").str("id")
	repo.beforeSave = repo.bump // another writer commits between load and save
	r := e.do(req{method: "POST", path: "/v1/companias/" + id + "/aprobar"})
	wantProblem(t, r, http.StatusConflict, "modificacion_concurrente")
}

func TestAprobarRechazar(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	a := e.create(t, "A").str("id")
	b := e.create(t, "B").str("id")

	r := e.do(req{method: "POST", path: "/v1/companias/" + a + "/aprobar"})
	want(t, r, http.StatusOK)
	if r.str("estado") != "APROBADA" || r.json["motivo_rechazo"] != nil || r.header.Get("ETag") != `"2"` {
		t.Fatalf("aprobar: %s ETag %s", r.raw, r.header.Get("ETag"))
	}
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/" + a + "/aprobar"}), http.StatusConflict, "transicion_invalida")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/" + a + "/rechazar", body: `{"motivo":"tarde"}`}),
		http.StatusConflict, "transicion_invalida")

	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/" + b + "/rechazar", body: `{}`}),
		http.StatusUnprocessableEntity, "validation")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/" + b + "/rechazar", body: `{"motivo":"x","y":1}`}),
		http.StatusBadRequest, "malformed_request")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/" + b + "/rechazar"}),
		http.StatusUnsupportedMediaType, "unsupported_media_type")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/" + b + "/rechazar", body: " "}),
		http.StatusBadRequest, "malformed_request")
	r = e.do(req{method: "POST", path: "/v1/companias/" + b + "/rechazar", body: `{"motivo":"  documentos incompletos "}`})
	want(t, r, http.StatusOK)
	if r.str("estado") != "RECHAZADA" || r.str("motivo_rechazo") != "documentos incompletos" {
		t.Fatalf("rechazar: %s", r.raw)
	}
	// A rejected company cannot change.
	wantProblem(t, e.do(req{method: "PATCH", path: "/v1/companias/" + b, body: `{"nombre":"Z"}`}),
		http.StatusConflict, "transicion_invalida")

	// aprobar takes an optional empty object, and nothing else.
	c := e.create(t, "C").str("id")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/" + c + "/aprobar", body: `{"motivo":"x"}`}),
		http.StatusBadRequest, "malformed_request")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/" + c + "/aprobar", body: `[]`}),
		http.StatusBadRequest, "malformed_request")
	want(t, e.do(req{method: "POST", path: "/v1/companias/" + c + "/aprobar", body: ` {} `}), http.StatusOK)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	unknown := newUUID()
	for _, rq := range []req{
		{method: "PATCH", path: "/v1/companias/" + unknown, body: `{"nombre":"A"}`},
		{method: "POST", path: "/v1/companias/" + unknown + "/aprobar"},
		{method: "POST", path: "/v1/companias/" + unknown + "/rechazar", body: `{"motivo":"x"}`},
		// Not a UUID: no company can live there (see pathID).
		{method: "PATCH", path: "/v1/companias/123", body: `{"nombre":"A"}`},
		{method: "POST", path: "/v1/companias/" + unknown + "x/aprobar"},
		{method: "POST", path: "/v1/companias/not-a-uuid/rechazar", body: `{"motivo":"x"}`},
		{method: "POST", path: "/v1/companias/a%20b%22/aprobar"}, // instance stays a URI reference
	} {
		wantProblem(t, e.do(rq), http.StatusNotFound, "compania_not_found")
	}
	wantProblem(t, e.do(req{method: "GET", path: "/v1/nada"}), http.StatusNotFound, "route_not_found")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias/", body: crearBody("A", "1")}), http.StatusNotFound, "route_not_found")
	r := e.do(req{method: "DELETE", path: "/v1/companias/" + unknown})
	wantProblem(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if r.header.Get("Allow") != "PATCH" {
		t.Errorf("Allow = %q, want PATCH", r.header.Get("Allow"))
	}
}

func TestLegacyCrear(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newEnv(t, repo)
	body := `{"compania":{"nombre":"ACME SAS","email":"info@acme.co","identificacion":"900123456"}}`
	key := map[string]string{"Idempotency-Key": "ing-1"}
	r := e.do(req{method: "POST", path: "/ingestion/compania-comando", body: body, header: key})
	want(t, r, http.StatusAccepted)
	id := r.str("id")
	if !isCanonicalUUID(id) || len(r.json) != 1 || r.header.Get("Location") != "/v1/companias/"+id {
		t.Fatalf("202 body %s, Location %q", r.raw, r.header.Get("Location"))
	}
	if repo.count() != 1 {
		t.Fatalf("%d companies, want 1", repo.count())
	}
	// The company exists and answers on the v1 routes.
	want(t, e.do(req{method: "POST", path: "/v1/companias/" + id + "/aprobar"}), http.StatusOK)

	replay := e.do(req{method: "POST", path: "/ingestion/compania-comando", body: body, header: key})
	want(t, replay, http.StatusAccepted)
	if replay.str("id") != id || replay.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %s, Idempotent-Replayed %q", replay.raw, replay.header.Get("Idempotent-Replayed"))
	}
	wantProblem(t, e.do(req{method: "POST", path: "/ingestion/compania-comando", header: key,
		body: `{"compania":{"nombre":"Otra","email":"info@acme.co","identificacion":"900123456"}}`}),
		http.StatusUnprocessableEntity, "idempotency_key_reused")

	for name, tc := range map[string]struct {
		body, code string
		status     int
		fields     []string
	}{
		"missing compania":   {`{}`, "validation", 422, []string{"/compania"}},
		"null compania":      {`{"compania":null}`, "validation", 422, []string{"/compania"}},
		"invalid fields":     {`{"compania":{"email":"x"}}`, "validation", 422, []string{"/compania/nombre", "/compania/email", "/compania/identificacion"}},
		"duplicate":          {body, "compania_duplicada", 409, nil},
		"compania not obj":   {`{"compania":"ACME"}`, "malformed_request", 400, []string{"/compania"}},
		"unknown inner":      {`{"compania":{"nombre":"A","email":"a@b.co","identificacion":"1","id":"x"}}`, "malformed_request", 400, []string{"/compania/id"}},
		"unknown outer":      {`{"compania":{},"extra":1}`, "malformed_request", 400, []string{"/extra"}},
		"inner wrong type":   {`{"compania":{"nombre":1,"email":"a@b.co","identificacion":"1"}}`, "malformed_request", 400, []string{"/compania/nombre"}},
		"inner syntax error": {`{"compania":{"nombre":"A",,}}`, "malformed_request", 400, nil},
	} {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.do(req{method: "POST", path: "/ingestion/compania-comando", body: tc.body})
			wantProblem(t, r, tc.status, tc.code)
			got := r.fields()
			for _, f := range tc.fields {
				if got[f] == "" {
					t.Errorf("errors = %v, want %s listed", got, f)
				}
			}
		})
	}
}

func TestProbes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	for path, status := range map[string]string{"/health": "up", "/healthz": "alive", "/readyz": "ready"} {
		r := e.do(req{method: "GET", path: path})
		want(t, r, http.StatusOK)
		if r.str("status") != status {
			t.Errorf("GET %s = %s, want status %q", path, r.raw, status)
		}
	}
	down := errors.New("dial tcp 127.0.0.1:5432: connection refused")
	e.ready.Store(&down)
	r := e.do(req{method: "GET", path: "/readyz"})
	wantProblem(t, r, http.StatusServiceUnavailable, "not_ready")
	if strings.Contains(string(r.raw), "5432") {
		t.Errorf("readiness problem leaks the cause: %s", r.raw)
	}
	warns := e.logs.Records(t, "level", "WARN")
	if len(warns) != 1 || !strings.Contains(fmt.Sprint(warns[0]["err"]), "connection refused") {
		t.Errorf("warn logs = %v, want one with the cause", warns)
	}
	// The liveness probes do not depend on readiness.
	want(t, e.do(req{method: "GET", path: "/healthz"}), http.StatusOK)
	want(t, e.do(req{method: "GET", path: "/health"}), http.StatusOK)
}

func TestReadyzTimesOut(t *testing.T) {
	t.Parallel()
	r, err := httpapi.New(httpapi.Deps{
		App: app.New(newMemRepo(), newUUID, testClock(), nil),
		Ready: func(ctx context.Context) error {
			<-ctx.Done() // a hung dependency
			return ctx.Err()
		},
		Logger: slog.New(slog.DiscardHandler),
	}, httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
}

func TestInternalErrors(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newEnv(t, repo)
	id := e.create(t, "ACME").str("id")
	repo.fail = func(_ context.Context, op string) error {
		switch op {
		case "add":
			return errors.New("pq: secret table exploded")
		case "update":
			panic("boom in update")
		}
		return nil
	}
	r := e.do(req{method: "POST", path: "/v1/companias", body: crearBody("B", "2")})
	wantProblem(t, r, http.StatusInternalServerError, "internal")
	if strings.Contains(string(r.raw), "secret") {
		t.Errorf("500 leaks the cause: %s", r.raw)
	}
	r = e.do(req{method: "POST", path: "/v1/companias/" + id + "/aprobar"})
	wantProblem(t, r, http.StatusInternalServerError, "internal")

	errs := e.logs.Records(t, "level", "ERROR")
	if len(errs) != 2 {
		t.Fatalf("%d error logs, want one per failed request: %v", len(errs), errs)
	}
	if !strings.Contains(fmt.Sprint(errs[0]["err"]), "secret table exploded") {
		t.Errorf("error log lacks the cause: %v", errs[0])
	}
	if errs[1]["request_id"] != r.header.Get("X-Request-Id") {
		t.Errorf("error log request_id = %v, want %s", errs[1]["request_id"], r.header.Get("X-Request-Id"))
	}
	if errs[1]["msg"] != "http handler panic" || errs[1]["panic"] != "boom in update" || !strings.Contains(fmt.Sprint(errs[1]["stack"]), "goroutine") {
		t.Errorf("panic log lacks the value or the stack: %v", errs[1])
	}

	// An unavailable dependency is a 503 logged at Warn.
	repo.fail = func(context.Context, string) error {
		return &apperr.Error{Kind: apperr.Unavailable, Code: "db_unavailable", Message: "the database is unavailable"}
	}
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias", body: crearBody("C", "3")}),
		http.StatusServiceUnavailable, "db_unavailable")
	if len(e.logs.Records(t, "level", "ERROR")) != 2 || len(e.logs.Records(t, "level", "WARN")) != 1 {
		t.Errorf("503 logged at the wrong level")
	}
}

// TestClientCancelled: a request whose client went away is not a 500 and
// not an error log.
func TestClientCancelled(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	logs := &httpkittest.LogSink{}
	r, err := httpapi.New(httpapi.Deps{
		App:    app.New(repo, newUUID, testClock(), nil),
		Ready:  func(context.Context) error { return nil },
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	repo.fail = func(ctx context.Context, _ string) error {
		cancel() // the client hangs up while the command runs
		<-ctx.Done()
		return fmt.Errorf("insert: %w", ctx.Err())
	}
	rec := httptest.NewRecorder()
	hr := httptest.NewRequestWithContext(ctx, "POST", "/v1/companias", strings.NewReader(crearBody("A", "1")))
	hr.Header.Set("Content-Type", "application/json")
	r.ServeHTTP(rec, hr)
	if rec.Code == http.StatusInternalServerError {
		t.Errorf("status 500 for a cancelled request")
	}
	if n := len(logs.Records(t, "level", "ERROR")); n != 0 {
		t.Errorf("%d error logs for a cancelled request", n)
	}
	if len(logs.Records(t, "level", "DEBUG")) == 0 {
		t.Error("no debug log of the cancelled request")
	}
}

func TestRequestIDAndTraceparent(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newEnv(t, repo)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := e.do(req{method: "POST", path: "/v1/companias", body: crearBody("A", "1"),
		header: map[string]string{"X-Request-Id": "req-abc", "traceparent": tp}})
	want(t, r, http.StatusCreated)
	if r.header.Get("X-Request-Id") != "req-abc" {
		t.Errorf("X-Request-Id = %q, want the client's", r.header.Get("X-Request-Id"))
	}
	if got := repo.lastMeta().Traceparent; got != tp {
		t.Errorf("command traceparent = %q, want %q", got, tp)
	}
	id := r.str("id")

	r = e.do(req{method: "POST", path: "/v1/companias/" + id + "/aprobar",
		header: map[string]string{"X-Request-Id": "bad id with spaces", "traceparent": strings.ToUpper(tp)}})
	want(t, r, http.StatusOK)
	if got := r.header.Get("X-Request-Id"); got == "bad id with spaces" || len(got) != 32 {
		t.Errorf("X-Request-Id = %q, want a generated one", got)
	}
	if got := repo.lastMeta().Traceparent; got != "" {
		t.Errorf("invalid traceparent passed on as %q", got)
	}

	// Debug access log with the request id.
	found := false
	for _, rec := range e.logs.Records(t, "level", "DEBUG") {
		if rec["msg"] == "http request" && rec["request_id"] == "req-abc" && rec["status"] == float64(201) &&
			rec["route"] == "/v1/companias" {
			found = true
		}
	}
	if !found {
		t.Error("no access-log line for the request")
	}
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	r := e.do(req{method: "GET", path: "/openapi.json"})
	want(t, r, http.StatusOK)
	// One style for both services' documents (the query API's test checks its own).
	if v := r.str("openapi"); v != "3.1.1" {
		t.Fatalf("openapi = %q, want 3.1.1", v)
	}
	if info, _ := r.json["info"].(map[string]any); info["title"] != "PropAlpes Companias — command API" {
		t.Errorf("info.title = %v, want \"PropAlpes Companias — command API\"", info["title"])
	}
	var documented []string
	paths, _ := r.json["paths"].(map[string]any)
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	var routed []string
	for _, rt := range e.api.Routes() {
		routed = append(routed, rt.Method+" "+rt.Path)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if !slices.Equal(documented, routed) {
		t.Errorf("documented operations differ from the routes:\n doc %v\n gin %v", documented, routed)
	}
	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, ok := spec(t).lookup(ref); !ok {
					t.Errorf("unresolved $ref %s", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(r.json)
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func isCanonicalUUID(s string) bool { return uuidRE.MatchString(s) }
