package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// The TestIntegration* tests run the API over the PostgreSQL repository,
// each on its own throwaway database.

// newPostgresEnv starts the API on a fresh, migrated database.
func newPostgresEnv(t *testing.T) (*env, *pgxpool.Pool) {
	t.Helper()
	return newPostgresEnvConfig(t, nil)
}

// newPostgresEnvConfig is newPostgresEnv with a last say on the API's Deps.
func newPostgresEnvConfig(t *testing.T, mod func(*httpapi.Deps)) (*env, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), postgres.WithMaxConns(8))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return newEnvConfig(t, postgres.NewRepository(pool), postgres.NewChecker(pool).Ready, mod), pool
}

func countCompanias(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM companias").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIntegrationCompaniasAPI(t *testing.T) {
	t.Parallel()
	e, pool := newPostgresEnv(t)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

	want(t, e.do(req{method: "GET", path: "/readyz"}), http.StatusOK)

	// 201, then an idempotent replay with the same body and headers.
	key := map[string]string{"Idempotency-Key": "pg-1", "traceparent": tp}
	first := e.do(req{method: "POST", path: "/v1/companias", header: key, body: crearBody("ACME SAS", "900123456")})
	want(t, first, http.StatusCreated)
	id := first.str("id")
	replay := e.do(req{method: "POST", path: "/v1/companias", header: key,
		body: `{ "identificacion":"900123456", "nombre":"ACME SAS", "email":"info@acme.co" }`})
	want(t, replay, http.StatusCreated)
	if !bytes.Equal(replay.raw, first.raw) || replay.header.Get("Idempotent-Replayed") != "true" ||
		replay.header.Get("ETag") != first.header.Get("ETag") || replay.header.Get("Location") != first.header.Get("Location") {
		t.Errorf("replay differs:\n got %s %v\nwant %s %v", replay.raw, replay.header, first.raw, first.header)
	}
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias", header: key, body: crearBody("Otra", "1")}),
		http.StatusUnprocessableEntity, "idempotency_key_reused")

	// The traceparent reached the outbox row.
	var traced int
	if err := pool.QueryRow(context.Background(),
		"SELECT count(*) FROM outbox WHERE strpos(headers::text, $1) > 0", tp).Scan(&traced); err != nil {
		t.Fatal(err)
	}
	if traced != 1 {
		t.Errorf("%d outbox rows carry the traceparent, want 1", traced)
	}

	// 409s, 422.
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias", body: crearBody("acme sas", "900123456")}),
		http.StatusConflict, "compania_duplicada")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias",
		body: fmt.Sprintf(`{"id":%q,"nombre":"B","email":"b@b.co","identificacion":"2"}`, id)}),
		http.StatusConflict, "compania_id_en_uso")
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias", body: `{"nombre":"","email":"x","identificacion":"?"}`}),
		http.StatusUnprocessableEntity, "validation")

	// PATCH with If-Match, 412 on a stale version, 404 on an unknown id.
	path := "/v1/companias/" + id
	r := e.do(req{method: "PATCH", path: path, ctype: "application/merge-patch+json",
		body: `{"email":"nuevo@acme.co"}`, header: map[string]string{"If-Match": `"1"`}})
	want(t, r, http.StatusOK)
	if r.header.Get("ETag") != `"2"` || r.str("email") != "nuevo@acme.co" {
		t.Fatalf("patch: %s ETag %s", r.raw, r.header.Get("ETag"))
	}
	wantProblem(t, e.do(req{method: "PATCH", path: path, body: `{"nombre":"X"}`, header: map[string]string{"If-Match": `"1"`}}),
		http.StatusPreconditionFailed, "version_no_coincide")
	wantProblem(t, e.do(req{method: "PATCH", path: "/v1/companias/" + newUUID(), body: `{"nombre":"X"}`}),
		http.StatusNotFound, "compania_not_found")

	// aprobar, then illegal transitions.
	r = e.do(req{method: "POST", path: path + "/aprobar", header: map[string]string{"If-Match": `"2"`}})
	want(t, r, http.StatusOK)
	if r.str("estado") != "APROBADA" || r.header.Get("ETag") != `"3"` {
		t.Fatalf("aprobar: %s ETag %s", r.raw, r.header.Get("ETag"))
	}
	wantProblem(t, e.do(req{method: "POST", path: path + "/rechazar", body: `{"motivo":"x"}`}),
		http.StatusConflict, "transicion_invalida")

	// The prototype route, with rechazar on its company.
	ing := e.do(req{method: "POST", path: "/ingestion/compania-comando",
		body: `{"compania":{"nombre":"Prototipo","email":"p@p.co","identificacion":"7"}}`})
	want(t, ing, http.StatusAccepted)
	r = e.do(req{method: "POST", path: "/v1/companias/" + ing.str("id") + "/rechazar", body: `{"motivo":"sin RUT"}`})
	want(t, r, http.StatusOK)
	if r.str("estado") != "RECHAZADA" || r.str("motivo_rechazo") != "sin RUT" {
		t.Fatalf("rechazar: %s", r.raw)
	}

	if n := countCompanias(t, pool); n != 2 {
		t.Errorf("%d companies stored, want 2", n)
	}
	if errs := e.logs.Records(t, "level", "ERROR"); len(errs) != 0 {
		t.Errorf("error logs: %v", errs)
	}
}

