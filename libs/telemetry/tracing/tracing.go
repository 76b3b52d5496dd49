// Package tracing sets up OpenTelemetry tracing for the companias services:
// spans are exported over OTLP/HTTP when an endpoint is configured, and not
// produced at all otherwise. It also converts between W3C traceparent strings
// (what the outbox rows and the Kafka headers of the events carry) and span
// contexts.
//
// No global is touched: the tracer is handed to the components that trace,
// and a component given a nil tracer skips tracing on that nil check.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the services' spans; the
// service.name resource attribute tells the services apart.
const ScopeName = "github.com/propalpes/companias"

// Config says whether and where spans are exported.
type Config struct {
	// Endpoint is the full OTLP/HTTP traces URL (".../v1/traces"); ""
	// turns tracing off.
	Endpoint string
	// ServiceName is the service.name resource attribute.
	ServiceName string
	// SampleRatio is the share of new traces sampled, in [0, 1]; a request
	// that comes with a trace context follows its sampled flag.
	SampleRatio float64
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.Endpoint != "" }

// Start returns the service's tracer and a shutdown function that flushes
// the spans still buffered and stops the exporter (call it with a context
// bounded by the shutdown deadline). When cfg is not Enabled the tracer is
// nil and shutdown does nothing. Start does not connect: the exporter sends
// in the background, and a collector that is down only loses spans.
func Start(cfg Config) (trace.Tracer, func(context.Context) error, error) {
	if !cfg.Enabled() {
		return nil, func(context.Context) error { return nil }, nil
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, nil, fmt.Errorf("tracing: sample ratio %v is outside [0, 1]", cfg.SampleRatio)
	}
	if cfg.ServiceName == "" {
		return nil, nil, errors.New("tracing: empty service name")
	}
	// The exporter only logs a URL it cannot parse, and then sends nowhere.
	if u, err := url.Parse(cfg.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("tracing: endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	// New only builds the HTTP client; the context is not kept.
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(cfg.Endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	tp := NewProvider(cfg, sdktrace.WithBatcher(exp))
	return tp.Tracer(ScopeName), tp.Shutdown, nil
}

// NewProvider returns the SDK tracer provider Start uses, with the
// service.name resource and the parent-based ratio sampler of cfg, exporting
// through opts (tests pass sdktrace.WithSyncer of an in-memory exporter).
func NewProvider(cfg Config, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	res := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))
	if merged, err := resource.Merge(resource.Default(), res); err == nil {
		res = merged
	}
	// A batch span links every row or event of its batch, and batch sizes
	// are bounded by the configuration: keep all the links (default 128).
	limits := sdktrace.NewSpanLimits()
	limits.LinkCountLimit = -1
	opts = append([]sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithRawSpanLimits(limits),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	}, opts...)
	return sdktrace.NewTracerProvider(opts...)
}

// Traceparent formats sc as a W3C traceparent header value, or returns ""
// when sc is not valid.
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
	return carrier.Get("traceparent")
}

// SpanContext parses a W3C traceparent header value into a remote span
// context; ok is false when tp is empty or one ParseTraceparent ignores, so
// that every reader of a traceparent (a request, an outbox row, an event)
// follows the same rule.
func SpanContext(tp string) (sc trace.SpanContext, ok bool) {
	tp, ok = ParseTraceparent(tp)
	if !ok {
		return trace.SpanContext{}, false
	}
	return extract(tp)
}

// StartLogged is Start for a service's main: it logs that tracing is on
// (nothing when it is off) and returns a stop function that flushes the
// spans still buffered within flushTimeout and stops the exporter, logging a
// failure instead of returning it. With tracing off the tracer is nil and
// stop does nothing.
func StartLogged(cfg Config, flushTimeout time.Duration, log *slog.Logger) (trace.Tracer, func(), error) {
	tracer, shutdown, err := Start(cfg)
	if err != nil {
		return nil, nil, err
	}
	if tracer == nil {
		return nil, func() {}, nil
	}
	log.Info("tracing enabled", "endpoint", cfg.Endpoint, "service_name", cfg.ServiceName, "sample_ratio", cfg.SampleRatio)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}
	return tracer, stop, nil
}
