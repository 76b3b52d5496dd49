// Package metrics defines the Prometheus metrics of the command service
// (names prefixed companias_): HTTP requests by route, the outbox relay's
// publish latency and throughput, the Kafka intake's dead letters, and the
// outbox backlog, read from PostgreSQL at scrape time.
//
// Nothing here is global: main builds a prometheus.Registry, registers what
// New and NewBacklog return, passes the recording methods down as hooks and
// serves the registry with Handler.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propalpes/companias/libs/telemetry/httpmetrics"
)

// Metrics are the event-driven metrics of the command service. Its methods
// are safe for concurrent use.
type Metrics struct {
	// Requests are the HTTP request metrics; its ObserveRequest (by route
	// template, method and status) is the HTTP port's hook.
	*httpmetrics.Requests

	publishLatency prometheus.Histogram
	published      prometheus.Counter
	deadLetters    *prometheus.CounterVec
	parked         *prometheus.CounterVec
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
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "companias_relay_publish_latency_seconds",
			Help:    "Time from an outbox row's commit (created_at) to its publication to Kafka, per row.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "companias_relay_published_rows_total",
			Help: "Outbox rows published to Kafka and stamped by this process's relay.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "companias_dlq_messages_total",
			Help: "Commands of the Kafka intake copied to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "companias_outbox_parked_total",
			Help: "Outbox rows this process's relay parked (not published: Kafka refused them permanently, or they could not be read), by reason.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.publishLatency, m.published, m.deadLetters, m.parked} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RowPublished records one outbox row published now: it counts the row and
// observes now − createdAt as its commit-to-publish latency. It is the
// relay's outbox.Options.OnRowPublished hook.
func (m *Metrics) RowPublished(createdAt time.Time) {
	m.published.Inc()
	m.publishLatency.Observe(max(time.Since(createdAt).Seconds(), 0))
}

// DeadLettered counts one intake command dead-lettered for reason (one of
// the deadletter.Reason* values). It is kafkaintake.Config.OnDeadLetter.
func (m *Metrics) DeadLettered(reason string) {
	m.deadLetters.WithLabelValues(reason).Inc()
}

// InitParkReasons shows the parked-rows counter at 0 for each of reasons
// (outbox.ParkReasons), so that rate() sees the first one.
func (m *Metrics) InitParkReasons(reasons []string) {
	for _, r := range reasons {
		m.parked.WithLabelValues(r)
	}
}

// RowParked counts one outbox row parked for reason (one of the
// outbox.Park* reasons, a fixed set). It is the relay's
// outbox.Options.OnParked hook.
func (m *Metrics) RowParked(reason string) {
	m.parked.WithLabelValues(reason).Inc()
}

// Handler serves the metrics gathered from g (httpmetrics.Handler).
func Handler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return httpmetrics.Handler(g, log)
}
