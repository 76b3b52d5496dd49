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

// Made-up methods, as any client may send before any auth check, share one
// series per route: the label sets stay bounded.
func TestRequestsBoundTheMethodLabel(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	r, err := httpmetrics.NewRequests(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		r.ObserveRequest("", "X-METHOD-"+strings.Repeat("A", i%40)+string(rune('A'+i%26)), 405, time.Millisecond)
	}
	r.ObserveRequest("", "GET", 404, time.Millisecond)
	r.ObserveRequest("", "get", 404, time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		methods := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" {
					methods[l.GetValue()] = true
				}
			}
		}
		if len(methods) != 2 || !methods["GET"] || !methods[httpmetrics.OtherMethod] {
			t.Errorf("%s: method labels %v, want exactly GET and %q", mf.GetName(), methods, httpmetrics.OtherMethod)
		}
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"} {
		if got := httpmetrics.Method(m); got != m {
			t.Errorf("Method(%q) = %q", m, got)
		}
	}
}
