package service

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/metrics"
)

// TestIntegrationMetricsWiring checks what main registers: every metric of
// the service shows in one scrape of the service's own registry.
func TestIntegrationMetricsWiring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	build := buildinfo.Info{Version: "v9.9.9-test", Revision: "abc123", GoVersion: "go1.26.8"}
	m, backlog, err := newMetrics(reg, build, pool, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := backlog.Refresh(ctx); err != nil { // what its Run does every interval
		t.Fatal(err)
	}
	m.ObserveRequest("/healthz", "GET", 200, time.Millisecond)
	m.RowPublished(time.Now())
	m.DeadLettered(deadletter.ReasonMalformed)

	rec := httptest.NewRecorder()
	metrics.Handler(reg, log).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape = %d", rec.Code)
	}
	for _, name := range []string{
		"companias_http_requests_total", "companias_http_request_duration_seconds_bucket",
		"companias_relay_published_rows_total 1", "companias_relay_publish_latency_seconds_count 1",
		`companias_dlq_messages_total{reason="` + deadletter.ReasonMalformed + `"} 1`,
		"companias_outbox_backlog_rows 0", "companias_outbox_oldest_unpublished_age_seconds 0", "companias_outbox_backlog_up 1",
		"companias_outbox_parked_rows 0", `companias_outbox_parked_total{reason="too_large"} 0`,
		"go_goroutines", "process_start_time_seconds",
		`companias_command_build_info{goversion="go1.26.8",revision="abc123",version="v9.9.9-test"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("scrape lacks %s", name)
		}
	}
	if _, _, err := newMetrics(reg, build, pool, log); err == nil {
		t.Error("registering the metrics twice on one registry = nil error")
	}
}
