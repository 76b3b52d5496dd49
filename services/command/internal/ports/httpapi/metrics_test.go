package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propalpes/companias/libs/httpkit/httpkittest"
	"github.com/propalpes/companias/services/command/internal/app"
	"github.com/propalpes/companias/services/command/internal/metrics"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// serve sends one request straight to the API and returns the recorder.
func serve(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestMetricsCountRequestsByRouteTemplate(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	repo := newMemRepo()
	log := slog.New(slog.DiscardHandler)
	h, err := httpapi.New(httpapi.Deps{
		App:            app.New(repo, newUUID, testClock(), nil),
		Ready:          func(context.Context) error { return nil },
		Logger:         log,
		ObserveRequest: m.ObserveRequest,
	}, httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}

	rec := serve(t, h, "POST", "/v1/companias", crearBody("ACME", "900123456"))
	if rec.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", rec.Code, rec.Body)
	}
	id := rec.Header().Get("Location")[strings.LastIndex(rec.Header().Get("Location"), "/")+1:]
	if id == "" {
		t.Fatalf("no id in Location %q", rec.Header().Get("Location"))
	}
	serve(t, h, "GET", "/healthz", "")
	serve(t, h, "GET", "/healthz", "")
	serve(t, h, "GET", "/no/such/thing-"+id, "") // 404, no route
	if rec := serve(t, h, "POST", "/v1/companias/"+id+"/aprobar", ""); rec.Code != http.StatusOK {
		t.Fatalf("aprobar = %d %s", rec.Code, rec.Body)
	}
	if rec := serve(t, h, "POST", "/v1/companias/"+newUUID()+"/rechazar", `{"motivo":"x"}`); rec.Code != http.StatusNotFound {
		t.Fatalf("rechazar an unknown company = %d %s", rec.Code, rec.Body)
	}
	repo.fail = func(_ context.Context, op string) error {
		if op == "update" {
			panic("boom in update")
		}
		return nil
	}
	if rec := serve(t, h, "POST", "/v1/companias/"+id+"/rechazar", `{"motivo":"x"}`); rec.Code != http.StatusInternalServerError {
		t.Fatalf("panicking handler = %d, want 500", rec.Code)
	}

	// The exposition is served on the admin listener; scrape its handler.
	body := httpkittest.WantMetrics(t, metrics.Handler(reg, log),
		`companias_http_requests_total{code="2xx",method="POST",route="/v1/companias"} 1`,
		`companias_http_requests_total{code="2xx",method="GET",route="/healthz"} 2`,
		`companias_http_requests_total{code="4xx",method="GET",route="unmatched"} 1`,
		`companias_http_requests_total{code="2xx",method="POST",route="/v1/companias/:id/aprobar"} 1`,
		`companias_http_requests_total{code="4xx",method="POST",route="/v1/companias/:id/rechazar"} 1`,
		`companias_http_requests_total{code="5xx",method="POST",route="/v1/companias/:id/rechazar"} 1`,
		`companias_http_request_duration_seconds_count{method="GET",route="/healthz"} 2`,
		`companias_http_request_duration_seconds_count{method="POST",route="/v1/companias/:id/rechazar"} 2`,
	)
	if strings.Contains(body, id) {
		t.Errorf("a raw path (company id %s) leaked into a label", id)
	}
}

// TestMetricsAreNotOnTheAPIPort checks that GET /metrics is an unknown
// route of the API (a 404 problem): the exposition lives on the admin
// listener (METRICS_ADDR).
func TestMetricsAreNotOnTheAPIPort(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newMemRepo())
	wantProblem(t, e.do(req{method: "GET", path: "/metrics"}), http.StatusNotFound, "route_not_found")
}
