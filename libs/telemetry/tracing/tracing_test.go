package tracing_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/telemetry/tracing"
)

func TestStartOffWithoutEndpoint(t *testing.T) {
	t.Parallel()
	tracer, shutdown, err := tracing.Start(tracing.Config{ServiceName: "x", SampleRatio: 1})
	if err != nil || tracer != nil {
		t.Fatalf("Start(no endpoint) = %v, %v; want a nil tracer", tracer, err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown = %v", err)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []tracing.Config{
		{Endpoint: "http://127.0.0.1:1/v1/traces", ServiceName: "x", SampleRatio: 2},
		{Endpoint: "http://127.0.0.1:1/v1/traces", ServiceName: "x", SampleRatio: -1},
		{Endpoint: "http://127.0.0.1:1/v1/traces", SampleRatio: 1},
		{Endpoint: "http://[::1", ServiceName: "x", SampleRatio: 1},
	} {
		if _, _, err := tracing.Start(cfg); err == nil {
			t.Errorf("Start(%+v) = nil error", cfg)
		}
	}
}

// Spans are exported over OTLP/HTTP (protobuf) to the configured URL, and
// shutdown flushes the ones still batched.
func TestStartExportsOverOTLPHTTPAndShutdownFlushes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var posts []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts = append(posts, r)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)

	tracer, shutdown, err := tracing.Start(tracing.Config{Endpoint: srv.URL + "/custom/v1/traces", ServiceName: "companias-test", SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracer.Start(context.Background(), "work")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 1 {
		t.Fatalf("%d exports after shutdown, want 1", len(posts))
	}
	if r := posts[0]; r.Method != "POST" || r.URL.Path != "/custom/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		t.Errorf("export %s %s %s, want POST /custom/v1/traces protobuf", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
}

// The sampler follows the parent's flag and samples new traces by ratio.
func TestNewProviderSamplesParentBased(t *testing.T) {
	t.Parallel()
	tp := tracing.NewProvider(tracing.Config{ServiceName: "x", SampleRatio: 0})
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracer := tp.Tracer("t")
	_, root := tracer.Start(context.Background(), "root")
	if root.SpanContext().IsSampled() || !root.SpanContext().IsValid() {
		t.Errorf("ratio 0: root %v, want valid and not sampled", root.SpanContext())
	}
	parent, _ := tracing.SpanContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	_, child := tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "child")
	if !child.SpanContext().IsSampled() || child.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("sampled parent: child %v, want sampled in the parent's trace", child.SpanContext())
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tp := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
	} {
		sc, ok := tracing.SpanContext(tp)
		if !ok || !sc.IsRemote() {
			t.Fatalf("SpanContext(%q) = %v, %v", tp, sc, ok)
		}
		if got := tracing.Traceparent(sc); got != tp {
			t.Errorf("Traceparent(SpanContext(%q)) = %q", tp, got)
		}
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if _, ok := tracing.SpanContext(bad); ok {
			t.Errorf("SpanContext(%q) ok", bad)
		}
	}
	if got := tracing.Traceparent(trace.SpanContext{}); got != "" {
		t.Errorf("Traceparent(invalid) = %q, want empty", got)
	}
}

func TestStartLogged(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	tracer, stop, err := tracing.StartLogged(tracing.Config{}, time.Second, log)
	if err != nil || tracer != nil {
		t.Fatalf("off: tracer %v, err %v", tracer, err)
	}
	stop()
	if logs.Len() != 0 {
		t.Errorf("tracing off logged %q", logs.String())
	}

	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	tracer, stop, err = tracing.StartLogged(tracing.Config{Endpoint: srv.URL + "/v1/traces", ServiceName: "svc", SampleRatio: 1}, 5*time.Second, log)
	if err != nil || tracer == nil {
		t.Fatalf("on: tracer %v, err %v", tracer, err)
	}
	_, span := tracer.Start(context.Background(), "op")
	span.End()
	stop()
	if got.Load() == 0 {
		t.Error("stop did not flush the span to the endpoint")
	}
	if !strings.Contains(logs.String(), "tracing enabled") || strings.Contains(logs.String(), "flush traces") {
		t.Errorf("logs = %q", logs.String())
	}
	if _, _, err := tracing.StartLogged(tracing.Config{Endpoint: "ftp://x", ServiceName: "svc", SampleRatio: 1}, time.Second, log); err == nil {
		t.Error("a bad endpoint was accepted")
	}
}
