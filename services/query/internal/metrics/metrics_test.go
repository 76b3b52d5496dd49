package metrics_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/services/query/internal/metrics"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/rebuild"
	"github.com/propalpes/companias/services/query/internal/view"
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

func compare(t *testing.T, g prometheus.Gatherer, expected string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(g, strings.NewReader(expected), names...); err != nil {
		t.Error(err)
	}
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
	m.ObserveRequest("/v1/companias/:id", "GET", 200, time.Millisecond)
	m.ObserveRequest("/v1/companias/:id", "GET", 503, time.Millisecond)
	m.ObserveRequest("", "DELETE", 405, time.Millisecond)
	compare(t, reg, `
# HELP companias_http_requests_total HTTP requests served, by route template, method and status class (2xx, 4xx, 5xx…).
# TYPE companias_http_requests_total counter
companias_http_requests_total{code="2xx",method="GET",route="/v1/companias/:id"} 1
companias_http_requests_total{code="5xx",method="GET",route="/v1/companias/:id"} 1
companias_http_requests_total{code="4xx",method="DELETE",route="unmatched"} 1
`, "companias_http_requests_total")
	if n := testutil.CollectAndCount(reg, "companias_http_request_duration_seconds"); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
}

func TestAppliedObservesFreshness(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	now := time.Now()
	m.Applied([]time.Time{now.Add(-3 * time.Second), now.Add(-time.Second), now.Add(time.Hour)})
	m.Applied(nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "companias_projection_freshness_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		// 3s + 1s + 0 (an event time ahead of this clock), plus the test's own time.
		if h.GetSampleCount() != 3 || h.GetSampleSum() < 4 || h.GetSampleSum() > 5 {
			t.Errorf("freshness: count %d sum %g, want 3 and ~4s", h.GetSampleCount(), h.GetSampleSum())
		}
		return
	}
	t.Fatal("no companias_projection_freshness_seconds")
}

func TestDeadLettered(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	m.DeadLettered(deadletter.ReasonMalformed)
	m.DeadLettered(deadletter.ReasonUnsupportedVersion)
	m.DeadLettered(deadletter.ReasonMalformed)
	compare(t, reg, `
# HELP companias_dlq_messages_total Events of the live consumer copied to the dead-letter topic, by reason.
# TYPE companias_dlq_messages_total counter
companias_dlq_messages_total{reason="`+deadletter.ReasonMalformed+`"} 2
companias_dlq_messages_total{reason="`+deadletter.ReasonUnsupportedVersion+`"} 1
`, "companias_dlq_messages_total")
}

type fakeCounters struct{ c consumer.Counters }

func (f fakeCounters) Counters() consumer.Counters { return f.c }

func TestCounters(t *testing.T) {
	t.Parallel()
	c := metrics.NewCounters(fakeCounters{consumer.Counters{Applied: 7, SkippedUnknown: 2, DeadLettered: 1, Retries: 4, WriteTimeouts: 3}})
	err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP companias_events_applied_total Events the live consumer wrote to the views (redeliveries included).
# TYPE companias_events_applied_total counter
companias_events_applied_total 7
# HELP companias_events_skipped_unknown_total Events of an unknown type of a known major version (a newer contract), counted and skipped.
# TYPE companias_events_skipped_unknown_total counter
companias_events_skipped_unknown_total 2
# HELP companias_projection_retries_total Failed view-store or dead-letter writes of the live consumer that were retried.
# TYPE companias_projection_retries_total counter
companias_projection_retries_total 4
# HELP companias_projection_store_timeouts_total View-store writes of the live consumer cancelled at PROJECTION_WRITE_TIMEOUT and retried (also counted in companias_projection_retries_total).
# TYPE companias_projection_store_timeouts_total counter
companias_projection_store_timeouts_total 3
`))
	if err != nil {
		t.Error(err)
	}
}

type fakeProgress struct{ p view.RebuildProgress }

func (f fakeProgress) Progress() view.RebuildProgress { return f.p }

func TestRebuild(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		p     view.RebuildProgress
		ratio float64
		state string
	}{
		{"never ran", view.RebuildProgress{State: rebuild.StateIdle}, 0, rebuild.StateIdle},
		{"running", view.RebuildProgress{State: rebuild.StateRunning, Processed: 25, Total: 100}, 0.25, rebuild.StateRunning},
		{"empty topic done", view.RebuildProgress{State: rebuild.StateDone}, 1, rebuild.StateDone},
		{"over the start watermarks", view.RebuildProgress{State: rebuild.StateSwitching, Processed: 120, Total: 100}, 1, rebuild.StateSwitching},
		{"failed", view.RebuildProgress{State: rebuild.StateFailed, Processed: 10, Total: 40}, 0.25, rebuild.StateFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(metrics.NewRebuild(fakeProgress{tc.p}))
			var states strings.Builder
			for _, s := range []string{"done", "failed", "idle", "running", "switching"} {
				v := "0"
				if s == tc.state {
					v = "1"
				}
				states.WriteString(`companias_rebuild_state{state="` + s + `"} ` + v + "\n")
			}
			compare(t, reg, `
# HELP companias_rebuild_progress_ratio Progress of the current or last view rebuild, from 0 to 1.
# TYPE companias_rebuild_progress_ratio gauge
companias_rebuild_progress_ratio `+ftoa(tc.ratio)+`
# HELP companias_rebuild_processed_events Events replayed by the current or last view rebuild.
# TYPE companias_rebuild_processed_events gauge
companias_rebuild_processed_events `+ftoa(float64(tc.p.Processed))+`
# HELP companias_rebuild_total_events Events the current or last view rebuild replays (the high watermarks at its start).
# TYPE companias_rebuild_total_events gauge
companias_rebuild_total_events `+ftoa(float64(tc.p.Total))+`
# HELP companias_rebuild_state State of the current or last view rebuild: 1 for the current state, 0 for the others.
# TYPE companias_rebuild_state gauge
`+states.String())
		})
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

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
	rec := httptest.NewRecorder()
	metrics.Handler(reg, slog.New(slog.NewTextHandler(&logs, nil))).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
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

func TestRebuildUnknownStateIsStillShown(t *testing.T) {
	t.Parallel()
	c := metrics.NewRebuild(fakeProgress{view.RebuildProgress{State: "paused"}})
	if n := testutil.CollectAndCount(c, "companias_rebuild_state"); n != 6 {
		t.Errorf("%d state series, want the 5 known states and the unknown one", n)
	}
}

func TestVersionGap(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t)
	m.VersionGap(view.VersionGap{CompaniaID: "a", Previous: 2, Version: 4})
	m.VersionGap(view.VersionGap{CompaniaID: "b", Version: 3, InBatch: true})
	compare(t, reg, `
# HELP companias_projection_version_gaps_total Events the live consumer applied more than one version above the company's previous version (the stored view's, or the previous event's in the same batch): events lost upstream or discarded from the outbox.
# TYPE companias_projection_version_gaps_total counter
companias_projection_version_gaps_total 2
`, "companias_projection_version_gaps_total")
}
