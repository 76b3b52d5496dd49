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
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// UnmatchedRoute is the route label of a request that matched no route
// (404, 405): the raw path is never a label, so that scans of random paths
// cannot grow the number of series.
const UnmatchedRoute = "unmatched"

// Metrics are the event-driven metrics of the command service. Its methods
// are safe for concurrent use.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	publishLatency prometheus.Histogram
	published      prometheus.Counter
	deadLetters    *prometheus.CounterVec
}

// New creates the metrics and registers them with reg; it fails if one of
// their names is already registered there.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "companias_http_requests_total",
			Help: "HTTP requests served, by route template, method and status class (2xx, 4xx, 5xx…).",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "companias_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
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
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.publishLatency, m.published, m.deadLetters} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveRequest records one served request. route is the route template
// (gin's FullPath, "/v1/companias/:id"); an empty route is recorded as
// UnmatchedRoute.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	if route == "" {
		route = UnmatchedRoute
	}
	m.requests.WithLabelValues(route, method, StatusClass(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
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

// StatusClass returns the class of an HTTP status code: "2xx" for 200–299
// and so on; a code outside 100–599 is returned as is.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return strconv.Itoa(status)
	}
	return strconv.Itoa(status/100) + "xx"
}

// Handler serves the metrics gathered from g in the Prometheus exposition
// formats. A collector that fails is logged to log and left out of the
// scrape, which still succeeds with the other metrics.
func Handler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
