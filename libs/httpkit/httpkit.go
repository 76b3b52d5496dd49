// Package httpkit is the HTTP kit both companias services build their gin
// ports with, so that the two behave alike at the edge: one engine
// configuration, request ids under one rule, the W3C traceparent, the access
// log, panic recovery, the request-metrics hook, bearer-token authorization
// and RFC 9457 problem answers with failure logging in one place.
//
// A port builds one Kit from its Options, takes its Engine, registers its
// routes (guarded by Kit.Authorize) and reports every failure through
// Kit.Fail. The per-request values the middlewares find (request id,
// traceparent, token claims) are read back with RequestID, Traceparent and
// Claims; *gin.Context never leaves the ports.
package httpkit

import (
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"
)

// ObserveFunc is the request-metrics hook. It is called once per request
// after it was served (a recovered panic included) with gin's route template
// ("/v1/companias/:id", never the raw path; "" when no route matched), the
// method bounded by httpmetrics.Method (a method outside the standard set is
// "other"), the status and the duration.
type ObserveFunc func(route, method string, status int, d time.Duration)

// Options configure a Kit. Logger is required; the rest are optional.
type Options struct {
	// Logger receives the access log (Debug), 5xx causes (Error; 503 at
	// Warn), recovered panics and dropped traceparents (Warn).
	Logger *slog.Logger
	// Observe, if set, is the request-metrics hook.
	Observe ObserveFunc
	// Tracer, if set, runs each request in a server span named
	// "METHOD /route/template", child of the request's valid traceparent (or
	// the root of a new trace); Traceparent then returns that span's context.
	// While it is nil no span is made and Traceparent returns the request's
	// own valid traceparent.
	Tracer trace.Tracer
	// Auth, if set, verifies bearer tokens for Authorize; while it is nil
	// every route is open (AUTH_MODE=none).
	Auth Authenticator
	// Realm is the realm of the WWW-Authenticate challenges (default
	// "companias").
	Realm string
}

// Kit holds the shared middlewares and the failure path of one HTTP port.
// It is safe for concurrent use once built.
type Kit struct {
	log     *slog.Logger
	observe ObserveFunc
	tracer  trace.Tracer
	auth    Authenticator
	realm   string
}

// New builds a Kit. It panics if opts.Logger is nil: that is a wiring
// mistake, and the ports check their Logger before calling it.
func New(opts Options) *Kit {
	if opts.Logger == nil {
		panic("httpkit: Options.Logger is required")
	}
	if opts.Realm == "" {
		opts.Realm = "companias"
	}
	return &Kit{log: opts.Logger, observe: opts.Observe, tracer: opts.Tracer, auth: opts.Auth, realm: opts.Realm}
}

// AuthEnabled reports whether the Kit has an Authenticator, that is whether
// Authorize checks tokens.
func (k *Kit) AuthEnabled() bool { return k.auth != nil }

// Engine returns a new gin engine with the kit's middlewares, in this order:
// the metrics hook (first, so that it times and sees everything), request
// context (request id and traceparent), the server span, the access log and
// panic recovery. A path without a route answers a 404 problem and a known
// path with another method a 405 problem listing the allowed ones; a
// trailing slash or a wrong case is never redirected (a client would follow
// the redirect with a changed method or a lost body).
//
// It puts gin in release mode: gin.SetMode is process-wide by gin's design,
// and release mode only silences gin's debug output.
func (k *Kit) Engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	if k.observe != nil {
		e.Use(k.observeRequest)
	}
	e.Use(k.requestContext)
	if k.tracer != nil {
		e.Use(k.traceRequest) // after requestContext, whose traceparent it continues
	}
	e.Use(k.accessLog, k.recoverer)
	e.NoRoute(k.noRoute)
	e.NoMethod(k.noMethod)
	return e
}