// TestIntegrationConcurrentSameKey: many clients send one request with one
// Idempotency-Key at once; PostgreSQL ends up with exactly one company and
// every client gets the same 201.
func TestIntegrationConcurrentSameKey(t *testing.T) {
	t.Parallel()
	e, pool := newPostgresEnv(t)
	concurrentSameKey(t, e, func() int { return countCompanias(t, pool) })
}

// TestIntegrationReadyzMigrationsPending: a database without the schema is
// not ready.
func TestIntegrationReadyzMigrationsPending(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := newEnvReady(t, postgres.NewRepository(pool), postgres.NewChecker(pool).Ready)
	wantProblem(t, e.do(req{method: "GET", path: "/readyz"}), http.StatusServiceUnavailable, "not_ready")
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	want(t, e.do(req{method: "GET", path: "/readyz"}), http.StatusOK)
}

// TestIntegrationReadyzShowsParkedRows: parked outbox rows are listed in
// the readiness details (at most 10 ids, in id order) and do not make the
// service unready.
func TestIntegrationReadyzShowsParkedRows(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	e := newEnvConfig(t, postgres.NewRepository(pool), postgres.NewChecker(pool).Ready, func(c *httpapi.Deps) {
		c.Parked = outbox.NewParkedOutbox(pool).Count
	})
	type body struct {
		Status  string            `json:"status"`
		Checks  map[string]string `json:"checks"`
		Details struct {
			Rows int64   `json:"outbox_parked_rows"`
			IDs  []int64 `json:"outbox_parked_ids"`
		} `json:"details"`
	}
	get := func() body {
		t.Helper()
		r := e.do(req{method: "GET", path: "/readyz"})
		want(t, r, http.StatusOK)
		var b body
		if err := json.Unmarshal(r.raw, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := get(); b.Status != "ready" || b.Checks["outbox"] != "ok" || b.Details.Rows != 0 || b.Details.IDs == nil || len(b.Details.IDs) != 0 {
		t.Errorf("no parked rows: %+v", b)
	}
	// 12 rows: one unpublished, 11 parked.
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (event_id, topic, key, value, parked_at, park_reason)
		SELECT gen_random_uuid(), 't', 'k', 'v', CASE WHEN i > 1 THEN now() END, 'too_large'
		FROM generate_series(1, 12) i`); err != nil {
		t.Fatal(err)
	}
	var wantIDs []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM outbox
		WHERE parked_at IS NOT NULL ORDER BY id LIMIT 10) s`).Scan(&wantIDs); err != nil {
		t.Fatal(err)
	}
	b := get()
	if b.Status != "ready" || b.Checks["outbox"] != "parked" || b.Details.Rows != 11 || !slices.Equal(b.Details.IDs, wantIDs) {
		t.Errorf("with 11 parked rows: %+v, want ready, parked, 11, %v", b, wantIDs)
	}
}

// TestIntegrationIdempotencyKeysPerCaller checks on PostgreSQL that two
// callers' equal Idempotency-Keys are separate records: the second caller
// gets its own company, and each retry replays its caller's answer.
func TestIntegrationIdempotencyKeysPerCaller(t *testing.T) {
	t.Parallel()
	v, err := jwtauth.New(jwtauth.Config{HS256Secret: authSecret, Audience: "companias-command"})
	if err != nil {
		t.Fatal(err)
	}
	e, pool := newPostgresEnvConfig(t, func(c *httpapi.Deps) { c.Auth = v })
	exp := time.Now().Add(time.Hour)
	alice := mint(t, authSecret, "alice", httpapi.AuthScopeWrite, exp)
	bob := mint(t, authSecret, "bob", httpapi.AuthScopeWrite, exp)
	post := func(tok, body string) resp {
		return e.do(req{method: "POST", path: "/v1/companias", header: withKey(tok, "pg-shared"), body: body})
	}
	a := post(alice, crearBody("ACME", "1"))
	want(t, a, http.StatusCreated)
	wantProblem(t, post(bob, crearBody("ACME", "1")), http.StatusConflict, "compania_duplicada")
	b := post(bob, crearBody("Bravo", "2"))
	want(t, b, http.StatusCreated)
	if b.str("id") == a.str("id") || b.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("bob's create answered %s (alice's id %s), Idempotent-Replayed %q", b.raw, a.str("id"), b.header.Get("Idempotent-Replayed"))
	}
	for _, prev := range []struct {
		tok, body string
		first     resp
	}{{alice, crearBody("ACME", "1"), a}, {bob, crearBody("Bravo", "2"), b}} {
		r := post(prev.tok, prev.body)
		if r.status != http.StatusCreated || !bytes.Equal(r.raw, prev.first.raw) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry: %d %s, want the caller's first answer %s replayed", r.status, r.raw, prev.first.raw)
		}
	}
	var n int
	if err := pool.QueryRow(context.Background(),
		"SELECT count(DISTINCT scope) FROM idempotency_keys WHERE key = 'pg-shared'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 || countCompanias(t, pool) != 2 {
		t.Errorf("%d scopes for the key, %d companies; want 2 and 2", n, countCompanias(t, pool))
	}
}

