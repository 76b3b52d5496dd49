// Package httpmetrics holds the Prometheus pieces both companias services
// share: the HTTP request metrics (by route template, method and status
// class) and the handler that serves a registry.
package httpmetrics

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

// Requests are the HTTP request metrics companias_http_requests_total and
// companias_http_request_duration_seconds. Its methods are safe for
// concurrent use.
type Requests struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewRequests creates the request metrics and registers them with reg; it
// fails if one of their names is already registered there.
func NewRequests(reg prometheus.Registerer) (*Requests, error) {
	r := &Requests{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "companias_http_requests_total",
			Help: "HTTP requests served, by route template, method and status class (2xx, 4xx, 5xx…).",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "companias_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	for _, c := range []prometheus.Collector{r.total, r.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// OtherMethod is the method label of a request whose method is not one of
// the standard HTTP methods: a client may send any token as a method, and
// none of them may become a new series.
const OtherMethod = "other"

// Method returns the metric label of an HTTP request method: the method
// itself if it is one of the standard methods of RFC 9110 and RFC 5789
// (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE; case
// matters, as in HTTP), else OtherMethod.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return OtherMethod
}

// ObserveRequest records one served request. route is the route template
// (gin's FullPath, "/v1/companias/:id"); an empty route is recorded as
// UnmatchedRoute. method is bounded by Method, so the labels of the
// request metrics come from fixed sets whatever the client sends.
func (r *Requests) ObserveRequest(route, method string, status int, d time.Duration) {
	if route == "" {
		route = UnmatchedRoute
	}
	method = Method(method)
	r.total.WithLabelValues(route, method, StatusClass(status)).Inc()
	r.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// StatusClass returns the class of an HTTP status code: "2xx" for 200–299
// and so on; a code outside 100–599 is returned as is.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return strconv.Itoa(status)
	}
	return statusClasses[status/100-1] // a constant: no string built per request
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Handler serves the metrics gathered from g in the Prometheus exposition
// formats. A collector that fails is logged to log and left out of the
// scrape, which still succeeds with the other metrics.
func Handler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
