package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

// A command whose event's Kafka record would exceed the repository's
// WithMaxRecordBytes is answered 422 record_too_large (a problem the OpenAPI
// document lists, naming no field value), and nothing is stored; the same
// company's smaller commands still succeed. Two APIs share one database: a
// "wide" one at the default limit and a "tight" one at 1024 bytes (the
// least KAFKA_MAX_RECORD_BYTES allows), which valid fields can exceed.
func TestIntegrationRecordTooLarge(t *testing.T) {
	t.Parallel()
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
	ready := postgres.NewChecker(pool).Ready
	wide := newEnvReady(t, postgres.NewRepository(pool), ready)
	tight := newEnvReady(t, postgres.NewRepository(pool, postgres.WithMaxRecordBytes(1024)), ready)
	outboxRows := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Valid, but 200 two-byte characters of nombre and a 254-character email.
	nombre := strings.Repeat("ñ", 200)
	email := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	big := fmt.Sprintf(`{"nombre":%q,"email":%q,"identificacion":"900123456"}`, nombre, email)
	r := tight.do(req{method: "POST", path: "/v1/companias", body: big,
		header: map[string]string{"Idempotency-Key": "big-1"}})
	wantProblem(t, r, http.StatusUnprocessableEntity, "record_too_large")
	if strings.Contains(string(r.raw), "ñññ") || strings.Contains(string(r.raw), "aaaa@") || r.json["errors"] != nil {
		t.Errorf("the problem names field values: %s", r.raw)
	}
	if n, o := countCompanias(t, pool), outboxRows(); n != 0 || o != 0 {
		t.Fatalf("after a refused create: %d companias, %d outbox rows; want none", n, o)
	}

	// A small company fits; its rejection with a 1000-character motivo does not.
	small := tight.do(req{method: "POST", path: "/v1/companias", body: crearBody("Chica SAS", "1")})
	want(t, small, http.StatusCreated)
	id := small.str("id")
	wantProblem(t, tight.do(req{method: "POST", path: "/v1/companias/" + id + "/rechazar",
		body: fmt.Sprintf(`{"motivo":%q}`, strings.Repeat("m", 1000))}), http.StatusUnprocessableEntity, "record_too_large")
	wantProblem(t, tight.do(req{method: "PATCH", path: "/v1/companias/" + id,
		body: fmt.Sprintf(`{"nombre":%q,"email":%q}`, nombre, email), ctype: "application/merge-patch+json"}), http.StatusUnprocessableEntity, "record_too_large")
	if o := outboxRows(); o != 1 {
		t.Errorf("%d outbox rows, want 1 (the small company's creation)", o)
	}

	// Created under the default limit, approved under the tight one.
	id = wide.do(req{method: "POST", path: "/v1/companias", body: big}).str("id")
	wantProblem(t, tight.do(req{method: "POST", path: "/v1/companias/" + id + "/aprobar"}), http.StatusUnprocessableEntity, "record_too_large")
	want(t, wide.do(req{method: "POST", path: "/v1/companias/" + id + "/aprobar"}), http.StatusOK)
}
