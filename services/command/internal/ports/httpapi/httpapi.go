// Package httpapi is the HTTP port of the command service: the gin router
// with the company commands (/v1/companias…), the Python prototype's
// routes kept for its clients (legacy: /health, /ingestion/compania-comando),
// health and readiness probes and the OpenAPI document. The
// Prometheus metrics are served on the admin listener, not here.
//
// Handlers are thin: they check the request's shape (media type, size, JSON
// syntax, headers), build an app command, run it and write the result.
// Every error becomes an RFC 9457 problem in exactly one place,
// httpkit.Kit.Fail, where application errors are mapped with
// problem.FromError and 5xx causes are logged once.
package httpapi

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/app"
)

// MaxBodyBytes is the largest request body accepted (1 MiB); a larger one is
// answered with 413.
const MaxBodyBytes = 1 << 20

// Idempotency scopes of the two creating routes. Their key spaces are
// separate, so the same Idempotency-Key sent to both creates two companies.
// With authentication each caller has its own key space within a route:
// the stored scope is the route's followed by ":sub:<digest>" (see
// API.idempotency); without it the route's scope is used as is. The values
// are stored with the keys: they never change.
const (
	ScopeCrear  = "http:POST /v1/companias"
	ScopeLegacy = "http:POST /ingestion/compania-comando"
)

//go:embed openapi.json
var openAPIDocument []byte

// Deps are the collaborators of the API. App, Ready and Logger are
// required; the rest are optional.
type Deps struct {
	// App holds the use cases; every command handler must be set.
	App app.Application
	// Ready reports whether the service can serve traffic (PostgreSQL
	// reachable, migrations applied). It is called by GET /readyz with a
	// context bounded by Options.ReadyTimeout; a non-nil error answers 503.
	Ready func(context.Context) error
	// Logger receives 5xx causes (Error; 503 at Warn), recovered panics and
	// one Debug access-log line per request.
	Logger *slog.Logger
	// ObserveRequest, if set, is the request-metrics hook (httpkit.ObserveFunc:
	// route template, bounded method, status, duration).
	ObserveRequest httpkit.ObserveFunc
	// Auth, if set, guards the command routes with bearer tokens: creating,
	// updating and the legacy route need AuthScopeWrite, approving and
	// rejecting AuthScopeApprove. While it is nil the API is open
	// (AUTH_MODE=none). The probes and /openapi.json are always open.
	Auth Authenticator
	// Parked, if set, reports the outbox rows the relay parked: their number
	// and the ids of the first limit of them. GET /readyz shows them in its
	// details; parked rows never make the service unready (the relay and
	// every other company's events work; an operator must act on them).
	// outbox.ParkedOutbox.Count implements it. Optional.
	Parked func(ctx context.Context, limit int) (count int64, ids []int64, err error)
	// Tracer, if set, runs each request in a server span named
	// "METHOD /route/template", child of the request's valid traceparent
	// (or the root of a new trace), and the commands store that span's
	// context as their traceparent. While it is nil no span is made and the
	// request's own traceparent, if valid, is passed on as is.
	Tracer trace.Tracer
}

// Options tune the API. Zero fields take the defaults below.
type Options struct {
	// ReadyTimeout bounds one readiness check, so that a hung dependency
	// turns into a 503 instead of a probe that never answers (default 2s).
	ReadyTimeout time.Duration
}

// DefaultReadyTimeout is the default of Options.ReadyTimeout.
const DefaultReadyTimeout = 2 * time.Second

func (o Options) withDefaults() Options {
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	return o
}

// Authenticator verifies bearer tokens; see httpkit.Authenticator.
type Authenticator = httpkit.Authenticator

// Route is one registered (method, path) pair, with the path in OpenAPI
// form ("/v1/companias/{id}").
type Route = httpkit.Route

// API is the HTTP handler of the command service. It is safe for concurrent
// use; build it with New.
type API struct {
	app    app.Application
	ready  func(context.Context) error
	parked func(context.Context, int) (int64, []int64, error) // nil: no outbox details
	log    *slog.Logger
	opts   Options
	kit    *httpkit.Kit
	engine *gin.Engine
}

