package httpapi_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propalpes/companias/libs/httpkit/httpkittest"
	"github.com/propalpes/companias/services/query/internal/metrics"
	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
)

func TestMetricsCountRequestsByRouteTemplate(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	views := newFakeViews(rechazada())
	e := newEnv(t, views, func(d *httpapi.Deps, _ *httpapi.Options) {
		d.ObserveRequest = m.ObserveRequest
	})
	for _, path := range []string{"/v1/companias/c-1", "/v1/companias/c-1", "/v1/companias/nope-42", "/healthz", "/no/such/route-77"} {
		e.do(t, http.MethodGet, path)
	}
	e.do(t, http.MethodDelete, "/v1/companias/c-1") // 405
	views.mu.Lock()
	views.panicky = true
	views.mu.Unlock()
	if rec := e.do(t, http.MethodGet, "/v1/companias/c-1"); rec.Code != http.StatusInternalServerError {
		t.Fatalf("panicking handler = %d, want 500", rec.Code)
	}

	// The exposition is served on the admin listener; scrape its handler.
	body := httpkittest.WantMetrics(t, metrics.Handler(reg, slog.New(slog.DiscardHandler)),
		`companias_http_requests_total{code="2xx",method="GET",route="/v1/companias/:id"} 2`,
		`companias_http_requests_total{code="4xx",method="GET",route="/v1/companias/:id"} 1`,
		`companias_http_requests_total{code="5xx",method="GET",route="/v1/companias/:id"} 1`,
		`companias_http_requests_total{code="2xx",method="GET",route="/healthz"} 1`,
		`companias_http_requests_total{code="4xx",method="GET",route="unmatched"} 1`,
		`companias_http_requests_total{code="4xx",method="DELETE",route="unmatched"} 1`,
		`companias_http_request_duration_seconds_count{method="GET",route="/v1/companias/:id"} 4`,
	)
	for _, raw := range []string{"c-1", "nope-42", "route-77"} {
		if strings.Contains(body, raw) {
			t.Errorf("the raw path segment %q leaked into a label", raw)
		}
	}
}

// TestMetricsAreNotOnTheAPIPort checks that GET /metrics is an unknown
// route of the API (a 404 problem): the exposition lives on the admin
// listener (METRICS_ADDR).
func TestMetricsAreNotOnTheAPIPort(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews())
	p := wantProblem(t, e.do(t, http.MethodGet, "/metrics"), http.StatusNotFound)
	if p.Code != "route_not_found" {
		t.Errorf("problem code = %q, want route_not_found", p.Code)
	}
}
