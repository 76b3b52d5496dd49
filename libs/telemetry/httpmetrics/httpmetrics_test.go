package httpmetrics_test

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propalpes/companias/libs/telemetry/httpmetrics"
)

func TestStatusClass(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]string{200: "2xx", 201: "2xx", 304: "3xx", 404: "4xx", 499: "4xx", 500: "5xx", 503: "5xx", 0: "0", 600: "600"} {
		if got := httpmetrics.StatusClass(code); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestRequests(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	r, err := httpmetrics.NewRequests(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := httpmetrics.NewRequests(reg); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
	r.ObserveRequest("/v1/companias/:id", "GET", 404, time.Millisecond)
	r.ObserveRequest("", "GET", 404, time.Millisecond)
	rec := httptest.NewRecorder()
	httpmetrics.Handler(reg, slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`companias_http_requests_total{code="4xx",method="GET",route="/v1/companias/:id"} 1`,
		`companias_http_requests_total{code="4xx",method="GET",route="unmatched"} 1`,
		`companias_http_request_duration_seconds_count{method="GET",route="unmatched"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}