// New builds the API. It returns an error naming every missing required
// dependency, so that wiring mistakes surface at start-up rather than
// mid-request. The gin engine comes from httpkit (which puts gin in release
// mode): request id, traceparent (with a Tracer, a server span per request),
// Debug access log, panic recovery and the metrics hook.
func New(deps Deps, opts Options) (*API, error) {
	var errs []error
	c := deps.App.Commands
	if c.CrearCompania == nil || c.ActualizarCompania == nil || c.AprobarCompania == nil || c.RechazarCompania == nil {
		errs = append(errs, errors.New("httpapi: every command handler of App is required"))
	}
	if deps.Ready == nil {
		errs = append(errs, errors.New("httpapi: the Ready check is required"))
	}
	if deps.Logger == nil {
		errs = append(errs, errors.New("httpapi: a Logger is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := &API{app: deps.App, ready: deps.Ready, parked: deps.Parked, log: deps.Logger, opts: opts.withDefaults(),
		kit: httpkit.New(httpkit.Options{Logger: deps.Logger, Observe: deps.ObserveRequest, Tracer: deps.Tracer, Auth: deps.Auth})}
	h.engine = h.routes()
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.engine.ServeHTTP(w, r) }

// Routes lists the registered routes, sorted by path then method, with path
// parameters in OpenAPI form.
func (h *API) Routes() []Route { return httpkit.Routes(h.engine) }

func (h *API) routes() *gin.Engine {
	r := h.kit.Engine()
	v1 := r.Group("/v1/companias")
	write, approve := h.kit.Authorize(AuthScopeWrite), h.kit.Authorize(AuthScopeApprove)
	v1.POST("", write, h.crear)
	v1.PATCH("/:id", write, h.actualizar)
	v1.POST("/:id/aprobar", approve, h.aprobar)
	v1.POST("/:id/rechazar", approve, h.rechazar)

	// Routes of the Python prototype, kept for its clients.
	r.GET("/health", h.legacyHealth)
	r.POST("/ingestion/compania-comando", write, h.legacyCrear)

	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	r.GET("/openapi.json", h.openapi)
	routeContract(r, h.kit.Fail)
	return r
}

type statusBody struct {
	Status string `json:"status"`
}

// legacyHealth is the prototype's liveness route, kept for its clients.
func (h *API) legacyHealth(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	h.kit.WriteJSON(c, http.StatusOK, statusBody{Status: "up"})
}

// healthz answers while the process can serve HTTP; it checks no dependency,
// so an orchestrator restarts the process only when it is truly stuck.
func (h *API) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	h.kit.WriteJSON(c, http.StatusOK, statusBody{Status: "alive"})
}

// readyParkedIDs is how many parked row ids GET /readyz lists at most.
const readyParkedIDs = 10

// readyBody is the 200 answer of GET /readyz; its checks mirror the
// reader's.
type readyBody struct {
	Status  string            `json:"status"`
	Checks  map[string]string `json:"checks"`
	Details *readyDetails     `json:"details,omitempty"`
}

// readyDetails tells the operator about parked outbox rows.
type readyDetails struct {
	OutboxParkedRows int64   `json:"outbox_parked_rows"`
	OutboxParkedIDs  []int64 `json:"outbox_parked_ids"`
}

// readyz runs the readiness check; a failure is a 503 problem whose cause is
// logged (at Warn) but not shown. When ready, it adds the parked outbox rows
// (checks.outbox "parked" and details), which do not make it unready.
func (h *API) readyz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.opts.ReadyTimeout)
	defer cancel()
	if err := h.ready(ctx); err != nil {
		h.kit.Fail(c, &apperr.Error{Kind: apperr.Unavailable, Code: "not_ready", Message: "the service is not ready", Err: err})
		return
	}
	body := readyBody{Status: "ready", Checks: map[string]string{"postgres": "ok"}}
	if h.parked != nil {
		n, ids, err := h.parked(ctx, readyParkedIDs)
		switch {
		case err != nil:
			h.log.WarnContext(ctx, "readiness: cannot count parked outbox rows", "err", err)
			body.Checks["outbox"] = "unknown"
		case n > 0:
			body.Checks["outbox"] = "parked"
		default:
			body.Checks["outbox"] = "ok"
		}
		if err == nil {
			body.Details = &readyDetails{OutboxParkedRows: n, OutboxParkedIDs: append([]int64{}, ids...)}
		}
	}
	h.kit.WriteJSON(c, http.StatusOK, body)
}

func (h *API) openapi(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
