package outbox_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// newTracer returns a tracer recording every span in the returned exporter.
func newTracer(t testing.TB) (trace.Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.NewProvider(tracing.Config{ServiceName: "test", SampleRatio: 1}, sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer(tracing.ScopeName), exp
}

// spansNamed returns the recorded spans called name.
func spansNamed(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// The writer's half of a trace: the HTTP request's server span, whose
// context the outbox row stores; the relay's publish span, linked to it;
// and the Kafka record, whose traceparent header is that context.
func TestIntegrationRelayTracesFromRequestToKafka(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	b := startBroker(t, "", "")
	topic := newTopic(t, b.Addr())
	tracer, exp := newTracer(t)

	repo := postgres.NewRepository(pool, postgres.WithTopic(topic))
	t.Cleanup(repo.Close)
	now := func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
	router, err := httpapi.New(httpapi.Deps{
		App:    app.New(repo, uuid.NewString, now, nil),
		Ready:  func(context.Context) error { return nil },
		Logger: slog.New(slog.DiscardHandler),
		Tracer: tracer,
	}, httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)

	const clientTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	rq, err := http.NewRequest("POST", srv.URL+"/v1/companias",
		strings.NewReader(`{"nombre":"ACME SAS","email":"info@acme.co","identificacion":"900123456"}`))
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("Content-Type", "application/json")
	rq.Header.Set("traceparent", clientTP)
	res, err := srv.Client().Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d", res.StatusCode)
	}
	waitFor(t, 5*time.Second, "the server span", func() bool { return len(spansNamed(exp, "POST /v1/companias")) == 1 })
	server := spansNamed(exp, "POST /v1/companias")[0]
	if server.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("server span trace %s, want the client's", server.SpanContext.TraceID())
	}
	wantTP := tracing.Traceparent(server.SpanContext)

	// The outbox row stores the server span's context.
	var stored []byte
	if err := pool.QueryRow(context.Background(), `SELECT headers FROM outbox`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stored), wantTP) {
		t.Fatalf("outbox headers %s lack the server span's traceparent %s", stored, wantTP)
	}

	c := consume(t, b.Addr(), topic)
	r, err := outbox.New(pool, newWriter(t, b.Addr()), outbox.Options{Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	waitFor(t, 20*time.Second, "the published record", func() bool { return len(c.all()) == 1 })
	if got := kheader(c.all()[0].Headers, companiaevent.HeaderTraceparent); got != wantTP {
		t.Errorf("Kafka traceparent = %q, want the server span's %q", got, wantTP)
	}

	waitFor(t, 5*time.Second, "the publish span", func() bool { return len(spansNamed(exp, "outbox publish")) == 1 })
	pub := spansNamed(exp, "outbox publish")[0]
	if pub.SpanKind != trace.SpanKindProducer || pub.Parent.IsValid() || pub.Status.Code != codes.Unset {
		t.Errorf("publish span kind %v parent %v status %v, want a producer root, unset", pub.SpanKind, pub.Parent, pub.Status)
	}
	if len(pub.Links) != 1 || !pub.Links[0].SpanContext.Equal(server.SpanContext.WithRemote(true)) {
		t.Fatalf("publish span links %+v, want one to the server span %v", pub.Links, server.SpanContext)
	}
}

// A batch Kafka refused is a failed publish span; the retry is another.
func TestIntegrationRelayTracesFailedPublish(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	tracer, exp := newTracer(t)
	pub := &fakePublisher{fn: func(_ context.Context, call int, _ []kafka.Message) error {
		if call == 0 {
			return errors.New("broker down")
		}
		return nil
	}}
	r, err := outbox.New(pool, pub, outbox.Options{Tracer: tracer, BackoffMin: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	msgs := company(t, 3) // one company, 3 events, one traceparent
	mustCommit(t, pool, "t", msgs...)
	runRelay(t, r)
	waitFor(t, 10*time.Second, "two publish spans", func() bool { return len(spansNamed(exp, "outbox publish")) == 2 })
	spans := spansNamed(exp, "outbox publish")
	if spans[0].Status.Code != codes.Error || !strings.Contains(spans[0].Status.Description, "broker down") {
		t.Errorf("failed publish span status %v, want Error", spans[0].Status)
	}
	if spans[1].Status.Code != codes.Unset {
		t.Errorf("retried publish span status %v, want unset", spans[1].Status)
	}
	want, _ := tracing.SpanContext(header(msgs[0].Headers, companiaevent.HeaderTraceparent))
	for i, s := range spans {
		if len(s.Links) != 3 {
			t.Errorf("span %d has %d links, want 3 (one per row)", i, len(s.Links))
		}
		for _, l := range s.Links {
			if !l.SpanContext.Equal(want) {
				t.Errorf("span %d link %v, want %v", i, l.SpanContext, want)
			}
		}
	}
}

// Without a Tracer the relay makes no span (and publishes as before).
func TestIntegrationRelayUntracedByDefault(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{}
	r, err := outbox.New(pool, pub, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, pool, "t", company(t, 1)...)
	runRelay(t, r)
	waitFor(t, 10*time.Second, "the publish", func() bool { return unpublished(t, pool) == 0 })
	if got := kheader(pub.Calls()[0][0].Headers, companiaevent.HeaderTraceparent); got == "" {
		t.Error("the stored traceparent was not published")
	}
}
