// Package metrics defines the Prometheus metrics of the query service
// (names prefixed companias_): HTTP requests by route, projection freshness,
// dead letters and version gaps (recorded through the consumer's hooks), and
// collectors evaluated at scrape time for the consumer's running counters and
// the rebuild progress. The consumer lag is libs/kafkakit/grouplag's
// collector, shared with the command service.
//
// Nothing here is global: main builds a prometheus.Registry, registers what
// New and the New… collectors return, passes the recording methods down as
// hooks and serves the registry with Handler.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propalpes/companias/libs/telemetry/httpmetrics"
	"github.com/propalpes/companias/services/query/internal/view"
)

// Metrics are the event-driven metrics of the query service. Its methods
// are safe for concurrent use.
type Metrics struct {
	// Requests are the HTTP request metrics; its ObserveRequest (by route
	// template, method and status) is the HTTP port's hook.
	*httpmetrics.Requests

	freshness   prometheus.Histogram
	deadLetters *prometheus.CounterVec
	versionGaps prometheus.Counter
}

// New creates the metrics and registers them with reg; it fails if one of
// their names is already registered there.
func New(reg prometheus.Registerer) (*Metrics, error) {
	requests, err := httpmetrics.NewRequests(reg)
	if err != nil {
		return nil, err
	}
	m := &Metrics{
		Requests: requests,
		freshness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "companias_projection_freshness_seconds",
			Help:    "Time from an event's occurrence (ce_time) to its projection into the views, per event applied by the live consumer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "companias_dlq_messages_total",
			Help: "Events of the live consumer copied to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		versionGaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "companias_projection_version_gaps_total",
			Help: "Events the live consumer applied more than one version above the company's previous version (the stored view's, or the previous event's in the same batch): events lost upstream or discarded from the outbox.",
		}),
	}
	for _, c := range []prometheus.Collector{m.freshness, m.deadLetters, m.versionGaps} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Applied observes now − t as the freshness of each event applied; an
// event time ahead of this clock counts as 0. It is the live consumer's
// consumer.Config.OnApplied hook.
func (m *Metrics) Applied(eventTimes []time.Time) {
	now := time.Now()
	for _, t := range eventTimes {
		m.freshness.Observe(max(now.Sub(t).Seconds(), 0))
	}
}

// DeadLettered counts one event dead-lettered for reason (a
// deadletter.Reason* value). It is the live consumer's
// consumer.Config.OnDeadLetter hook.
func (m *Metrics) DeadLettered(reason string) {
	m.deadLetters.WithLabelValues(reason).Inc()
}

// VersionGap counts one version gap; its content is not used as a label
// (the log line carries it). It is the live consumer's
// consumer.Config.OnVersionGap hook.
func (m *Metrics) VersionGap(view.VersionGap) {
	m.versionGaps.Inc()
}

// Handler serves the metrics gathered from g (httpmetrics.Handler).
func Handler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return httpmetrics.Handler(g, log)
}
