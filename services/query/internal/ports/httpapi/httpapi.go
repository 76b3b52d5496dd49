// Package httpapi is the HTTP port of the query service: the read endpoints
// of the companias views (with read-your-writes waits, ETags and cursor
// pagination), the prototype-compatible routes, the projection status, the
// rebuild admin endpoints, health and readiness probes and the OpenAPI
// document (the Prometheus metrics are served on the admin listener, not
// here). It renders the read models of package view as JSON and errors as
// RFC 9457 problem details; *gin.Context never leaves this package.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/retry"
	"github.com/propalpes/companias/services/query/internal/view"
)

// Views reads the companias read model. Get returns an error matching
// view.ErrNotFound (errors.Is) when no view exists for id. Errors of kind
// apperr.Unavailable become 503; any other error becomes a generic 500.
// Implementations must treat every string they receive as a literal value,
// never as a query operator.
type Views interface {
	Get(ctx context.Context, id string) (view.Compania, error)
	List(ctx context.Context, f view.Filter) (view.Page, error)
	Estadisticas(ctx context.Context) (view.Estadisticas, error)
}

// Pinger checks that the view store is reachable; the readiness probe calls it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Projection reports the state of the projection consumer. Both methods
// must be safe for concurrent use and must not block.
type Projection interface {
	// Status returns the progress of each partition of the events topic.
	Status() []view.PartitionStatus
	// Joined reports whether the consumer has joined its group and holds an
	// assignment (the readiness probe requires it).
	Joined() bool
}

// Rebuilder starts and reports view rebuilds. Methods must be safe for
// concurrent use.
type Rebuilder interface {
	// Start begins a rebuild in the background and returns its initial
	// progress. ctx bounds only the start itself: the rebuild keeps running
	// after the HTTP request ends, until it finishes or the service stops.
	// If a rebuild is already running, Start returns an error of kind
	// apperr.Conflict (rendered as 409).
	Start(ctx context.Context) (view.RebuildProgress, error)
	// Progress returns the progress of the current or last rebuild
	// (State "idle" if none ever ran).
	Progress() view.RebuildProgress
}

// ChangeNotifier is an optional hook that lets a read-your-writes wait wake
// up as soon as the projection applies something, instead of only on its
// polling backoff.
type ChangeNotifier interface {
	// Changed returns a channel that is closed the next time the projection
	// applies a batch of events.
	Changed() <-chan struct{}
}

// IDChangeNotifier is a ChangeNotifier that can also say which views a
// batch wrote. When Deps.Changes implements it, a wait on an id is woken
// only by the batches that wrote that id.
type IDChangeNotifier interface {
	ChangeNotifier
	// ChangedID returns a channel that is closed the next time the
	// projection applies a batch that wrote the view of id, and a function
	// that releases the subscription (called once the channel is no longer
	// watched, closed or not).
	ChangedID(id string) (<-chan struct{}, func())
}

// Deps are the collaborators of the API. Every field but Changes, ObserveRequest
// and Auth is required.
type Deps struct {
	Views      Views
	Store      Pinger
	Projection Projection
	Rebuild    Rebuilder
	// Changes, if not nil, wakes read-your-writes waits early.
	Changes ChangeNotifier
	// Logger receives the access log (at debug) and each error, once.
	Logger *slog.Logger
	// ObserveRequest, if not nil, is the request-metrics hook
	// (httpkit.ObserveFunc: route template, bounded method, status,
	// duration).
	ObserveRequest httpkit.ObserveFunc
	// Auth, if not nil, guards the read routes with bearer tokens holding
	// AuthScopeRead, and the rebuild routes with AuthScopeAdmin. While it is
	// nil the API is open (AUTH_MODE=none). The probes and /openapi.json are
	// always open.
	Auth Authenticator
}

// Options tune the API. Zero fields take the defaults below.
type Options struct {
	// DefaultWait is the read-your-writes wait when a request sets
	// min_version without wait (default 2s).
	DefaultWait time.Duration
	// MaxWait is the largest wait a request may ask for (default 10s).
	MaxWait time.Duration
	// PollMin and PollMax bound the polling backoff of a read-your-writes
	// wait (defaults 5ms and 100ms).
	PollMin, PollMax time.Duration
	// RetryAfter is sent in the Retry-After header of a 503 when the view
	// did not reach the requested version (default 1s, rounded up to whole seconds).
	RetryAfter time.Duration
	// ReadyTimeout bounds the store ping of the readiness probe (default 2s).
	ReadyTimeout time.Duration
	// MaxWaits is the most read-your-writes waits running at once; a GET
	// with min_version beyond it answers 503 too_many_waits with
	// Retry-After (default 1000).
	MaxWaits int
	// QueryTimeout bounds each store read of a read-your-writes wait
	// (default 5s).
	QueryTimeout time.Duration
}

