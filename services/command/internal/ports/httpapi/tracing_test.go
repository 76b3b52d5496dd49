package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// newTracedEnv starts the API on repo with a tracer that records every span
// (sample ratio 1) in the returned in-memory exporter.
func newTracedEnv(t *testing.T, repo *memRepo) (*env, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewProvider(tracing.Config{ServiceName: "test", SampleRatio: 1}, sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := newEnvConfig(t, repo, nil, func(c *httpapi.Deps) { c.Tracer = tp.Tracer(tracing.ScopeName) })
	return e, exp
}

// waitSpans returns the n spans exp recorded, failing if it holds another
// number by a deadline. The server span ends after the handler wrote the
// response, which the client may read first.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, n int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		spans := exp.GetSpans()
		if len(spans) >= n {
			if len(spans) > n {
				t.Fatalf("%d spans recorded, want %d: %+v", len(spans), n, spans)
			}
			return spans
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%d spans recorded, want %d", len(spans), n)
		}
	}
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func TestTracingServerSpanContinuesTheRequestTrace(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e, exp := newTracedEnv(t, repo)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := e.do(req{method: "POST", path: "/v1/companias", body: crearBody("A", "1"),
		header: map[string]string{"traceparent": tp, "X-Request-Id": "req-1"}})
	want(t, r, http.StatusCreated)

	s := waitSpans(t, exp, 1)[0]
	if s.Name != "POST /v1/companias" || s.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q kind %v, want %q server", s.Name, s.SpanKind, "POST /v1/companias")
	}
	if s.Parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" || !s.Parent.IsRemote() {
		t.Errorf("parent = %v, want the request's traceparent", s.Parent)
	}
	if got := attr(s, "http.response.status_code"); got != "201" {
		t.Errorf("status attribute = %q", got)
	}
	if got := attr(s, "http.route"); got != "/v1/companias" {
		t.Errorf("route attribute = %q", got)
	}
	if got := attr(s, "http.request.id"); got != "req-1" {
		t.Errorf("request id attribute = %q", got)
	}
	// The command carries the server span's context, not the client's.
	if got, want := repo.lastMeta().Traceparent, tracing.Traceparent(s.SpanContext); got != want || got == tp {
		t.Errorf("command traceparent = %q, want the span's %q", got, want)
	}
}

func TestTracingStartsATraceWhenNoneCameIn(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e, exp := newTracedEnv(t, repo)
	id := e.do(req{method: "POST", path: "/v1/companias", body: crearBody("A", "1")}).str("id")
	waitSpans(t, exp, 1)
	exp.Reset()

	// An invalid traceparent is ignored: a new trace starts.
	r := e.do(req{method: "POST", path: "/v1/companias/" + id + "/aprobar",
		header: map[string]string{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}})
	want(t, r, http.StatusOK)
	s := waitSpans(t, exp, 1)[0]
	if s.Name != "POST /v1/companias/:id/aprobar" {
		t.Errorf("span name = %q, want the route template", s.Name)
	}
	if s.Parent.IsValid() {
		t.Errorf("span has parent %v, want a root span", s.Parent)
	}
	tp := repo.lastMeta().Traceparent
	if sc, ok := tracing.SpanContext(tp); !ok || sc.TraceID() != s.SpanContext.TraceID() || sc.SpanID() != s.SpanContext.SpanID() || !sc.IsSampled() {
		t.Errorf("command traceparent = %q, want the span's %v", tp, s.SpanContext)
	}
}

func TestTracingUnmatchedRouteAndServerError(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	repo.fail = func(context.Context, string) error { return errors.New("disk on fire") }
	e, exp := newTracedEnv(t, repo)

	wantProblem(t, e.do(req{method: "GET", path: "/nowhere"}), http.StatusNotFound, "route_not_found")
	s := waitSpans(t, exp, 1)[0]
	if s.Name != "GET" || attr(s, "http.route") != "" || s.Status.Code.String() != "Unset" {
		t.Errorf("unmatched: span %q route %q status %v, want %q, no route, unset", s.Name, attr(s, "http.route"), s.Status, "GET")
	}
	exp.Reset()

	// A method outside the standard set names no span after itself.
	e.do(req{method: "BREW", path: "/nowhere"})
	s = waitSpans(t, exp, 1)[0]
	if s.Name != "other" || attr(s, "http.request.method") != "other" {
		t.Errorf("odd method: span %q method %q, want other, other", s.Name, attr(s, "http.request.method"))
	}
	exp.Reset()

	r := e.do(req{method: "POST", path: "/v1/companias", body: crearBody("A", "1")})
	want(t, r, http.StatusInternalServerError)
	s = waitSpans(t, exp, 1)[0]
	if s.Status.Code.String() != "Error" || attr(s, "http.response.status_code") != "500" {
		t.Errorf("5xx: span status %v, status attribute %q; want Error, 500", s.Status, attr(s, "http.response.status_code"))
	}
}

func TestTracingOffPassesTheRequestTraceparentOn(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newEnv(t, repo) // no Tracer
	want(t, e.do(req{method: "POST", path: "/v1/companias", body: crearBody("A", "1")}), http.StatusCreated)
	if got := repo.lastMeta().Traceparent; got != "" {
		t.Errorf("without a tracer and a traceparent, the command got %q", got)
	}
}

// A traceparent the shared rule refuses (tracing.ParseTraceparent) is
// dropped: the command runs without it, and a Warn log gives its length,
// never its value. A valid one still passes on.
func TestInvalidTraceparentDroppedAndLogged(t *testing.T) {
	t.Parallel()
	const future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name, tp, want string
	}{
		{"valid", "00" + future[2:], "00" + future[2:]},
		{"future version, short extra", future + "-x", future},
		{"future version over the length bound", future + "-" + strings.Repeat("x", tracing.MaxTraceparentLen), ""},
		{"8 KB", future + "-" + strings.Repeat("7", 8000), ""},
		{"reserved flags", "00" + future[2:53] + "10", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := newMemRepo()
			e := newEnv(t, repo) // no Tracer: the value itself would be stored
			want(t, e.do(req{method: "POST", path: "/v1/companias", body: crearBody("A", "1"),
				header: map[string]string{"traceparent": tc.tp}}), http.StatusCreated)
			if got := repo.lastMeta().Traceparent; got != tc.want {
				t.Errorf("command traceparent = %q, want %q", got, tc.want)
			}
			var logged []map[string]any
			for _, r := range e.logs.Records(t, "level", "WARN") {
				if r["msg"] == "invalid traceparent dropped" {
					logged = append(logged, r)
				}
			}
			if tc.want != "" {
				if len(logged) != 0 {
					t.Errorf("a kept traceparent was logged as dropped: %v", logged)
				}
				return
			}
			if len(logged) != 1 || logged[0]["length"] != float64(len(tc.tp)) {
				t.Fatalf("Warn logs %v, want one with length %d", logged, len(tc.tp))
			}
			for k, v := range logged[0] {
				if s, ok := v.(string); ok && strings.Contains(s, tc.tp[3:35]) {
					t.Errorf("log attribute %s holds the traceparent: %q", k, s)
				}
			}
		})
	}
}
