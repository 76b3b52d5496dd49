// Package httpapi is the HTTP port of the command service: the gin router
// with the company commands (/v1/companias…), the prototype-compatible
// ingestion route, health and readiness probes and the OpenAPI document. The
// Prometheus metrics are served on the admin listener, not here.
//
// Handlers are thin: they check the request's shape (media type, size, JSON
// syntax, headers), build an app command, run it and write the result.
// Every error becomes an RFC 9457 problem in exactly one place (fail), where
// application errors are mapped with problem.FromError and 5xx causes are
// logged once.
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

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/app"
)

// MaxBodyBytes is the largest request body accepted (1 MiB); a larger one is
// answered with 413.
const MaxBodyBytes = 1 << 20

// readyTimeout bounds one readiness check so that a hung dependency turns
// into a 503 instead of a probe that never answers.
const readyTimeout = 2 * time.Second

// Idempotency scopes of the two creating routes. Their key spaces are
// separate, so the same Idempotency-Key sent to both creates two companies.
// With authentication each caller has its own key space within a route:
// the stored scope is the route's followed by ":sub:<digest>" (see
// handlers.idempotency); without it the route's scope is used as is.
const (
	ScopeCrear     = "http:POST /v1/companias"
	ScopeIngestion = "http:POST /ingestion/compania-comando"
)

//go:embed openapi.json
var openAPIDocument []byte

// Config is what the router needs. All fields are required.
type Config struct {
	// App holds the use cases; every command handler must be set.
	App app.Application
	// Ready reports whether the service can serve traffic (PostgreSQL
	// reachable, migrations applied). It is called by GET /readyz with a
	// context bounded to a few seconds; a non-nil error answers 503.
	Ready func(context.Context) error
	// Logger receives 5xx causes (Error; 503 at Warn), recovered panics and
	// one Debug access-log line per request.
	Logger *slog.Logger
	// ObserveRequest, if set, is called once per request after it was
	// served (a recovered panic included), with gin's route template
	// ("/v1/companias/:id", never the raw path; "" when no route matched),
	// the method, the status and the duration. Optional.
	ObserveRequest func(route, method string, status int, d time.Duration)
	// Auth, if set, guards the command routes with bearer tokens: creating,
	// updating and ingesting need AuthScopeWrite, approving and rejecting
	// AuthScopeApprove. While it is nil the API is open (AUTH_MODE=none).
	// The probes and /openapi.json are always open. Optional.
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
	// request's own traceparent, if valid, is passed on as is. Optional.
	Tracer trace.Tracer
}

func (cfg Config) validate() error {
	var errs []error
	c := cfg.App.Commands
	if c.CrearCompania == nil || c.ActualizarCompania == nil || c.AprobarCompania == nil || c.RechazarCompania == nil {
		errs = append(errs, errors.New("every command handler of App is required"))
	}
	if cfg.Ready == nil {
		errs = append(errs, errors.New("the Ready check is required"))
	}
	if cfg.Logger == nil {
		errs = append(errs, errors.New("a Logger is required"))
	}
	return errors.Join(errs...)
}

// NewRouter builds the gin engine serving the whole API; it is an
// http.Handler safe for concurrent use. It returns an error naming every
// missing dependency of cfg.
//
// It puts gin in release mode (gin.SetMode is process-wide by gin's design;
// release mode silences gin's debug output). The engine has no gin logger or
// recovery: its own middlewares generate or propagate X-Request-Id, extract a
// valid W3C traceparent (with a Tracer, a server span per request), log each
// request at Debug and turn a panic into a 500 problem.
func NewRouter(cfg Config) (*gin.Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	gin.SetMode(gin.ReleaseMode)
	h := &handlers{app: cfg.App, ready: cfg.Ready, parked: cfg.Parked, log: cfg.Logger, observe: cfg.ObserveRequest, auth: cfg.Auth, tracer: cfg.Tracer}

	r := gin.New()
	// An API answers a wrong path with a 404 problem, not a redirect that a
	// client would follow with a changed method or a lost body.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	if h.observe != nil {
		r.Use(h.observeRequest) // first, so that it times and sees everything
	}
	r.Use(h.requestContext)
	if h.tracer != nil {
		r.Use(h.traceRequest) // after requestContext, whose traceparent it continues
	}
	r.Use(h.accessLog, h.recoverer)
	r.NoRoute(func(c *gin.Context) {
		h.fail(c, &requestError{status: http.StatusNotFound, code: "not_found", detail: "no resource at " + c.Request.URL.EscapedPath()})
	})
	r.NoMethod(func(c *gin.Context) {
		h.fail(c, &requestError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			detail: c.Request.Method + " is not allowed on " + c.Request.URL.EscapedPath()})
	})

	v1 := r.Group("/v1/companias")
	write, approve := h.authorize(AuthScopeWrite), h.authorize(AuthScopeApprove)
	v1.POST("", write, h.crear)
	v1.PATCH("/:id", write, h.actualizar)
	v1.POST("/:id/aprobar", approve, h.aprobar)
	v1.POST("/:id/rechazar", approve, h.rechazar)

	r.POST("/ingestion/compania-comando", write, h.ingestion)

	r.GET("/health", h.health)
	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	r.GET("/openapi.json", h.openapi)
	routeContract(r, h.fail)
	return r, nil
}

// handlers holds the dependencies of every route.
type handlers struct {
	app     app.Application
	ready   func(context.Context) error
	parked  func(context.Context, int) (int64, []int64, error) // nil: no outbox details
	log     *slog.Logger
	observe func(route, method string, status int, d time.Duration)
	auth    Authenticator // nil: the API is open
	tracer  trace.Tracer  // nil: no spans
}

type statusBody struct {
	Status string `json:"status"`
}

// health is the prototype's liveness route, kept for its clients.
func (h *handlers) health(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	h.writeJSON(c, http.StatusOK, statusBody{Status: "up"})
}

// healthz answers while the process can serve HTTP; it checks no dependency,
// so an orchestrator restarts the process only when it is truly stuck.
func (h *handlers) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	h.writeJSON(c, http.StatusOK, statusBody{Status: "alive"})
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
func (h *handlers) readyz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	if err := h.ready(ctx); err != nil {
		h.fail(c, &apperr.Error{Kind: apperr.Unavailable, Code: "not_ready", Message: "the service is not ready", Err: err})
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
	h.writeJSON(c, http.StatusOK, body)
}

func (h *handlers) openapi(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
