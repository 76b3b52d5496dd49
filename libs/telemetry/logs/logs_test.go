package logs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/telemetry/logs"
)

// lines decodes the JSON lines of buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewAddsTraceAndSpanIDsInsideASpan(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider() // records spans, exports nowhere
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	sc := span.SpanContext()

	var buf bytes.Buffer
	log := logs.New(&buf, slog.LevelDebug, "companias-test").With("component", "x")
	log.InfoContext(ctx, "inside")                                // in the span
	log.Info("outside")                                           // no context
	log.InfoContext(context.Background(), "outside with context") // a context without a span
	log.LogAttrs(ctx, slog.LevelWarn, "inside, attrs", slog.Int("n", 1))
	log.DebugContext(trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), "invalid span context")

	got := lines(t, &buf)
	if len(got) != 5 {
		t.Fatalf("%d lines, want 5: %s", len(got), buf.String())
	}
	for i, l := range got {
		inside := i == 0 || i == 3
		if l["service"] != "companias-test" || l["component"] != "x" {
			t.Errorf("line %d %v lacks service or component", i, l)
		}
		tid, hasT := l[logs.TraceIDKey]
		sid, hasS := l[logs.SpanIDKey]
		switch {
		case inside && (tid != sc.TraceID().String() || sid != sc.SpanID().String()):
			t.Errorf("line %d %v: trace_id %v span_id %v, want %s %s", i, l["msg"], tid, sid, sc.TraceID(), sc.SpanID())
		case !inside && (hasT || hasS):
			t.Errorf("line %d %v outside a span carries trace_id %v span_id %v", i, l["msg"], tid, sid)
		}
	}
}

func TestTraceHandlerRemoteParentAndGroups(t *testing.T) {
	t.Parallel()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0x00, 0xf0, 2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	var buf bytes.Buffer
	h := logs.TraceHandler(logs.TraceHandler(slog.NewJSONHandler(&buf, nil))) // wrapping twice adds the ids once
	slog.New(h).WithGroup("g").InfoContext(ctx, "grouped", "k", "v")
	got := lines(t, &buf)[0]
	g, _ := got["g"].(map[string]any)
	if g[logs.TraceIDKey] != sc.TraceID().String() || g[logs.SpanIDKey] != sc.SpanID().String() || g["k"] != "v" {
		t.Errorf("line %v, want the ids of the remote parent in group g", got)
	}
	if strings.Count(buf.String(), logs.TraceIDKey) != 1 {
		t.Errorf("line %s carries trace_id more than once", buf.String())
	}
}

// A record the caller keeps is not changed by the ids added to it.
func TestTraceHandlerLeavesTheRecordAlone(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	var buf bytes.Buffer
	h := logs.TraceHandler(slog.NewJSONHandler(&buf, nil))
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)
	if err := h.Handle(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.NumAttrs() != 0 {
		t.Errorf("the caller's record has %d attributes after Handle, want 0", r.NumAttrs())
	}
	if !h.Enabled(ctx, slog.LevelInfo) || h.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled does not follow the wrapped handler's level")
	}
}
