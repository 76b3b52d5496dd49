package metrics_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/services/command/internal/metrics"
)

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestNewRefusesADuplicateRegistration(t *testing.T) {
	t.Parallel()
	_, reg := newMetrics(t)
	if _, err := metrics.New(reg); err == nil {
		t.Fatal("New on a registry that already has the metrics = nil error")
	}
}

func TestObserveRequest(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	m.ObserveRequest("/v1/companias/:id", "PATCH", 200, 3*time.Millisecond)
	m.ObserveRequest("/v1/companias/:id", "PATCH", 204, time.Millisecond)
	m.ObserveRequest("/v1/companias/:id", "PATCH", 412, time.Millisecond)
	m.ObserveRequest("", "GET", 404, time.Millisecond)
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP companias_http_requests_total HTTP requests served, by route template, method and status class (2xx, 4xx, 5xx…).
# TYPE companias_http_requests_total counter
companias_http_requests_total{code="2xx",method="PATCH",route="/v1/companias/:id"} 2
companias_http_requests_total{code="4xx",method="PATCH",route="/v1/companias/:id"} 1
companias_http_requests_total{code="4xx",method="GET",route="unmatched"} 1
`), "companias_http_requests_total")
	if err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "companias_http_request_duration_seconds"); n != 2 {
		t.Errorf("%d duration series, want 2 (one per route and method)", n)
	}
	sum, count := histogram(t, reg, "companias_http_request_duration_seconds", "route=/v1/companias/:id")
	if count != 3 || sum < 0.0049 || sum > 0.0051 {
		t.Errorf("duration of /v1/companias/:id: count %d sum %g, want 3 and 0.005", count, sum)
	}
}

func TestRowPublished(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	m.RowPublished(time.Now().Add(-2 * time.Second))
	m.RowPublished(time.Now().Add(-4 * time.Second))
	m.RowPublished(time.Now().Add(time.Hour)) // a clock ahead of ours counts as 0, not negative
	if n, err := gatherValue(reg, "companias_relay_published_rows_total", ""); err != nil || n != 3 {
		t.Errorf("published rows = %g (%v), want 3", n, err)
	}
	sum, count := histogram(t, reg, "companias_relay_publish_latency_seconds", "")
	if count != 3 || sum < 6 || sum > 7 {
		t.Errorf("publish latency: count %d sum %g, want 3 and ~6s", count, sum)
	}
}

func TestDeadLettered(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	m.DeadLettered(deadletter.ReasonMalformed)
	m.DeadLettered(deadletter.ReasonMalformed)
	m.DeadLettered(deadletter.ReasonConflict)
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP companias_dlq_messages_total Commands of the Kafka intake copied to the dead-letter topic, by reason.
# TYPE companias_dlq_messages_total counter
companias_dlq_messages_total{reason="`+deadletter.ReasonConflict+`"} 1
companias_dlq_messages_total{reason="`+deadletter.ReasonMalformed+`"} 2
`), "companias_dlq_messages_total")
	if err != nil {
		t.Error(err)
	}
}

func TestRowParked(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	m.InitParkReasons([]string{"too_large", "bad_headers"})
	m.RowParked("too_large")
	m.RowParked("too_large")
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP companias_outbox_parked_total Outbox rows this process's relay parked (not published: Kafka refused them permanently, or they could not be read), by reason.
# TYPE companias_outbox_parked_total counter
companias_outbox_parked_total{reason="bad_headers"} 0
companias_outbox_parked_total{reason="too_large"} 2
`), "companias_outbox_parked_total")
	if err != nil {
		t.Error(err)
	}
}

// failingCollector fails every scrape.
type failingCollector struct{ desc *prometheus.Desc }

func (f failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }
func (f failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(f.desc, errors.New("broken"))
}

func TestHandlerServesTheRestWhenACollectorFails(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	reg.MustRegister(failingCollector{prometheus.NewDesc("companias_broken", "x", nil, nil)})
	m.DeadLettered(deadletter.ReasonInvalid)
	var logs strings.Builder
	h := metrics.Handler(reg, slog.New(slog.NewTextHandler(&logs, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), `companias_dlq_messages_total{reason="`+deadletter.ReasonInvalid+`"} 1`) {
		t.Errorf("scrape lacks the healthy metrics:\n%s", rec.Body)
	}
	if !strings.Contains(logs.String(), "broken") {
		t.Errorf("the collector's error was not logged: %q", logs.String())
	}
}

// hasLabel reports whether m has the label "name=value" of match ("" matches
// every series).
func hasLabel(m *dto.Metric, match string) bool {
	if match == "" {
		return true
	}
	name, value, _ := strings.Cut(match, "=")
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// gatherValue returns the value of the first counter or gauge series of name
// with the label match ("name=value", "" for any).
func gatherValue(g prometheus.Gatherer, name, match string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabel(m, match) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), nil
			case m.Gauge != nil:
				return m.Gauge.GetValue(), nil
			}
		}
	}
	return 0, errors.New(name + " not found")
}

// histogram returns the sum and count of the first histogram series of name
// with the label match ("name=value", "" for any).
func histogram(t *testing.T, g prometheus.Gatherer, name, match string) (float64, uint64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil && hasLabel(m, match) {
				return h.GetSampleSum(), h.GetSampleCount()
			}
		}
	}
	t.Fatalf("no %s series matching %q", name, match)
	return 0, 0
}