// Default option values.
const (
	DefaultWait         = 2 * time.Second
	DefaultMaxWait      = 10 * time.Second
	DefaultPollMin      = 5 * time.Millisecond
	DefaultPollMax      = 100 * time.Millisecond
	DefaultRetryAfter   = time.Second
	DefaultReadyTimeout = 2 * time.Second
	DefaultMaxWaits     = 1000
	DefaultQueryTimeout = 5 * time.Second
)

// pollBackoff is the polling schedule of a read-your-writes wait: PollMin,
// doubled after each poll that found the view behind, capped at PollMax;
// no jitter (the wait is one request's, not a crowd's retry).
func (o Options) pollBackoff() retry.Backoff {
	return retry.Backoff{Min: o.PollMin, Max: o.PollMax}
}

func (o Options) withDefaults() Options {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&o.DefaultWait, DefaultWait)
	set(&o.MaxWait, DefaultMaxWait)
	set(&o.PollMin, DefaultPollMin)
	set(&o.PollMax, DefaultPollMax)
	set(&o.RetryAfter, DefaultRetryAfter)
	set(&o.ReadyTimeout, DefaultReadyTimeout)
	set(&o.QueryTimeout, DefaultQueryTimeout)
	if o.MaxWaits <= 0 {
		o.MaxWaits = DefaultMaxWaits
	}
	if o.DefaultWait > o.MaxWait {
		o.DefaultWait = o.MaxWait
	}
	if o.PollMax < o.PollMin {
		o.PollMax = o.PollMin
	}
	return o
}

// Authenticator verifies bearer tokens; see httpkit.Authenticator.
type Authenticator = httpkit.Authenticator

// Route is one registered (method, path) pair, with the path in OpenAPI
// form ("/v1/companias/{id}").
type Route = httpkit.Route

// API is the HTTP handler of the query service. It is safe for concurrent
// use; build it with New.
type API struct {
	deps   Deps
	opts   Options
	log    *slog.Logger
	kit    *httpkit.Kit
	engine *gin.Engine
	waits  *waits
}

// New builds the API. It returns an error naming every missing required
// dependency, so that wiring mistakes surface at start-up rather than
// mid-request. The gin engine comes from httpkit (which puts gin in release
// mode): request id, traceparent (checked and dropped with a Warn when
// invalid; the reader records no span), Debug access log, panic recovery
// and the metrics hook.
func New(deps Deps, opts Options) (*API, error) {
	var errs []error
	if deps.Views == nil {
		errs = append(errs, errors.New("httpapi: Views is required"))
	}
	if deps.Store == nil {
		errs = append(errs, errors.New("httpapi: Store is required"))
	}
	if deps.Projection == nil {
		errs = append(errs, errors.New("httpapi: Projection is required"))
	}
	if deps.Rebuild == nil {
		errs = append(errs, errors.New("httpapi: Rebuild is required"))
	}
	if deps.Logger == nil {
		errs = append(errs, errors.New("httpapi: Logger is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a := &API{deps: deps, opts: opts.withDefaults(), log: deps.Logger,
		kit: httpkit.New(httpkit.Options{Logger: deps.Logger, Observe: deps.ObserveRequest, Auth: deps.Auth})}
	a.waits = newWaits(deps.Views, deps.Changes, a.opts)
	a.engine = a.routes()
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.engine.ServeHTTP(w, r) }

// Routes lists the registered routes, sorted by path then method, with path
// parameters in OpenAPI form.
func (a *API) Routes() []Route { return httpkit.Routes(a.engine) }

func (a *API) routes() *gin.Engine {
	e := a.kit.Engine()

	e.GET("/healthz", a.healthz)
	e.GET("/readyz", a.readyz)
	e.GET("/openapi.json", a.openAPI)

	read, admin := a.kit.Authorize(AuthScopeRead), a.kit.Authorize(AuthScopeAdmin)
	v1 := e.Group("/v1")
	v1.GET("/companias", read, a.listCompanias)
	v1.GET("/companias/:id", read, a.getCompania)
	v1.GET("/estadisticas", read, a.estadisticas)
	v1.GET("/proyecciones", read, a.proyecciones)
	v1.POST("/admin/rebuild", admin, a.startRebuild)
	v1.GET("/admin/rebuild", admin, a.rebuildProgress)

	// Routes of the Python prototype, kept for its clients.
	e.GET("/health", a.legacyHealth)
	e.GET("/ingestion/compania-query", read, a.legacyList)
	e.GET("/ingestion/compania-query/:id", read, a.legacyGet)
	return e
}