// TestIntegrationLookAlikeNombreIsDuplicate checks on PostgreSQL that a
// nombre spelled with combining marks is the same nombre as its precomposed
// form (the domain stores NFC, and the unique index compares
// lower(nombre)), so the look-alike is a 409; and that a nombre with an
// invisible character is refused before it reaches the database.
func TestIntegrationLookAlikeNombreIsDuplicate(t *testing.T) {
	t.Parallel()
	e, pool := newPostgresEnv(t)
	const composed = "Compa\u00f1\u00eda Andina"     // "Compañía Andina", precomposed
	const decomposed = "Compan\u0303i\u0301a Andina" // the same with combining marks
	want(t, e.do(req{method: "POST", path: "/v1/companias", body: crearBody(composed, "900123456")}), http.StatusCreated)
	for _, nombre := range []string{decomposed, "COMPAN\u0303I\u0301A ANDINA"} {
		wantProblem(t, e.do(req{method: "POST", path: "/v1/companias", body: crearBody(nombre, "900123456")}),
			http.StatusConflict, "compania_duplicada")
	}
	for _, nombre := range []string{"Compa\u00f1\u00eda\u200b Andina", "\u202eanidnA a\u00edn\u00f1apmoC"} {
		r := e.do(req{method: "POST", path: "/v1/companias", body: crearBody(nombre, "900123456")})
		wantProblem(t, r, http.StatusUnprocessableEntity, "validation")
		if msg := r.fields()["/nombre"]; msg == "" || strings.Contains(string(r.raw), "Andina") || strings.Contains(string(r.raw), "anidnA") {
			t.Errorf("nombre error %q; body %s; want the field named and the value not quoted", msg, r.raw)
		}
	}
	var stored string
	if err := pool.QueryRow(context.Background(), "SELECT nombre FROM companias").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != composed || countCompanias(t, pool) != 1 {
		t.Errorf("stored %+q in %d rows, want %+q once", stored, countCompanias(t, pool), composed)
	}
}
