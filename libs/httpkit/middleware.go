package httpkit

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/seedwork/problem"
	"github.com/propalpes/companias/libs/telemetry/httpmetrics"
	"github.com/propalpes/companias/libs/telemetry/tracing"
)

// observeRequest reports each served request to the Observe hook, labelled
// with the route template and a bounded method, never the raw path or method.
func (k *Kit) observeRequest(c *gin.Context) {
	start := time.Now()
	c.Next()
	k.observe(c.FullPath(), httpmetrics.Method(c.Request.Method), c.Writer.Status(), time.Since(start))
}

// traceRequest runs the rest of the chain in a server span named after the
// method and the route template ("POST /v1/companias/:id/aprobar"; the method
// alone when no route matched). The span continues the traceparent
// requestContext accepted, or starts a new trace, and replaces it: a command
// stores the span's own context, so its events point at this span.
func (k *Kit) traceRequest(c *gin.Context) {
	ctx := c.Request.Context()
	if sc, ok := tracing.SpanContext(Traceparent(c)); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	route := c.FullPath()
	// The span name and method come from the same fixed set as the metric
	// labels: a client may send any token as a method.
	method := httpmetrics.Method(c.Request.Method)
	name := method
	if route != "" {
		name += " " + route
	}
	ctx, span := k.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", method),
		attribute.String("http.route", route),
		attribute.String("url.path", c.Request.URL.Path),
		attribute.String("http.request.id", RequestID(c)),
	))
	defer span.End()
	c.Request = c.Request.WithContext(ctx)
	if tp := tracing.Traceparent(span.SpanContext()); tp != "" {
		c.Set(keyTraceparent, tp)
	}
	c.Next()
	status := c.Writer.Status()
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

// accessLog writes one Debug line per request, after it was served.
func (k *Kit) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	ctx := c.Request.Context()
	if !k.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	k.log.LogAttrs(ctx, slog.LevelDebug, "http request",
		slog.String("request_id", RequestID(c)),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.Duration("duration", time.Since(start)),
		slog.String("client_ip", c.ClientIP()),
		slog.String("subject", Subject(c)),
	)
}

// recoverer turns a panic in a handler into a 500 problem, logged once at
// Error ("http handler panic", with the panic value and the stack). It lets http.ErrAbortHandler through: that panic asks
// net/http to abort the response on purpose. When the response has begun,
// it is too late for a problem document: the panic is logged and the chain
// aborted.
func (k *Kit) recoverer(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		k.log.LogAttrs(c.Request.Context(), slog.LevelError, "http handler panic",
			slog.String("request_id", RequestID(c)),
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.String("route", c.FullPath()),
			slog.Any("panic", v),
			slog.String("stack", string(debug.Stack())),
		)
		if c.Writer.Written() {
			c.Abort()
			return
		}
		k.WriteProblem(c, problem.New(http.StatusInternalServerError, "internal", "an unexpected error occurred"))
	}()
	c.Next()
}

func (k *Kit) noRoute(c *gin.Context) {
	k.Fail(c, &Error{Status: http.StatusNotFound, Code: "route_not_found",
		Detail: fmt.Sprintf("no route %s %s; see /openapi.json", c.Request.Method, c.Request.URL.EscapedPath())})
}

func (k *Kit) noMethod(c *gin.Context) {
	k.Fail(c, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Detail: fmt.Sprintf("%s is not allowed on %s; allowed: %s", c.Request.Method, c.Request.URL.EscapedPath(), c.Writer.Header().Get("Allow"))})
}
