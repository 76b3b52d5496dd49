package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/telemetry/tracing"
)

// traceRequest runs the rest of the chain in a server span named after the
// method and the route template ("POST /v1/companias/:id/aprobar"; the
// method alone when no route matched). The span continues the traceparent
// requestContext accepted, or starts a new trace, and replaces it: the
// commands store the span's own context, so the outbox row, the Kafka header
// and the projection point at this span.
func (h *handlers) traceRequest(c *gin.Context) {
	ctx := c.Request.Context()
	if sc, ok := tracing.SpanContext(c.GetString(keyTraceparent)); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	route := c.FullPath()
	name := c.Request.Method
	if route != "" {
		name += " " + route
	}
	ctx, span := h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", c.Request.Method),
		attribute.String("http.route", route),
		attribute.String("url.path", c.Request.URL.Path),
		attribute.String("http.request.id", c.GetString(keyRequestID)),
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
