// Package logs builds the services' structured logger: JSON lines on one
// writer, every line naming its service and, inside a traced operation, its
// trace and span, so that a log line leads to its trace and back.
package logs

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Keys of the attributes TraceHandler adds: the W3C hex forms of the ids,
// as tracing back ends (Jaeger, Tempo) search them.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// New returns the logger of a service (and of its subcommands): JSON lines
// on w at level, each with service=<service>, and trace_id and span_id
// when the context passed to the logging call (InfoContext, LogAttrs…)
// carries a valid span context (see TraceHandler).
func New(w io.Writer, level slog.Leveler, service string) *slog.Logger {
	return slog.New(TraceHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))).With("service", service)
}

// TraceHandler wraps h so that a record logged with a context carrying a
// valid OpenTelemetry span context (a span started by the service's tracer,
// or the remote parent it continues) gets TraceIDKey and SpanIDKey
// attributes; other records pass through unchanged. With tracing off the
// services start no spans, so their lines carry no ids. Only the
// *Context logging calls (and LogAttrs, Log) pass a context: Info, Warn…
// log with context.Background. After WithGroup the ids land inside the
// group, like any attribute the record adds. Safe for concurrent use when
// h is.
func TraceHandler(h slog.Handler) slog.Handler {
	if th, ok := h.(traceHandler); ok {
		return th // already wrapped: add the ids once
	}
	return traceHandler{inner: h}
}

type traceHandler struct{ inner slog.Handler }

func (h traceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// The record is the caller's: add to a clone (slog.Handler contract).
		r = r.Clone()
		r.AddAttrs(slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String()))
	}
	return h.inner.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{inner: h.inner.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{inner: h.inner.WithGroup(name)}
}
